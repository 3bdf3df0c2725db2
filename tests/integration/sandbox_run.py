"""Driving the sandbox from tests: real pyinfra runs, real SSH to the test hosts."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aistack.model import Ssh
from aistack.sandbox import testhosts
from aistack.sandbox.bench import commands_per_host
from aistack.ssh_client import connect

PROJECT = Path(__file__).resolve().parents[2]
SANDBOX = PROJECT / "inventory" / "sandbox.py"
PYINFRA = Path(sys.executable).parent / "pyinfra"
AISTACK = Path(sys.executable).parent / "aistack"


@dataclass
class Run:
    code: int
    report: dict
    log: str

    @property
    def changed(self) -> int:
        return self.report.get("results", {}).get("totals", {}).get("success", -1)

    @property
    def failed_hosts(self) -> list[str]:
        return self.report.get("results", {}).get("failed_hosts", [])

    def commands_per_host(self) -> dict[str, int]:
        """SSH commands each host ran (needs deploy(debug=True))."""
        return commands_per_host(self.log)


def deploy(*overrides: str, dry: bool = False, data: dict[str, str] | None = None, debug: bool = False) -> Run:
    """One real rollout with `--set`-style overrides (passed as pyinfra data)."""
    # --dry detects changes only without -y (-y skips change detection); it never prompts.
    args = [str(PYINFRA), "--json", "--dry" if dry else "-y", *(["--debug"] if debug else []), str(SANDBOX), "deploy.py"]
    if overrides:
        args += ["--data", f"aistack_set={json.dumps(list(overrides))}"]
    for key, value in (data or {}).items():
        args += ["--data", f"{key}={value}"]
    proc = subprocess.run(args, cwd=PROJECT, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL,
                          check=False)
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        report = {}
    return Run(proc.returncode, report, proc.stderr + proc.stdout[-2000:])


def ssh(host: str, command: str) -> str:
    """Run a command on a sandbox host over its real SSH; return stdout (raises on failure)."""
    entry = dict(testhosts.inventory_hosts())[host]
    client = connect(Ssh(**{k.removeprefix("ssh_"): v for k, v in entry.items() if k.startswith("ssh_")}))
    try:
        _, stdout, stderr = client.exec_command(command, timeout=120)
        code = stdout.channel.recv_exit_status()
        out = stdout.read().decode()
        if code != 0:
            raise RuntimeError(f"{host}: {command!r} exited {code}: {stderr.read().decode()[-500:]}")
        return out
    finally:
        client.close()


def start_times() -> dict[str, str]:
    """host/container -> StartedAt, for every running container of the sandbox."""
    found = {}
    for host in testhosts.NODES:
        fmt = shlex.quote("{{.Name}} {{.State.StartedAt}}")
        out = ssh(host, f"ids=$(docker ps -q); [ -z \"$ids\" ] || docker inspect -f {fmt} $ids")
        for line in out.splitlines():
            name, started = line.split()
            found[f"{host}{name}"] = started
    return found


def running(host: str) -> set[str]:
    return set(ssh(host, "docker ps --format '{{.Names}}'").split())


def health(host: str) -> dict[str, str]:
    """container -> its health status (or state, when it has no healthcheck)."""
    fmt = shlex.quote("{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}")
    out = ssh(host, f"ids=$(docker ps -aq); [ -z \"$ids\" ] || docker inspect -f {fmt} $ids")
    return dict(line.lstrip("/").split() for line in out.splitlines())


def logs(host: str, container: str, lines: int = 40) -> str:
    """The tail of a container's log, for a failing assertion's message."""
    try:
        return f"\n--- {host}/{container} log ---\n" + ssh(host, f"docker logs --tail {lines} {container} 2>&1")
    except RuntimeError as error:
        return f"\n(no log: {error})"


@dataclass
class Verification:
    code: int
    rows: list[dict]
    stderr: str

    def results(self, result: str) -> dict[tuple[str, str], dict]:
        """(host, check) -> row, for the rows with this result."""
        return {(r["host"], r["check"]): r for r in self.rows if r["result"] == result}


def verify(*overrides: str, hosts: tuple[str, ...] = ()) -> Verification:
    """The real `aistack verify --json` against the sandbox, in its own process."""
    args = [str(AISTACK), "verify", "--inventory", str(SANDBOX), "--json"]
    args += [a for s in overrides for a in ("--set", s)] + [a for h in hosts for a in ("--host", h)]
    proc = subprocess.run(args, cwd=PROJECT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          check=False)
    rows = json.loads(proc.stdout)["rows"] if proc.stdout.strip().startswith("{") else []
    return Verification(proc.returncode, rows, proc.stderr + proc.stdout[-2000:])
