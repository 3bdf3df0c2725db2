"""Every rendered compose file passes the real compose v2 (`docker compose config -q`) and the
compose-spec schema; GPU, bind and volume layout follow the model."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aistack.inventory import load_cluster
from aistack.render import render_cluster
from tests.conftest import HOMELAB


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The homelab tree with each host's state under a temp dir, secrets created as deploy would."""
    root = tmp_path_factory.mktemp("hosts")
    overrides = [f"hosts.{h}.storage.state={root}/{h}" for h in ("main", "edge", "orin", "nx")]
    result = render_cluster(load_cluster(HOMELAB, overrides))
    for render in result.values():
        for stack in render.stacks.values():
            for secret in (s.path for s in stack.secrets):
                Path(secret).parent.mkdir(parents=True, exist_ok=True)
                Path(secret).write_text("")
        for path, file in render.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(file.content)
    return result


def compose_files(rendered):
    return sorted(p for r in rendered.values() for p in r.files if p.endswith("/compose.yaml"))


def test_every_compose_file_passes_docker_compose_config(rendered):
    assert subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0, "compose v2 missing"
    files = compose_files(rendered)
    # One stack per service of the homelab: 12 written, and monitoring's Prometheus, Grafana and
    # a node and GPU exporter on each of the four hosts.
    assert len(files) == 12 + 2 + 4 + 4
    for path in files:
        result = subprocess.run(["docker", "compose", "-f", path, "config", "-q"], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"


def test_every_compose_file_matches_the_compose_spec_schema(rendered):
    tool = shutil.which("check-jsonschema") or str(Path(__import__("sys").executable).parent / "check-jsonschema")
    result = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", *compose_files(rendered)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_v2_rejects_a_broken_file(tmp_path):
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  x:\n    image: a\n    restartt: always\n")
    assert subprocess.run(["docker", "compose", "-f", str(bad), "config", "-q"], capture_output=True).returncode != 0


def load(rendered, host, stack):
    path = next(p for p in rendered[host].files if p.endswith(f"/stacks/{stack}/compose.yaml"))
    return yaml.safe_load(rendered[host].files[path].content)


def test_x86_gpu_reservation_and_jetson_runtime(rendered):
    edge = load(rendered, "edge", "gemma-edge")["services"]["server"]
    devices = edge["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}]
    main = load(rendered, "main", "chat-main")["services"]["server"]
    assert main["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0", "1"]
    orin = load(rendered, "orin", "gemma-orin")["services"]["server"]
    assert orin["runtime"] == "nvidia" and "deploy" not in orin


def test_services_bind_where_the_inventory_says(rendered):
    edge = load(rendered, "edge", "gemma-edge")["services"]["server"]["command"]
    assert edge[edge.index("--host") + 1] == "192.0.2.11"
    gateway = load(rendered, "main", "gateway")["services"]["litellm"]["command"]
    assert gateway[gateway.index("--host") + 1] == "127.0.0.1"
    webui = load(rendered, "main", "webui")["services"]
    assert "listen_addresses=127.0.0.1" in webui["postgres"]["command"]
    assert webui["redis"]["command"][:3] == ["redis-server", "--bind", "127.0.0.1"]


def test_models_and_vectors_mount_their_own_paths(rendered):
    edge = load(rendered, "edge", "gemma-edge")["services"]["server"]
    assert "/srv/models:/models:ro" in edge["volumes"]
    qdrant = load(rendered, "nx", "qdrant")["services"]["qdrant"]
    assert qdrant["volumes"] == ["/srv/vectors/qdrant:/qdrant/storage"]


def test_every_container_has_healthcheck_restart_and_log_rotation(rendered):
    for host, render in rendered.items():
        for path in render.files:
            if not path.endswith("compose.yaml"):
                continue
            for name, svc in yaml.safe_load(render.files[path].content)["services"].items():
                assert svc["healthcheck"]["test"], (host, path, name)
                assert svc["restart"] == "unless-stopped"
                assert svc["logging"]["options"] == {"max-size": "10m", "max-file": "3"}


def test_two_whisper_instances_at_int8_float16_on_their_own_ports(rendered):
    whisper = load(rendered, "edge", "whisper")["services"]
    assert sorted(whisper) == ["whisper-1", "whisper-2"]
    assert {w["environment"]["WHISPER__COMPUTE_TYPE"] for w in whisper.values()} == {"int8_float16"}
    assert [w["environment"]["UVICORN_PORT"] for w in whisper.values()] == ["8000", "8001"]


def test_an_image_with_a_locked_digest_is_pulled_by_digest(monkeypatch):
    from aistack import inventory
    from aistack.model.locks import load_image_lock

    digest = "sha256:" + "ab" * 32
    lock = load_image_lock()
    lock.images["llamacpp-cuda"].digest = digest
    monkeypatch.setattr(inventory, "load_image_lock", lambda path: lock)
    rendered = render_cluster(load_cluster(HOMELAB))
    edge = yaml.safe_load(rendered["edge"].files["/srv/aistack/stacks/gemma-edge/compose.yaml"].content)
    assert edge["services"]["server"]["image"] == f"ghcr.io/ggml-org/llama.cpp:server-cuda-b11063@{digest}"
    unpinned = yaml.safe_load(rendered["edge"].files["/srv/aistack/stacks/kokoro/compose.yaml"].content)
    assert "@" not in unpinned["services"]["kokoro"]["image"]
