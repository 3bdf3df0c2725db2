"""The optional Ray/vLLM lane is checked against GPUs, interconnect and fit before anything runs (004)."""

from __future__ import annotations

import json

import pytest

from aistack.inventory import load_cluster
from aistack.model.cluster import RAY_WORKER_PORTS
from aistack.preflight import Level, distributed_findings
from tests.conftest import HOMELAB, aistack

# main's two 24 GB cards and edge given one more 24 GB card: 2 nodes x 1 GPU, PP across them.
BIG_EDGE = 'hosts.edge.accelerators=[{"model": "RTX PRO 4000 Blackwell", "memory_mib": 24467}]'
GOOD = {"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2,
        "model": "qwen3.6-35b-a3b", "quant": "UD-Q4_K_M", "nic": "enp5s0", "ray_port": 6380,
        "interconnect": {"kind": "ethernet", "gbps": 100, "mtu": {"main": 9000, "edge": 9000}}}


def findings(*overrides: str, **lane) -> list:
    cluster = load_cluster(HOMELAB, [BIG_EDGE, f"distributed={json.dumps({**GOOD, **lane})}", *overrides])
    return distributed_findings(cluster)


def levels(found: list) -> dict[str, Level]:
    return {f.subject: f.level for f in found}


def test_a_sound_lane_passes_when_no_single_card_holds_the_model():
    sixteen = '{"model": "RTX A4000", "memory_mib": 16376}'
    found = findings(f"hosts.main.accelerators=[{sixteen}, {sixteen}]", f"hosts.edge.accelerators=[{sixteen}]")
    assert [f.level for f in found] == [Level.PASS], found
    assert found[0].message.startswith("shard 10,555 MiB")


@pytest.mark.parametrize(("lane", "subject", "level", "words"), [
    ({"interconnect": {"gbps": 10, "mtu": {"main": 9000, "edge": 9000}}}, "distributed.pp_size", Level.WARN,
     "memory-fitting strategy"),
    ({"interconnect": {"gbps": 1, "mtu": {"main": 1500, "edge": 1500}}}, "distributed.interconnect", Level.BLOCK,
     "too slow"),
    ({"gpus_per_node": 1, "tp_size": 2, "pp_size": 1, "interconnect": {"gbps": 25, "mtu": {"main": 9000, "edge": 9000}}},
     "distributed.tp_size", Level.BLOCK, "worse than one card"),
    ({"interconnect": {"gbps": 100, "mtu": {"main": 9000, "edge": 1500}}}, "distributed.interconnect.mtu", Level.BLOCK,
     "main 9000, edge 1500"),
    ({"nic": None}, "distributed.nic", Level.BLOCK, "NCCL_SOCKET_IFNAME"),
    ({"tp_size": 2, "pp_size": 2}, "distributed", Level.BLOCK, "TP 2 x PP 2 = 4 GPUs, but 2 node(s) x 1 give 2"),
    ({"gpus_per_node": 2, "tp_size": 2, "pp_size": 2}, "distributed.gpus_per_node", Level.BLOCK,
     "edge has 1 GPU(s), the lane asks 2 per node"),
])
def test_each_rule_names_its_field(lane, subject, level, words):
    found = [f for f in findings(**lane) if f.subject == subject]
    assert found and found[0].level is level, levels(findings(**lane))
    assert words in found[0].message


def test_a_shard_with_no_room_for_kv_blocks():
    small = 'hosts.edge.accelerators=[{"model": "RTX 2060", "memory_mib": 6144}]'
    found = findings(small)
    assert any(f.level is Level.BLOCK and "no room for KV" in f.message for f in found), found


def test_a_model_that_fits_one_card_warns_that_the_cluster_only_adds_cost():
    found = findings(model="qwen3.6-27b", quant="Q4_K_M")
    warn = [f for f in found if "a single card serves it" in f.message]
    assert warn and warn[0].level is Level.WARN


def test_plan_shows_the_lane_and_exits_with_its_level():
    run = aistack("plan", "--inventory", str(HOMELAB), "--set", BIG_EDGE,
                  "--set", f"distributed={json.dumps({**GOOD, 'nic': None})}")
    assert run.code == 20
    assert "NCCL_SOCKET_IFNAME" in run.stdout


@pytest.mark.parametrize(("overrides", "lane", "words"), [
    (['hosts.edge.tuning.sysctl={"net.ipv4.ip_local_port_range": "10240 65000"}'], {},
     ["host edge", "hosts.edge.tuning.sysctl", "10240-65000 overlaps Ray's worker ports 10002-19999"]),
    ([], {"metrics_port": 12000}, ["distributed.metrics_port", "port 12000 is inside Ray's worker ports"]),
])
def test_a_port_ray_start_would_refuse_is_refused_before_any_host(overrides, lane, words):
    """`ray start` stops with a ValueError when one of its ports falls inside its worker ports."""
    args = ["plan", "--inventory", str(HOMELAB), "--set", BIG_EDGE, "--set", f"distributed={json.dumps({**GOOD, **lane})}"]
    for item in overrides:
        args += ["--set", item]
    run = aistack(*args)
    assert run.code == 20, run.stdout + run.stderr
    assert all(w in run.stdout + run.stderr for w in words), run.stdout + run.stderr


def test_the_tuned_ephemeral_ports_stay_clear_of_rays_worker_ports():
    ephemeral = load_cluster(HOMELAB).hosts["main"].tuning.ephemeral_ports
    assert ephemeral.start > RAY_WORKER_PORTS.stop - 1 and len(ephemeral) > 40_000
