"""`pyinfra -y INVENTORY deploy.py` validates and preflights before it dials a host: a refusal
prints its reasons and no SSH connection is attempted.

The hosts are loopback ports this test listens on and counts connections to; the run that
passes the gate is the control: it does dial them.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HOMELAB_ALLOW_ALL, PROJECT

PYINFRA = Path(sys.executable).parent / "pyinfra"


@pytest.fixture
def listeners():
    socks = []
    for _ in range(4):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        socks.append(s)
    yield socks
    for s in socks:
        s.close()


def connections(socks) -> int:
    count = 0
    for s in socks:
        while True:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                break
            conn.close()
            count += 1
    return count


def loopback_inventory(tmp_path: Path, socks) -> Path:
    """The homelab's hosts, each at one of the listening loopback ports."""
    text = (PROJECT / "inventory" / "homelab.py").read_text()
    for i, s in enumerate(socks):
        text = text.replace(f'"ssh_hostname": "192.0.2.1{i}"', f'"ssh_hostname": "127.0.0.1", "ssh_port": {s.getsockname()[1]}')
    path = tmp_path / "homelab.py"  # named as the shipped one: the same group data and cluster
    path.write_text(text)
    return path


def deploy(inventory: Path, *data: str) -> subprocess.CompletedProcess:
    args = [str(PYINFRA), "-y", str(inventory), "deploy.py"]
    for item in data:
        args += ["--data", item]
    return subprocess.run(args, cwd=PROJECT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("data", "code", "fragments"), [
    (['aistack_set=["timeouts.nginx_s=60"]'], 20,
     ["REFUSED timeout-chain", "nginx proxy_read_timeout 60s"]),
    (["aistack_set=[not json"], 2, ["REFUSED usage: --data aistack_set: not a JSON list"]),
    (["aistack_model_lock=/nonexistent/models.yaml"], 20, ["REFUSED /nonexistent/models.yaml: cannot read the model lock"]),
    (['aistack_set=["hosts.main.storage.state=/tmp"]'], 20, ["REFUSED host main: hosts.main.storage.state: /tmp is a system directory"]),
], ids=["preflight BLOCK", "--data not JSON", "model lock missing", "system directory"])
def test_a_refusal_dials_no_host(tmp_path, listeners, data, code, fragments):
    run = deploy(loopback_inventory(tmp_path, listeners), *data)
    text = run.stdout + run.stderr
    assert run.returncode == code, text
    for fragment in fragments:
        assert fragment in text, text
    assert "Traceback" not in text and "Connected" not in text and "Could not connect" not in text
    assert connections(listeners) == 0


def test_a_rollout_that_passes_the_gate_dials_its_hosts(tmp_path, listeners):
    """The control: the same inventory, nothing refused, reaches the listeners."""
    run = deploy(loopback_inventory(tmp_path, listeners), f"aistack_set={json.dumps(HOMELAB_ALLOW_ALL)}")
    text = run.stdout + run.stderr
    assert "REFUSED" not in text, text
    assert re.search(r"Could not connect|Error|failed", text), text
    assert connections(listeners) == 4
