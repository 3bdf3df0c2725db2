"""`aistack load` on the sandbox: real requests through nginx and LiteLLM to the llama.cpp lanes,
each failure attributed from what the layers themselves answered (017).

Each case makes one layer give way on purpose (a slot too small, slots full, nginx's timeout
too short, a lane stopped) and checks the report names that layer, not the request type.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.sandbox_run import AISTACK, PROJECT, SANDBOX, deploy, ssh

EVIDENCE = PROJECT / "inventory" / "sandbox.load.yaml"
ORIN_LANE = "gemma-orin-server-1"  # compose project gemma-orin, service server


@pytest.fixture
def no_evidence(converged):
    """The measured curves would change every later plan: start and end without them."""
    EVIDENCE.unlink(missing_ok=True)
    yield
    EVIDENCE.unlink(missing_ok=True)


def load(report: Path, *args: str, sets: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, dict]:
    """One `aistack load` run into `report`; its summary.json (empty when none was written)."""
    command = [str(AISTACK), "load", "--inventory", str(SANDBOX), "--report", str(report), *args]
    for override in sets:
        command += ["--set", override]
    proc = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=600, check=False)
    summary_file = report / "summary.json"
    return proc, (json.loads(summary_file.read_text()) if summary_file.exists() else {})


def records(report: Path) -> list[dict]:
    return [json.loads(line) for line in (report / "results.jsonl").read_text().splitlines()]


def failed(report: Path) -> list[dict]:
    return [r for r in records(report) if not r["ok"]]


def test_the_ladder_writes_its_report_and_the_plan_reads_what_it_measured(no_evidence, tmp_path):
    proc, summary = load(tmp_path, "--ladder", "smoke,2,4", "--total", "8")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [s["step"] for s in summary["steps"]] == ["smoke", "2", "4"]
    for step in summary["steps"]:
        assert step["all"]["pass_rate"] == 1.0, step
        assert set(step["types"]) == {"text-direct", "image-direct"}
        # The plan's own answer for the step stands beside what was measured.
        assert set(step["predicted"]) == {"text-direct", "image-direct"}
    assert {name: t["served_up_to"] for name, t in summary["served_up_to"].items()} == {
        "text-direct": 4, "image-direct": 4}
    rows = records(tmp_path)
    assert len(rows) == len([r for r in rows if r["ok"]]) and len(rows) >= 2 + 8 + 8
    # Every answer streamed real tokens from the lane LiteLLM says answered it.
    lanes = {s["lane"] for r in rows for s in r["stages"] if s["operation"] == "chat"}
    # (the vision alias splits its few requests between edge and orin by weight: either may get none)
    assert "chat-main" in lanes and lanes - {"chat-main"} and lanes <= {"chat-main", "gemma-edge", "gemma-orin"}
    assert all(s["tokens"] and s["first_token_s"] is not None for r in rows for s in r["stages"])
    for plot in ("pass_rate.png", "latency_p95.png", "failures.png"):
        with Image.open(tmp_path / plot) as image:
            assert image.size[0] > 300
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    assert f"report: {tmp_path}/report.html" in proc.stdout

    # The plan reads the curves the ladder measured, for the lanes whose settings it ran with.
    assert EVIDENCE.exists()
    plan = subprocess.run([str(AISTACK), "plan", "--inventory", str(SANDBOX), "--json"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert plan.returncode in (0, 10), plan.stderr[-2000:]
    found = json.loads(plan.stdout)
    assert found["load"]["measured"]["text-direct"]["served_up_to"] == 4
    assert any("by aistack load, read for" in note for note in found["load"]["evidence_notes"])
    assert "measured-chat-main" in plan.stdout


def test_a_prompt_over_one_slot_is_refused_by_that_lane(no_evidence, tmp_path):
    # chat-main: ctx 2048 over 4 slots is 512 tokens a slot; a 2,000-token prompt cannot fit.
    proc, summary = load(tmp_path, "--ladder", "2", "--total", "4", "--mix", "text-direct", "--no-evidence",
                         sets=("load.mix.text-direct.prompt_tokens=2000",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    refused = failed(tmp_path)
    assert len(refused) == 4
    assert {(r["layer"], r["kind"]) for r in refused} == {("chat-main", "slot-context")}
    assert "one slot holds 512" in refused[0]["reason"]
    assert summary["steps"][0]["failures_by_layer"] == {"chat-main": 4}
    assert not EVIDENCE.exists()


def test_full_slots_show_as_queueing_at_the_lane(no_evidence, tmp_path):
    # 16 users on chat-main's 4 slots, 400-token answers: 12 wait, and give up after 1 s.
    proc, summary = load(tmp_path, "--ladder", "16", "--total", "32", "--mix", "text-direct", "--timeout", "1",
                         "--no-evidence", sets=("load.mix.text-direct.output_tokens=400",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    step = summary["steps"][0]
    assert step["counters"]["lanes"]["chat-main"]["highest"]["llamacpp:requests_deferred"] > 0
    kinds = {(r["layer"], r["kind"]) for r in failed(tmp_path)}
    assert ("chat-main", "queued") in kinds, kinds
    # The lane itself ran no more at once than its slots.
    assert step["lanes"]["chat-main"]["concurrency"] <= 4


def test_a_short_nginx_timeout_is_named_as_nginx(no_evidence, tmp_path):
    run = deploy("timeouts.nginx_s=1", 'force_checks=["timeout-chain"]')
    try:
        assert run.code == 0 and not run.failed_hosts, run.log[-3000:]
        proc, summary = load(tmp_path, "--ladder", "16", "--total", "32", "--mix", "text-direct", "--no-evidence",
                             sets=("load.mix.text-direct.output_tokens=400",))
        assert proc.returncode == 0, proc.stderr[-3000:]
        timed_out = failed(tmp_path)
        assert timed_out, "every answer came back inside nginx's 1 s"
        assert {(r["layer"], r["kind"]) for r in timed_out} == {("nginx", "upstream-timeout")}
        assert "proxy_read_timeout" in timed_out[0]["reason"]
    finally:
        restore = deploy()
        assert restore.code == 0 and not restore.failed_hosts, restore.log[-3000:]


def test_a_stopped_lane_is_named_down(no_evidence, tmp_path):
    assert ORIN_LANE in ssh("orin", "docker ps --format '{{.Names}}'").split()
    ssh("orin", f"docker stop {ORIN_LANE}")
    try:
        proc, summary = load(tmp_path, "--ladder", "8", "--total", "16", "--mix", "image-direct", "--no-evidence")
        assert proc.returncode == 0, proc.stderr[-3000:]
        step = summary["steps"][0]
        assert step["counters"]["lanes"]["gemma-orin"]["up"] is False
        down = [r for r in failed(tmp_path) if r["layer"] == "gemma-orin"]
        assert down and {r["kind"] for r in down} == {"lane-down"}
        # Whatever passed was answered by edge, the vision alias's other deployment.
        assert all(s["lane"] != "gemma-orin" for r in records(tmp_path) if r["ok"] for s in r["stages"])
    finally:
        ssh("orin", f"docker start {ORIN_LANE}")
        _wait_healthy("orin", ORIN_LANE)


def test_ctrl_c_keeps_the_steps_run_so_far(no_evidence, tmp_path):
    # Steps of a few seconds each; the signal lands after the first ones (a non-TTY stderr gets
    # no live line to wait for, so the test waits past the start-up).
    command = [str(AISTACK), "load", "--inventory", str(SANDBOX), "--report", str(tmp_path), "--ladder",
               "smoke,4,4,4,4,4,4,4,4", "--total", "200", "--mix", "text-direct"]
    proc = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(12)
    assert proc.poll() is None, "the ladder ended before the signal"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert 1 <= len(summary["steps"]) < 9
    assert "no evidence written" in stderr and not EVIDENCE.exists()


def _wait_healthy(host: str, container: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = ssh(host, f"docker inspect -f '{{{{.State.Health.Status}}}}' {container}").strip()
        if state == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"{host}/{container} not healthy after {timeout_s:.0f} s")
