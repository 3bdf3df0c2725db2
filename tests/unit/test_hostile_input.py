"""Hostile and careless input, table-driven: nothing from the inventory reaches a host, a shell or
a path unvalidated, and each refusal is one clear message naming the host or service and field.

Every case runs the real `aistack plan` on the homelab inventory (in process) with one bad
value, and asserts the exit code (20 invalid, 2 usage), that no traceback appears, and that the
message names where the value is. File cases write a real inventory, group data or lane record.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from aistack import lanes as lanes_module
from aistack.model.types import check_data_root, check_relative, check_repo, under
from aistack.models_lock import LockedFile, host_path, load_model_lock
from aistack.operations import fetch_commands
from aistack.errors import InventoryError
from aistack.render import render_cluster
from tests.conftest import HOMELAB, PROJECT, aistack

E, W, G = "services.gemma-edge", "services.webui", "services.gateway"

# Payloads that would do harm if they reached a shell or a path.
SHELL = ["$(touch /tmp/pwned)", "`id`", "a;rm -rf /", "x && reboot", "a|b", "a\nb", "a b"]
TRAVERSAL = ["../../etc/cron.d/x", "../x", "a/../../b", "/etc/passwd", "./x", "a//b"]
NEWLINE = ["edge\n", "main\n", "chat\n"]


def case(id_: str, sets: list[str], fragments: list[str], code: int = 20):
    return pytest.param(sets, code, fragments, id=id_)


def field_cases(field: str, values: list[str], fragments: list[str], label: str) -> list:
    return [case(f"{label} {v!r}", [f"{field}={v}" if "\n" not in v else f"{field}={v!r}"], fragments)
            for v in values]


PATHS = [
    *[case(f"storage.{root} = system dir {d}", [f"hosts.main.storage.{root}={d}"], ["host main", f"hosts.main.storage.{root}", "system director"])
      for root in ("state", "models", "vectors") for d in ("/", "/tmp", "/etc", "/usr", "/var", "/root", "/home", "/srv")],
    *[case(f"storage.state inside {d}", [f"hosts.edge.storage.state={d}/aistack"], ["host edge", "hosts.edge.storage.state", "inside a system directory"])
      for d in ("/etc", "/usr", "/boot", "/proc", "/sys", "/dev")],
    *[case(f"storage.models = {p!r}", [f"hosts.orin.storage.models={p}"], ["host orin", "hosts.orin.storage.models"])
      for p in ("/srv/$(id)", "/srv/`id`", "/srv/a;b", "/srv/a b", "/srv/../etc", "/srv/./x", "/srv//x", "/srv/x/", "models", "~/models", "")],
    case("state holds the models", ["hosts.nx.storage.models=/srv/aistack/models"], ["host nx", "hosts.nx.storage", "separate"]),
    case("vectors holds the state", ["hosts.nx.storage.state=/srv/vectors/state"], ["host nx", "hosts.nx.storage", "separate"]),
    case("path of 2000 characters", ["hosts.main.storage.state=/" + "a" * 2000], ["host main", "hosts.main.storage.state"]),
]

NAMES = [
    *[case(f"catalogue name {v!r}", [f'catalogue={{"{v}": {{"kind": "tts"}}}}'], ["catalogue"])
      for v in ("../evil", "a/b", ".hidden", "..", "$(id)", "a b")],
    *[case(f"catalogue hf_repo {v!r}", [f'catalogue={{"x": {{"kind": "tts", "hf_repo": "{v}"}}}}'], ["catalogue.x.hf_repo"])
      for v in ("../../etc", "a/b/c", "org/..", "org/$(id)", "/abs/repo")],
    *[case(f"catalogue file {v!r}", [f'catalogue={{"x": {{"kind": "tts", "files": {{"f": {{"file": "{v}"}}}}}}}}'], ["catalogue.x.files.f"])
      for v in (*TRAVERSAL, "$(id).bin", "a b.gguf")],
    *[case(f"catalogue revision {v!r}", [f'catalogue={{"x": {{"kind": "tts", "files": {{"f": {{"file": "a.bin", "revision": "{v}"}}}}}}}}'],
           ["catalogue.x.files.f.revision"]) for v in ("../main", "a/b", "$(id)")],
    case("catalogue sha256 with newline", ['catalogue={"x": {"kind": "tts", "files": {"f": {"file": "a", "sha256": "' + "a" * 64 + '\\n"}}}}'],
         ["catalogue.x.files.f.sha256"]),
    *[case(f"host of a service {v!r}", [f"{E}.host={v}"], [f"{E}.host"]) for v in ("Edge", "ed ge", "../edge", "$(id)", "")],
    *[case(f"model of a service {v!r}", [f"{E}.model={v}"], ["host edge", f"{E}.model"]) for v in ("../gemma", "a/b", "$(id)", "")],
    *[case(f"quant {v!r}", [f"{E}.quant={v}"], ["host edge", f"{E}.quant"]) for v in ("../Q4", "Q4 K", "$(id)")],
    *[case(f"image key {v!r}", [f"{E}.image={v}"], ["host edge", f"{E}.image"]) for v in ("../x", "X", "a b", "a;b")],
    *[case(f"served_name {v!r}", [f"{E}.served_name={v}"], ["host edge", f"{E}.served_name"]) for v in ("a b", "$(id)", "")],
    *[case(f"alias name {v!r}", [f'{G}.aliases={{"{v}": [{{"service": "chat-main"}}]}}'], ["host main", f"{G}.aliases"])
      for v in ("", " ", "a b", "$(x)", "-x")],
    case("alias with no routes", [f'{G}.aliases.chat=[]'], ["host main", f"{G}.aliases", "no routes"]),
    case("route to a path", [f"{G}.aliases.chat.0.service=../x"], ["host main", f"{G}.aliases.chat.0.service"]),
    *[case(f"voice {v!r}", [f"services.kokoro.voice={v}"], ["host edge", "services.kokoro.voice"]) for v in ("a b", "$(id)", "../v")],
    case("cluster name too long for a file", ["name=" + "a" * 300], ["name"]),
    case("cluster name with a slash", ["name=../x"], ["name"]),
    case("ssh user with a space", ["hosts.main.ssh.user=root me"], ["host main", "hosts.main.ssh.user"]),
    case("ssh user injection", ["hosts.main.ssh.user=$(id)"], ["host main", "hosts.main.ssh.user"]),
    case("accelerator model with markup", ["hosts.main.accelerators.0.model=[/]"], ["host main", "hosts.main.accelerators.0.model"]),
    case("not_started with a newline", [f"{E}.not_started=" + json.dumps("held\nnow")], ["host edge", f"{E}.not_started"]),
]

# A trailing newline passes a `$` anchor: every pattern is anchored with \Z.
ANCHORS = [
    # json.dumps writes "edge\n", which YAML reads back with the newline
    case(f"trailing newline in {field}", [f"{field}={json.dumps(value)}"], [field])
    for field, value in (
        ("hosts.main.address", "192.0.2.10\n"), ("hosts.main.ssh.hostname", "main.lan\n"), ("hosts.orin.l4t", "r36.4.0\n"),
        ("hosts.main.accelerators.0.compute_capability", "12.0\n"), (f"{E}.host", "edge\n"), ("name", "homelab\n"),
        (f"{E}.bind", "127.0.0.1\n"), ("monitoring.bind", "192.0.2.10\n"), ("services.qdrant.image", "qdrant\n"),
        (f"{W}.vector_db", "qdrant\n"), ("hosts.main.ssh.user", "root\n"),
    )
]

ADDRESSES = [
    *[case(f"address {v!r}", [f"hosts.edge.address={v}"], ["host edge", "hosts.edge.address"])
      for v in ("999.1.1.1", "1.2.3", "-host", "host_name", "a..b", "$(id)", "a b", "x" * 300, "")],
    *[case(f"bind {v!r}", [f"{E}.bind={v}"], ["host edge", f"{E}.bind"]) for v in ("0.0.0.0.0", "localhost;id", "'*'")],
    case("ssh hostname injection", ["hosts.nx.ssh.hostname=nx;id"], ["host nx", "hosts.nx.ssh.hostname"]),
    case("monitoring bind", ["monitoring.bind=::1::1"], ["monitoring.bind"]),
]

STRICT = [
    *[case(f"bool for int {f}", [f"{f}=true"], [f.split(".")[-1], "integer"]) for f in
      (f"{E}.ctx", f"{E}.parallel", f"{E}.port", "hosts.main.ram_mib", "timeouts.nginx_s", f"{G}.workers", "services.whisper.instances")],
    *[case(f"int for bool {f}", [f"{f}=1"], [f.split(".")[-1], "boolean"]) for f in
      (f"{E}.active", f"{E}.metrics", "monitoring.enabled", "services.proxy.proxy_buffering")],
    *[case(f"text for int {f}", [f"{f}='8192'"], [f.split(".")[-1], "integer"]) for f in (f"{E}.ctx", "hosts.edge.ram_mib")],
    case("float for int", [f"{E}.ctx=8192.5"], [f"{E}.ctx", "integer"]),
    case("list for text", [f"{E}.model=[a]"], [f"{E}.model", "string"]),
    case("dict for list", [f"{E}.gpus={{a: 1}}"], [f"{E}.gpus", "list"]),
    case("int for text", ["hosts.main.ssh.user=1000"], ["hosts.main.ssh.user", "string"]),
    case("bool GPU index", [f"{E}.gpus=[true]"], [f"{E}.gpus"]),
]

BOUNDS = [
    *[case(f"{f} = {v}", [f"{f}={v}"], [f]) for f, v in (
        ("timeouts.nginx_s", 10**9), ("timeouts.gateway_s", 0), ("timeouts.http_pool", 10**7),
        (f"{E}.port", 70000), (f"{E}.port", 0), (f"{E}.port", -1), (f"{E}.ctx", 10**9), (f"{E}.parallel", 100000),
        ("hosts.main.ram_mib", 10**12), ("hosts.main.accelerators.0.memory_mib", 10**12), (f"{E}.max_image_px", 10**6),
        ("hosts.main.tuning.nofile", 10**9), ("hosts.main.tuning.nofile", 10), (f"{G}.workers", 100000),
        (f"{G}.num_retries", 1000), ("monitoring.retention_days", 10**6), ("monitoring.prometheus_port", 70000),
        (f"{E}.gpus", "[1000]"), (f"{G}.aliases.vision.0.weight", 10**6), ("services.whisper.instances", 1000),
    )],
    *[case(f"system port {p} for {f}", [f"{f}={p}"], [f, "system port"]) for f, p in (
        (f"{E}.port", 22), ("services.qdrant.port", 25), (f"{G}.port", 443), (f"{W}.port", 80), (f"{W}.postgres_port", 1))],
]

UNKNOWN = [
    *[case(f"--set invents {what}", [item], [fragment], code=2) for what, item, fragment in (
        ("a host", "hosts.rack9.ram_mib=1", "no 'rack9'"), ("a service", "services.ghost.port=9000", "no 'ghost'"),
        ("a host (nested)", "hosts.ghost.storage.state=/srv/x", "no 'ghost'"),
    )],
    *[case(f"unknown field {f}", [f"{f}=1"], [f, "unknown field"]) for f in (
        "hosts.main.ssh.hostnam", "hosts.main.ramm_mib", f"{E}.ctxx", "timeouts.nginx", "monitoring.enabledd", "hosts.main.storage.model")],
    case("unknown check in force_checks", ['force_checks=["memroy"]'], ["force_checks", "no preflight check 'memroy'", "did you mean 'memory'"]),
    case("unknown check, nothing close", ['force_checks=["zzz"]'], ["force_checks", "no preflight check 'zzz'"]),
    case("unknown service kind", [f"{E}.kind=tensorrt"], ["host edge", "unknown kind 'tensorrt'"]),
]

DISTRIBUTED = [
    case(f"distributed: {what}", [f"distributed={lane}"], fragments) for what, lane, fragments in (
        ("head is its own worker", '{"head": "main", "workers": ["main"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10}}', ["distributed", "also listed as a worker"]),
        ("worker twice", '{"head": "main", "workers": ["edge", "edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 3, '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10}}', ["distributed", "listed twice"]),
        ("MTU zero", '{"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10, "mtu": {"main": 0}}}', ["distributed.interconnect.mtu", "MTU 0"]),
        ("MTU negative", '{"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10, "mtu": {"edge": -9000}}}', ["distributed.interconnect.mtu"]),
        ("NIC injection", '{"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, "nic": "eth0;id", '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10}}', ["distributed.nic"]),
        ("model path", '{"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, '
         '"model": "../x", "quant": "mxfp4", "interconnect": {"gbps": 10}}', ["distributed.model"]),
        ("unknown key", '{"head": "main", "workerz": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10}}', ["distributed.workerz", "unknown field"]),
        ("Ray port system", '{"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2, "ray_port": 22, '
         '"model": "gpt-oss-20b", "quant": "mxfp4", "interconnect": {"gbps": 10}}', ["distributed.ray_port"]),
    )
]

USAGE = [
    case("--set without =", ["nonsense"], ["expected dotted.path=value"], code=2),
    case("--set empty path", ["=1"], ["expected dotted.path=value"], code=2),
    case("--set empty segment", ["hosts..ram_mib=1"], ["empty segment"], code=2),
    case("--set nested 5000 deep", [f"{E}.ctx=" + "[" * 5000 + "]" * 5000], ["nested more than"], code=2),
    case("--set bad YAML", [f"{E}.ctx={{a: [}}"], ["not valid YAML"], code=2),
    case("--set index past the end", ["hosts.main.accelerators.9.memory_mib=1"], ["not an index"], code=2),
    case("--set into a value", [f"{E}.quant.deeper=1"], ["is a value"], code=2),
]

ALL = PATHS + NAMES + ANCHORS + ADDRESSES + STRICT + BOUNDS + UNKNOWN + DISTRIBUTED + USAGE


def assert_clean(run, code: int, fragments: list[str]) -> None:
    text = run.stdout + run.stderr
    assert run.code == code, text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


@pytest.mark.parametrize(("sets", "code", "fragments"), ALL)
def test_hostile_value_is_refused_by_name(sets, code, fragments):
    args = ["plan", "--inventory", str(HOMELAB)]
    for item in sets:
        args += ["--set", item]
    assert_clean(aistack(*args), code, fragments)


def test_the_table_is_large_enough():
    assert len(ALL) + len(FILES) >= 150


# ---- files: inventories, group data, lane records, model locks ------------------------------

HOSTS = (PROJECT / "inventory" / "homelab.py").read_text()


def write_inventory(tmp: Path, inventory: str, group_data: str | None = None) -> Path:
    path = tmp / "site.py"
    path.write_text(inventory)
    if group_data is not None:
        (tmp / "group_data").mkdir(exist_ok=True)
        (tmp / "group_data" / "all.py").write_text(textwrap.dedent(group_data))
    return path


FILES = [
    pytest.param(HOSTS + "\nraise RuntimeError('boom')\n", None, ["site.py", "cannot load", "RuntimeError"], id="inventory raises"),
    pytest.param("main = [1, 2\n", None, ["site.py", "cannot load"], id="inventory is not Python"),
    pytest.param("\x00\x01\x02binary", None, ["site.py", "cannot load"], id="inventory is binary"),
    pytest.param("nothing = 1\n", None, ["hosts", "no hosts"], id="inventory with no hosts"),
    pytest.param(HOSTS, "timeout = {'nginx_s': 600}\n", ["timeout", "unknown data key", "did you mean 'timeouts'"], id="misspelt group key timeout"),
    pytest.param(HOSTS, "distributd = {}\n", ["distributd", "did you mean 'distributed'"], id="misspelt group key distributd"),
    pytest.param(HOSTS, "import os\nos.system\nraise ValueError('in group data')\n", ["cannot load", "ValueError"], id="group data raises"),
    pytest.param(HOSTS.replace('"ssh_user": "root",', '"ssh_user": "root", "ssh_hostnam": "x",', 1), None,
                 ["host main", "ssh_hostnam", "did you mean 'ssh_hostname'"], id="misspelt host key"),
    pytest.param(HOSTS.replace('"node": {', '"nodes": {}, "node": {', 1), None, ["host main", "nodes", "did you mean 'node'"], id="misspelt node key"),
    pytest.param(HOSTS.replace('"ssh_hostname": "192.0.2.11"', '"ssh_hostname": "192.0.2.11\\n"'), None,
                 ["host edge", "hosts.edge.ssh.hostname"], id="ssh hostname with newline"),
    pytest.param(HOSTS + "\nmore = [('main', {'ssh_hostname': '192.0.2.99', 'node': {}})]\n", None, ["host main", "defined twice, in groups gpu_servers and more"], id="duplicate host name"),
    pytest.param(HOSTS.replace('"node": {', '"node": "x", "_n": {', 1), None, ["host main", "node", "mapping"], id="node not a mapping"),
    pytest.param(HOSTS, "services = " + "[" * 3000 + "]" * 3000 + "\n", ["all.py", "cannot load", "nested"], id="group data nested 3000 deep"),
    pytest.param(HOSTS, "services = " + "[" * 150 + "]" * 150 + "\n", ["services", "nested more than 32"], id="group data nested 150 deep"),
]


@pytest.mark.parametrize(("inventory", "group_data", "fragments"), FILES)
def test_hostile_file_is_refused_by_name(tmp_path, inventory, group_data, fragments):
    path = write_inventory(tmp_path, inventory, group_data)
    assert_clean(aistack("plan", "--inventory", str(path)), 20, fragments)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"active: [unclosed", "cannot read the lane record"),
    (b"\xff\xfe\x00binary", "cannot read the lane record"),
    (b"activ: [gemma-edge]", "did you mean 'active'"),
    (b"active: gemma-edge", "must hold"),
    (b"active: [ghost-lane]", "not a generation lane"),
    (None, "cannot read the lane record"),  # a directory where the record should be
], ids=["not YAML", "binary", "misspelt key", "not a list", "unknown lane", "a directory"])
def test_hostile_lane_record_is_refused(tmp_path, monkeypatch, content, fragment):
    monkeypatch.setattr(lanes_module, "LANES_DIR", tmp_path)
    record = tmp_path / "homelab.lanes.yaml"
    if content is None:
        record.mkdir()
    else:
        record.write_bytes(content)
    assert_clean(aistack("plan", "--inventory", str(HOMELAB)), 20, ["homelab.lanes.yaml", fragment])


@pytest.mark.parametrize("content", [b"files: [unclosed", b"\xff\xfe binary", b"files: {a: {repo: '../x', file: f}}", None],
                         ids=["not YAML", "binary", "repo escapes", "a directory"])
def test_hostile_model_lock_is_refused_by_path(tmp_path, content):
    lock = tmp_path / "models.yaml"
    lock.mkdir() if content is None else lock.write_bytes(content)
    with pytest.raises(InventoryError, match="cannot read the model lock") as exc:
        load_model_lock(lock, must_exist=True)
    assert str(lock) in str(exc.value)


def test_a_named_model_lock_must_exist(tmp_path):
    with pytest.raises(InventoryError, match="cannot read the model lock"):
        load_model_lock(tmp_path / "absent.yaml", must_exist=True)


# ---- payloads: no string escapes its root or reaches a shell unquoted ------------------------


@pytest.mark.parametrize("payload", TRAVERSAL + SHELL)
def test_model_paths_never_leave_their_root(payload):
    for check in (check_relative, check_repo):
        with pytest.raises(ValueError):
            check(payload)
    with pytest.raises(ValueError):
        under("/srv/models", "repo", payload) if ".." in payload.split("/") else check_relative(payload)


@pytest.mark.parametrize("payload", SHELL + ["/srv/$(id)", "/tmp", "/", "/etc/aistack"])
def test_data_roots_refuse_payloads_and_system_dirs(payload):
    with pytest.raises(ValueError):
        check_data_root(payload)


def test_host_path_stays_under_the_models_root():
    assert host_path("/srv/models", "org/name", "sub/w.gguf") == "/srv/models/org/name/sub/w.gguf"
    assert host_path("/srv/models", "org/name", "w.bin", "hf-cache", "abc123").startswith("/srv/models/hf/models--org--name/snapshots/abc123/")
    with pytest.raises(ValueError, match="would leave"):
        host_path("/srv/models", "..", "x")


@pytest.mark.parametrize("name", ["a b", "$(touch PWNED)", "a'b", "`touch PWNED`;x", 'a"b$HOME'])
@pytest.mark.parametrize("good", [True, False], ids=["verified", "refused"])
def test_fetch_commands_run_payloads_as_data(tmp_path, name, good):
    """The commands deploy runs to verify and place a model file, run by a real shell on a
    destination full of shell syntax: the file lands exactly there (or is refused and removed),
    and nothing in the name is executed."""
    content = b"weights"
    sha = hashlib.sha256(content).hexdigest() if good else "0" * 64
    dest = str(tmp_path / name / "w.gguf")
    locked = LockedFile(repo="org/name", file="w.gguf", size=len(content), sha256=sha, path="unused")
    mkdir, check, move = fetch_commands(dest, locked)  # uploaded: no download step
    run = lambda command: subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True)
    assert run(mkdir).returncode == 0
    Path(dest + ".partial").write_bytes(content)
    checked = run(check)
    if good:
        assert checked.returncode == 0 and run(move).returncode == 0
        assert Path(dest).read_bytes() == content and Path(dest + ".sha256").read_text().strip() == sha
    else:
        assert checked.returncode == 1 and "refused" in checked.stderr and not Path(dest + ".partial").exists()
    assert not list(tmp_path.rglob("PWNED")) and sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_rendered_files_stay_under_the_state_root(homelab):
    """Every file render puts on a host lies under that host's state root, or is a named system file."""
    system = {"/etc/sysctl.d/90-aistack.conf", "/etc/security/limits.d/90-aistack.conf"}
    for name, rendered in render_cluster(homelab).items():
        state = homelab.hosts[name].storage.state
        for path in rendered.files:
            assert path in system or Path(path).is_relative_to(state), (name, path)


def test_force_checks_knows_every_preflight_check():
    """force_checks is validated against the model's list: it must be the checks preflight.py runs."""
    from aistack.model.cluster import PREFLIGHT_CHECKS

    source = (PROJECT / "aistack" / "preflight.py").read_text()
    assert set(re.findall(r'Finding\(\s*Level\.[A-Z]+, "([a-z0-9-]+)"', source)) == set(PREFLIGHT_CHECKS)


def test_no_pattern_anchors_with_dollar():
    """`$` lets a trailing newline through in Python's re: every pattern the model checks input
    with ends in \\Z."""
    for path in (PROJECT / "aistack" / "model").rglob("*.py"):
        for found in re.findall(r'pattern=r"([^"]*)"|re\.compile\(r"([^"]*)"', path.read_text()):
            assert not any(p.endswith("$") for p in found), (path, found)


def test_plan_shows_markup_in_user_strings_as_written(homelab):
    """Rich reads `[...]` as markup: a subject or reason carrying `[/]` must print, not crash."""
    from rich.console import Console

    from aistack.plan_view import show
    from aistack.preflight import Finding, Level, Preflight, preflight

    result = preflight(homelab)
    hostile = Preflight(result.plan, [*result.findings, Finding(Level.BLOCK, "routes", "main", "[/]x", "[bold]y[/] [/]")],
                        result.paths)
    console = Console(record=True, width=200)
    show(console, homelab, hostile)
    text = console.export_text()
    assert "[/]x" in text and "[bold]y[/] [/]" in text
