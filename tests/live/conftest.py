"""The live suite: every expectation of the model, checked on its host over the inventory's SSH.

    pytest tests/live --inventory inventory/sandbox.py [--verify-host edge]
    aistack verify --inventory inventory/sandbox.py [--host edge]     (same suite, a report)

Each test takes one expectation kind as its parameter; one parameter is one report row
(host, check, expected, found). Hosts are reached with testinfra's paramiko backend on the
inventory's own SSH settings, host keys checked as pyinfra checks them.
"""

from __future__ import annotations

import json
from pathlib import Path

import paramiko
import pytest
import testinfra.host
from testinfra.backend.paramiko import ParamikoBackend

from aistack.inventory import read_inventory
from aistack.model import Cluster
from aistack.rollout import RolloutRefused, prepare
from aistack.ssh_client import connect
from aistack.verify import expected as ex

# test parameter name -> the expectation kind it checks
KINDS = {
    "runtime": ex.Runtime,
    "container": ex.ContainerUp,
    "running": ex.OnlyPlacedRunning,
    "stacks": ex.OnlyPlacedStacks,
    "listening": ex.Listening,
    "rendered": ex.RenderedFile,
    "model_file": ex.ModelFile,
    "secret": ex.SecretFile,
    "sysctl": ex.Sysctl,
    "open_files": ex.OpenFiles,
    "gpu": ex.GpuVisible,
    "engine": ex.EngineSettings,
    "nginx": ex.NginxTimeouts,
    "alias": ex.AliasAnswers,
    "ready": ex.ServiceReady,
}
EXPECTED = pytest.StashKey[ex.Expected]()
CLUSTER = pytest.StashKey[Cluster]()


def pytest_configure(config):
    inventory = Path(config.getoption("inventory"))
    try:
        rollout = prepare(read_inventory(inventory), config.getoption("verify_set"), name=inventory.stem)
    except RolloutRefused as exc:
        raise pytest.UsageError(f"{inventory}: the model is refused, so there is nothing to verify against:\n{exc}") from None
    unknown = set(config.getoption("verify_host")) - set(rollout.cluster.hosts)
    if unknown:
        raise pytest.UsageError(f"--host {', '.join(sorted(unknown))}: not in {inventory} ({', '.join(rollout.cluster.hosts)})")
    config.stash[CLUSTER] = rollout.cluster
    config.stash[EXPECTED] = ex.expectations(rollout, config.getoption("verify_host") or None)


def pytest_generate_tests(metafunc):
    for name, kind in KINDS.items():
        if name in metafunc.fixturenames:
            items = metafunc.config.stash[EXPECTED].of(kind)
            metafunc.parametrize(name, items, ids=[f"{e.host}: {e.label}" for e in items])


def pytest_collection_modifyitems(config, items):
    """A kind this cluster has none of (no models on a host, no engine) is not a row at all."""
    empty = [item for item in items if item.name.endswith("[NOTSET]")]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]


@pytest.fixture(autouse=True)
def _row(request, record_property):
    """Name the report row: the host and what is checked."""
    for value in getattr(getattr(request.node, "callspec", None), "params", {}).values():
        if isinstance(value, ex.Expectation):
            record_property("host", value.host)
            record_property("check", value.label)


class Hosts:
    """testinfra hosts by inventory name, connected on first use; a failed connection fails every row of its host."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.connected: dict[str, testinfra.host.Host] = {}
        self.failed: dict[str, str] = {}

    def __call__(self, name: str) -> testinfra.host.Host:
        if name in self.failed:
            pytest.fail(self.failed[name], pytrace=False)
        if name not in self.connected:
            ssh = self.cluster.hosts[name].ssh
            try:
                client = connect(ssh)
            except (OSError, paramiko.SSHException) as exc:  # any SSH failure is this host's finding, reported on each of its rows
                self.failed[name] = f"{name}: ssh {ssh.user}@{ssh.hostname}:{ssh.port}: {exc}"
                pytest.fail(self.failed[name], pytrace=False)
            backend = ParamikoBackend(f"{ssh.user}@{ssh.hostname}:{ssh.port}")
            backend.__dict__["client"] = client  # our connection (host keys checked), not testinfra's WarningPolicy one
            self.connected[name] = testinfra.host.Host(backend)
            backend.set_host(self.connected[name])
        return self.connected[name]

    def close(self) -> None:
        for host in self.connected.values():
            host.backend.client.close()


@pytest.fixture(scope="session")
def on(pytestconfig):
    hosts = Hosts(pytestconfig.stash[CLUSTER])
    yield hosts
    hosts.close()


@pytest.fixture
def compare(record_property):
    """Assert found == expected and put both in the report row."""

    def compare(found, expected, ok: bool | None = None) -> None:
        record_property("expected", _show(expected))
        record_property("found", _show(found))
        assert (found == expected) if ok is None else ok, f"expected {_show(expected)}, found {_show(found)}"

    return compare


def _show(value) -> str:
    if isinstance(value, (set, frozenset)):
        return ", ".join(sorted(map(str, value))) or "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
