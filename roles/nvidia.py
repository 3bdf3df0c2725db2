"""NVIDIA container toolkit on x86 GPU hosts. The driver is checked, never installed."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, server, systemd

from aistack.host_state import HostState, StateQuery
from aistack.model import Host, Platform

TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container"
TOOLKIT = "nvidia-container-toolkit"


def reads(node: Host) -> StateQuery:
    if node.platform is not Platform.X86_GPU:
        return StateQuery()
    return StateQuery(gpu_driver=True, packages=(TOOLKIT,))


@deploy("NVIDIA container toolkit")
def toolkit(node: Host, seen: HostState) -> list:
    """Returns the runtime-level operations (their change holds model-runtime changes, 001)."""
    if node.platform is not Platform.X86_GPU:
        return []
    if not seen.gpu_driver:
        raise ValueError(f"host {node.name}: no NVIDIA driver answers nvidia-smi; install the driver yourself, "
                         "aistack never installs or upgrades it")
    if not seen.missing_packages([TOOLKIT]):
        return []  # installed and configured when it was installed (below): nothing to read again
    key = apt.key(name="NVIDIA toolkit signing key", src=f"{TOOLKIT_REPO}/gpgkey")
    repo = apt.repo(name="NVIDIA toolkit repository", filename=TOOLKIT, src=f"deb {TOOLKIT_REPO}/stable/deb/$(ARCH) /")
    update = apt.update(name="apt update (NVIDIA repository)", _if=lambda: repo.did_change())
    package = apt.packages(name=TOOLKIT, packages=[TOOLKIT])
    configure = server.shell(name="Docker runtime: nvidia", commands=["nvidia-ctk runtime configure --runtime=docker"],
                             _if=lambda: package.did_change())
    systemd.service(name="Docker restarted for the nvidia runtime", service="docker", restarted=True,
                    _if=lambda: configure.did_change())
    return [key, repo, update, package, configure]
