"""Dashboards are valid Grafana JSON, and every metric they and the alert rules query for vLLM and
SGLang is defined in the pinned version's own source (PyPI). llama.cpp and LiteLLM names are
checked against the real servers in the sandbox (tests/integration/test_monitoring.py)."""

import json
import re

import pytest

from aistack.engine_flags import PINNED, EngineSourceUnavailable, metrics_source
from aistack.inventory import load_cluster
from aistack.render import render_cluster
from aistack.render.monitoring import SGLANG_METRICS, VLLM_METRICS
from tests.conftest import HOMELAB

GRAFANA = "/srv/aistack/stacks/grafana"
SUFFIXES = ("_bucket", "_total", "_sum", "_count")


def queried_metrics(text: str) -> set[str]:
    """Metric names in PromQL expressions: identifiers with the exporters' prefixes."""
    return set(re.findall(r"\b(?:vllm|sglang|llamacpp):[a-z_]+|\b(?:litellm|DCGM_FI|jetson|node)_[A-Za-z_]+", text))


@pytest.fixture(scope="module")
def rendered():
    return render_cluster(load_cluster(HOMELAB))["main"].files


def test_dashboards_are_grafana_json_with_a_query_per_panel(rendered):
    boards = {p: f.content for p, f in rendered.items() if p.startswith(f"{GRAFANA}/dashboards/")}
    assert sorted(boards) == [f"{GRAFANA}/dashboards/gpus.json", f"{GRAFANA}/dashboards/inference.json"]
    for path, text in boards.items():
        board = json.loads(text)
        assert board["uid"] and board["schemaVersion"] >= 39 and board["panels"], path
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "aistack-prometheus"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
    provisioning = rendered[f"{GRAFANA}/datasource.yaml"].content
    assert "uid: aistack-prometheus" in provisioning and 'url: "http://192.0.2.10:9090"' in provisioning


def test_the_four_numbers_users_feel_have_panels(rendered):
    titles = [p["title"] for p in json.loads(rendered[f"{GRAFANA}/dashboards/inference.json"].content)["panels"]]
    for wanted in ("Time to first token", "Per-user decode rate", "Preemptions", "Prefix-cache hit rate", "KV cache usage",
                   "Queue depth", "Busy slots", "Gateway latency", "Gateway failures"):
        assert any(t.startswith(wanted) for t in titles), wanted


def used(rendered, prefix: str) -> set[str]:
    text = "".join(f.content for p, f in rendered.items() if p.endswith((".json", "rules.yml")))
    return {m for m in queried_metrics(text) if m.startswith(prefix)}


@pytest.mark.network
@pytest.mark.parametrize(("engine", "names"), [("vllm", VLLM_METRICS), ("sglang", SGLANG_METRICS)])
def test_engine_metrics_exist_in_the_pinned_source(rendered, engine, names):
    try:
        source = metrics_source(engine, PINNED[engine])
    except EngineSourceUnavailable as exc:
        pytest.skip(f"no {engine} {PINNED[engine]} source on the index: {exc}")
    queried = used(rendered, f"{engine}:")
    assert queried == {n for n in names.values()}, "every catalogued name is queried, and nothing else"
    for name in sorted(queried):
        # prometheus_client adds _total/_bucket to what the source declares.
        base = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
        assert f'"{base}"' in source or f'"{name}"' in source, f"{name}: not defined in {engine} {PINNED[engine]}"


@pytest.mark.network
def test_a_made_up_metric_is_not_found():
    source = metrics_source("vllm", PINNED["vllm"])
    assert '"vllm:kv_cache_usage_perc"' in source and '"vllm:gpu_cache_usage_perc_nonexistent"' not in source
