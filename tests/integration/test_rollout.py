"""converge -> idempotence -> edits, each proven on the four sandbox hosts over real SSH."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import time

import httpx

from aistack.model.locks import PROJECT_DIR
from aistack.sandbox import smoke, testhosts
from tests.conftest import aistack
from tests.integration.sandbox_run import (
    SANDBOX,
    deploy,
    health,
    logs,
    running,
    ssh,
    start_times,
    verify,
)

STACKS = "/srv/aistack/stacks"


def test_converge_runs_every_started_stack_and_holds_the_rest(converged, sandbox):
    assert converged.code == 0 and not converged.failed_hosts, converged.log[-3000:]
    assert {"chat-main-server-1", "gateway-litellm-1", "proxy-nginx-1"} <= running("main")
    assert "gemma-edge-server-1" in running("edge")
    assert "gemma-orin-server-1" in running("orin")
    # Held stacks: files put and validated, not running, the reason in the run's output. What
    # runs on nx: the Ray head of the distributed lane (its vLLM held), the retrieval lanes and
    # the node exporter.
    assert running("nx") == {"ray-head-ray-1", "node-exporter-nx-node-exporter-1", "embed-server-1", "rerank-server-1"}
    assert set(ssh("nx", f"ls {STACKS}").split()) == {"embed", "qdrant", "rerank", "ray-head", "vllm-ray", "node-exporter-nx"}
    assert "qdrant rendered and validated, not started: no registry" in converged.log
    assert "vllm-ray rendered and validated, not started: no GPU in the sandbox: vLLM needs CUDA" in converged.log


def test_a_second_run_changes_nothing_and_reads_each_host_once(converged):
    again = deploy(debug=True)
    assert again.code == 0, again.log[-3000:]
    assert again.changed == 0, f"{again.changed} operations changed on a re-apply"
    # Issue 18: a host where nothing changed runs its one state read and nothing else.
    assert again.commands_per_host() == {name: 1 for name in ("main", "edge", "orin", "nx")}, again.commands_per_host()


def test_secrets_are_generated_on_the_host_0600_and_kept(converged):
    stat = ssh("main", "stat -c '%a %s' /srv/aistack/secrets/gateway.env").split()
    assert stat[0] == "600" and int(stat[1]) > 20
    before = ssh("main", "sha256sum /srv/aistack/secrets/gateway.env")
    assert deploy().code == 0
    assert ssh("main", "sha256sum /srv/aistack/secrets/gateway.env") == before


def _value(host: str, path: str, var: str) -> str:
    return ssh(host, f"sed -n 's/^{var}=//p' {path}").strip()


def test_a_secret_made_on_one_host_reaches_a_service_on_another_and_nowhere_else(converged):
    """Qdrant's key is made on nx; Open WebUI on main reads its own 0600 copy (Qdrant answers 401
    without it). The value crosses in memory: not in the run's output, nor in a file here."""
    qdrant, copy = "/srv/aistack/secrets/qdrant.env", "/srv/aistack/secrets/webui-qdrant.env"
    key = _value("nx", qdrant, "QDRANT__SERVICE__API_KEY")
    assert len(key) == 64
    assert _value("main", copy, "QDRANT_API_KEY") == key
    assert ssh("main", f"stat -c %a {copy}").strip() == "600"
    assert copy in ssh("main", f"cat {STACKS}/webui/compose.yaml")
    assert key not in converged.log
    here = subprocess.run(["grep", "-rlF", "--exclude-dir=.venv", "--exclude-dir=.git", key, str(PROJECT_DIR)],
                          capture_output=True, text=True)
    assert here.returncode == 1 and not here.stdout, here.stdout  # 1: no file holds it
    # A new key on nx (its host rebuilt, say) is carried again; the old copy does not linger.
    rotated = "f" * 64
    ssh("nx", f"sed -i 's/^QDRANT__SERVICE__API_KEY=.*/QDRANT__SERVICE__API_KEY={rotated}/' {qdrant}")
    run = deploy()
    assert run.code == 0, run.log[-3000:]
    assert _value("main", copy, "QDRANT_API_KEY") == rotated and rotated not in run.log


def test_embed_and_rerank_answer_through_nginx_and_litellm_from_llama_server(converged, sandbox):
    """The NX's retrieval lanes for real (a generated BERT on the CPU), and LiteLLM's rerank URL:
    a Cohere rerank sent to /v2/rerank would be llama-server's 404."""
    key = smoke.gateway_key(sandbox)
    embedded = smoke.embed(sandbox, key, ["the first text", "a second one"])
    assert embedded.status_code == 200, embedded.text + logs("main", "gateway-litellm-1")
    vectors = [d["embedding"] for d in embedded.json()["data"]]
    assert len(vectors) == 2 and len(vectors[0]) == 128 and vectors[0] != vectors[1]
    documents = ["one document", "another document", "a third"]
    ranked = smoke.rerank(sandbox, key, "which document", documents)
    assert ranked.status_code == 200, ranked.text + logs("main", "gateway-litellm-1")
    results = ranked.json()["results"]
    assert sorted(r["index"] for r in results) == [0, 1, 2]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 3


def test_a_real_chat_completion_and_a_weighted_vision_split(converged, sandbox):
    key = smoke.gateway_key(sandbox)
    response = smoke.chat(sandbox, key)
    assert response.status_code == 200, response.text + logs("main", "gateway-litellm-1")
    split = smoke.burst(sandbox, key, requests=60)
    assert split.ok == 60
    # weights 8:1 -> the edge serves ~53 of 60; 40 is far outside chance for a working weight.
    assert split.served["gemma-edge"] >= 40, split.served
    assert split.served["gemma-orin"] >= 1, split.served


def test_a_rebooted_host_is_serving_when_the_rerun_returns(converged, sandbox):
    """After a power cut the engines come back by themselves but slowly: the rerun waits for them."""
    testhosts.stop("main")
    testhosts.up(["main"])
    run = deploy()
    assert run.code == 0 and not run.failed_hosts, run.log[-3000:]
    assert health("main") == {"chat-main-server-1": "healthy", "gateway-litellm-1": "healthy", "proxy-nginx-1": "healthy",
                              "node-exporter-main-node-exporter-1": "healthy", "prometheus-prometheus-1": "healthy"}
    response = smoke.chat(sandbox, smoke.gateway_key(sandbox))
    assert response.status_code == 200, response.text + logs("main", "gateway-litellm-1")


def test_one_llamacpp_setting_restarts_only_its_own_stack(converged, sandbox, baseline):
    before = start_times()
    run = deploy("services.gemma-edge.ctx=1024")
    assert run.code == 0, run.log[-3000:]
    after = start_times()
    restarted = {name for name in before if after.get(name) != before[name]}
    assert restarted == {"edge/gemma-edge-server-1"}, restarted
    address, port = sandbox.endpoint("gemma-edge")
    props = httpx.get(f"http://{address}:{port}/props", timeout=10).json()
    assert props["default_generation_settings"]["n_ctx"] == 1024 // 4  # 4 slots, split KV


def test_dry_run_shows_the_change_and_changes_nothing(converged):
    path = f"{STACKS}/gemma-orin/compose.yaml"
    before = ssh("orin", f"sha256sum {path}")
    run = deploy("services.gemma-orin.parallel=4", dry=True)
    assert run.code == 0, run.log[-3000:]
    changing = {h for op in run.report["plan"] for h in op.get("hosts_with_change", [])}
    assert changing == {"orin"}, changing
    assert ssh("orin", f"sha256sum {path}") == before


def test_moving_retrieval_and_the_vision_lane_between_nx_and_orin(converged, sandbox, baseline):
    swap = ["services.gemma-orin.host=nx", "services.qdrant.host=orin", "services.embed.host=orin",
            "services.rerank.host=orin"]
    run = deploy(*swap)
    assert run.code == 0, run.log[-3000:]
    assert "gemma-orin-server-1" not in running("orin")
    assert "gemma-orin-server-1" in running("nx")
    # The distributed lane's Ray nodes and each host's exporter stay where they were.
    assert set(ssh("orin", f"ls {STACKS}").split()) == {"embed", "nanoowl", "qdrant", "rerank", "ray-orin", "node-exporter-orin"}
    assert set(ssh("nx", f"ls {STACKS}").split()) == {"gemma-orin", "ray-head", "vllm-ray", "node-exporter-nx"}
    nx = sandbox.hosts["nx"].address
    assert f"http://{nx}:8080/v1" in ssh("main", f"cat {STACKS}/gateway/config.yaml")
    response = smoke.chat(sandbox, smoke.gateway_key(sandbox), alias="vision", max_tokens=2)
    assert response.status_code == 200, response.text
    moved = verify(*swap)  # the live checks follow the same edit: nothing left behind on either side
    assert moved.code == 0, moved.results("FAIL")


def test_a_model_that_does_not_match_its_lock_is_refused_and_the_good_one_kept(converged, sandbox, tmp_path):
    from aistack.models_lock import LockedFile, load_model_lock, sha256_of, write_model_lock
    from aistack.sandbox.tiny_gguf import generate

    update = generate(tmp_path / "tiny.gguf", seed=1, quiet=True)  # the "new revision"
    locked = LockedFile(repo="tiny-llama", file="tiny.gguf", size=update.stat().st_size, sha256=sha256_of(update),
                        path=str(update))
    data = bytearray(update.read_bytes())
    data[-1000:] = bytes(1000)  # what arrives is damaged: same size, other bytes
    update.write_bytes(bytes(data))
    lock = tmp_path / "models.yaml"
    models = load_model_lock()  # the sandbox's lock, the chat model's entry replaced
    models.files[locked.key] = locked
    write_model_lock(models, lock)
    good = ssh("main", "sha256sum /srv/models/tiny-llama/tiny.gguf").split()[0]
    before = start_times()

    run = deploy(data={"aistack_model_lock": str(lock)})
    assert run.code != 0
    # Every host that opens the model refuses it: the three lanes, and nx whose Ray head loads the
    # distributed lane's shard of it. With every host failed pyinfra stops ("No hosts remaining")
    # before its JSON report, so the refusals are read from the run's output.
    refused = set(re.findall(r"\[(\w+)\]\s+/srv/models/tiny-llama/tiny.gguf: refused", run.log))
    assert refused == {"main", "edge", "orin", "nx"}, run.log[-3000:]
    assert f"refused: sha256 {hashlib.sha256(bytes(data)).hexdigest()}" in run.log
    assert ssh("main", "sha256sum /srv/models/tiny-llama/tiny.gguf").split()[0] == good
    assert start_times() == before
    assert smoke.chat(sandbox, smoke.gateway_key(sandbox)).status_code == 200


def test_a_slot_too_small_blocks_and_forced_through_the_engine_refuses(converged, sandbox, baseline):
    """The per-slot check guards a real failure: llama-server's exceeds-context error (000)."""
    tight = "services.gemma-edge.ctx=256"  # 4 slots x 64 tokens < 160 a request needs
    plan = aistack("plan", "--inventory", str(SANDBOX), "--set", tight)
    assert plan.code == 20 and "slot-context" in plan.stdout
    before = start_times()
    refused = deploy(tight)
    assert refused.code != 0 and "slot-context" in refused.log
    assert start_times() == before  # nothing was touched
    forced = deploy(tight, 'force_checks=["slot-context"]')
    assert forced.code == 0, forced.log[-3000:]
    address, port = sandbox.endpoint("gemma-edge")
    response = httpx.post(f"http://{address}:{port}/v1/chat/completions", timeout=60,
                          json={"messages": [{"role": "user", "content": "word " * 100}], "max_tokens": 60})
    assert response.status_code == 400
    assert "exceeds the available context size" in response.text


def test_an_unreachable_host_fails_alone_and_a_rerun_converges(converged, sandbox, baseline):
    testhosts.stop("orin")
    try:
        run = deploy("services.gemma-edge.parallel=2")
        assert run.code != 0
        assert "orin" in run.failed_hosts or "[orin]" in run.log
        address, port = sandbox.endpoint("gemma-edge")
        assert httpx.get(f"http://{address}:{port}/props", timeout=10).json()["total_slots"] == 2
        down = verify(hosts=("orin", "nx"))  # each of orin's rows names the failed connection
        assert down.code == 1
        orin = [r for r in down.rows if r["host"] == "orin"]
        assert {r["result"] for r in orin} == {"FAIL", "SKIP"}  # SKIP: its no-GPU row needs no connection
        assert all("orin: ssh root@127.0.0.1:" in r["found"] for r in orin if r["result"] == "FAIL")
        assert {r["result"] for r in down.rows if r["host"] == "nx"} <= {"PASS", "SKIP"}
    finally:
        testhosts.up(["orin"])
    rerun = deploy("services.gemma-edge.parallel=2")
    assert rerun.code == 0 and not rerun.failed_hosts, rerun.log[-3000:]
    assert "gemma-orin-server-1" in running("orin")


def _seconds_for(sandbox, tokens: int) -> float:
    """How long chat-main takes to write `tokens` tokens, asked directly: the fastest of two answers
    (a chain sized on the fastest still outlasts any slower one by its margin)."""
    address, port = sandbox.endpoint("chat-main")
    times = []
    for _ in range(2):
        started = time.perf_counter()
        response = httpx.post(f"http://{address}:{port}/v1/chat/completions", timeout=300,
                              json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": tokens,
                                    "ignore_eos": True})
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:500]
    return min(times)


def test_a_slow_answer_passes_a_scaled_timeout_chain_and_a_broken_chain_blocks(converged, sandbox, baseline):
    """The chain scaled down from 300 s to a few seconds: nginx's stock 60 s scales to a fifth of it.

    The scale follows this machine's speed (CI's is faster than a 2-core sandbox), measured on the
    slot the answer runs in: the chain is three times the answer's time, so the answer outlasts the
    stock-equivalent timeout (0.6 of the answer's time) and fits the chain with room for a busy machine.
    """
    broken = aistack("plan", "--inventory", str(SANDBOX),
                     *(a for layer in ("webui_client_s", "gateway_s", "backend_s") for a in ("--set", f"timeouts.{layer}=6")),
                     "--set", "timeouts.nginx_s=5")
    assert broken.code == 20 and "timeout-chain" in broken.stdout
    tokens = 3900
    # One slot with the whole context, so one answer can run for thousands of tokens.
    slot = ["services.chat-main.parallel=1", "services.chat-main.ctx=4096"]
    run = deploy(*slot)
    assert run.code == 0, run.log[-3000:]
    chain_s = max(1, math.ceil(3 * _seconds_for(sandbox, tokens)))
    chain = [f"timeouts.{layer}={chain_s}" for layer in ("nginx_s", "webui_client_s", "gateway_s", "backend_s")]
    run = deploy(*chain, *slot)
    assert run.code == 0, run.log[-3000:]
    assert f"proxy_read_timeout {chain_s}s;" in ssh("main", f"cat {STACKS}/proxy/nginx.conf")
    key = smoke.gateway_key(sandbox)
    started = time.perf_counter()
    response = httpx.post(f"{smoke.front_url(sandbox)}/v1/chat/completions", timeout=30 + chain_s,
                          headers={"Authorization": f"Bearer {key}"},
                          json={"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": tokens, "ignore_eos": True})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, f"{elapsed:.2f}s against a {chain_s}s chain: {response.text[:300]}"
    assert response.json()["usage"]["completion_tokens"] == tokens
    stock_equivalent = 60 * chain_s / 300
    assert elapsed > stock_equivalent, f"{elapsed:.2f}s under {stock_equivalent:.2f}s: the measured speed was wrong"


def test_a_runtime_change_holds_stack_changes_until_the_next_run(converged, sandbox, baseline):
    """Seed 001's maintenance trap: runtime and model-runtime changes never share a run."""
    ssh("edge", "dpkg -r docker-compose >/dev/null")  # compose v2 gone: the runtime role reinstalls it
    compose_file = f"{STACKS}/gemma-edge/compose.yaml"
    file_before, before = ssh("edge", f"sha256sum {compose_file}"), start_times()
    held = deploy("services.gemma-edge.parallel=2")
    assert held.code == 0, held.log[-3000:]
    assert "edge: container runtime changes this run; stack changes are held" in held.log
    assert ssh("edge", "docker compose version --short").startswith("2.")
    assert ssh("edge", f"sha256sum {compose_file}") == file_before
    assert start_times() == before
    applied = deploy("services.gemma-edge.parallel=2")
    assert applied.code == 0, applied.log[-3000:]
    address, port = sandbox.endpoint("gemma-edge")
    assert httpx.get(f"http://{address}:{port}/props", timeout=10).json()["total_slots"] == 2
