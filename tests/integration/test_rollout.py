"""converge -> idempotence -> edits, each proven on the four sandbox hosts over real SSH."""

from __future__ import annotations

import hashlib
import re
import time

import httpx

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
    # runs on nx is the Ray head of the distributed lane (its vLLM held) and the node exporter.
    assert running("nx") == {"ray-head-ray-1", "node-exporter-nx-node-exporter-1"}
    assert set(ssh("nx", f"ls {STACKS}").split()) == {"embed", "qdrant", "rerank", "ray-head", "vllm-ray", "node-exporter-nx"}
    assert "qdrant rendered and validated, not started: no registry" in converged.log
    assert "vllm-ray rendered and validated, not started: no GPU in the sandbox: vLLM needs CUDA" in converged.log


def test_a_second_run_changes_nothing(converged):
    again = deploy()
    assert again.code == 0, again.log[-3000:]
    assert again.changed == 0, f"{again.changed} operations changed on a re-apply"


def test_secrets_are_generated_on_the_host_0600_and_kept(converged):
    stat = ssh("main", "stat -c '%a %s' /srv/aistack/secrets/gateway.env").split()
    assert stat[0] == "600" and int(stat[1]) > 20
    before = ssh("main", "sha256sum /srv/aistack/secrets/gateway.env")
    assert deploy().code == 0
    assert ssh("main", "sha256sum /srv/aistack/secrets/gateway.env") == before


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
    from aistack.models_lock import LockedFile, ModelLock, sha256_of, write_model_lock
    from aistack.sandbox.tiny_gguf import generate

    update = generate(tmp_path / "tiny.gguf", seed=1, quiet=True)  # the "new revision"
    locked = LockedFile(repo="tiny-llama", file="tiny.gguf", size=update.stat().st_size, sha256=sha256_of(update),
                        path=str(update))
    data = bytearray(update.read_bytes())
    data[-1000:] = bytes(1000)  # what arrives is damaged: same size, other bytes
    update.write_bytes(bytes(data))
    lock = tmp_path / "models.yaml"
    write_model_lock(ModelLock(files={locked.key: locked}), lock)
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


def test_a_slow_answer_passes_a_scaled_timeout_chain_and_a_broken_chain_blocks(converged, sandbox, baseline):
    """The chain scaled 300 s -> 6 s: nginx's stock 60 s becomes 1.2 s, which this answer outlasts."""
    chain = [f"timeouts.{layer}=6" for layer in ("nginx_s", "webui_client_s", "gateway_s", "backend_s")]
    broken = aistack("plan", "--inventory", str(SANDBOX), *(a for s in chain for a in ("--set", s)),
                     "--set", "timeouts.nginx_s=5")
    assert broken.code == 20 and "timeout-chain" in broken.stdout
    # One slot with the whole context, so one answer can run for thousands of tokens.
    run = deploy(*chain, "services.chat-main.parallel=1", "services.chat-main.ctx=4096")
    assert run.code == 0, run.log[-3000:]
    assert "proxy_read_timeout 6s;" in ssh("main", f"cat {STACKS}/proxy/nginx.conf")
    key = smoke.gateway_key(sandbox)
    started = time.perf_counter()
    response = httpx.post(f"{smoke.front_url(sandbox)}/v1/chat/completions", timeout=30,
                          headers={"Authorization": f"Bearer {key}"},
                          json={"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": 3900, "ignore_eos": True})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:500]
    assert response.json()["usage"]["completion_tokens"] == 3900
    stock_equivalent = 60 * 6 / 300
    assert elapsed > stock_equivalent, f"{elapsed:.2f}s: too fast to prove anything on this machine"


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
