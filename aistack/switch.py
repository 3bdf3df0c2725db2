"""`aistack switch LANE`: one GPU, another lane, and the previous one back if the new one fails.

The target is preflighted first with the same checks as `aistack plan` (exit 0/10/20); nothing
is touched on a BLOCK. Then the choice is recorded (aistack.lanes) and the ordinary rollout runs:
on the lane's host the parked stack goes down before the target comes up and is waited for
until healthy, and the gateway follows in the same run. If that rollout fails, the previous
record is put back and the rollout runs again, which brings the previous lane back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .inventory import cluster_from_inventory, has_cluster_name, read_inventory
from .lanes import (
    after_switch,
    gpu_neighbours,
    lanes_file,
    read_switched,
    write_switched,
)
from .model import Cluster
from .model.locks import PROJECT_DIR
from .preflight import Preflight, preflight

DEPLOY = PROJECT_DIR / "deploy.py"
PYINFRA = Path(sys.executable).parent / "pyinfra"


@dataclass
class SwitchPlan:
    target: str
    stopping: list[str]  # the running lanes on the target's GPUs
    record: Path
    before: list[str]  # the recorded switches now
    after: list[str]  # and once the target runs
    cluster: Cluster  # as it will be
    preflight: Preflight

    @property
    def needed(self) -> bool:
        return self.before != self.after or bool(self.stopping) or not self.cluster.services[self.target].active


def plan_switch(inventory: Path, target: str, overrides: list[str] = ()) -> SwitchPlan:
    parsed = read_inventory(inventory)  # once: the clusters below differ only in their lanes
    if not has_cluster_name(parsed):
        raise UsageError(f"{inventory}: set `cluster_name` in its group data, so deploy.py finds the lane record")

    def cluster(switched: list[str] | None = None) -> Cluster:
        return cluster_from_inventory(parsed, overrides, name=inventory.stem, switched=switched)

    current = cluster()
    if target not in current.lanes():
        raise UsageError(f"{target!r} is not a generation lane of {inventory} (lanes: {', '.join(sorted(current.lanes()))})")
    record = lanes_file(current.name)
    before = read_switched(record)
    after = after_switch(current, cluster([]), before, target)
    proposed = cluster(after)  # exactly what deploy builds once the record says `after`
    stopping = [] if current.services[target].active else [
        n for n in gpu_neighbours(current, target) if current.services[n].active]
    return SwitchPlan(target, stopping, record, before, after, proposed, preflight(proposed))


def rollout(inventory: Path, overrides: list[str]) -> int:
    """The ordinary rollout (`pyinfra -y INVENTORY deploy.py`), its output passed through."""
    args = [str(PYINFRA), "-y", str(inventory), str(DEPLOY)]
    if overrides:
        args += ["--data", f"aistack_set={json.dumps(list(overrides))}"]
    return subprocess.run(args, cwd=PROJECT_DIR, check=False).returncode


@dataclass
class SwitchResult:
    switched: bool
    restored: bool | None = None  # None: nothing to restore


def run_switch(plan: SwitchPlan, inventory: Path, overrides: list[str] = ()) -> SwitchResult:
    write_switched(plan.record, plan.after)
    if rollout(inventory, overrides) == 0:
        return SwitchResult(switched=True)
    write_switched(plan.record, plan.before)
    return SwitchResult(switched=False, restored=rollout(inventory, overrides) == 0)
