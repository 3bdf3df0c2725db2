"""One SSH command per host reads everything a re-apply decides on.

pyinfra 3 caches no facts: every ``host.get_fact`` is a command, and an operation's facts are
read twice (once to show what would change, once when it runs). A no-op re-apply of the four
sandbox hosts cost 44 to 87 commands per host that way. Here one fact, ``HostStateFact``, asks for
the hashes and modes of every file deploy puts, the packages, sysctls, directories, images,
containers and secret digests the roles decide on, in one shell script; the roles then create
an operation only for what differs, and pyinfra's own operation (with its own facts) does the
change. A host where nothing changed runs the read and nothing else.

The script is plain POSIX sh with coreutils, dpkg-query and the docker CLI: it runs before the
base role has installed anything (a fresh host has no python3 for us to rely on). Every path
and name in it is quoted, and each answer names its query by index, never by path (only the
names of the stacks root's subdirectories come back as names), so no inventory value is parsed
back out of the host's answer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from hashlib import sha256

from pyinfra.api import FactBase

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class StateQuery:
    """What one host is asked: each field a tuple, so the query is its own cache key."""

    hashed: tuple[str, ...] = ()  # files compared by content: sha256, mode, size
    stat: tuple[str, ...] = ()  # files compared by size and mode only (model weights, secrets)
    text: tuple[str, ...] = ()  # small files read whole (sysctl and limits files, model markers)
    directories: tuple[str, ...] = ()  # mode
    listing: str | None = None  # a directory whose subdirectories are listed (the stacks' root)
    packages: tuple[str, ...] = ()
    sysctls: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # image references -> local id
    secret_vars: tuple[tuple[str, str], ...] = ()  # (env file, variable) -> sha256 of the value
    units: tuple[str, ...] = ()  # systemd units: active, enabled
    gpu_driver: bool = False  # nvidia-smi's driver version
    containers: bool = False  # every container's compose labels and state

    @staticmethod
    def merge(*queries: StateQuery) -> StateQuery:
        """Each role says what it reads; the host is asked all of it at once."""
        def joined(name: str) -> tuple:
            return tuple(dict.fromkeys(item for query in queries for item in getattr(query, name)))
        tuples = ("hashed", "stat", "text", "directories", "packages", "sysctls", "images", "secret_vars", "units")
        listings = {query.listing for query in queries if query.listing}
        assert len(listings) <= 1, f"one listed directory per host, not {sorted(listings)}"
        return StateQuery(**{name: joined(name) for name in tuples}, listing=next(iter(listings), None),
                          gpu_driver=any(query.gpu_driver for query in queries),
                          containers=any(query.containers for query in queries))


@dataclass(frozen=True)
class FileStat:
    mode: int
    size: int
    sha256: str | None = None  # only for StateQuery.hashed


@dataclass(frozen=True)
class Container:
    project: str  # compose's labels ("" for a container compose did not start)
    service: str
    state: str  # running, exited, restarting, ...
    status: str  # "Up 3 minutes (healthy)", "Up 1 second (health: starting)", "Exited (1) ..."

    @property
    def healthy(self) -> bool:
        """Running and healthy, or running without a healthcheck."""
        return self.state == "running" and ("(" not in self.status or "(healthy)" in self.status)


@dataclass
class HostState:
    """The host's answer, keyed by what was asked (paths, names, references)."""

    files: dict[str, FileStat] = field(default_factory=dict)  # present files only
    text: dict[str, list[str]] = field(default_factory=dict)  # present files only
    directories: dict[str, int] = field(default_factory=dict)
    subdirectories: set[str] = field(default_factory=set)  # full paths under StateQuery.listing
    packages: set[str] = field(default_factory=set)  # installed
    sysctls: dict[str, str] = field(default_factory=dict)  # whitespace collapsed to one space
    images: dict[str, str] = field(default_factory=dict)  # present references -> id
    secret_digests: dict[tuple[str, str], str] = field(default_factory=dict)  # present values only
    units: dict[str, tuple[str, str]] = field(default_factory=dict)
    os_release: dict[str, str] = field(default_factory=dict)
    gpu_driver: str = ""
    containers: list[Container] = field(default_factory=list)

    # ---- the decisions roles take from it -----------------------------------------------------

    def file_is(self, path: str, content: str, mode: int) -> bool:
        """Would files.put(src=content, mode=mode) change nothing?"""
        seen = self.files.get(path)
        return seen is not None and seen.mode == mode and seen.sha256 == sha256(content.encode()).hexdigest()

    def directory_is(self, path: str, mode: int) -> bool:
        return self.directories.get(path) == mode

    def missing_packages(self, wanted: list[str]) -> list[str]:
        return [p for p in wanted if p not in self.packages]

    def has_only_line(self, path: str, pattern: str, line: str) -> bool:
        """Would files.line(path, pattern, replace=line) change nothing? It does when some line
        matches the pattern and every matching line already equals the replacement."""
        regex = re.compile(pattern.replace("[[:space:]]", r"\s"))
        matching = [found for found in self.text.get(path, []) if regex.search(found)]
        return bool(matching) and all(found == line for found in matching)

    def sysctl_is(self, key: str, value: str, persist_file: str) -> bool:
        """Would server.sysctl(key, value, persist=True, persist_file=...) change nothing?"""
        value = " ".join(str(value).split())
        return (self.sysctls.get(key) == value
                and self.has_only_line(persist_file, f"{key}[[:space:]]*=[[:space:]]*{value}", f"{key} = {value}"))

    def unit_running(self, unit: str) -> bool:
        return self.units.get(unit) == ("active", "enabled")

    def compose_services(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """Compose project -> its services with a container in any state (a crash-looping one
        included), and -> those running and healthy (or running without a healthcheck)."""
        present: dict[str, set[str]] = {}
        healthy: dict[str, set[str]] = {}
        for container in self.containers:
            if not container.project:
                continue
            present.setdefault(container.project, set()).add(container.service)
            if container.healthy:
                healthy.setdefault(container.project, set()).add(container.service)
        return present, healthy


# Small files, line by line with the shell's own read: no process per file, an empty one included.
READ_TEXT = 'for f; do echo X; while IFS= read -r l || [ -n "$l" ]; do echo "T$l"; done < "$f"; done; echo E'


def _existing(tag: str, test: str, paths: tuple[str, ...], then: str) -> list[str]:
    """Shell that runs ``then`` once over those of ``paths`` that pass ``test`` (one process for
    all of them, not one per path), after a line naming their indexes in the query."""
    if not paths:
        return []
    q = shlex.quote
    lines = ["set --; found="]
    lines += [f'[ {test} {q(path)} ] && {{ set -- "$@" {q(path)}; found="$found {i}"; }}' for i, path in enumerate(paths)]
    lines.append(f'[ $# -gt 0 ] && {{ echo "{tag}$found"; {then}; }}')
    return lines


def _script(query: StateQuery) -> str:
    """The shell that answers ``query``: tagged lines, a handful of processes in all (each docker
    CLI call costs ~30 ms on a small host; a read per file would cost more than the whole run)."""
    q = shlex.quote
    lines = [*_existing("F", "-f", query.hashed, "stat -c '%a %s' \"$@\"; sha256sum \"$@\" | cut -c1-64"),
             *_existing("M", "-f", query.stat, "stat -c '%a %s' \"$@\""),
             *_existing("T", "-f", query.text, READ_TEXT),
             *_existing("D", "-d", query.directories, "stat -c %a \"$@\"")]
    if query.listing:
        lines.append(f"find {q(query.listing)} -mindepth 1 -maxdepth 1 -type d -printf 'L%f\\n' 2>/dev/null")
    if query.packages:
        names = " ".join(q(p) for p in query.packages)
        lines.append(f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Package}}\\n' {names} 2>/dev/null | sed -n 's/^ii */P/p'")
    # One cat for all keys (dash's read takes /proc/sys one byte at a time and gets only the first).
    lines += _existing("S", "-f", tuple("/proc/sys/" + key.replace(".", "/") for key in query.sysctls), 'cat "$@"')
    if query.images:
        lines.append("docker image ls --digests --no-trunc --format "
                     "'I{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}}' 2>/dev/null")
    for i, (path, var) in enumerate(query.secret_vars):
        value = f"sed -n {q(f's/^{var}=//p')} {q(path)}"
        lines.append(f"[ -f {q(path)} ] && v=$({value}) && [ -n \"$v\" ] && "
                     f"echo \"V{i} $(printf %s \"$v\" | sha256sum | cut -c1-64)\"")
    for i, unit in enumerate(query.units):
        lines.append(f"echo \"U{i} $(systemctl is-active {q(unit)} 2>/dev/null) $(systemctl is-enabled {q(unit)} 2>/dev/null)\"")
    if query.gpu_driver:
        lines.append("echo \"G$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1)\"")
    if query.containers:
        lines.append("docker ps -a --format 'C{{.State}}\t{{.Status}}\t{{.Label \"%s\"}}\t{{.Label \"%s\"}}' "
                     "2>/dev/null" % (PROJECT_LABEL, SERVICE_LABEL))
    lines.append("[ -f /etc/os-release ] && (. /etc/os-release; echo \"OID=$ID\"; echo \"OVERSION_ID=$VERSION_ID\"; "
                 "echo \"OVERSION_CODENAME=$VERSION_CODENAME\")")
    return "\n".join(f"{line} || true" for line in lines)


class HostStateFact(FactBase):
    """Everything a re-apply decides on, in one command: its raw answer (``read_state`` parses it
    against the query, which pyinfra does not hand to ``process``)."""

    def command(self, query: StateQuery) -> str:
        return _script(query)  # pyinfra runs it with sh -c

    def process(self, output: list[str]) -> list[str]:
        return output


def read_state(host, query: StateQuery) -> HostState:
    """One SSH command on ``host`` (a pyinfra Host), parsed."""
    return parse(query, host.get_fact(HostStateFact, query=query) or [])


def parse(query: StateQuery, output: list[str]) -> HostState:
    """The tagged lines back into a HostState, each answer filed under what was asked."""
    seen, lines = HostState(), iter(output)
    for line in lines:
        tag, rest = line[:1], line[1:]
        if tag in "FMDTS" and rest.startswith(" "):
            _block(seen, query, tag, [int(i) for i in rest.split()], lines)
        elif tag == "L" and query.listing:
            seen.subdirectories.add(f"{query.listing}/{rest}")
        elif tag == "P":
            seen.packages.add(rest.split(":")[0])
        elif tag == "I":
            seen.images.update(_images(query.images, rest.split()))
        elif tag == "V":
            index, _, digest = rest.partition(" ")
            seen.secret_digests[query.secret_vars[int(index)]] = digest
        elif tag == "U":
            index, active, enabled = (rest.split() + ["", ""])[:3]
            seen.units[query.units[int(index)]] = (active, enabled)
        elif tag == "G":
            seen.gpu_driver = rest.strip()
        elif tag == "C":
            state, status, project, service = (rest.split("\t") + ["", "", "", ""])[:4]
            seen.containers.append(Container(project, service, state, status))
        elif tag == "O":
            key, _, value = rest.partition("=")
            seen.os_release[key] = value
    return seen


def _block(seen: HostState, query: StateQuery, tag: str, indexes: list[int], lines) -> None:
    """A batch answer: the header named which queried paths exist; their answers follow in order."""
    if tag == "F":
        stats = [next(lines).split() for _ in indexes]
        for i, (mode, size), digest in zip(indexes, stats, [next(lines) for _ in indexes]):
            seen.files[query.hashed[i]] = FileStat(int(mode, 8), int(size), digest)
    elif tag == "M":  # a path also hashed keeps its hash
        for i in indexes:
            mode, size = next(lines).split()
            seen.files.setdefault(query.stat[i], FileStat(int(mode, 8), int(size)))
    elif tag == "S":
        for i in indexes:
            seen.sysctls[query.sysctls[i]] = " ".join(next(lines).split())
    elif tag == "D":
        for i in indexes:
            seen.directories[query.directories[i]] = int(next(lines), 8)
    else:  # awk: "X" opens each file, "T" prefixes each of its lines, "E" ends the batch
        files = iter(indexes)
        current: list[str] = []
        for line in lines:
            if line == "E":
                break
            if line == "X":
                current = seen.text.setdefault(query.text[next(files)], [])
            else:
                current.append(line[1:])


def _images(refs: tuple[str, ...], row: list[str]) -> dict[str, str]:
    """Which queried references one `docker image ls --digests` row answers: REPO:TAG, or
    REPO[:TAG]@DIGEST (pinned by digest: the tag is only a label)."""
    if len(row) != 4:
        return {}
    repository, tag, digest, image_id = row
    found = {}
    for ref in refs:
        name, _, pinned = ref.partition("@")
        last = name.rsplit("/", 1)[-1]
        base, wanted_tag = (name.rsplit(":", 1) if ":" in last else (name, "latest"))
        if base == repository and (digest == pinned if pinned else tag == wanted_tag):
            found[ref] = image_id
    return found
