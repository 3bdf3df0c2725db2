"""NVIDIA container toolkit on x86 GPU hosts. The driver is checked, never installed."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import apt, server, systemd

from aistack.model import Host, Platform

TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container"


@deploy("NVIDIA container toolkit")
def toolkit(node: Host) -> list:
    """Returns the runtime-level operations (their change holds model-runtime changes, 001)."""
    if node.platform is not Platform.X86_GPU:
        return []
    driver = host.get_fact(Command, command="nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null || true")
    if not driver:
        raise ValueError(f"host {node.name}: no NVIDIA driver answers nvidia-smi; install the driver yourself, "
                         "aistack never installs or upgrades it")
    key = apt.key(name="NVIDIA toolkit signing key", src=f"{TOOLKIT_REPO}/gpgkey")
    repo = apt.repo(name="NVIDIA toolkit repository", filename="nvidia-container-toolkit",
                    src=f"deb {TOOLKIT_REPO}/stable/deb/$(ARCH) /")
    update = apt.update(name="apt update (NVIDIA repository)", _if=lambda: repo.did_change())
    package = apt.packages(name="nvidia-container-toolkit", packages=["nvidia-container-toolkit"])
    configure = server.shell(name="Docker runtime: nvidia", commands=["nvidia-ctk runtime configure --runtime=docker"],
                             _if=lambda: package.did_change())
    systemd.service(name="Docker restarted for the nvidia runtime", service="docker", restarted=True,
                    _if=lambda: configure.did_change())
    return [key, repo, update, package, configure]
