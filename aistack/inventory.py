"""pyinfra inventory + group_data -> the validated Cluster. deploy.py and the CLI share this path.

Host data: pyinfra's `ssh_*` keys plus `node` (hardware: platform, arch, memory, accelerators,
storage). Cluster data (the same for every host, normally group_data/all.py): the names in
CLUSTER_KEYS. A `patch` dict of dotted paths, like `--set`, lets an inventory group adjust
the shared data without copying it (the sandbox uses it).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel

from .errors import InventoryError, Problem, UsageError, did_you_mean
from .inventory_files import FileError, FileInventory, read_files
from .lanes import lanes_file, read_switched, switch_overrides
from .model import Cluster
from .model.locks import IMAGE_LOCK, PROJECT_DIR, load_image_lock

if TYPE_CHECKING:
    from pyinfra.api.inventory import Inventory

CLUSTER_KEYS = ("services", "timeouts", "monitoring", "distributed", "catalogue", "load", "curves", "image_map",
                "allow_unpinned", "allow_unverified_models", "force_checks")
SSH_KEYS = ("hostname", "port", "user", "key", "known_hosts_file", "strict_host_key_checking")
DEFAULT_INVENTORY = PROJECT_DIR / "inventory" / "homelab.py"
# Data deploy.py reads from `--data` (deploy.py's docstring); a key of pyinfra's own starts with `_`.
RUN_KEYS = ("aistack_set", "aistack_model_lock", "force_runtime")
# pyinfra 3.10's SSHConnector.data_meta, written out so `plan` need not import pyinfra (a unit
# test holds it to pyinfra's own list).
SSH_CONNECTOR_KEYS = (
    "ssh_hostname", "ssh_port", "ssh_user", "ssh_password", "ssh_key", "ssh_key_password", "ssh_allow_agent",
    "ssh_look_for_keys", "ssh_forward_agent", "ssh_config_file", "ssh_known_hosts_file",
    "ssh_strict_host_key_checking", "ssh_paramiko_connect_kwargs", "ssh_connect_retries",
    "ssh_connect_retry_min_delay", "ssh_connect_retry_max_delay", "ssh_file_transfer_protocol",
)
# Every data key a host may carry: ours, and the SSH connector's own.
KNOWN_KEYS = frozenset((*CLUSTER_KEYS, *RUN_KEYS, "patch", "cluster_name", "node", *SSH_CONNECTOR_KEYS))
MAX_DEPTH = 32  # nested deeper than any inventory needs: a mistake, refused before it is walked
NAMED_SECTIONS = ("hosts", "services")  # a site may add catalogue entries, never invent a host
SECTIONS = tuple(Cluster.model_fields)


def load_cluster(
    inventory_path: Path | str = DEFAULT_INVENTORY,
    overrides: list[str] = (),
    project_dir: Path = PROJECT_DIR,
    switched: list[str] | None = None,
) -> Cluster:
    """Read an inventory file as pyinfra reads it (without importing it), then validate it as a cluster."""
    path = Path(inventory_path)
    if not path.is_file():
        raise UsageError(f"inventory {path} does not exist")
    try:
        inventory = read_files(path, project_dir)
    except FileError as exc:
        raise cannot_load(exc.exception, exc.filename) from None
    defined_twice(inventory.groups)
    return cluster_from_inventory(inventory, overrides, name=path.stem, switched=switched)


def read_inventory(path: Path, project_dir: Path = PROJECT_DIR) -> Inventory:
    """The pyinfra inventory with its group data, exactly as `pyinfra PATH deploy.py` reads it."""
    from pyinfra.api import State  # pyinfra and its gevent only where a run needs them
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import _get_groups_from_filename, make_inventory

    try:
        # pyinfra executes inventory and group data files inside a State context.
        with ctx_state.use(State()):
            defined_twice(_get_groups_from_filename(str(path)))  # pyinfra's own group reader
            return make_inventory(str(path), cwd=str(project_dir))
    except InventoryError:
        raise
    except Exception as exc:  # a Python error (or a binary file) inside the inventory or group data
        # pyinfra wraps an error in the file it executes, and names that file.
        raise cannot_load(getattr(exc, "exception", exc), getattr(exc, "filename", None) or str(path)) from None


def cannot_load(cause: BaseException, where: str) -> InventoryError:
    lines = str(cause).splitlines()
    return InventoryError([Problem(None, where, f"cannot load: {type(cause).__name__}: {lines[0][:300] if lines else ''}")])


def defined_twice(groups: dict[str, Any]) -> None:
    """pyinfra merges a host listed with its own data in two groups, the later group winning:
    one of the two definitions would be silently lost, so it is refused."""
    seen: dict[str, str] = {}
    problems = []
    for group, hosts in groups.items():
        for item in hosts[0] if isinstance(hosts, tuple) else hosts:
            if isinstance(item, tuple):
                if item[0] in seen:
                    problems.append(Problem(str(item[0]), "inventory", f"defined twice, in groups {seen[item[0]]} and {group}"))
                seen.setdefault(str(item[0]), group)
    if problems:
        raise InventoryError(problems)


def cluster_from_inventory(inventory: Inventory | FileInventory, overrides: list[str] = (), name: str = "homelab",
                           switched: list[str] | None = None) -> Cluster:
    """Inventory and group data, then the lanes switched to (None: those recorded for this
    cluster; [] the inventory's own flags), then one-off overrides.

    The record is keyed by `cluster_name` from the group data: pyinfra does not tell deploy.py
    which file it loaded, so a cluster without that name has no record to read."""
    raw = raw_cluster(inventory, name)
    for path, value in (raw.pop("patch", None) or {}).items():
        apply_override(raw, path, value)
    lock = load_image_lock(IMAGE_LOCK)
    record = lanes_file(raw["name"])
    if switched is None:
        switched = read_switched(record) if has_cluster_name(inventory) else []
    if switched:
        for item in switch_overrides(Cluster.build(copy.deepcopy(raw), lock), switched, str(record)):
            apply_override(raw, *parse_override(item))
    for item in overrides:
        path, value = parse_override(item)
        apply_override(raw, path, value)
    cluster = Cluster.build(raw, lock)
    if has_cluster_name(inventory):
        read_measured(cluster)
    return cluster


def read_measured(cluster: Cluster) -> None:
    """The load ladder's evidence: measured curves replace the default ones of lanes that name none."""
    from .load.evidence import evidence_file, measured_overrides, read_evidence

    path = evidence_file(cluster.name)
    data = read_evidence(path)
    if data is None:
        return
    found, chosen, notes = measured_overrides(cluster, data, path.name)
    cluster.curves = {**cluster.curves, **found}
    for lane, name in chosen.items():
        if cluster.services[lane].curve is None:  # a curve the inventory names is the user's choice
            cluster.services[lane].curve = name
    cluster._measured = dict(data.get("paths") or {})
    cluster._evidence_notes = notes


def has_cluster_name(inventory: Inventory | FileInventory) -> bool:
    return any(host.data.get("cluster_name") for host in inventory)


def raw_cluster(inventory: Inventory | FileInventory, name: str) -> dict[str, Any]:
    """The unvalidated cluster dict: hosts from host data, cluster keys from group data."""
    hosts: dict[str, Any] = {}
    shared: dict[str, tuple[str, Any]] = {}
    problems: list[Problem] = []
    for host in inventory:
        data = host.data
        own = unknown_keys(host.name, data.dict()) + [
            Problem(host.name, key, f"nested more than {MAX_DEPTH} levels deep")
            for key in (*CLUSTER_KEYS, "patch", "node") if too_deep(data.get(key))]
        if own:
            problems += own
            continue
        node = copy.deepcopy(data.get("node")) or {}
        if not isinstance(node, dict):
            problems.append(Problem(host.name, "node", "must be a mapping of the host's hardware"))
            continue
        ssh = {key: data.get(f"ssh_{key}") for key in SSH_KEYS if data.get(f"ssh_{key}") is not None}
        ssh.setdefault("hostname", host.name)
        node.setdefault("address", ssh["hostname"])
        hosts[host.name] = {"ssh": ssh, **node}
        for key in (*CLUSTER_KEYS, "patch", "cluster_name"):
            value = data.get(key)
            if key in shared and shared[key][1] != value:
                problems.append(
                    Problem(host.name, key, f"differs from host {shared[key][0]}: cluster data must be the same for all hosts")
                )
            shared.setdefault(key, (host.name, value))
    if not hosts and not problems:
        problems.append(Problem(None, "hosts", "the inventory has no hosts"))
    if problems:
        raise InventoryError(problems)
    raw: dict[str, Any] = {"name": name, "hosts": hosts}
    for key, (_, value) in shared.items():
        if value is not None:
            raw["name" if key == "cluster_name" else key] = copy.deepcopy(value)
    return raw


def unknown_keys(host: str, data: dict[str, Any]) -> list[Problem]:
    """A misspelt data key (`timeout`, `ssh_hostnam`) would be ignored: name it instead."""
    return [Problem(host, key, f"unknown data key{did_you_mean(key, KNOWN_KEYS)}")
            for key in data if not str(key).startswith("_") and key not in KNOWN_KEYS]


def too_deep(value: Any, depth: int = 0) -> bool:
    """Values nested thousands deep would blow the stack in copy or validation: refuse them first."""
    if depth > MAX_DEPTH:
        return True
    children = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return any(too_deep(child, depth + 1) for child in children)


def parse_override(item: str) -> tuple[str, Any]:
    """`dotted.path=value`; the value is read as YAML (8192 -> int, true -> bool, [0,1] -> list)."""
    path, sep, text = item.partition("=")
    if not sep or not path.strip():
        raise UsageError(f"--set {item!r}: expected dotted.path=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise UsageError(f"--set {item[:200]!r}: value is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except RecursionError:
        raise UsageError(f"--set {path.strip()[:200]}: value nested more than {MAX_DEPTH} levels deep") from None
    if too_deep(value):
        raise UsageError(f"--set {path.strip()[:200]}: value nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, bool) and text.strip().lower() not in ("true", "false"):
        value = text.strip()  # YAML 1.1 reads on/off/yes/no as booleans; flash_attn=off means "off"
    return path.strip(), value


def apply_override(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set one field; every step but the last must already exist, so a typo cannot invent a host."""
    parts = path.split(".")
    if any(not part for part in parts):
        raise UsageError(f"--set {path}: empty segment in the path")
    node: Any = raw
    default: Any = _section_defaults()
    for depth, part in enumerate(parts[:-1]):
        # Named entries (hosts.<name>, services.<name>) must exist; sections with defaults need not.
        named = depth == 1 and parts[0] in NAMED_SECTIONS
        default = default.get(part) if isinstance(default, dict) else None
        node = _step(node, part, ".".join(parts[: depth + 1]), create=not named and (depth > 0 or part in SECTIONS),
                     default=default)
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, path)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise UsageError(f"--set {path}: {'.'.join(parts[:-1])} is a value, not a section")


@functools.cache
def _section_defaults() -> dict[str, Any]:
    """The model's defaults of the cluster sections, so that `--set load.mix.text-long.weight=5`
    edits the default mix rather than replacing it with one partial entry."""
    found = {}
    for name, info in Cluster.model_fields.items():
        value = info.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            found[name] = value.model_dump(mode="json")
    return found


def _step(node: Any, part: str, where: str, create: bool, default: Any = None) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where)]
    if not isinstance(node, dict):
        raise UsageError(f"--set {where}: cannot descend into a value")
    if part not in node:
        if not create:
            have = ", ".join(sorted(map(str, node))) or "nothing"
            raise UsageError(f"--set {where}: no {part!r} here (have: {have})")
        node[part] = copy.deepcopy(default) if isinstance(default, dict) else {}
    return node[part]


def _index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UsageError(f"--set {where}: {part!r} is not an index of a list of {len(node)}")
    return int(part)
