"""How a preflight reads: Rich tables for people, a plain dict for machines. No arithmetic here."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .model import Cluster
from .preflight import Level, Preflight

STYLE = {Level.PASS: "green", Level.WARN: "yellow", Level.BLOCK: "bold red"}


def _data(*values: object) -> list[Text]:
    """Cells from the inventory are data: a name like `[/]` is shown as written, never as markup."""
    return [Text(str(v)) for v in values]


def show(console: Console, cluster: Cluster, result: Preflight) -> None:
    console.print(_budgets(result))
    console.print(_lanes(result))
    console.print(_timeouts(cluster))
    console.print(_findings(result))
    level = result.level
    # The reasons that decide the exit code, unwrapped, so they can be read and grepped.
    for f in result.findings:
        if f.level is level and level is not Level.PASS:
            where = f"{f.host}: " if f.host else ""
            console.print(Text.assemble((level.name, STYLE[level]), f" {f.check} {where}{f.subject}: {f.message}"),
                          soft_wrap=True, highlight=False)
    console.print(f"decision: [{STYLE[level]}]{level.name}[/] (exit {level.value})")


def _budgets(result: Preflight) -> Table:
    table = Table(title="Memory per accelerator (MiB)", title_justify="left")
    for col in ("host", "accelerator", "total", "used", "free", "largest items"):
        table.add_column(col, justify="right" if col in ("total", "used", "free") else "left")
    for b in result.plan.budgets:
        top = sorted(b.items, key=lambda i: -i.mib)[:3]
        items = "; ".join(f"{i.service} {i.what} {i.mib:,.0f}" for i in top) or "-"
        free_style = "red" if b.free_mib < 0 else ""
        table.add_row(*_data(b.host, b.accelerator, f"{b.total_mib:,.0f}", f"{b.used_mib:,.0f}"),
                      Text(f"{b.free_mib:,.0f}", style=free_style), Text(items))
    return table


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _lanes(result: Preflight) -> Table:
    table = Table(title="Generation lanes", title_justify="left")
    for col in ("lane", "engine", "slots", "per-slot ctx", "request needs", "KV tokens", "KV bytes/token", "concurrent at typical"):
        table.add_column(col)
    for lane in result.plan.lanes.values():
        table.add_row(*_data(
            lane.service,
            lane.engine + (" (unified KV)" if lane.unified_kv and lane.engine == "llama.cpp" else ""),
            _num(lane.slots),
            _num(lane.slot_context),
            _num(lane.request_tokens),
            _num(lane.kv_tokens),
            _num(lane.kv_bytes_per_token),
            _num(lane.concurrent),
        ))
    return table


def _timeouts(cluster: Cluster) -> Table:
    table = Table(title="Timeout chain, outermost first", title_justify="left")
    table.add_column("layer")
    table.add_column("seconds", justify="right")
    for layer, seconds in cluster.timeouts.layers():
        table.add_row(*_data(layer, seconds))
    return table


def _findings(result: Preflight) -> Table:
    table = Table(title="Checks", title_justify="left")
    for col in ("level", "check", "host", "subject", "reason"):
        table.add_column(col)
    for f in sorted(result.findings, key=lambda f: -f.level):
        table.add_row(Text(f.level.name, style=STYLE[f.level]), *_data(f.check, f.host or "-", f.subject, f.message))
    return table


def as_dict(cluster: Cluster, result: Preflight) -> dict[str, Any]:
    budgets = []
    for b in result.plan.budgets:
        entry = asdict(b)
        entry.update(used_mib=b.used_mib, free_mib=b.free_mib)
        budgets.append(entry)
    return {
        "decision": result.level.name,
        "exit_code": result.level.value,
        "budgets": budgets,
        "lanes": {name: asdict(lane) for name, lane in result.plan.lanes.items()},
        "timeouts": [{"layer": layer, "seconds": s} for layer, s in cluster.timeouts.layers()],
        "findings": [
            {"level": f.level.name, "check": f.check, "host": f.host, "subject": f.subject, "message": f.message}
            for f in result.findings
        ],
    }
