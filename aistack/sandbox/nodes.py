"""The sandbox's four hosts as the inventory sees them: names, addresses, SSH ports and key.

Kept apart from ``testhosts`` (which starts them, with the Docker SDK): ``inventory/sandbox.py``
reads this table on every pyinfra run, and a no-op re-apply should not import a Docker client.
"""

from __future__ import annotations

import ipaddress
import os
import resource
from dataclasses import dataclass

from ..model import Tuning
from ..model.locks import PROJECT_DIR

STATE_DIR = PROJECT_DIR / ".sandbox"
KEY_FILE = STATE_DIR / "id_ed25519"
KNOWN_HOSTS = STATE_DIR / "known_hosts"
# A private /24 unlikely to be in use; move it with AISTACK_SANDBOX_SUBNET if it is.
SUBNET = ipaddress.ip_network(os.environ.get("AISTACK_SANDBOX_SUBNET", "172.29.77.0/24"))
SSH_PORT_BASE = int(os.environ.get("AISTACK_SANDBOX_SSH_PORT", "2221"))
# The homelab's node names, in its address order (192.0.2.10-13 there).
NODES = ("main", "edge", "orin", "nx")


@dataclass(frozen=True)
class TestHost:
    name: str
    address: str  # on the sandbox bridge: where its services bind and peers reach it
    ssh_port: int  # on 127.0.0.1

    @property
    def container(self) -> str:
        return container_name(self.name)


def container_name(node: str) -> str:
    return f"aistack-sandbox-{node}"


def hosts() -> list[TestHost]:
    base = SUBNET.network_address
    return [TestHost(name, str(base + 10 + i), SSH_PORT_BASE + i) for i, name in enumerate(NODES)]


def inventory_hosts() -> list[tuple[str, dict]]:
    """pyinfra host entries: real SSH to 127.0.0.1 with the sandbox key and pinned host keys."""
    return [
        (
            h.name,
            {
                "ssh_hostname": "127.0.0.1",
                "ssh_port": h.ssh_port,
                "ssh_user": "root",
                "ssh_key": str(KEY_FILE),
                "ssh_known_hosts_file": str(KNOWN_HOSTS),
                "ssh_strict_host_key_checking": "yes",
                "node": {"platform": "cpu", "address": h.address, "ram_mib": 4096, "time_sync": "host-clock",
                         "tuning": {"nofile": nofile_ceiling()}},
            },
        )
        for h in hosts()
    ]


def nofile_ceiling(wanted: int = Tuning().nofile) -> int:
    """A test host cannot raise this machine's hard open-files limit: ask for at most that."""
    return min(wanted, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
