"""The ladder's report: raw results, a summary beside the plan's prediction, plots, one HTML page.

    DIR/results.jsonl   one line per request: its stages, timings, and the failing layer
    DIR/summary.json    per step and request type: pass rate, latency, TTFT, decode rate, failures
                        by layer, the servers' counters, and the plan's prediction for that step
    DIR/pass_rate.png, latency_p95.png, failures.png, report.html (the plots inlined)
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..ceilings import SERVED, ceilings
from ..capacity import plan
from ..model import Cluster
from ..model.load import Load
from .records import Record, StepResult

PLOTS = ("pass_rate.png", "latency_p95.png", "failures.png")


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _stats(records: list[Record]) -> dict:
    passed = [r for r in records if r.ok]
    answers = [r.answer for r in passed if r.answer is not None]
    ttft = [a.first_token_s for a in answers if a.first_token_s is not None]
    decode = [a.decode_tok_s for a in answers if a.decode_tok_s is not None]
    failed = [r for r in records if not r.ok]
    return {
        "attempts": len(records),
        "passed": len(passed),
        "pass_rate": round(len(passed) / len(records), 4) if records else None,
        "latency_p50_s": percentile([r.elapsed_s for r in passed], 50),
        "latency_p95_s": percentile([r.elapsed_s for r in passed], 95),
        "ttft_p50_s": percentile(ttft, 50),
        "ttft_p95_s": percentile(ttft, 95),
        "decode_tok_s_p50": round(statistics.median(decode), 2) if decode else None,
        "failures": dict(Counter(r.layer or "unattributed" for r in failed)),
        "kinds": dict(Counter(f"{r.layer}: {r.kind}" for r in failed)),
        "reasons": list(dict.fromkeys(r.reason for r in failed if r.reason))[:3],
    }


def lane_stats(result: StepResult) -> dict[str, dict]:
    """Per lane that answered: what its users saw, and how many it ran at once (its own gauge)."""
    by_lane: dict[str, list] = {}
    for r in result.records:
        for s in r.stages:
            if s.operation == "chat" and s.lane and s.status == 200:
                by_lane.setdefault(s.lane, []).append(s)
    found = {}
    for lane, stages in by_lane.items():
        counters = result.counters.get("lanes", {}).get(lane, {})
        running = max((v for k, v in counters.get("highest", {}).items() if "running" in k or "processing" in k),
                      default=None)
        decode = [s.decode_tok_s for s in stages if s.decode_tok_s]
        found[lane] = {
            "requests": len(stages),
            "concurrency": running,
            "ttft_p95_s": percentile([s.first_token_s for s in stages if s.first_token_s is not None], 95),
            "decode_tok_s_p50": round(statistics.median(decode), 2) if decode else None,
        }
    return found


def predicted(cluster: Cluster, types: list[str], users: int) -> dict[str, dict]:
    """The plan's answer for this step: the ladder's types at this many users."""
    mix = {n: t for n, t in cluster.load.mix.items() if n in types}
    at_step = cluster.model_copy(update={"load": Load(users=max(1, users), mix=mix)})
    return {p.name: {"expected_pass": p.expected_pass, "ceiling": p.ceiling,
                     "bottleneck": p.bottleneck.name if p.bottleneck else None}
            for p in ceilings(at_step, plan(at_step).lanes)}


def step_summary(cluster: Cluster, result: StepResult, types: list[str]) -> dict:
    by_type: dict[str, list[Record]] = {}
    for r in result.records:
        by_type.setdefault(r.type, []).append(r)
    failed = [r for r in result.records if not r.ok]
    return {
        "step": result.step.label,
        "users": result.step.users,
        "total": result.step.total,
        "mode": result.mode,
        "wall_s": round(result.ended - result.started, 3),
        "cut_off": result.cut_off,
        "interrupted": result.interrupted,
        "all": _stats(result.records),
        "types": {name: _stats(records) for name, records in sorted(by_type.items())},
        "failures_by_layer": dict(Counter(r.layer or "unattributed" for r in failed)),
        "lanes": lane_stats(result),
        "counters": result.counters,
        "predicted": predicted(cluster, types, result.step.users),
    }


@dataclass
class Report:
    directory: Path
    summary: dict

    @property
    def files(self) -> list[Path]:
        return [self.directory / n for n in ("results.jsonl", "summary.json", *PLOTS, "report.html")]


def write(directory: Path, cluster: Cluster, results: list[StepResult], meta: dict) -> Report:
    """Every file of the report; a partial ladder (Ctrl-C) writes the steps it ran."""
    directory.mkdir(parents=True, exist_ok=True)
    types = sorted(meta.get("types", []))
    with (directory / "results.jsonl").open("w") as f:
        for result in results:
            for record in result.records:
                f.write(json.dumps(record.as_json()) + "\n")
    summary = {**meta, "steps": [step_summary(cluster, r, types) for r in results]}
    summary["served_up_to"] = served_up_to(summary["steps"])
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plots(directory, summary)
    (directory / "report.html").write_text(page(summary, directory))
    return Report(directory, summary)


def served_up_to(steps: list[dict]) -> dict[str, dict]:
    """Per type: the most users at which it still passed SERVED, and where and why it first fell below."""
    found: dict[str, dict] = {}
    for step in sorted(steps, key=lambda s: s["users"]):
        for name, stats in step["types"].items():
            entry = found.setdefault(name, {"served_up_to": 0, "failed_at": None, "layer": None})
            if entry["failed_at"] is not None or stats["pass_rate"] is None:
                continue
            if stats["pass_rate"] >= SERVED:
                entry["served_up_to"] = step["users"]
            else:
                entry["failed_at"] = step["users"]
                entry["layer"] = max(stats["failures"], key=stats["failures"].get) if stats["failures"] else None
    return found


# ---- plots -----------------------------------------------------------------------------------

def plots(directory: Path, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    steps = sorted(summary["steps"], key=lambda s: s["users"])
    types = sorted({n for s in steps for n in s["types"]})
    colors = {n: f"C{i % 10}" for i, n in enumerate(types)}

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in types:
        pts = [(s["users"], s["types"][name]["pass_rate"]) for s in steps if name in s["types"]]
        ax.plot(*zip(*pts), "o-", color=colors[name], label=f"{name} measured")
        pred = [(s["users"], s["predicted"].get(name, {}).get("expected_pass")) for s in steps]
        pred = [(u, p) for u, p in pred if p is not None]
        if pred:
            ax.plot(*zip(*pred), "--", color=colors[name], alpha=0.6, label=f"{name} planned")
        ceiling = next((s["predicted"][name]["ceiling"] for s in reversed(steps)
                        if s["predicted"].get(name, {}).get("ceiling")), None)
        if ceiling:
            ax.axvline(ceiling, color=colors[name], linestyle=":", alpha=0.8)
    _axes(ax, steps, "pass rate", "pass rate per request type (dotted: the plan's ceiling for the type alone)")
    ax.set_ylim(-0.05, 1.05)
    _save(fig, directory / "pass_rate.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in types:
        pts = [(s["users"], s["types"][name]["latency_p95_s"]) for s in steps
               if name in s["types"] and s["types"][name]["latency_p95_s"] is not None]
        if pts:
            ax.plot(*zip(*pts), "o-", color=colors[name], label=name)
    if summary.get("tightest_timeout_s"):
        ax.axhline(summary["tightest_timeout_s"], color="red", linestyle="--", label="tightest timeout")
    _axes(ax, steps, "p95 latency (s)", "p95 latency of passed requests")
    _save(fig, directory / "latency_p95.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    layers = sorted({layer for s in steps for layer in s["failures_by_layer"]})
    bottom = [0] * len(layers)
    for i, s in enumerate(steps):
        counts = [s["failures_by_layer"].get(layer, 0) for layer in layers]
        ax.bar(layers, counts, bottom=bottom, color=f"C{i % 10}", label=f"{s['users']} users")
        bottom = [b + c for b, c in zip(bottom, counts)]
    ax.set_ylabel("failed requests")
    ax.set_title("failures by the layer that gave way" if layers else "no failures")
    if layers:
        ax.legend(fontsize=8)
    _save(fig, directory / "failures.png")


def _axes(ax, steps: list[dict], ylabel: str, title: str) -> None:
    users = sorted({s["users"] for s in steps})
    if len(users) > 1 and users[-1] / users[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(users, [str(u) for u in users])
    ax.set_xlabel("concurrent users")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---- the page ---------------------------------------------------------------------------------

def page(summary: dict, directory: Path) -> str:
    """One self-contained HTML page: the tables and the plots inlined."""
    def cell(v) -> str:
        return "" if v is None else html.escape(f"{v:.3g}" if isinstance(v, float) else str(v))

    rows = []
    for s in summary["steps"]:
        for name, t in s["types"].items():
            pred = s["predicted"].get(name, {})
            rows.append("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in (
                s["step"], s["users"], name, t["attempts"], t["pass_rate"], pred.get("expected_pass"),
                t["latency_p50_s"], t["latency_p95_s"], t["ttft_p95_s"], t["decode_tok_s_p50"],
                ", ".join(f"{k} {v}" for k, v in t["kinds"].items()))) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("step", "users", "type", "sent", "pass", "planned pass", "p50 s",
                                              "p95 s", "TTFT p95 s", "decode tok/s", "failures (layer: kind)"))
    images = "".join(
        f'<h2>{html.escape(n[:-4].replace("_", " "))}</h2><img alt="{n}" src="data:image/png;base64,'
        f'{base64.b64encode((directory / n).read_bytes()).decode()}">' for n in PLOTS)
    title = html.escape(f"aistack load: {summary.get('cluster', '')} {summary.get('started', '')}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
            "table{border-collapse:collapse}</style></head><body>"
            f"<h1>{title}</h1><p>mode {html.escape(str(summary.get('mode')))}; "
            f"{html.escape(json.dumps(summary.get('skipped', {})))}</p>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table>{images}</body></html>\n")
