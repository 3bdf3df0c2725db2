"""Every bad inventory value gets a clear error naming host and field, and the right exit code.

Exit 20: the inventory is invalid or the plan BLOCKs; exit 2: the command line itself is wrong.
Nothing is ever touched (plan only reads), and the message never is a traceback.
"""

import textwrap

import pytest

from tests.conftest import HOMELAB, aistack

E = "services.gemma-edge"
CASES = [
    # (id, --set overrides, exit code, fragments the message must contain)
    ("ctx not a number", [f"{E}.ctx=abc"], 20, ["host edge", f"{E}.ctx", "integer"]),
    ("negative ctx", [f"{E}.ctx=-5"], 20, ["host edge", f"{E}.ctx"]),
    ("zero slots", [f"{E}.parallel=0"], 20, ["host edge", f"{E}.parallel"]),
    ("more slots than ctx", [f"{E}.ctx=256", f"{E}.parallel=512"], 20, ["host edge", "exceeds ctx"]),
    ("unknown KV type", [f"{E}.cache_type_k=q3_0"], 20, ["host edge", f"{E}.cache_type_k"]),
    ("unknown host", [f"{E}.host=nope"], 20, [f"{E}.host", "unknown host 'nope'"]),
    ("unknown model", [f"{E}.model=gemma-99"], 20, ["host edge", f"{E}.model", "unknown model 'gemma-99'"]),
    ("unknown quantisation", [f"{E}.quant=Q9_K"], 20, ["host edge", f"{E}.quant", "no file 'Q9_K'"]),
    ("misspelt field", [f"{E}.ctxx=1"], 20, ["host edge", f"{E}.ctxx", "unknown field"]),
    ("unknown service kind", [f"{E}.kind=tensorrt"], 20, ["host edge", "unknown kind 'tensorrt'"]),
    ("dangling route", ["services.gateway.aliases.vision.0.service=ghost"], 20, ["host main", "aliases.vision.0.service", "unknown service 'ghost'"]),
    ("zero route weight", ["services.gateway.aliases.vision.1.weight=0"], 20, ["host main", "aliases.vision.1.weight"]),
    ("route mixing endpoint kinds", ["services.gateway.aliases.vision.0.service=kokoro"], 20, ["host main", "aliases.vision", "mixes endpoint kinds"]),
    ("duplicate port", ["services.kokoro.port=8001"], 20, ["host edge", "services.kokoro.port", "port 8001", "whisper"]),
    ("bad address", ["hosts.edge.address=not_an_address!"], 20, ["host edge", "hosts.edge.address"]),
    ("jetson without L4T", ["hosts.nx.l4t=null"], 20, ["host nx", "L4T"]),
    ("jetson on x86", ["hosts.orin.arch=x86_64"], 20, ["host orin", "aarch64"]),
    ("zero VRAM", ["hosts.main.accelerators.0.memory_mib=0"], 20, ["host main", "hosts.main.accelerators.0.memory_mib"]),
    ("GPU that does not exist", ["services.chat-main.gpus=[0, 5]"], 20, ["host main", "services.chat-main.gpus", "GPU 5 does not exist"]),
    ("TP size against GPUs", ["services.chat-main.tp_size=4"], 20, ["host main", "services.chat-main.tp_size"]),
    ("SGLang on a Jetson", ["services.chat-main.host=orin", "services.chat-main.gpus=[0]"], 20, ["host orin", "services.chat-main.kind", "x86 GPU host"]),
    ("vectors inside models", ["hosts.edge.storage.vectors=/srv/models/vec"], 20, ["host edge", "hosts.edge.storage", "separate"]),
    ("relative model path", ["hosts.edge.storage.models=models"], 20, ["host edge", "hosts.edge.storage.models", "absolute"]),
    ("broken timeout chain", ["timeouts.nginx_s=60"], 20, ["timeout-chain", "nginx proxy_read_timeout 60s < Open WebUI client timeout 300s"]),
    ("8 workers on SQLite", ["services.webui.database=sqlite"], 20, ["database is locked"]),
    ("q4_0 V cache without flash attention", [f"{E}.flash_attn=off"], 20, ["kv-type", "needs flash attention"]),
    ("vector db is not qdrant", ["services.webui.vector_db=kokoro"], 20, ["host main", "services.webui.vector_db", "not a qdrant"]),
    ("vision lane without mmproj", [f"{E}.mmproj=null"], 20, ["host edge", "needs its mmproj"]),
    ("mmproj on an embedding server", [f"{E}.role=embedding"], 20, ["host edge", "mmproj only applies"]),
    ("NanoOWL off the Jetson", ["services.nanoowl.host=edge"], 20, ["host edge", "services.nanoowl.host", "Jetson"]),
    ("x86 image on arm64", ["services.gemma-orin.image=llamacpp-cuda"], 20, ["host orin", "services.gemma-orin.image", "linux/arm64"]),
    ("JetPack 6 image on JetPack 5", ["services.embed.image=llamacpp-jetson-r36"], 20, ["host nx", "services.embed.image", "r35.4.1"]),
    ("image not in the lock", ["services.qdrant.image=qdrant-nightly"], 20, ["host nx", "services.qdrant.image", "not in the image lock"]),
    ("embeddings alias serving chat", ["services.gateway.aliases.embed.0.service=chat-main"], 20, ["host main", "services.webui.embeddings", "serving embeddings"]),
    ("port range not two numbers", ['hosts.edge.tuning.sysctl={"net.ipv4.ip_local_port_range": "lots"}'], 20,
     ["host edge", "hosts.edge.tuning.sysctl", "'LOW HIGH'"]),
    ("two hosts, one SSH endpoint", ["hosts.nx.ssh.hostname=192.0.2.12"], 20, ["host nx", "same SSH endpoint", "orin"]),
    ("two active lanes on one GPU", ["services.gemma-edge.host=main", "services.gemma-edge.gpus=[1]", "services.gemma-edge.port=8090"], 20, ["one-lane-per-gpu", "main/gpu1", "chat-main, gemma-edge"]),
    # usage errors: the command line, not the inventory
    ("--set without =", ["nonsense"], 2, ["expected dotted.path=value"]),
    ("--set unknown service", ["services.ghost.ctx=1"], 2, ["services.ghost", "no 'ghost'"]),
    ("--set unknown host", ["hosts.rack9.ram_mib=1"], 2, ["hosts.rack9", "no 'rack9'"]),
    ("--set invalid YAML", [f"{E}.ctx=[unclosed"], 2, ["not valid YAML"]),
    ("--set index out of range", ["hosts.main.accelerators.7.memory_mib=1"], 2, ["'7' is not an index of a list of 2"]),
]


@pytest.mark.parametrize(("overrides", "code", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named_and_refused(overrides, code, fragments):
    args = ["plan", "--inventory", str(HOMELAB)]
    for item in overrides:
        args += ["--set", item]
    run = aistack(*args)
    text = run.stdout + run.stderr
    assert run.code == code, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} missing from:\n{text}"
    assert "Traceback" not in text


def test_missing_inventory_file_is_a_usage_error(tmp_path):
    run = aistack("plan", "--inventory", str(tmp_path / "nope.py"))
    assert run.code == 2
    assert "does not exist" in run.stderr


def test_inventory_with_a_python_error_is_named(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("hosts = [\n")
    run = aistack("plan", "--inventory", str(broken))
    assert run.code == 20
    assert "broken.py" in run.stderr and "cannot load" in run.stderr


def test_cluster_data_that_differs_between_hosts_is_refused(tmp_path):
    (tmp_path / "group_data").mkdir()
    inventory = tmp_path / "lab.py"
    inventory.write_text(
        textwrap.dedent(
            """
            a = [("one", {"ssh_hostname": "127.0.0.1", "node": {"platform": "cpu", "ram_mib": 1024}, "timeouts": {"nginx_s": 300}})]
            b = [("two", {"ssh_hostname": "127.0.0.2", "node": {"platform": "cpu", "ram_mib": 1024}, "timeouts": {"nginx_s": 200}})]
            """
        )
    )
    from aistack.errors import InventoryError
    from aistack.inventory import load_cluster

    with pytest.raises(InventoryError) as caught:
        load_cluster(inventory, project_dir=tmp_path)
    assert "host two: timeouts: differs from host one" in str(caught.value)
