"""The rendered files run: nginx -> LiteLLM -> llama.cpp, each from its rendered compose file,
on real engines (llama.cpp on the CPU with a tiny generated GGUF, LiteLLM from PyPI, Debian's
nginx), on this machine's loopback. A request by alias comes back from the model.
"""

import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from aistack.inventory import load_cluster
from aistack.render import render_cluster
from aistack.sandbox.images import ensure_images
from aistack.sandbox.testhosts import nofile_ceiling
from aistack.sandbox.tiny_gguf import generate

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "local"
STACKS = ("chat-main", "gateway", "proxy")  # inner first: each outer layer needs the one inside


def compose(directory: str, project: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", "-p", f"aistack-test-{project}", "-f", f"{directory}/compose.yaml", *args],
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    ensure_images(["aistack-llamacpp", "aistack-litellm", "aistack-nginx"])
    root = tmp_path_factory.mktemp("main")
    paths = [f"hosts.main.storage.{p}={root}/{p}" for p in ("state", "models", "vectors")]
    paths.append(f"hosts.main.tuning.nofile={nofile_ceiling()}")
    cluster = load_cluster(FIXTURE / "local.py", paths, project_dir=FIXTURE)
    generate(root / "models" / "tiny-llama" / "tiny.gguf", quiet=True)
    rendered = render_cluster(cluster)["main"]
    for path, file in rendered.files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(file.content)
    key = "sk-" + secrets.token_hex(16)
    for stack in rendered.stacks.values():
        for secret in (s.path for s in stack.secrets):
            Path(secret).parent.mkdir(parents=True, exist_ok=True)
            Path(secret).write_text(f"LITELLM_MASTER_KEY={key}\n")
            Path(secret).chmod(0o600)
    started = []
    try:
        for name in STACKS:
            stack = rendered.stacks[name]
            started.append(stack)
            up = compose(stack.directory, name, "up", "-d", "--wait", "--wait-timeout", "240")
            assert up.returncode == 0, f"{name}: {up.stderr}\n{compose(stack.directory, name, 'logs').stdout[-3000:]}"
        yield cluster, key
    finally:
        for stack in reversed(started):
            compose(stack.directory, stack.service, "down", "--timeout", "5")


def test_chat_by_alias_through_nginx_litellm_and_llama_cpp(running):
    cluster, key = running
    response = httpx.post(
        "http://127.0.0.1:18080/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] is not None
    assert body["usage"]["completion_tokens"] >= 1


def test_gateway_refuses_a_request_without_the_master_key(running):
    response = httpx.post(
        "http://127.0.0.1:18080/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4},
        timeout=60,
    )
    assert response.status_code in (400, 401, 403), response.text


def test_an_unknown_alias_is_refused(running):
    _, key = running
    response = httpx.post(
        "http://127.0.0.1:18080/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "no-such-alias", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert response.status_code >= 400


def test_engine_runs_the_rendered_slots_and_context(running):
    props = httpx.get("http://127.0.0.1:18181/props", timeout=10).json()
    assert props["total_slots"] == 2
    assert props["default_generation_settings"]["n_ctx"] == 512  # ctx 1024 / 2 slots, split KV


def test_a_request_larger_than_a_slot_is_refused_by_the_engine(running):
    """The failure the per-slot check guards: the real server's exceeds-context error (000)."""
    long_prompt = "word " * 2000
    response = httpx.post(
        "http://127.0.0.1:18181/v1/chat/completions",
        json={"messages": [{"role": "user", "content": long_prompt}], "max_tokens": 4},
        timeout=120,
    )
    assert response.status_code == 400
    assert "exceeds the available context size" in response.text
