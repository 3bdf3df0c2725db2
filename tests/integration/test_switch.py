"""`aistack switch` on the sandbox: edge's GPU changes lanes, a re-apply keeps the choice, and a
lane that does not come up healthy is rolled back to the previous one (001)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from aistack.sandbox import smoke
from tests.integration.sandbox_run import (
    AISTACK,
    PROJECT,
    SANDBOX,
    deploy,
    health,
    running,
    ssh,
    start_times,
    verify,
)

RECORD = PROJECT / "inventory" / "sandbox.lanes.yaml"
GATEWAY_CONFIG = "/srv/aistack/stacks/gateway/config.yaml"


@pytest.fixture
def inventory_lanes(converged):
    """Start and end on the inventory's own lanes."""
    RECORD.unlink(missing_ok=True)
    yield
    RECORD.unlink(missing_ok=True)
    restore = deploy()
    assert restore.code == 0 and not restore.failed_hosts, restore.log[-3000:]


def switch(lane: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(AISTACK), "switch", lane, "--inventory", str(SANDBOX)], cwd=PROJECT,
                          capture_output=True, text=True, timeout=900, check=False)


def test_switch_runs_the_other_lane_and_a_reapply_keeps_it(sandbox, inventory_lanes):
    before = start_times()
    run = switch("gemma-edge-alt")
    # Exit 10, as `plan`: the sandbox's held distributed lane WARNs; the switch itself went through.
    assert run.returncode == 10, run.stdout[-3000:] + run.stderr[-2000:]
    after = start_times()
    # Only edge's lane and the gateway whose routes changed were (re)started; Prometheus, whose
    # lane_state labels follow the switch, reloaded its config in place.
    assert {n for n in before if after.get(n) != before[n]} == {"edge/gemma-edge-server-1", "main/gateway-litellm-1"}
    assert "gemma-edge-alt-server-1" in running("edge") and "gemma-edge-server-1" not in running("edge")
    edge = sandbox.hosts["edge"].address
    assert httpx.get(f"http://{edge}:8081/props", timeout=10).json()["total_slots"] == 2
    gateway = ssh("main", f"cat {GATEWAY_CONFIG}")
    assert f"http://{edge}:8081/v1" in gateway and f"http://{edge}:8080/v1" not in gateway
    assert smoke.chat(sandbox, smoke.gateway_key(sandbox), alias="vision", max_tokens=1).status_code == 200
    assert "gemma-edge-alt" in RECORD.read_text()

    again = deploy()  # a plain re-apply reads the record: nothing reverts
    assert again.code == 0 and again.changed == 0, again.log[-3000:]
    assert verify().code == 0

    back = switch("gemma-edge")
    assert back.returncode == 10, back.stdout[-3000:] + back.stderr[-2000:]
    assert not RECORD.exists()  # back on the inventory's own flags
    assert "gemma-edge-server-1" in running("edge") and "gemma-edge-alt-server-1" not in running("edge")


def test_a_lane_that_does_not_come_up_healthy_is_rolled_back(sandbox, inventory_lanes):
    edge = sandbox.hosts["edge"].address
    # A stray process holds the target's port: llama-server cannot bind and never turns healthy.
    stray = ssh("edge", f"nohup python3 -m http.server 8081 --bind {edge} >/dev/null 2>&1 & echo $!").strip()
    try:
        run = switch("gemma-edge-alt")
        assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
        assert "did not come up healthy: switched back" in run.stderr
    finally:
        ssh("edge", f"kill {stray}")
    assert not RECORD.exists()
    assert health("edge").get("gemma-edge-server-1") == "healthy"
    assert "gemma-edge-alt-server-1" not in running("edge")
    assert f"http://{edge}:8080/v1" in ssh("main", f"cat {GATEWAY_CONFIG}")
