"""Grafana dashboards as data: the numbers users feel first (003), then the GPUs (001).

Panels are built from the metric names in aistack.render.monitoring, so a renamed metric is
one edit and one failing test, never a silently empty panel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Cluster

DATASOURCE = {"type": "prometheus", "uid": "aistack-prometheus"}
RATE = "5m"
NOT_SCRAPES = 'route!~"/metrics.*"'  # LiteLLM counts Prometheus' own scrapes as proxy requests


def _panel(title: str, exprs: list[tuple[str, str]], unit: str, description: str) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(exprs)],
    }


def _quantile(q: float, bucket: str) -> str:
    return f"histogram_quantile({q}, sum by (le, service) (rate({bucket}[{RATE}])))"


def inference_panels() -> list[dict[str, Any]]:
    from .monitoring import LITELLM, LLAMACPP, SGLANG_METRICS, VLLM_METRICS

    v, s, ll, g = VLLM_METRICS, SGLANG_METRICS, LLAMACPP, LITELLM
    return [
        _panel("Time to first token (p50, p95)",
               [(_quantile(0.5, v["ttft"]), "{{service}} p50"), (_quantile(0.95, v["ttft"]), "{{service}} p95"),
                (_quantile(0.5, s["ttft"]), "{{service}} p50"), (_quantile(0.95, s["ttft"]), "{{service}} p95")],
               "s", "What a user waits before the first word (003)."),
        _panel("Per-user decode rate",
               [(f"1 / {_quantile(0.5, v['itl'])}", "{{service}}"), (f"1 / {_quantile(0.5, s['itl'])}", "{{service}}"),
                (ll["decode_rate"], "{{service}}")],
               "tokens/s", "Tokens per second one user sees; it falls as the batch grows (003)."),
        _panel("Preemptions", [(f"increase({v['preemptions']}[{RATE}])", "{{service}}"),
                               (f"increase({s['preemptions']}[{RATE}])", "{{service}}")],
               "short", "Any preemption is a visible pause mid-answer (003)."),
        _panel("Prefix-cache hit rate",
               [(f"rate({v['prefix_hits']}[{RATE}]) / rate({v['prefix_queries']}[{RATE}])", "{{service}}"),
                (s["cache_hit_rate"], "{{service}}"),
                (f"rate({ll['prompt_cached']}[{RATE}]) / rate({ll['prompt_tokens']}[{RATE}])", "{{service}}")],
               "percentunit", "A shared system prompt cut TTFT 12-17x for the second user: the cold-user gap (003)."),
        _panel("KV cache usage", [(v["kv"], "{{service}}"), (s["kv"], "{{service}}")], "percentunit",
               "The cliff is here: above 90% preemptions follow (003)."),
        _panel("Queue depth and running requests",
               [(v["waiting"], "{{service}} waiting"), (v["running"], "{{service}} running"),
                (s["waiting"], "{{service}} waiting"), (s["running"], "{{service}} running"),
                (ll["deferred"], "{{service}} waiting")],
               "short", "Requests waiting behind long jobs timed out (000)."),
        _panel("Busy slots per llama.cpp lane", [(ll["busy"], "{{service}} ({{lane_state}})")], "short",
               "Busy slots against -np show where image requests waited (000)."),
        _panel("Gateway latency per alias (p95)",
               [(f"histogram_quantile(0.95, sum by (le, model_group) (rate({g['latency']}[{RATE}])))", "{{model_group}}")],
               "s", "The path users call: gateway overhead included (001)."),
        _panel("Gateway failures per alias (share of requests)",
               [((f"sum by (requested_model) (rate({g['failures']}{{{NOT_SCRAPES}}}[{RATE}])) / "
                  f"sum by (requested_model) (rate({g['requests']}{{{NOT_SCRAPES}}}[{RATE}]))"), "{{requested_model}}")],
               "percentunit", "Failures by alias, separate from the engines' own health (001)."),
        _panel("Lanes up", [('up{job=~"llamacpp|sglang|vllm"}', "{{host}} {{service}} ({{lane_state}})")], "short",
               "Exactly one lane per GPU is up; a parked one answering means two own the card (001)."),
    ]


def gpu_panels() -> list[dict[str, Any]]:
    from .monitoring import DCGM, JETSON, NODE

    d, j = DCGM, JETSON
    return [
        _panel("GPU memory used", [(f"{d['fb_used']} * 1024 * 1024", "{{host}} gpu{{gpu}}")], "bytes",
               "A card can look idle and still be owned: VRAM says who holds it (001)."),
        _panel("GPU utilisation", [(d["util"], "{{host}} gpu{{gpu}}"), (f"{j['gpu_util']} * 100", "{{host}}")], "percent",
               "Utilisation beside memory: quiet is not free (001)."),
        _panel("GPU temperature", [(d["temp"], "{{host}} gpu{{gpu}}"), (j["temp"], "{{host}} {{sensor}}")], "celsius",
               "Homelab racks throttle under sustained load; alert above 85 C (004)."),
        _panel("GPU power", [(d["power"], "{{host}} gpu{{gpu}}"), (f"{j['power']} / 1000", "{{host}} {{rail}}")], "watt",
               "A 4-node cluster can pull 3 kW (004)."),
        _panel("Jetson unified memory", [(f"{j['ram_used']} / {j['ram_total']}", "{{host}}")], "percentunit",
               "CPU and GPU share it; the Orin froze when it ran out (000)."),
        _panel("Host memory available", [(f"{NODE['mem_available']} / {NODE['mem_total']}", "{{host}}")], "percentunit",
               "Every host, from the node exporter."),
    ]


def dashboards(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """File name -> dashboard model (Grafana's JSON, schema 39), panels laid out two per row."""
    boards = {"inference.json": ("aistack-inference", "aistack / Inference", inference_panels()),
              "gpus.json": ("aistack-gpus", "aistack / GPUs", gpu_panels())}
    found = {}
    for file_name, (uid, title, panels) in boards.items():
        for i, panel in enumerate(panels):
            panel["id"] = i + 1
            panel["gridPos"] = {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)}
        found[file_name] = {"uid": uid, "title": f"{title} ({cluster.name})", "schemaVersion": 39, "editable": False,
                            "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "tags": ["aistack"],
                            "panels": panels}
    return found
