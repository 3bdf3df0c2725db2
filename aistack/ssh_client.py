"""An SSH connection from a host's inventory settings, checking host keys the way pyinfra does.

`aistack verify` and the sandbox smoke test reach hosts with the inventory's own SSH settings;
there is no second host list. A changed host key is always refused (paramiko raises on a
mismatch whatever the policy); the policy only decides what happens to a host never seen.
"""

from __future__ import annotations

from pathlib import Path

import paramiko

from .model.hosts import Ssh

# OpenSSH's StrictHostKeyChecking, for a key that is not in known_hosts yet.
UNKNOWN_KEY_POLICY = {
    "yes": paramiko.RejectPolicy,
    "ask": paramiko.RejectPolicy,  # nobody to ask in a verification run
    "accept-new": paramiko.AutoAddPolicy,
    "no": paramiko.AutoAddPolicy,
}


def connect(ssh: Ssh, timeout: float = 10) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    known_hosts = Path(ssh.known_hosts_file or "~/.ssh/known_hosts").expanduser()
    if known_hosts.exists():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(UNKNOWN_KEY_POLICY[ssh.strict_host_key_checking]())
    client.connect(ssh.hostname, port=ssh.port, username=ssh.user, timeout=timeout,
                   key_filename=str(Path(ssh.key).expanduser()) if ssh.key else None,
                   allow_agent=ssh.key is None, look_for_keys=ssh.key is None)
    return client
