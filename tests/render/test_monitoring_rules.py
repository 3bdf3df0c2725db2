"""The rendered Prometheus config and alert rules pass Debian's promtool, and each alert fires on
the series that should fire it and stays quiet on its near miss (`promtool test rules`)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aistack.inventory import load_cluster
from aistack.render import render_cluster
from tests.conftest import HOMELAB

PROM_DIR = "/srv/aistack/stacks/prometheus"
PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: `make host-tools` installs Debian's prometheus")


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    files = render_cluster(load_cluster(HOMELAB))["main"].files
    out = tmp_path_factory.mktemp("prometheus")
    for name in ("prometheus.yml", "rules.yml"):
        (out / name).write_text(files[f"{PROM_DIR}/{name}"].content)
    return out


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_config_and_rules_pass_promtool(prom):
    # --syntax-only: the rule file and the gateway key are paths inside the container.
    config = promtool("check", "config", "--syntax-only", "prometheus.yml", cwd=prom)
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", "rules.yml", cwd=prom)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 10 rules found" in rules.stdout


def test_promtool_rejects_a_broken_rule(prom, tmp_path):
    broken = (prom / "rules.yml").read_text().replace("> 0.9", "> > 0.9", 1)
    (tmp_path / "rules.yml").write_text(broken)
    assert promtool("check", "rules", "rules.yml", cwd=tmp_path).returncode != 0


def case(alert: str, series: list[tuple[str, str]], eval_time: str, fired: list[dict]) -> dict:
    """One promtool test: input series at 1m steps, and the alerts expected at eval_time."""
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": fired}],
    }


def fires(severity: str, summary: str, **labels: str) -> dict:
    return {"exp_labels": {"severity": severity, **labels}, "exp_annotations": {"summary": summary}}


KV = "KV cache above 90% on chat: preemption pauses come next (003)"
CASES = [
    case("KvCacheNearlyFull", [('vllm:kv_cache_usage_perc{service="chat",host="main"}', "0.95x10"),
                               ('sglang:token_usage{service="big",host="main"}', "0.89x10")], "5m",
         [fires("warning", KV, service="chat", host="main")]),
    case("Preemptions", [('vllm:num_preemptions_total{service="chat"}', "0 0 0 3 3 3"),
                         ('sglang:num_retracted_requests_total{service="big"}', "2x5")], "4m",
         [fires("warning", "chat preempted requests: users see pauses mid-answer (003)", service="chat")]),
    case("QueueGrowing", [('llamacpp:requests_deferred{service="gemma-edge"}', "0+1x30"),
                          ('llamacpp:requests_deferred{service="gemma-orin"}', "5x30")], "25m",
         [fires("warning", "gemma-edge: requests queue faster than they finish (000)", service="gemma-edge")]),
    case("GpuHot", [('DCGM_FI_DEV_GPU_TEMP{host="edge",gpu="0"}', "86x10"),
                    ('jetson_temperature_celsius{host="orin",sensor="tj"}', "90x10"),
                    ('jetson_temperature_celsius{host="orin",sensor="cpu"}', "95x10"),
                    ('DCGM_FI_DEV_GPU_TEMP{host="main",gpu="0"}', "85x10")], "6m",
         [fires("critical", "edge GPU above 85 C: it will throttle (004)", host="edge", gpu="0"),
          fires("critical", "orin GPU above 85 C: it will throttle (004)", host="orin", sensor="tj")]),
    case("GpuXid", [('DCGM_FI_DEV_XID_ERRORS{host="main",gpu="1"}', "0 0 79"),
                    ('DCGM_FI_DEV_XID_ERRORS{host="main",gpu="0"}', "0 0 0")], "2m",
         [fires("critical", "main GPU reported Xid 79 (001)", host="main", gpu="1")]),
    case("GpuEccErrors", [('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{host="main",gpu="0"}', "0 0 1 1"),
                          ('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{host="main",gpu="1"}', "4x3")], "3m",
         [fires("critical", "main GPU has uncorrectable ECC errors (004)", host="main", gpu="0")]),
    case("GpuThrottled", [('DCGM_FI_DEV_THERMAL_VIOLATION{host="edge",gpu="0"}', "0+60000000x20"),
                          ('DCGM_FI_DEV_THERMAL_VIOLATION{host="main",gpu="0"}', "7x20")], "15m",
         [fires("warning", "edge GPU clocks held down by heat or power (004)", host="edge", gpu="0")]),
    case("JetsonMemoryHigh", [('jetson_ram_used_bytes{host="orin"}', "7200x10"), ('jetson_ram_total_bytes{host="orin"}', "7620x10"),
                              ('jetson_ram_used_bytes{host="nx"}', "6000x10"), ('jetson_ram_total_bytes{host="nx"}', "7620x10")],
         "5m", [fires("critical", "orin unified memory above 90%: the Orin froze there (000)", host="orin")]),
    case("LaneDown", [('up{job="llamacpp",host="edge",service="gemma-edge",lane_state="active",gpus="0"}', "0x10"),
                      ('up{job="llamacpp",host="edge",service="gemma-alt",lane_state="parked",gpus="0"}', "0x10")], "5m",
         [fires("critical", "gemma-edge on edge is not answering (001)", job="llamacpp", host="edge", service="gemma-edge",
                lane_state="active", gpus="0")]),
    # Two lanes answering on edge's GPU (a parked one started by hand); one on main's, as it should be.
    case("GpuLaneCount", [('up{job="llamacpp",host="edge",service="a",lane_state="active",gpus="0"}', "1x10"),
                          ('up{job="llamacpp",host="edge",service="b",lane_state="parked",gpus="0"}', "1x10"),
                          ('up{job="sglang",host="main",service="c",lane_state="active",gpus="0,1"}', "1x10"),
                          ('up{job="sglang",host="main",service="d",lane_state="parked",gpus="0,1"}', "0x10")], "6m",
         [fires("critical", "2 lanes up on edge GPU 0: exactly one may own it (001)", host="edge", gpus="0")]),
]


@pytest.mark.parametrize("test", CASES, ids=[c["alert_rule_test"][0]["alertname"] for c in CASES])
def test_each_alert_fires_on_its_case_and_not_on_the_near_miss(prom, tmp_path, test):
    (tmp_path / "rules.yml").write_text((prom / "rules.yml").read_text())
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                                       "tests": [test]}))
    result = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails(prom, tmp_path):
    """The harness can fail: a KV alert expected on the series below the threshold."""
    wrong = case("KvCacheNearlyFull", [('sglang:token_usage{service="big",host="main"}', "0.89x10")], "5m",
                 [fires("warning", KV, service="big", host="main")])
    (tmp_path / "rules.yml").write_text((prom / "rules.yml").read_text())
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [wrong]}))
    assert promtool("test", "rules", "test.yml", cwd=tmp_path).returncode != 0
