"""The loader: pyinfra's own inventory reading, cluster data shared by all hosts, site catalogue."""

import subprocess
import sys
from pathlib import Path

from aistack.inventory import load_cluster
from tests.conftest import HOMELAB

SITE_MODEL = {
    "kind": "llm",
    "source": ["site measurement"],
    "arch": {"layers": 16, "kv_heads": 8, "head_dim": 64, "max_context": 8192},
    "files": {"Q8_0": {"file": "tiny.gguf", "bytes": 104857600}},
}


GPU_BOX = {"platform": "x86-gpu", "ram_mib": 16384, "accelerators": [{"model": "test card", "memory_mib": 8192}]}


def write_inventory(tmp_path: Path, services: dict, catalogue: dict | None = None, node: dict = GPU_BOX) -> Path:
    (tmp_path / "group_data").mkdir()
    (tmp_path / "group_data" / "all.py").write_text(f"services = {services!r}\ncatalogue = {catalogue or {}!r}\n")
    inventory = tmp_path / "lab.py"
    host = {"ssh_hostname": "127.0.0.1", "ssh_port": 2222, "node": node}
    inventory.write_text(f"boxes = [('box', {host!r})]\n")
    return inventory


def test_a_site_adds_a_model_in_its_own_data(tmp_path):
    services = {"chat": {"kind": "llamacpp", "host": "box", "model": "site-tiny", "quant": "Q8_0", "ctx": 8192, "parallel": 2}}
    cluster = load_cluster(write_inventory(tmp_path, services, {"site-tiny": SITE_MODEL}), project_dir=tmp_path)
    assert cluster.models["site-tiny"].arch.layers == 16
    assert cluster.hosts["box"].ssh.port == 2222 and cluster.hosts["box"].address == "127.0.0.1"


def test_gpu_services_run_on_the_cpu_where_a_host_has_no_gpu(tmp_path):
    services = {"chat": {"kind": "llamacpp", "host": "box", "model": "site-tiny", "quant": "Q8_0", "ctx": 8192, "parallel": 2}}
    inventory = write_inventory(tmp_path, services, {"site-tiny": SITE_MODEL}, node={"platform": "cpu", "ram_mib": 16384})
    cluster = load_cluster(inventory, project_dir=tmp_path)
    assert cluster.services["chat"].gpus == []


def test_homelab_hosts_and_placement():
    cluster = load_cluster(HOMELAB)
    assert sorted(cluster.hosts) == ["edge", "main", "nx", "orin"]
    assert cluster.hosts["orin"].l4t == "r36.4.0" and cluster.hosts["nx"].jetpack_major == 5
    placed = {name: s.host for name, s in cluster.services.items()}
    assert placed["gemma-orin"] == "orin" and placed["qdrant"] == "nx" and placed["gemma-edge"] == "edge"


def test_console_script_exit_codes():
    """The installed `aistack` entry point, as a user runs it."""
    exe = Path(sys.executable).parent / "aistack"
    ok = subprocess.run([str(exe), "plan", "--inventory", str(HOMELAB), "--json"], capture_output=True, text=True)
    assert ok.returncode in (0, 10)
    blocked = subprocess.run(
        [str(exe), "plan", "--inventory", str(HOMELAB), "--set", "services.gemma-edge.parallel=8", "--set", "services.gemma-edge.ctx=8192"],
        capture_output=True, text=True,
    )
    assert blocked.returncode == 20 and "per-slot context 1,024" in blocked.stdout
    usage = subprocess.run([str(exe), "plan", "--bogus"], capture_output=True, text=True)
    assert usage.returncode == 2
