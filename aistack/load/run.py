"""One `aistack load`: the ladder's steps in order, then the report and the evidence file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..model import Cluster, LlamaCpp
from ..model.load import RequestType
from .traffic import Target, gateway_url, targets

MAX_USERS = 4096
MAX_TOTAL = 100_000  # requests in one step


@dataclass(frozen=True)
class LadderSpec:
    steps: list[tuple[str, int, int]]  # (label, users, total)
    duration_s: float


def parse_ladder(text: str, total: int | None, types: int) -> list[tuple[str, int, int]]:
    """"smoke,16,32" -> steps; smoke sends one request of each type at once."""
    steps = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item == "smoke":
            steps.append(("smoke", types, types))
            continue
        if not item.isdigit() or not 1 <= int(item) <= MAX_USERS:
            raise ValueError(f"--ladder: {item!r} is not 'smoke' or a number of users from 1 to {MAX_USERS}")
        users = int(item)
        step_total = users if total is None else total
        if not users <= step_total <= MAX_TOTAL:
            raise ValueError(f"--total {step_total}: at least the step's {users} users and at most {MAX_TOTAL}")
        steps.append((item, users, step_total))
    if not steps:
        raise ValueError("--ladder names no step")
    return steps


def parse_mix(text: str | None, cluster: Cluster) -> tuple[list[str] | None, dict[str, RequestType]]:
    """"a,b=3" -> the names, and the mix with their weights changed."""
    if not text:
        return None, cluster.load.mix
    mix = dict(cluster.load.mix)
    names = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, weight = item.partition("=")
        if name not in mix:
            raise ValueError(f"--mix: {name!r} is not in the declared load (load.mix: {', '.join(mix)})")
        if weight:
            try:
                value = float(weight)
            except ValueError:
                raise ValueError(f"--mix: weight {weight!r} of {name} is not a number") from None
            if not 0 < value <= 1e6:
                raise ValueError(f"--mix: weight of {name} must be above 0")
            mix[name] = mix[name].model_copy(update={"weight": value})
        names.append(name)
    return names, mix


def lanes_to_probe(picked: list[Target], cluster: Cluster) -> list[str]:
    """Generation lanes the ladder's answers came from (a cache gap means something there)."""
    return sorted({lane for t in picked for lane in t.answer.lanes.values()
                   if not isinstance(cluster.services[lane], LlamaCpp) or cluster.services[lane].generates})


def started_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_report_dir(cluster: Cluster, stamp: str) -> Path:
    return Path("reports") / f"{cluster.name}-{stamp.replace(':', '')}"


def run(cluster: Cluster, ladder_text: str, *, total: int | None, mix: str | None, duration_s: float,
        report_dir: Path | None, mode: str, turns: int, timeout_s: float | None, key: str,
        webui_key: str | None = None, evidence: bool = True, progress: Callable | None = None) -> tuple:
    """The ladder, its report and (unless told not to) the evidence file; returns (report, evidence path)."""
    from .evidence import evidence_file, write_evidence
    from .ladder import Ladder
    from .records import Options, Step
    from .probes import prefix_gap
    from .report import write

    names, weighted = parse_mix(mix, cluster)
    cluster = cluster.model_copy(update={"load": cluster.load.model_copy(update={"mix": weighted})})
    picked, skipped = targets(cluster, names, webui_key=webui_key is not None)
    steps = parse_ladder(ladder_text, total, len(picked))
    chain = max(s for _, s in cluster.timeouts.layers())
    options = Options(mode=mode, turns=turns, timeout_s=timeout_s or chain + 30)
    stamp = started_stamp()
    directory = report_dir or default_report_dir(cluster, stamp)
    ladder = Ladder(cluster, picked, key, gateway_url(cluster), options, webui_key)
    results = []
    try:
        for label, users, step_total in steps:
            result = ladder.run_step(Step(label, users, step_total, duration_s), progress)
            results.append(result)
            if result.interrupted:
                break
    finally:
        ladder.close()
    interrupted = bool(results) and results[-1].interrupted
    gaps = {}
    if not interrupted:
        import httpx

        with httpx.Client(timeout=options.timeout_s) as client:
            gaps = {lane: prefix_gap(cluster, lane, client) for lane in lanes_to_probe(picked, cluster)}
    meta = {"cluster": cluster.name, "started": stamp, "mode": mode, "ladder": ladder_text,
            "types": [t.name for t in picked], "skipped": skipped, "duration_cap_s": duration_s,
            "client_timeout_s": options.timeout_s, "interrupted": interrupted,
            "tightest_timeout_s": min(s for _, s in cluster.timeouts.layers()), "prefix_cache": gaps}
    report = write(directory, cluster, results, meta)
    written = None
    if evidence and results and not interrupted:
        written = evidence_file(cluster.name)
        write_evidence(written, cluster, report.summary, directory)
    return report, written
