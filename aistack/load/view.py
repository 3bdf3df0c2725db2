"""How a ladder reads in the terminal: a live line per step while it runs, then the summary."""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.table import Table
from rich.text import Text


def progress_line(state) -> Text:
    """The running step: sent, passed, failed by layer, in flight, elapsed."""
    records = state.result.records
    ok = sum(r.ok for r in records)
    failed = Counter(r.layer or "judged at step end" for r in records if not r.ok)
    sent = state.step.total - state.left
    parts = [f"step {state.step.label}: {state.step.users} users, sent {sent}/{state.step.total}, "
             f"done {len(records)}, passed {ok}, in flight {state.in_flight}"]
    if failed:
        parts.append("; failed: " + ", ".join(f"{k} {v}" for k, v in failed.most_common()))
    return Text("".join(parts))


def _fmt(value, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def summary_table(summary: dict) -> Table:
    """Per step and type: pass against the plan's, latency, TTFT, decode rate, failures by layer."""
    table = Table(title=f"Load ladder ({summary['mode']}), {summary['cluster']}", title_justify="left",
                  box=box.SIMPLE_HEAD, caption=Text("plan: the plan's expected pass at that step; "
                                                    "failures: layer: kind, from each answer's evidence"),
                  caption_justify="left")
    for col in ("step", "type", "sent", "pass", "plan", "p95 s", "ttft95", "tok/s", "failures"):
        table.add_column(col, justify="left" if col in ("type", "failures", "step") else "right",
                         no_wrap=col in ("type", "step"))
    for step in summary["steps"]:
        for name, t in step["types"].items():
            pred = step["predicted"].get(name, {}).get("expected_pass")
            table.add_row(Text(f"{step['step']}" + (" (cut)" if step["interrupted"] else "")), Text(name),
                          Text(str(t["attempts"])), Text(_fmt(t["pass_rate"], "{:.0%}")), Text(_fmt(pred, "{:.0%}")),
                          Text(_fmt(t["latency_p95_s"], "{:.1f}")), Text(_fmt(t["ttft_p95_s"])),
                          Text(_fmt(t["decode_tok_s_p50"], "{:.0f}")),
                          Text(", ".join(f"{k} {v}" for k, v in t["kinds"].items())))
    return table
