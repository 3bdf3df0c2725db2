"""`aistack switch`: one lane per GPU, the choice recorded so a re-apply keeps it (001)."""

from __future__ import annotations

import pytest

from aistack import lanes
from aistack.errors import InventoryError
from aistack.inventory import load_cluster
from aistack.render import render_cluster
from aistack.switch import plan_switch
from tests.conftest import PROJECT, aistack

SANDBOX = PROJECT / "inventory" / "sandbox.py"


@pytest.fixture(autouse=True)
def records(tmp_path, monkeypatch):
    """Lane records in a scratch directory, never the repository's inventory/."""
    monkeypatch.setattr(lanes, "LANES_DIR", tmp_path)
    return tmp_path


def test_switching_parks_the_lane_on_the_same_gpu_and_reroutes_the_gateway():
    plan = plan_switch(SANDBOX, "gemma-edge-alt")
    assert plan.stopping == ["gemma-edge"] and plan.after == ["gemma-edge-alt"] and plan.needed
    services = plan.cluster.services
    assert services["gemma-edge-alt"].active and not services["gemma-edge"].active
    # The sandbox's held distributed lane WARNs on its own; nothing about edge's lanes does.
    assert plan.preflight.level.name != "BLOCK"
    assert not [f for f in plan.preflight.findings if f.level.name != "PASS" and f.host == "edge"]
    gateway = render_cluster(plan.cluster)["main"].files["/srv/aistack/stacks/gateway/config.yaml"].content
    assert "http://172.29.77.11:8081/v1" in gateway and "http://172.29.77.11:8080/v1" not in gateway


def test_the_record_is_what_a_reapply_reads(records):
    lanes.write_switched(lanes.lanes_file("sandbox"), ["gemma-edge-alt"])
    cluster = load_cluster(SANDBOX)
    assert cluster.services["gemma-edge-alt"].active and not cluster.services["gemma-edge"].active
    assert load_cluster(SANDBOX, switched=[]).services["gemma-edge"].active  # the inventory's own flags


def test_switching_back_to_the_inventorys_lane_removes_the_record(records):
    record = lanes.lanes_file("sandbox")
    lanes.write_switched(record, ["gemma-edge-alt"])
    plan = plan_switch(SANDBOX, "gemma-edge")
    assert plan.stopping == ["gemma-edge-alt"] and plan.after == [] and plan.before == ["gemma-edge-alt"]
    lanes.write_switched(record, plan.after)
    assert not record.exists()


def test_a_record_naming_no_lane_is_an_inventory_error_naming_the_file(records):
    record = lanes.lanes_file("sandbox")
    record.write_text("active: [gateway]\n")
    with pytest.raises(InventoryError) as error:
        load_cluster(SANDBOX)
    assert str(record) in str(error.value) and "'gateway' is not a generation lane" in str(error.value)


def test_a_parked_lane_that_would_not_fit_warns_and_blocks_only_its_switch(records):
    tight = "services.gemma-edge-alt.ctx=256"  # 2 slots x 128 tokens < the 160 a request needs
    plan = aistack("plan", "--inventory", str(SANDBOX), "--set", tight)
    assert plan.code == 10 and "parked: `aistack switch` refuses it" in plan.stdout
    switch = aistack("switch", "gemma-edge-alt", "--inventory", str(SANDBOX), "--set", tight)
    assert switch.code == 20 and "slot-context" in switch.stdout


def test_switch_exit_codes_before_anything_is_touched(records):
    unknown = aistack("switch", "nope", "--inventory", str(SANDBOX))
    assert unknown.code == 2 and "'nope' is not a generation lane" in unknown.stderr
    refused = aistack("switch", "gemma-edge-alt", "--inventory", str(SANDBOX), "--set", "services.gemma-edge-alt.ctx=256")
    assert refused.code == 20 and "slot-context" in refused.stdout
    assert not lanes.lanes_file("sandbox").exists()
    already = aistack("switch", "gemma-edge", "--inventory", str(SANDBOX))
    # Exit 10: the sandbox's held distributed lane WARNs; nothing is refused or touched.
    assert already.code == 10 and "already runs" in already.stdout
