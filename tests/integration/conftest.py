"""The sandbox cluster as a Molecule-style scenario: create, converge, idempotence, edits.

Every test runs the real `pyinfra inventory/sandbox.py deploy.py` against the four test hosts
over SSH, and leaves the cluster converged on the baseline inventory for the next one.
"""

from __future__ import annotations

import pytest

from aistack.inventory import load_cluster
from aistack.sandbox import testhosts
from tests.integration.sandbox_run import SANDBOX, deploy


@pytest.fixture(scope="session")
def sandbox():
    """create: four test hosts, up and reachable (kept between runs: `aistack sandbox down` removes them)."""
    testhosts.up()
    return load_cluster(SANDBOX)


@pytest.fixture(scope="session")
def converged(sandbox):
    """converge on the baseline inventory (the first test checks this run itself)."""
    run = deploy()
    return run


@pytest.fixture
def baseline(converged):
    """Each test leaves the cluster as it found it: converged on the baseline inventory."""
    yield
    restore = deploy()
    assert restore.code == 0 and not restore.failed_hosts, restore.log[-3000:]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.sandbox)
