"""Rendered files rely only on what their image's facts state (locks/images.yaml): a healthcheck
calls a program the image ships, and every llama.cpp image records the build it carries."""

from __future__ import annotations

import shlex

import pytest
import yaml

from aistack.inventory import load_cluster
from aistack.model.locks import load_image_lock
from aistack.render import render_cluster
from aistack.render.containers import probe_for
from tests.conftest import HOMELAB, PROJECT

SANDBOX = PROJECT / "inventory" / "sandbox.py"
LOCK = load_image_lock()


def _program(test: list[str]) -> str:
    """The program a compose healthcheck runs: CMD's first argument, or CMD-SHELL's first word."""
    kind, first = test[0], test[1]
    return shlex.split(first)[0] if kind == "CMD-SHELL" else first


def _healthchecks(inventory):
    by_ref = {ref: key for key, e in LOCK.images.items() for ref in (e.ref, e.pinned_ref)}
    for host, render in render_cluster(load_cluster(inventory)).items():
        for path, file in render.files.items():
            if not path.endswith("/compose.yaml"):
                continue
            for name, service in yaml.safe_load(file.content)["services"].items():
                if "healthcheck" in service:
                    yield f"{host}:{path}:{name}", by_ref[service["image"]], service["healthcheck"]["test"]


@pytest.mark.parametrize("inventory", [HOMELAB, SANDBOX], ids=["homelab", "sandbox"])
def test_every_healthcheck_calls_a_program_its_image_ships(inventory):
    checks = list(_healthchecks(inventory))
    assert len(checks) > 10
    for where, key, test in checks:
        assert _program(test) in LOCK.images[key].tools, f"{where}: {test} needs {_program(test)!r}, image {key} ships {LOCK.images[key].tools}"


def test_the_gateway_is_probed_without_curl_in_the_homelab_and_the_sandbox():
    """LiteLLM's image has no curl (LiteLLM #9295): its stand-in has none either, so the sandbox
    proves the probe the cluster runs."""
    assert "curl" not in LOCK.images["litellm"].tools and "curl" not in LOCK.images["sandbox-litellm"].tools
    for inventory in (HOMELAB, SANDBOX):
        [test] = [t for where, key, t in _healthchecks(inventory) if key in ("litellm", "sandbox-litellm")]
        assert _program(test) == "python3"


def test_a_probe_picks_the_first_tool_the_image_has():
    assert _program(probe_for("x", ["wget", "curl"], "0.0.0.0", 80, "/h")) == "curl"
    assert probe_for("x", ["wget"], "0.0.0.0", 80, "/h")[-1] == "http://127.0.0.1:80/h"
    assert _program(probe_for("x", ["python3", "bash"], "10.0.0.1", 80, "/h")) == "python3"
    assert "/dev/tcp/10.0.0.1/6333" in probe_for("x", ["bash", "curl"], "10.0.0.1", 6333)[1]
    with pytest.raises(ValueError, match="image x: ships none"):
        probe_for("x", [], "10.0.0.1", 80, "/h")


def test_every_image_names_where_its_facts_were_read():
    assert all(entry.source and entry.tools for entry in LOCK.images.values())


def test_every_llamacpp_image_records_its_build():
    cluster = load_cluster(HOMELAB)
    keys = {key for key in LOCK.images if key.startswith("llamacpp")}
    keys |= {cluster.image_key(n) for n, s in cluster.services.items() if s.kind == "llamacpp"}
    for key in sorted(keys):
        engine = LOCK.images[key].engine or ""
        assert engine.startswith("b") and engine[1:].isdigit(), f"{key}: engine {engine!r} is not a llama.cpp build"
