"""Prometheus in the sandbox scrapes the real llama.cpp, LiteLLM and node exporters it was rendered
with; the metric names the dashboards and alerts query are the ones those servers expose; and a
healthy cluster fires no alert."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from aistack.inventory import load_cluster
from aistack.render import render_cluster
from aistack.render.monitoring import LITELLM, LLAMACPP
from tests.integration.sandbox_run import SANDBOX, deploy, ssh


def prometheus_api(cluster, path: str) -> dict:
    prom = cluster.services["prometheus"]
    url = f"http://{prom.bind or cluster.hosts[prom.host].address}:{prom.port}/api/v1/{path}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def wait_for(check, timeout_s: float = 90, every_s: float = 3):
    """Prometheus scrapes every 15 s: poll until `check()` returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every_s)


@pytest.fixture(scope="module")
def cluster(converged):
    return load_cluster(SANDBOX)


def test_every_running_target_is_up_and_the_parked_lane_is_down(cluster):
    def health():
        targets = prometheus_api(cluster, "targets")["activeTargets"]
        found = {(t["labels"]["job"], t["labels"]["service"]): t["health"] for t in targets}
        return found if "unknown" not in found.values() and found else None

    found = wait_for(health)
    assert found, "Prometheus reports no targets"
    expected_up = {*(("llamacpp", s) for s in ("chat-main", "gemma-edge", "gemma-orin", "embed", "rerank")),
                   ("litellm", "gateway"),
                   ("prometheus", "prometheus"), *(("node", f"node-exporter-{h}") for h in ("main", "edge", "orin", "nx"))}
    assert {k for k, v in found.items() if v == "up"} == expected_up, found
    # Parked: scraped on purpose, so a lane started by hand beside the active one shows up.
    assert found[("llamacpp", "gemma-edge-alt")] == "down"


def test_queried_llamacpp_and_litellm_metrics_are_what_the_servers_expose(cluster):
    # One chat through nginx, one request for an alias nobody serves: latency and failure series exist.
    gateway = cluster.services["gateway"]
    for model in ("chat", "no-such-alias"):
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        ssh("main", f"set -a; . /srv/aistack/secrets/gateway.env; curl -s -o /dev/null http://{gateway.bind}:{gateway.port}"
                    f"/v1/chat/completions -H \"Authorization: Bearer $LITELLM_MASTER_KEY\" -H 'Content-Type: application/json'"
                    f" -d '{body}'")
    wanted = {*LLAMACPP.values(), *LITELLM.values()}

    def scraped() -> set[str] | None:
        names = set(prometheus_api(cluster, "label/__name__/values"))
        return names if wanted <= names else None

    names = wait_for(scraped, timeout_s=120)
    assert names, f"never scraped: {sorted(wanted - set(prometheus_api(cluster, 'label/__name__/values')))}"
    # And the rendered dashboards and rules query nothing else from these two.
    files = render_cluster(cluster)["main"].files
    text = "".join(f.content for p, f in files.items() if p.endswith((".json", "rules.yml")))
    queried = {n for n in names if n.startswith(("llamacpp:", "litellm_")) and n in text}
    assert queried == wanted


def test_a_healthy_sandbox_fires_no_alert(cluster):
    assert prometheus_api(cluster, "rules")["groups"][0]["rules"], "rules were not loaded"
    # A lane restarted by the converge is down for at most one scrape: give it two.
    quiet = wait_for(lambda: not prometheus_api(cluster, "alerts")["alerts"], timeout_s=40)
    assert quiet, [a["labels"] for a in prometheus_api(cluster, "alerts")["alerts"]]


def test_a_stopped_lane_is_alerted(cluster, baseline):
    ssh("orin", "docker stop gemma-orin-server-1")

    def lane_down():
        alerts = prometheus_api(cluster, "alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "LaneDown"]

    # `for: 2m`: pending first, then firing.
    pending = wait_for(lane_down, timeout_s=60)
    assert [a["labels"]["service"] for a in pending] == ["gemma-orin"], pending
    assert pending[0]["state"] in ("pending", "firing")


def test_a_reload_a_failed_run_left_owed_is_made_by_the_next_run(cluster, baseline):
    """A run that put Prometheus' files and stopped before signalling it leaves the files right and
    Prometheus on the old config; the next run sees no file change. It must reload all the same
    (the sandbox's Prometheus once scraped a moved lane for 13 minutes that way)."""
    rules = f"{cluster.hosts['main'].storage.state}/stacks/prometheus/rules.yml"

    def gpu_hot() -> str:
        groups = prometheus_api(cluster, "rules")["groups"]
        return next(r["query"] for g in groups for r in g["rules"] if r["name"] == "GpuHot")

    ssh("main", f"cp {rules} /tmp/rules.yml.baseline")
    edited = deploy("monitoring.alerts.gpu_temp_c=80")
    assert edited.code == 0, edited.log[-3000:]
    assert wait_for(lambda: "> 80" in gpu_hot(), timeout_s=30), gpu_hot()
    # What the failed run left: the baseline files on disk, never signalled.
    ssh("main", f"cp /tmp/rules.yml.baseline {rules}")
    rerun = deploy()
    assert rerun.code == 0, rerun.log[-3000:]
    assert wait_for(lambda: "> 85" in gpu_hot(), timeout_s=30), gpu_hot()
