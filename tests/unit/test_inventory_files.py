"""Our pyinfra-free inventory reader gives every host the data pyinfra's own CLI reader gives it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra.connectors.ssh import SSHConnector

from aistack.errors import InventoryError
from aistack.inventory import SSH_CONNECTOR_KEYS, load_cluster, read_inventory
from aistack.inventory_files import read_files
from tests.conftest import HOMELAB, PROJECT

SANDBOX = PROJECT / "inventory" / "sandbox.py"


def by_pyinfra(path: Path, project_dir: Path) -> dict:
    return {host.name: (host.data.dict(), list(host.groups)) for host in read_inventory(path, project_dir)}


def by_us(path: Path, project_dir: Path) -> dict:
    return {host.name: (host.data.dict(), host.groups) for host in read_files(path, project_dir)}


@pytest.mark.parametrize("inventory", [HOMELAB, SANDBOX], ids=["homelab", "sandbox"])
def test_the_shipped_inventories_read_the_same(inventory):
    assert by_us(inventory, PROJECT) == by_pyinfra(inventory, PROJECT)


def test_precedence_of_host_group_file_and_all_data_matches_pyinfra(tmp_path):
    # Host data beats group data; a later group beats an earlier one; group_data beside the
    # inventory beats the project's; `all` is the floor; imported names are not data.
    site = tmp_path / "site"
    (site / "group_data").mkdir(parents=True)
    (tmp_path / "group_data").mkdir()
    (site / "lab.py").write_text(
        "gpus = [('a', {'x': 'host', 'ssh_port': 2201}), 'b']\n"
        "jetsons = (['b', 'c'], {'x': 'jetsons-tuple', 'y': 1})\n"
        "_private = ['z']\n"
    )
    (tmp_path / "group_data" / "all.py").write_text("import os\nx = 'all'\nz = 'project-all'\n")
    (tmp_path / "group_data" / "jetsons.py").write_text("y = 'project'\nw = 'project'\n")
    (site / "group_data" / "jetsons.py").write_text("y = 'beside'\n")
    (site / "group_data" / "gpus.py").write_text("__all__ = ['x']\nx = 'gpus'\nhidden = 1\n")
    (site / "group_data" / "lab.py").write_text("v = 'file group'\n")
    ours, theirs = by_us(site / "lab.py", tmp_path), by_pyinfra(site / "lab.py", tmp_path)
    assert ours == theirs
    assert ours["a"][0]["x"] == "host" and ours["b"][0]["x"] == "jetsons-tuple" and ours["b"][0]["y"] == "beside"
    assert "z" not in ours


def test_an_error_in_a_group_data_file_names_that_file(tmp_path):
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "all.py").write_text("services = {\n")
    (tmp_path / "lab.py").write_text("hosts = ['a']\n")
    with pytest.raises(InventoryError) as raised:
        load_cluster(tmp_path / "lab.py", project_dir=tmp_path)
    (problem,) = raised.value.problems
    assert problem.field == str(tmp_path / "group_data" / "all.py")
    assert problem.message.startswith("cannot load: SyntaxError")


def test_the_ssh_keys_are_pyinfras_own():
    assert set(SSH_CONNECTOR_KEYS) == set(SSHConnector.data_meta)


def test_plan_imports_neither_pyinfra_nor_gevent_nor_paramiko():
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    run = subprocess.run([str(Path(sys.executable).parent / "aistack"), "plan", "--inventory", str(HOMELAB), "--json"],
                         capture_output=True, text=True, env=env, cwd=PROJECT)
    assert run.returncode in (0, 10), run.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "aistack.preflight" in imported  # the trace is real
    assert not {name for name in imported if name.split(".")[0] in ("pyinfra", "pyinfra_cli", "gevent", "paramiko")}
