"""How a preflight reads: Rich tables for people, a plain dict for machines. No arithmetic here."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .ceilings import PathCeiling
from .model import Cluster
from .model.calibration import llamacpp_table
from .preflight import Level, Preflight

STYLE = {Level.PASS: "green", Level.WARN: "yellow", Level.BLOCK: "bold red"}


def _data(*values: object) -> list[Text]:
    """Cells from the inventory are data: a name like `[/]` is shown as written, never as markup."""
    return [Text(str(v)) for v in values]


def show(console: Console, cluster: Cluster, result: Preflight) -> None:
    """The answer first (decision and what decides it), then users served per type, then details."""
    level = result.level
    decided = [f for f in result.findings if f.level is not Level.PASS]
    counts = ", ".join(f"{sum(f.level is lv for f in decided)} {lv.name}" for lv in (Level.BLOCK, Level.WARN)
                       if any(f.level is lv for f in decided))
    console.print(Text.assemble("decision: ", (level.name, STYLE[level]), f" (exit {level.value})",
                                f": {counts}" if counts else ""), highlight=False)
    for f in sorted(decided, key=lambda f: -f.level):
        where = f" ({f.host})" if f.host else ""
        console.print(Text.assemble((f.level.name, STYLE[f.level]), f" {f.check} {f.subject}{where}: {f.message}"),
                      soft_wrap=True, highlight=False)
    console.print(_served(cluster, result))
    for note in dict.fromkeys([*(n for r in result.paths for n in r.notes), *cluster.evidence_notes]):
        console.print(Text(f"note: {note}"), soft_wrap=True, highlight=False)
    console.print(_budgets(result))
    console.print(_lanes(result))
    console.print(_timeouts(cluster))
    console.print(_passed(result))


def _served(cluster: Cluster, result: Preflight) -> Table:
    """Per request type: users it serves alone, its time and pass at the mix, its path with the
    layer that caps it in brackets."""
    load = cluster.load
    served = [r for r in result.paths if r.served_by is None]
    shared = _shared_prefix([[layer.name for layer in r.path] for r in served])
    caption = "users: that type alone; time, pass: at the declared mix; [bottleneck]"
    if shared:
        caption += f"; every path starts {' > '.join(shared)}"
    measured = cluster.measured
    if measured:
        caption += "; measured: users served by the last `aistack load` (/ the step it failed at)"
    table = Table(title=f"Users served, of {load.users:,} at once ({len(load.mix)} request types)",
                  title_justify="left", box=box.SIMPLE_HEAD, caption=Text(caption), caption_justify="left")
    columns = ("type", "users", *(("measured",) if measured else ()), "time s", "pass", "path")
    for col in columns:
        table.add_column(col, justify="left" if col in ("type", "path") else "right", no_wrap=col == "type")
    for r in result.paths:
        seen = [_measured(measured.get(r.name))] if measured else []
        if r.served_by is not None:
            table.add_row(*_data(r.name, "-", *seen, "-", "-", f"not served: {r.served_by}"))
            continue
        users = "-" if r.ceiling is None else f"{r.ceiling:,.0f}"
        style = "red" if r.ceiling is not None and r.ceiling < load.users else ""
        path = [f"[{layer.name}]" if layer is r.bottleneck else layer.name
                for i, layer in enumerate(r.path) if i >= len(shared) or layer is r.bottleneck]
        table.add_row(Text(r.name), Text(users, style=style),
                      *_data(*seen, _num(r.seconds), "-" if r.expected_pass is None else f"{r.expected_pass:.0%}", " > ".join(path)))
    return table


def _measured(entry: dict | None) -> str:
    if not entry:
        return "-"
    return f"{entry['served_up_to']}" + (f"/{entry['failed_at']}" if entry.get("failed_at") else "")


def _shared_prefix(paths: list[list[str]]) -> list[str]:
    """The layers every path begins with (the client pool and nginx, on most clusters)."""
    shared = paths[0] if paths else []
    for path in paths[1:]:
        while path[:len(shared)] != shared:
            shared = shared[:-1]
    return shared


def _budgets(result: Preflight) -> Table:
    carried = [f"{b.host} {b.accelerator}" for b in result.plan.budgets
               if any(i.source.startswith("carried over") for i in b.items)]
    caption = None
    if any(i.source for b in result.plan.budgets for i in b.items):
        caption = Text(f"llama.cpp items: {llamacpp_table().source}"
                       + (f"; CUDA context carried over to {', '.join(carried)}" if carried else "")
                       + "; --json gives each item's source")
    table = Table(title="Memory per accelerator (MiB)", title_justify="left", caption=caption, caption_justify="left")
    for col in ("host", "acc", "total", "used", "free", "largest item"):
        table.add_column(col, justify="right" if col in ("total", "used", "free") else "left", no_wrap=col == "host")
    for b in result.plan.budgets:
        top = max(b.items, key=lambda i: i.mib, default=None)
        items = f"{top.service}: {top.what} {top.mib:,.0f}" if top else "-"
        free_style = "red" if b.free_mib < 0 else ""
        table.add_row(*_data(b.host, b.accelerator, f"{b.total_mib:,.0f}", f"{b.used_mib:,.0f}"),
                      Text(f"{b.free_mib:,.0f}", style=free_style), Text(items))
    return table


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _lanes(result: Preflight) -> Table:
    table = Table(title="Generation lanes (tokens)", title_justify="left")
    for col in ("lane", "engine", "slots", "slot ctx", "request", "KV pool", "holds"):
        table.add_column(col, justify="left" if col in ("lane", "engine") else "right", no_wrap=col == "lane")
    for lane in result.plan.lanes.values():
        table.add_row(*_data(
            lane.service,
            lane.engine + (" unified" if lane.unified_kv and lane.engine == "llama.cpp" else ""),
            _num(lane.slots),
            _num(lane.slot_context),
            _num(lane.request_tokens),
            _num(lane.kv_tokens),
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


def _passed(result: Preflight) -> Table:
    table = Table(title="Checks passed", title_justify="left")
    for col in ("check", "subject", "reason"):
        table.add_column(col, no_wrap=col == "check")
    for f in result.findings:
        if f.level is Level.PASS:
            table.add_row(*_data(f.check, f.subject, f.message))
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
        "load": {"users": cluster.load.users, "paths": [_path_dict(r) for r in result.paths],
                 "measured": cluster.measured, "evidence_notes": cluster.evidence_notes},
        "timeouts": [{"layer": layer, "seconds": s} for layer, s in cluster.timeouts.layers()],
        "findings": [
            {"level": f.level.name, "check": f.check, "host": f.host, "subject": f.subject, "message": f.message}
            for f in result.findings
        ],
    }


def _path_dict(r: PathCeiling) -> dict[str, Any]:
    """A request type's path with every layer's capacity and source, for machines."""
    entry = asdict(r)
    entry["cut"] = r.cut
    for layer in entry["path"] + ([entry["bottleneck"]] if entry["bottleneck"] else []):
        layer["capacity"] = _finite(layer["capacity"])
        layer["hold_s"] = _finite(layer["hold_s"])
    return entry


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an unmeasured or unbounded value is null."""
    return value if value is None or math.isfinite(value) else None
