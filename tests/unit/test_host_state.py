"""The one state read of a re-apply (issue 18): what it answers, through a real shell on real
files, and that each decision taken from it agrees with pyinfra's own operation on the same
file (an operation is only declared where the read says something differs, so a wrong "same"
would silently skip a change)."""

from __future__ import annotations

import os
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.operation import add_op
from pyinfra.operations import apt, files, server

from aistack.host_state import Container, HostStateFact, StateQuery, _images, parse


def answer(query: StateQuery):
    """The fact's command as pyinfra runs it (sh -c), on this machine."""
    out = subprocess.run(["sh", "-c", HostStateFact().command(query)], capture_output=True, text=True, check=True)
    return parse(query, out.stdout.splitlines()), out.stdout


@pytest.fixture(scope="module")
def local():
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    return state


def pyinfra_would_change(state: State, op, **kwargs) -> bool:
    return next(iter(add_op(state, op, **kwargs).values())).will_change


def write(path: Path, content: str, mode: int) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


def test_files_directories_and_listing_are_answered_by_what_was_asked(tmp_path):
    a = write(tmp_path / "a.yaml", "x: 1\n", 0o644)
    secret = write(tmp_path / "s.env", "K=v\n", 0o600)
    (tmp_path / "stacks" / "one").mkdir(parents=True)
    (tmp_path / "stacks" / "two").mkdir()
    query = StateQuery(hashed=(str(a), str(tmp_path / "gone")), stat=(str(secret),),
                       directories=(str(tmp_path / "stacks"), str(tmp_path / "nope")), listing=str(tmp_path / "stacks"))
    seen, _ = answer(query)
    assert seen.file_is(str(a), "x: 1\n", 0o644)
    assert not seen.file_is(str(a), "x: 2\n", 0o644) and not seen.file_is(str(a), "x: 1\n", 0o600)
    assert str(tmp_path / "gone") not in seen.files
    assert (seen.files[str(secret)].mode, seen.files[str(secret)].size) == (0o600, 4)
    assert seen.directories == {str(tmp_path / "stacks"): 0o755}
    assert seen.subdirectories == {str(tmp_path / "stacks" / "one"), str(tmp_path / "stacks" / "two")}


def test_small_files_come_back_line_for_line_empty_and_unterminated_ones_too(tmp_path):
    empty = write(tmp_path / "empty", "", 0o644)
    open_ended = write(tmp_path / "marker", "abc123", 0o644)
    spaced = write(tmp_path / "conf", "  indented\t tab\n\nlast\n", 0o644)
    query = StateQuery(text=(str(empty), str(tmp_path / "absent"), str(open_ended), str(spaced)))
    seen, _ = answer(query)
    assert seen.text == {str(empty): [], str(open_ended): ["abc123"], str(spaced): ["  indented\t tab", "", "last"]}


def test_hostile_paths_are_quoted_and_never_run(tmp_path):
    hostile = [tmp_path / "$(touch pwned)", tmp_path / "it's; rm -rf x", tmp_path / "sp ace`id`"]
    for path in hostile:
        write(path, "data", 0o644)
    query = StateQuery(hashed=tuple(map(str, hostile)), text=tuple(map(str, hostile)))
    seen, _ = answer(query)
    assert all(seen.file_is(str(path), "data", 0o644) for path in hostile)
    assert not any(Path(name).exists() for name in ("pwned", tmp_path / "pwned"))


def test_secret_values_are_compared_by_digest_and_never_printed(tmp_path):
    ours = write(tmp_path / "ours.env", "KEY=s3cr3t-value\nOTHER=x\n", 0o600)
    theirs = write(tmp_path / "theirs.env", "QDRANT__SERVICE__API_KEY=s3cr3t-value\n", 0o600)
    stale = write(tmp_path / "stale.env", "KEY=old\n", 0o600)
    pairs = ((str(ours), "KEY"), (str(theirs), "QDRANT__SERVICE__API_KEY"), (str(stale), "KEY"), (str(ours), "MISSING"))
    seen, raw = answer(StateQuery(secret_vars=pairs))
    assert "s3cr3t" not in raw and "old" not in raw
    assert seen.secret_digests[pairs[0]] == seen.secret_digests[pairs[1]] != seen.secret_digests[pairs[2]]
    assert pairs[3] not in seen.secret_digests


@pytest.mark.parametrize("existing, mode", [("same\n", 0o644), ("other\n", 0o644), ("same\n", 0o600), (None, 0o644)])
def test_a_stack_file_is_skipped_exactly_when_files_put_would_change_nothing(local, tmp_path, existing, mode):
    path = tmp_path / "compose.yaml"
    if existing is not None:
        write(path, existing, mode)
    seen, _ = answer(StateQuery(hashed=(str(path),)))
    pyinfra = pyinfra_would_change(local, files.put, src=StringIO("same\n"), dest=str(path), mode="644")
    assert seen.file_is(str(path), "same\n", 0o644) is not pyinfra


@pytest.mark.parametrize("mode", [0o755, 0o700, None])
def test_a_directory_is_skipped_exactly_when_files_directory_would_change_nothing(local, tmp_path, mode):
    path = tmp_path / "stacks"
    if mode is not None:
        path.mkdir()
        path.chmod(mode)
    seen, _ = answer(StateQuery(directories=(str(path),)))
    pyinfra = pyinfra_would_change(local, files.directory, path=str(path), mode="755", present=True)
    assert seen.directory_is(str(path), 0o755) is not pyinfra


LIMIT = "* - nofile 65536"


@pytest.mark.parametrize("content", [f"{LIMIT}\n", "* - nofile 1024\n", "# nothing\n", f"{LIMIT}\n* - nofile 1\n", "", None])
def test_the_limits_line_is_skipped_exactly_when_files_line_would_change_nothing(local, tmp_path, content):
    path = tmp_path / "90-aistack.conf"
    if content is not None:
        write(path, content, 0o644)
    seen, _ = answer(StateQuery(text=(str(path),)))
    pyinfra = pyinfra_would_change(local, files.line, path=str(path), line=r"^\* - nofile .*", replace=LIMIT)
    assert seen.has_only_line(str(path), r"^\* - nofile .*", LIMIT) is not pyinfra


def _current(key: str) -> str:
    return " ".join(Path("/proc/sys", *key.split(".")).read_text().split())


@pytest.mark.parametrize("key", ["net.core.somaxconn", "net.ipv4.ip_local_port_range"])
@pytest.mark.parametrize("persisted, live", [(True, True), (False, True), (True, False)])
def test_a_sysctl_is_skipped_exactly_when_server_sysctl_would_change_nothing(local, tmp_path, key, persisted, live):
    """Prepared only, never run: this machine's sysctls are read, not written."""
    value = _current(key) if live else "4242" if " " not in _current(key) else "20001 60001"
    persist = write(tmp_path / "90-aistack.conf", f"{key} = {value}\n" if persisted else "", 0o644)
    seen, _ = answer(StateQuery(sysctls=(key, "net.no.such_key"), text=(str(persist),)))
    assert seen.sysctls[key] == _current(key) and "net.no.such_key" not in seen.sysctls
    pyinfra = pyinfra_would_change(local, server.sysctl, key=key, value=value, persist=True, persist_file=str(persist))
    assert seen.sysctl_is(key, value, str(persist)) is not pyinfra


@pytest.mark.skipif(not os.path.exists("/usr/bin/dpkg-query"), reason="a Debian-family control machine")
def test_packages_missing_exactly_when_apt_packages_would_install(local):
    seen, _ = answer(StateQuery(packages=("coreutils", "dpkg", "aistack-no-such-package")))
    assert seen.missing_packages(["coreutils", "dpkg"]) == []
    assert seen.missing_packages(["coreutils", "aistack-no-such-package"]) == ["aistack-no-such-package"]
    assert not pyinfra_would_change(local, apt.packages, packages=["coreutils", "dpkg"])


def test_an_image_reference_matches_its_tag_or_its_pinned_digest_only():
    refs = ("aistack-llamacpp:latest", "aistack-ray", "ghcr.io/ggml-org/llama.cpp:server@sha256:abc",
            "localhost:5000/team/nginx:1.27", "ghcr.io/ggml-org/llama.cpp@sha256:def")
    assert _images(refs, ["aistack-llamacpp", "latest", "<none>", "sha256:1"]) == {"aistack-llamacpp:latest": "sha256:1"}
    assert _images(refs, ["aistack-ray", "latest", "<none>", "sha256:2"]) == {"aistack-ray": "sha256:2"}
    assert _images(refs, ["ghcr.io/ggml-org/llama.cpp", "server", "sha256:abc", "sha256:3"]) == {
        "ghcr.io/ggml-org/llama.cpp:server@sha256:abc": "sha256:3"}
    assert _images(refs, ["ghcr.io/ggml-org/llama.cpp", "server", "sha256:999", "sha256:4"]) == {}
    assert _images(refs, ["localhost:5000/team/nginx", "1.27", "<none>", "sha256:5"]) == {
        "localhost:5000/team/nginx:1.27": "sha256:5"}


@pytest.mark.parametrize("state, status, healthy", [
    ("running", "Up 3 minutes (healthy)", True), ("running", "Up 3 minutes", True),
    ("running", "Up 2 seconds (health: starting)", False), ("running", "Up 1 hour (unhealthy)", False),
    ("restarting", "Restarting (1) 4 seconds ago", False), ("exited", "Exited (0) 1 minute ago", False)])
def test_a_stack_counts_as_serving_only_when_running_and_healthy(state, status, healthy):
    assert Container("p", "s", state, status).healthy is healthy


def test_roles_queries_merge_into_one_without_repeats():
    merged = StateQuery.merge(StateQuery(packages=("curl", "python3"), text=("/a",)),
                              StateQuery(packages=("python3", "docker.io"), listing="/s", containers=True),
                              StateQuery(gpu_driver=True))
    assert merged.packages == ("curl", "python3", "docker.io") and merged.text == ("/a",)
    assert (merged.listing, merged.containers, merged.gpu_driver) == ("/s", True, True)
