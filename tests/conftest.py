"""Shared fixtures: the shipped inventories and an in-process `aistack` runner."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aistack.cli import app
from aistack.inventory import load_cluster

PROJECT = Path(__file__).resolve().parent.parent
HOMELAB = PROJECT / "inventory" / "homelab.py"
# Every image and model of the homelab allowed unlocked: its rollout without the hub or a registry.
HOMELAB_ALLOW_ALL = [
    'allow_unpinned=["sglang","llamacpp-cuda","llamacpp-jetson-r36-site","llamacpp-jetson-r35-site","speaches-cuda",'
    '"kokoro-gpu","nanoowl-r36","qdrant","litellm","nginx","openwebui","postgres","redis","prometheus","grafana",'
    '"node-exporter","dcgm-exporter","jetson-exporter-r36","jetson-exporter-r35"]',
    'allow_unverified_models=["gpt-oss-20b","gemma-4-e2b-it","faster-whisper-base",'
    '"owlvit-base-patch32","bge-base-en-v1.5","bge-reranker-v2-m3"]',
]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


def aistack(*args: str) -> Run:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def homelab():
    return load_cluster(HOMELAB)


def pytest_addoption(parser):
    group = parser.getgroup("aistack verify", "the live suite (tests/live) against a running cluster")
    group.addoption("--inventory", help="check this inventory's hosts (tests/live is skipped without it)")
    group.addoption("--verify-host", action="append", default=[], help="only this host (repeatable)")
    group.addoption("--verify-set", action="append", default=[], help="dotted.path=value, as `aistack plan --set`")


def pytest_ignore_collect(collection_path, config):
    """tests/live needs a running cluster: it is collected only when --inventory names one."""
    if collection_path == PROJECT / "tests" / "live" and not config.getoption("inventory"):
        return True
    return None
