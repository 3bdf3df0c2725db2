"""An inventory file and its group_data, read as pyinfra 3.x's CLI reads them, without importing pyinfra.

`aistack plan` reads files and prints; importing pyinfra's CLI (gevent, paramiko) would cost it
0.4 s of its 0.5 s. This mirrors `pyinfra_cli.inventory.make_inventory_from_files` for an
inventory *file* (no host lists, no @connectors, no inventory functions) and the host data
waterfall of `pyinfra.api.host.HostData`: host data over group data (later groups win) over the
`all` data. tests/unit/test_inventory_files.py holds it to pyinfra's own reading.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class FileError(Exception):
    """A Python error inside an inventory or group data file, with the file it came from."""

    def __init__(self, exception: BaseException, filename: str):
        super().__init__(str(exception))
        self.exception = exception
        self.filename = filename


@dataclass
class HostData:
    """The merged data of one host: `get` and `dict` as pyinfra's HostData offers them."""

    merged: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.merged.get(key, default)

    def dict(self) -> dict[str, Any]:
        return dict(self.merged)


@dataclass
class FileHost:
    name: str
    data: HostData
    groups: list[str] = field(default_factory=list)


@dataclass
class FileInventory:
    hosts: list[FileHost]
    groups: dict[str, list]  # the inventory file's own groups, as written (for the defined-twice check)

    def __iter__(self) -> Iterator[FileHost]:
        return iter(self.hosts)


def exec_file(path: Path) -> dict[str, Any]:
    """Run a data file as pyinfra does: its module-level names, with only `__file__` given."""
    try:
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        names: dict[str, Any] = {"__file__": str(path)}
        exec(code, names)  # noqa: S102 - the site's own inventory, as pyinfra itself executes it
    except Exception as exc:
        raise FileError(exc, str(path)) from exc
    return names


def is_group(key: str, value: Any) -> bool:
    """A module-level list (or (hosts, data) tuple) of host names or (name, data) tuples."""
    if key.startswith("_"):
        return False
    hosts = value[0] if isinstance(value, tuple) else value if isinstance(value, list) else None
    return hosts is not None and all(isinstance(item, (str, tuple)) for item in hosts)


def imported_names(path: Path) -> set[str]:
    """Names bound by import statements: not group data (pyinfra issue #1297)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names if alias.name != "*"}
    return names


def group_data(folder: Path) -> dict[str, dict[str, Any]]:
    """Each `<group>.py` in a group_data folder, as that group's data."""
    found: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(".py"):
            continue
        attrs = exec_file(path)
        keys = attrs["__all__"] if "__all__" in attrs else set(attrs) - imported_names(path)
        found[path.stem] = {k: v for k, v in attrs.items() if k in keys and not k.startswith("__")}
    return found


def _name(item: str | tuple) -> str:
    return item[0] if isinstance(item, tuple) else item


def read_files(path: Path, project_dir: Path) -> FileInventory:
    """The hosts of an inventory file with their merged data, group data from project_dir and beside the file."""
    groups: dict[str, Any] = {k: v for k, v in exec_file(path).items() if is_group(k, v)}
    written = {k: (v[0] if isinstance(v, tuple) else v) for k, v in groups.items()}
    all_data: dict[str, Any] = {}
    if "all" in groups:
        all_hosts = groups.pop("all")
        if isinstance(all_hosts, tuple):
            all_hosts, all_data = all_hosts
    else:
        all_hosts = []
        for hosts in groups.values():
            for item in hosts[0] if isinstance(hosts, tuple) else hosts:
                if _name(item) not in all_hosts:
                    all_hosts.append(_name(item))
    groups.setdefault(path.name.rsplit(".", 1)[0], all_hosts)  # every host is in its file's group

    folders = [project_dir / "group_data"]
    if str(path.parent.resolve()) != str(project_dir):
        folders.append(path.parent.resolve() / "group_data")
    data_by_group: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for name, data in group_data(folder).items():
            data_by_group.setdefault(name, {}).update(data)

    all_data = {**all_data, **data_by_group.pop("all", {})}
    members: dict[str, tuple[list, dict[str, Any]]] = {}
    for name, hosts in groups.items():
        hosts, data = hosts if isinstance(hosts, tuple) else (hosts, {})
        members[name] = (hosts, {**data, **data_by_group.pop(name, {})})

    own: dict[str, dict[str, Any]] = {}
    host_groups: dict[str, list[str]] = {}
    for name, (hosts, _) in members.items():
        for item in hosts:
            own.setdefault(_name(item), {}).update(item[1] if isinstance(item, tuple) else {})
            host_groups.setdefault(_name(item), []).append(name)
    for item in all_hosts:
        own.setdefault(_name(item), {}).update(item[1] if isinstance(item, tuple) else {})

    found = []
    for item in all_hosts:
        name = _name(item)
        merged = dict(all_data)
        for group in host_groups.get(name, []):
            merged.update(members[group][1])
        merged.update(own[name])
        found.append(FileHost(name, HostData(merged), host_groups.get(name, [])))
    return FileInventory(found, written)
