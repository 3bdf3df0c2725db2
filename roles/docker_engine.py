"""Docker engine and compose v2: distro packages, Docker's repository, or JetPack's own engine.

Everything here is runtime-level: a change returns True, and deploy.py then holds model-runtime
changes for the next run unless forced (001: a runtime upgrade and an engine change in one
maintenance window made the failure impossible to attribute).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import apt, server

from aistack.model import Host

from .base import ensure_packages

# compose v2 as the distribution packages it (bookworm's docker-compose is v1: not usable).
DISTRO_PACKAGES = {
    ("debian", 13): ["docker.io", "docker-compose"],
    ("ubuntu", 24): ["docker.io", "docker-compose-v2"],
}
DOCKER_REPO_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin"]
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"


@deploy("Docker engine and compose v2")
def engine(node: Host) -> list:
    """Returns the operations whose change means the container runtime changed."""
    if node.docker_source == "jetpack":
        return []  # JetPack's engine and nvidia runtime are part of the L4T release: never replaced
    if node.docker_source == "docker-repo":
        ops = _docker_repo()
    else:
        distro = host.get_fact(LinuxDistribution)
        key = ((distro.get("name") or "").lower().split()[0], int(distro.get("major") or 0))
        if key not in DISTRO_PACKAGES:
            raise ValueError(f"host {node.name}: no compose v2 package known for {key[0]} {key[1]}; "
                             "set node.docker_source: docker-repo")
        ops = ensure_packages(DISTRO_PACKAGES[key], "Docker engine (distribution)")
    # A shell line, not systemd.service: its facts would be read even when the packages were
    # already there, and a host without systemd (a container) has none to read.
    server.shell(name="Docker started after install",
                 commands=["docker info >/dev/null 2>&1 || systemctl enable --now docker"],
                 _if=lambda: any(op.did_change() for op in ops))
    return ops


def _docker_repo() -> list:
    distro = host.get_fact(LinuxDistribution)
    codename = (distro.get("release_meta") or {}).get("VERSION_CODENAME", "")
    family = (distro.get("name") or "debian").lower().split()[0]
    url = f"https://download.docker.com/linux/{family}"
    key = apt.key(name="Docker's signing key", src=f"{url}/gpg")
    repo = apt.repo(name="Docker's repository", src=f"deb [signed-by={DOCKER_KEYRING}] {url} {codename} stable",
                    filename="docker")
    update = apt.update(name="apt update (Docker's repository)", _if=lambda: repo.did_change())
    return [key, repo, update, apt.packages(name="Docker engine (Docker's repository)", packages=DOCKER_REPO_PACKAGES)]
