"""What `aistack verify` expects of each host comes from the same rollout deploy applies."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from aistack.inventory import read_inventory
from aistack.models_lock import ModelLock
from aistack.render import render_cluster
from aistack.rollout import prepare
from aistack.verify import expected as ex
from tests.conftest import HOMELAB, HOMELAB_ALLOW_ALL, PROJECT


def homelab_expected(*overrides: str) -> ex.Expected:
    rollout = prepare(read_inventory(HOMELAB), [*HOMELAB_ALLOW_ALL, *overrides], model_lock=ModelLock(), local_ids={})
    return ex.expectations(rollout)


@pytest.fixture(scope="module")
def expected() -> ex.Expected:
    return homelab_expected()


def by(items: list, host: str) -> list:
    return [e for e in items if e.host == host]


def test_every_rendered_file_is_expected_byte_for_byte(expected, homelab):
    rendered = render_cluster(homelab)
    want = {(h, p): hashlib.sha256(f.content.encode()).hexdigest() for h, r in rendered.items() for p, f in r.files.items()}
    assert {(e.host, e.path): e.sha256 for e in expected.of(ex.RenderedFile)} == want


def test_engines_are_expected_to_report_the_tuned_settings(expected):
    engines = {e.service: dict(e.settings) for e in expected.of(ex.EngineSettings)}
    assert engines["chat-main"] == {"max_running_requests": 128}  # SGLang (003)
    assert engines["gemma-edge"] == {"total_slots": 4, "n_ctx": 8192}  # -c 32768 -np 4 (000)
    assert engines["gemma-orin"] == {"total_slots": 8, "n_ctx": 8192}
    assert engines["embed"] == {"total_slots": 4}  # no generation: no per-slot context to count on


def test_gpu_containers_and_jetson_runtimes(expected):
    gpus = {e.container: (e.gpus, e.jetson) for e in expected.of(ex.GpuVisible)}
    assert gpus["chat-main-server-1"] == (2, False)
    assert gpus["whisper-whisper-1-1"] == (1, False)
    assert gpus["gemma-orin-server-1"] == (0, True)
    assert gpus["rerank-server-1"] == (0, True)


def test_ports_are_expected_on_the_declared_address_only(expected):
    listening = {(e.host, e.port): set(e.addresses) for e in expected.of(ex.Listening)}
    assert listening[("main", 4000)] == {"127.0.0.1"}  # the gateway stays behind nginx
    assert listening[("main", 5432)] == {"127.0.0.1"}  # Open WebUI's database
    assert listening[("edge", 8001)] == {"192.0.2.11"}  # the second Whisper instance


def test_every_alias_is_tried_through_nginx_from_the_gateways_host(expected):
    aliases = {e.alias: e for e in expected.of(ex.AliasAnswers)}
    assert set(aliases) == {"fast", "chat", "agent", "vision", "embed", "rerank", "stt", "tts"}
    assert {e.request for e in aliases.values()} == {"chat", "embeddings", "rerank", "transcription", "speech"}
    assert {(e.host, e.url, e.key_file, e.key_var, e.held) for e in aliases.values()} == {
        ("main", "http://192.0.2.10:80", "/srv/aistack/secrets/gateway.env", "LITELLM_MASTER_KEY", None)}


def test_a_moved_service_is_expected_on_its_new_host_only():
    moved = homelab_expected("services.gemma-orin.host=nx", "services.qdrant.host=orin", "services.embed.host=orin",
                    "services.rerank.host=orin")
    stacks = {e.host: e.directories for e in moved.of(ex.OnlyPlacedStacks)}
    assert "/srv/aistack/stacks/qdrant" in stacks["orin"] and "/srv/aistack/stacks/qdrant" not in stacks["nx"]
    assert {e.host for e in moved.of(ex.ServiceReady)} == {"orin"}
    assert {e.host for e in moved.of(ex.EngineSettings) if e.service == "gemma-orin"} == {"nx"}


def test_a_parked_lane_is_rendered_and_expected_not_running():
    parked = homelab_expected("services.gemma-edge.active=false")
    assert "gemma-edge" not in {p for e in by(parked.of(ex.OnlyPlacedRunning), "edge") for p in e.projects}
    assert "/srv/aistack/stacks/gemma-edge" in by(parked.of(ex.OnlyPlacedStacks), "edge")[0].directories
    assert "gemma-edge-server-1" not in {e.container for e in parked.of(ex.ContainerUp)}


def test_verify_names_a_host_the_inventory_does_not_have():
    run = subprocess.run([str(Path(sys.executable).parent / "aistack"), "verify", "--inventory", str(HOMELAB),
                          "--set", HOMELAB_ALLOW_ALL[0], "--set", HOMELAB_ALLOW_ALL[1], "--host", "jetson9"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "--host jetson9: not in" in run.stderr + run.stdout
