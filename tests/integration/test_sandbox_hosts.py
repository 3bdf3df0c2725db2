"""The test hosts themselves: a sandbox kept between checkouts must stay reachable."""

from __future__ import annotations

import docker

from aistack.sandbox import testhosts


def test_a_power_cycled_host_keeps_the_key_it_was_last_given(sandbox):
    """A host made by another checkout is re-keyed by `sandbox up`; a restart must not bring back
    the key it was created with (CI's kept sandbox locked itself out that way)."""
    client = docker.from_env()
    scratch = testhosts.TestHost("scratch", str(testhosts.SUBNET.network_address + 30), testhosts.SSH_PORT_BASE + 30)
    other_checkout = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEz0b4mG6rVJ8L5B0pKJ2s7y0e1yqzT1Bf0Yq2vO6Y8q other-checkout"
    try:
        testhosts._start_host(client, scratch, other_checkout)
        container = testhosts._start_host(client, scratch, testhosts.ensure_key())  # re-keyed, as `up` does
        container.stop(timeout=20)
        container.start()
        testhosts._wait_for_ssh(scratch, timeout_s=45)
        authorised = container.exec_run(["cat", "/root/.ssh/authorized_keys"]).output.decode().strip()
        assert authorised == testhosts.ensure_key()
    finally:
        testhosts._remove_host(client, scratch)
