"""`make bench`: rollout figures on the sandbox, printed with min and median over several runs.

- full rollout from fresh hosts (hosts recreated before each run; their creation is not timed);
- no-op re-apply of the four hosts, and the SSH commands each host ran in one of them (from
  pyinfra's --debug log, which names every command);
- `aistack plan` on the homelab inventory (a fresh process each time, as a user runs it), first:
  it needs no sandbox, and its target is 0.5 s.

A benchmark, not a test: it prints figures and asserts only that each run succeeded.

    python -m aistack.sandbox.bench [--fresh N] [--noop N] [--plan N]   (--fresh 0 --noop 0: plan only)
"""

from __future__ import annotations

import argparse
import compileall
import json
import re
import statistics
import subprocess
from collections import Counter
import sys
import time
from pathlib import Path

from ..model.locks import PROJECT_DIR
from . import testhosts

BIN = Path(sys.executable).parent
PLAN_TARGET_S = 0.5  # issue 16
NOOP_TARGET_S, NOOP_COMMANDS_TARGET = 2.0, 3  # issue 18: median seconds, SSH commands per host
SANDBOX = PROJECT_DIR / "inventory" / "sandbox.py"


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_DIR, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def rollout() -> list[str]:
    return [str(BIN / "pyinfra"), "-y", str(SANDBOX), "deploy.py"]


def report(name: str, runs: list[float]) -> None:
    print(f"{name:42} n={len(runs):2}  min {min(runs):7.2f} s  median {statistics.median(runs):7.2f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", type=int, default=2, help="full rollouts from fresh hosts")
    ap.add_argument("--noop", type=int, default=5, help="no-op re-applies")
    ap.add_argument("--plan", type=int, default=10, help="`aistack plan` runs")
    args = ap.parse_args(argv)
    if args.plan:
        plan_runs(args.plan)
    if not (args.fresh or args.noop):
        return
    fresh = []
    for _ in range(args.fresh):
        testhosts.down()
        testhosts.up()
        fresh.append(timed(rollout()))
    if fresh:
        report("full rollout, fresh hosts (4)", fresh)
    else:
        testhosts.up()
        timed(rollout())
    if args.noop:
        noop_runs(args.noop)


def noop_runs(n: int) -> None:
    """Re-applies with nothing changed (pyinfra's JSON report must say so): their wall time, then
    one more run's SSH commands per host."""
    compile_project()
    runs = [noop()[0] for _ in range(n)]
    report("no-op re-apply (4 hosts)", runs)
    counts = noop(debug=True)[1]
    print(f"{'':42} SSH commands per host: {', '.join(f'{h} {c}' for h, c in sorted(counts.items()))}")
    met = statistics.median(runs) <= NOOP_TARGET_S and max(counts.values(), default=0) <= NOOP_COMMANDS_TARGET
    print(f"{'':42} target {NOOP_TARGET_S} s median, {NOOP_COMMANDS_TARGET} commands per host: {'met' if met else 'MISSED'}")


def noop(debug: bool = False) -> tuple[float, dict[str, int]]:
    """One re-apply that must change nothing: seconds, and SSH commands per host (with --debug,
    whose log names every command)."""
    cmd = [str(BIN / "pyinfra"), "-y", "--json", *(["--debug"] if debug else []), str(SANDBOX), "deploy.py"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_DIR, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    changed = json.loads(proc.stdout or "{}").get("results", {}).get("totals", {}).get("success")
    if proc.returncode != 0 or changed != 0:
        raise SystemExit(f"a no-op re-apply exited {proc.returncode} with {changed} changes:\n{proc.stderr[-2000:]}")
    return elapsed, commands_per_host(proc.stderr)


def commands_per_host(debug_log: str) -> dict[str, int]:
    """SSH commands each host ran, from pyinfra's --debug log (it names every one)."""
    return dict(Counter(re.findall(r"Running command on (\S+): ", debug_log)))


def compile_project() -> None:
    """A user's install has bytecode (pip compiles it, an editable install writes it on first
    import): compile here too, where PYTHONDONTWRITEBYTECODE may be set."""
    for package in ("aistack", "roles"):
        compileall.compile_dir(PROJECT_DIR / package, quiet=1)


def plan_runs(n: int) -> None:
    """Fresh `aistack plan` processes."""
    compile_project()
    cmd = [str(BIN / "aistack"), "plan", "--inventory", str(PROJECT_DIR / "inventory" / "homelab.py")]
    runs = [timed(cmd, ok=(0, 10)) for _ in range(n)]
    report("aistack plan (homelab)", runs)
    print(f"{'':42} target {PLAN_TARGET_S} s: {'met' if statistics.median(runs) <= PLAN_TARGET_S else 'MISSED'} (median)")

if __name__ == "__main__":
    main()
