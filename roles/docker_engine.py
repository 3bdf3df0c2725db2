"""Docker engine and compose v2: distro packages, Docker's repository, or JetPack's own engine.

Everything here is runtime-level: a change returns True, and deploy.py then holds model-runtime
changes for the next run unless forced (001: a runtime upgrade and an engine change in one
maintenance window made the failure impossible to attribute).
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, server

from aistack.host_state import HostState, StateQuery
from aistack.model import Host

from .base import ensure_packages

# compose v2 as the distribution packages it (bookworm's docker-compose is v1: not usable).
DISTRO_PACKAGES = {
    ("debian", 13): ["docker.io", "docker-compose"],
    ("ubuntu", 24): ["docker.io", "docker-compose-v2"],
}
DOCKER_REPO_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-compose-plugin"]
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"


def reads(node: Host) -> StateQuery:
    """Every package this role might ensure (which ones depends on the distribution, read in the
    same command: /etc/os-release is always part of the state)."""
    if node.docker_source == "jetpack":
        return StateQuery()
    names = DOCKER_REPO_PACKAGES if node.docker_source == "docker-repo" else sum(DISTRO_PACKAGES.values(), [])
    return StateQuery(packages=tuple(names))


@deploy("Docker engine and compose v2")
def engine(node: Host, seen: HostState) -> list:
    """Returns the operations whose change means the container runtime changed."""
    if node.docker_source == "jetpack":
        return []  # JetPack's engine and nvidia runtime are part of the L4T release: never replaced
    if node.docker_source == "docker-repo":
        # The repository is there to install the packages: installed, they need nothing from it.
        ops = _docker_repo(seen) if seen.missing_packages(DOCKER_REPO_PACKAGES) else []
    else:
        key = (seen.os_release.get("ID", ""), int((seen.os_release.get("VERSION_ID") or "0").split(".")[0]))
        if key not in DISTRO_PACKAGES:
            raise ValueError(f"host {node.name}: no compose v2 package known for {key[0]} {key[1]}; "
                             "set node.docker_source: docker-repo")
        ops = ensure_packages(DISTRO_PACKAGES[key], "Docker engine (distribution)", seen)
    if not ops:
        return []
    # A shell line, not systemd.service: its facts would be read even when the packages were
    # already there, and a host without systemd (a container) has none to read.
    server.shell(name="Docker started after install",
                 commands=["docker info >/dev/null 2>&1 || systemctl enable --now docker"],
                 _if=lambda: any(op.did_change() for op in ops))
    return ops


def _docker_repo(seen: HostState) -> list:
    codename = seen.os_release.get("VERSION_CODENAME", "")
    family = seen.os_release.get("ID") or "debian"
    url = f"https://download.docker.com/linux/{family}"
    key = apt.key(name="Docker's signing key", src=f"{url}/gpg")
    repo = apt.repo(name="Docker's repository", src=f"deb [signed-by={DOCKER_KEYRING}] {url} {codename} stable",
                    filename="docker")
    update = apt.update(name="apt update (Docker's repository)", _if=lambda: repo.did_change())
    return [key, repo, update, apt.packages(name="Docker engine (Docker's repository)", packages=DOCKER_REPO_PACKAGES)]
