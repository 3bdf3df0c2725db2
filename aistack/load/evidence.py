"""What a ladder measured, kept next to the inventory for the plan: inventory/<cluster>.load.yaml.

Per generation lane, its measured decode curve (per-user tok/s and TTFT p95 at the concurrency
its own gauge reported); per request type, the most users it was served at and where it first
fell below. The plan reads the curves in place of the seeds' defaults (aistack.ceilings) and
prints the measured ceilings beside its own. A lane whose settings changed since is not read:
its curve described another configuration.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import yaml

from ..errors import InventoryError, Problem
from ..model import Cluster
from ..model.curves import Curve
from ..model.locks import PROJECT_DIR

EVIDENCE_DIR = PROJECT_DIR / "inventory"
HEADER = ("# Written by `aistack load`: what the load ladder measured on this cluster. `aistack plan` reads the\n"
          "# curves in place of the seeds' defaults while each lane's settings match. Delete it to go back.\n")


def evidence_file(cluster_name: str, directory: Path = EVIDENCE_DIR) -> Path:
    return directory / f"{cluster_name}.load.yaml"


def lane_settings(cluster: Cluster, lane: str) -> str:
    """What a curve depends on: where the lane runs and how it is configured."""
    service = cluster.services[lane]
    keys = ("host", "kind", "model", "quant", "ctx", "parallel", "cache_type_k", "cache_type_v", "flash_attn",
            "max_running_requests", "max_num_seqs", "tp_size", "gpus")
    return " ".join(f"{k}={getattr(service, k)}" for k in keys if hasattr(service, k))


def curves(cluster: Cluster, steps: list[dict], source: str) -> dict[str, dict]:
    """lane -> a Curve (as a dict), one point per concurrency the lane's gauge reported."""
    points: dict[str, dict[int, list[dict]]] = {}
    for step in steps:
        for lane, seen in step["lanes"].items():
            if not seen.get("decode_tok_s_p50"):
                continue
            c = max(1, round(seen.get("concurrency") or 1))
            points.setdefault(lane, {}).setdefault(c, []).append(seen)
    found = {}
    for lane, by_c in points.items():
        service = cluster.services[lane]
        table = [{"concurrency": c,
                  "tok_s": round(statistics.mean(s["decode_tok_s_p50"] for s in seen), 2),
                  "ttft_p95_s": round(max(s["ttft_p95_s"] or 0.0 for s in seen), 4)}
                 for c, seen in sorted(by_c.items())]
        memory = "unified" if cluster.hosts[service.host].unified else "dedicated"
        curve = Curve(engine=service.kind, model=service.model, memory=memory,
                      hardware=f"{service.host} ({lane_settings(cluster, lane)})", source=source, points=table)
        found[lane] = curve.model_dump(exclude_none=True)
    return found


def write_evidence(path: Path, cluster: Cluster, summary: dict, report_dir: Path) -> dict:
    source = f"aistack load {summary['started']}, {summary['mode']} ladder {summary['ladder']}, report {report_dir}"
    data = {
        "measured": summary["started"],
        "report": str(report_dir),
        "lanes": {lane: {"settings": lane_settings(cluster, lane), "curve": curve}
                  for lane, curve in curves(cluster, summary["steps"], source).items()},
        "paths": summary["served_up_to"],
    }
    path.write_text(HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    return data


def read_evidence(path: Path) -> dict | None:
    """The file's contents, None when there is none; a damaged file is refused by name."""
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InventoryError([Problem(None, str(path), f"cannot read the load evidence: {type(exc).__name__}")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("lanes", {}), dict) or not isinstance(data.get("paths", {}), dict):
        raise InventoryError([Problem(None, str(path), "must hold `lanes:` and `paths:` mappings (written by aistack load)")])
    return data


def measured_overrides(cluster: Cluster, data: dict, where: str) -> tuple[dict[str, Curve], dict[str, str], list[str]]:
    """(curves by name, lane -> curve name, notes) for the lanes whose settings still match."""
    found, chosen, notes = {}, {}, []
    for lane, entry in (data.get("lanes") or {}).items():
        if lane not in cluster.services:
            notes.append(f"{where}: lane {lane} is no longer in the inventory; its curve is not read")
            continue
        if entry.get("settings") != lane_settings(cluster, lane):
            notes.append(f"{where}: {lane} changed since it was measured; its curve is not read")
            continue
        try:
            curve = Curve.model_validate(entry["curve"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InventoryError([Problem(cluster.services[lane].host, f"{where}: lanes.{lane}.curve",
                                          f"not a curve: {str(exc).splitlines()[0][:200]}")]) from None
        name = f"measured-{lane}"
        found[name], chosen[lane] = curve, name
    if chosen:
        notes.append(f"{where}: decode curves measured {data.get('measured')} by aistack load, read for "
                     f"{', '.join(sorted(chosen))} (report {data.get('report')})")
    return found, chosen, notes
