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
