"""Which lane runs on each GPU: the inventory's `active` flags, then the switches recorded since.

Several lanes may be declared per GPU and exactly one runs (001). `aistack switch LANE` records
its choice in inventory/<cluster>.lanes.yaml, next to the inventory, so a plain re-apply keeps
the switched lane instead of reverting it; the file shows in `git status` like any other edit.
Each listed lane runs and the lanes sharing a GPU with it are parked. Delete the file to go
back to the inventory's flags.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import InventoryError, Problem, did_you_mean
from .model import Cluster
from .model.locks import PROJECT_DIR

LANES_DIR = PROJECT_DIR / "inventory"
HEADER = ("# Written by `aistack switch`: the lanes switched to since the inventory's `active` flags.\n"
          "# Each runs; the lanes sharing a GPU with it are parked. Delete this file to go back.\n")


def lanes_file(cluster_name: str) -> Path:
    return LANES_DIR / f"{cluster_name}.lanes.yaml"


def read_switched(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:  # a directory, binary, not YAML
        raise InventoryError([Problem(None, str(path), f"cannot read the lane record: {type(exc).__name__}")]) from None
    if isinstance(data, dict) and set(data) - {"active"}:
        unknown = sorted(map(str, set(data) - {"active"}))
        raise InventoryError([Problem(None, f"{path}: {k}", f"unknown key{did_you_mean(k, ['active'])}") for k in unknown])
    active = data.get("active") if isinstance(data, dict) else None
    if not isinstance(active, list) or not all(isinstance(lane, str) for lane in active):
        raise InventoryError([Problem(None, str(path), "must hold `active: [lane, ...]`")])
    return active


def write_switched(path: Path, lanes: list[str]) -> None:
    """The file, or no file when nothing differs from the inventory."""
    if lanes:
        path.write_text(HEADER + yaml.safe_dump({"active": lanes}, default_flow_style=False))
    else:
        path.unlink(missing_ok=True)


def gpu_neighbours(cluster: Cluster, lane: str) -> list[str]:
    """The other generation lanes on the same host sharing one of its GPUs; lanes without a GPU
    share the host's CPU and memory, so two of them on one host are neighbours too."""
    target = cluster.lanes()[lane]
    return sorted(n for n, s in cluster.lanes().items()
                  if n != lane and s.host == target.host and _devices(s) & _devices(target))


def _devices(lane) -> set[int | str]:
    return set(lane.gpus) or {"cpu"}


def switch_overrides(cluster: Cluster, switched: list[str], source: str) -> list[str]:
    """`--set`-style items that make each switched lane active and park its GPU neighbours."""
    unknown = [lane for lane in switched if lane not in cluster.lanes()]
    if unknown:
        raise InventoryError([Problem(None, source, f"{lane!r} is not a generation lane of cluster {cluster.name}")
                              for lane in unknown])
    items = []
    for lane in switched:
        items.append(f"services.{lane}.active=true")
        items += [f"services.{n}.active=false" for n in gpu_neighbours(cluster, lane)]
    return items


def after_switch(cluster: Cluster, inventory_cluster: Cluster, switched: list[str], target: str) -> list[str]:
    """The switched list once `target` runs: its neighbours' entries dropped, and entries that
    only repeat the inventory's own flags left out, so switching back removes the file."""
    dropped = {target, *gpu_neighbours(cluster, target)}
    lanes = [lane for lane in switched if lane not in dropped] + [target]
    return [lane for lane in lanes if not _as_inventory(inventory_cluster, lane)]


def _as_inventory(inventory_cluster: Cluster, lane: str) -> bool:
    """Does the inventory alone already run this lane and park its neighbours?"""
    services = inventory_cluster.services
    return services[lane].active and not any(services[n].active for n in gpu_neighbours(inventory_cluster, lane))
