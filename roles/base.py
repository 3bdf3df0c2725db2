"""Base preparation: packages, kernel and descriptor limits, directories, time sync."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from aistack.host_state import HostState, StateQuery
from aistack.model import Host

PACKAGES = ["ca-certificates", "curl", "python3", "iproute2", "procps"]
SYSCTL_FILE = "/etc/sysctl.d/90-aistack.conf"
LIMITS_FILE = "/etc/security/limits.d/90-aistack.conf"
LIMITS_LINE = r"^\* - nofile .*"


def packages(node: Host) -> list[str]:
    return PACKAGES + (["chrony"] if node.time_sync == "chrony" else [])


def directories(node: Host) -> list[tuple[str, int]]:
    storage = node.storage
    return [(storage.state, 0o755), (f"{storage.state}/stacks", 0o755), (f"{storage.state}/secrets", 0o700),
            (storage.models, 0o755), (storage.vectors, 0o755)]


def reads(node: Host) -> StateQuery:
    """What this role decides on, asked in the host's one state read."""
    return StateQuery(text=(SYSCTL_FILE, LIMITS_FILE), packages=tuple(packages(node)),
                      sysctls=tuple(node.tuning.sysctl), directories=tuple(p for p, _ in directories(node)),
                      units=("chrony",) if node.time_sync == "chrony" else ())


def ensure_packages(wanted: list[str], name: str, seen: HostState) -> list:
    """apt only when something is missing (then apt-get update first): a prepared host runs none."""
    if not seen.missing_packages(wanted):
        return []
    return [apt.update(name="apt update (packages missing)"), apt.packages(name=name, packages=wanted)]


@deploy("Base preparation")
def prepare(node: Host, seen: HostState) -> None:
    ensure_packages(packages(node), "Base packages", seen)
    changed = [(k, v) for k, v in node.tuning.sysctl.items() if not seen.sysctl_is(k, v, SYSCTL_FILE)]
    for key, value in host.loop(changed):
        server.sysctl(name=f"sysctl {key}", key=key, value=value, persist=True, persist_file=SYSCTL_FILE)
    limit = f"* - nofile {node.tuning.nofile}"
    if not seen.has_only_line(LIMITS_FILE, LIMITS_LINE, limit):
        files.line(name="Open files limit", path=LIMITS_FILE, line=LIMITS_LINE, replace=limit)
    for path, mode in host.loop([(p, m) for p, m in directories(node) if not seen.directory_is(p, m)]):
        files.directory(name=f"Directory {path}", path=path, mode=f"{mode:o}", present=True)
    if node.time_sync == "chrony" and not seen.unit_running("chrony"):
        systemd.service(name="chrony running", service="chrony", running=True, enabled=True)
