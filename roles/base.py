"""Base preparation: packages, kernel and descriptor limits, directories, time sync."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server, systemd

from aistack.model import Host

PACKAGES = ["ca-certificates", "curl", "python3", "iproute2", "procps"]
SYSCTL_FILE = "/etc/sysctl.d/90-aistack.conf"
LIMITS_FILE = "/etc/security/limits.d/90-aistack.conf"


def ensure_packages(wanted: list[str], name: str) -> list:
    """apt-get update only when something is missing, so a prepared host stays a no-op."""
    installed = host.get_fact(DebPackages) or {}
    if all(p in installed for p in wanted):
        return [apt.packages(name=name, packages=wanted)]
    return [apt.update(name="apt update (packages missing)"), apt.packages(name=name, packages=wanted)]


@deploy("Base preparation")
def prepare(node: Host) -> None:
    ensure_packages(PACKAGES + (["chrony"] if node.time_sync == "chrony" else []), "Base packages")
    for key, value in host.loop(node.tuning.sysctl.items()):
        server.sysctl(name=f"sysctl {key}", key=key, value=value, persist=True, persist_file=SYSCTL_FILE)
    files.line(name="Open files limit", path=LIMITS_FILE, line=r"^\* - nofile .*", replace=f"* - nofile {node.tuning.nofile}")
    storage = node.storage
    directories = ((storage.state, "755"), (f"{storage.state}/stacks", "755"), (f"{storage.state}/secrets", "700"),
                   (storage.models, "755"), (storage.vectors, "755"))
    for path, mode in host.loop(directories):
        files.directory(name=f"Directory {path}", path=path, mode=mode, present=True)
    if node.time_sync == "chrony":
        systemd.service(name="chrony running", service="chrony", running=True, enabled=True)
