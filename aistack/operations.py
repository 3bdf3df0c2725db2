"""pyinfra operations pyinfra does not ship: each changes nothing it need not.

They decide from the host's one state read (aistack.host_state), passed in by the role, instead
of facts of their own: pyinfra 3 runs every fact as a command, twice per operation.

- ``secret_env``: an env file of secrets generated on the target, once, 0600; values never leave it.
- ``secret_from_host``: an env file of values copied from another host's secret file, carried in
  memory over the two SSH connections (stdout of one, stdin of the other); rewritten when they differ.
- ``model_file``: a locked model file fetched to ``.partial``, checked for size and sha256, then
  moved into place; a bad download is refused and the previous good file is kept.
- ``local_image``: an image built on the control machine must already be on the host, by id.
- ``stack_absent``: a compose stack that moved away is stopped and its directory removed.
- ``barrier``: nothing to do, but every host reaches it before any host goes on.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, FunctionCommand, State, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.api.exceptions import OperationError

from .host_state import HostState
from .models_lock import LockedFile
from .render.containers import Secret, Stack

TOKEN_FN = "token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; }"
FORMAT_FIELD = re.compile(r"\{([A-Z0-9_]+)\}")


def secret_script(secret: Secret) -> str:
    """Shell that writes the env file with fresh values, atomically; prints nothing."""
    q = shlex.quote
    lines = ["set -eu", "umask 077", TOKEN_FN, f"mkdir -p {q(str(PurePosixPath(secret.path).parent))}"]
    for var, prefix in secret.tokens.items():
        lines.append(f'{var}={q(prefix)}"$(token)"')
    for var, fmt in secret.derived.items():
        parts = FORMAT_FIELD.split(fmt)  # literal, field, literal, field, ...
        value = "".join(q(p) if i % 2 == 0 else f'"${{{p}}}"' for i, p in enumerate(parts) if p)
        lines.append(f"{var}={value}")
    for var, (source, source_var) in secret.copied.items():
        lines.append(f"{var}=\"$(sed -n 's/^{source_var}=//p' {q(source)})\"")
        lines.append(f'[ -n "${var}" ] || {{ echo {q(f"{source} has no {source_var}")} >&2; exit 1; }}')
    names = [*secret.tokens, *secret.derived, *secret.copied]
    body = "%s" if secret.value_only else "".join(f"{n}=%s\\n" for n in names)
    args = " ".join(f'"${n}"' for n in names)
    lines.append(f"tmp={q(secret.path + '.tmp')}")
    lines.append(f"printf '{body}' {args} > \"$tmp\"")
    if secret.owner is not None:
        lines.append(f'chown {q(f"{secret.owner}:{secret.owner}")} "$tmp"')
    lines.append(f'mv -f "$tmp" {q(secret.path)}')
    return "\n".join(lines)


@operation()
def secret_env(secret: Secret, seen: HostState):
    """Generate ``secret.path`` on the host if it is absent; keep it (and its values) otherwise."""
    info = seen.files.get(secret.path)
    if info is None:
        yield f"sh -c {shlex.quote(secret_script(secret))}"
    elif info.mode != 0o600:
        yield f"chmod 0600 {shlex.quote(secret.path)}"
    else:
        host.noop(f"{secret.path} exists (0600); kept")


def _read_values(target: Host, source: Host, secret: Secret) -> str | None:
    """The env file's content for ``secret``, read from the source host: in memory only."""
    q = shlex.quote
    lines = []
    for var, (path, source_var) in secret.copied.items():
        ok, out = source.run_shell_command(StringCommand(f"sed -n {q(f's/^{source_var}=//p')} {q(path)}"),
                                           print_output=False, print_input=False)
        value = out.stdout.strip() if ok else ""
        if not value:
            target.log_styled(f"{source.name}:{path} has no {source_var}: nothing to copy", fg="red", log_func=logger.error)
            return None
        lines.append(f"{var}={value}")
    return "\n".join(lines) + "\n"


def _copy_secret(state: State, host: Host, secret: Secret) -> bool:
    """Source host's stdout to this host's stdin; written 0600 from the first byte, then moved."""
    # `state` and `host` by these names: pyinfra passes them to a FunctionCommand that asks.
    content = _read_values(host, state.inventory.get_host(secret.source_host), secret)
    if content is None:
        return False
    q, tmp = shlex.quote, secret.path + ".tmp"
    write = (f"umask 077; mkdir -p {q(str(PurePosixPath(secret.path).parent))} && cat > {q(tmp)} "
             f"&& chmod 0600 {q(tmp)} && mv -f {q(tmp)} {q(secret.path)}")
    ok, _ = host.run_shell_command(StringCommand(f"sh -c {q(write)}"), _stdin=content,
                                   print_output=False, print_input=False)
    return ok


@operation()
def secret_from_host(secret: Secret, seen: HostState, source: HostState):
    """Keep ``secret.path`` equal to its ``copied`` values on ``secret.source_host``.

    Only digests of the values are compared (both hosts' state reads carry them: the secret never
    leaves either host for that); the values move at execute time, after the source host
    generated its own secrets (a barrier sits between the two)."""
    assert secret.source_host, "a secret from this host is secret_env's"
    theirs = [source.secret_digests.get(pair) for pair in secret.copied.values()]
    ours = [seen.secret_digests.get((secret.path, var)) for var in secret.copied]
    info = seen.files.get(secret.path)
    if None not in theirs and theirs == ours and info is not None and info.mode == 0o600:
        host.noop(f"{secret.path} matches {secret.source_host}'s (0600); kept")
        return
    yield FunctionCommand(_copy_secret, (secret,), {})


def model_marker(dest: str) -> str:
    """Beside a model file: the sha256 it was verified against (read back as text)."""
    return f"{dest}.sha256"


@operation()
def model_file(dest: str, locked: LockedFile, seen: HostState):
    """Fetch once, verify size and sha256, keep the previous good file on a mismatch.

    A marker beside the file records the verified sha256, so a good 20 GB file is not hashed on
    every run; a change of the lock (new revision, new checksum) fetches again.
    """
    assert locked.sha256 and locked.size, "deploy never fetches an unverified model (rollout refuses it)"
    info = seen.files.get(dest)
    marker = seen.text.get(model_marker(dest)) or [""]
    if info is not None and info.size == locked.size and marker[0].split()[:1] == [locked.sha256]:
        host.noop(f"{dest} verified ({locked.sha256[:12]}); kept")
        return
    commands = fetch_commands(dest, locked)
    yield commands[0]
    if locked.path:
        yield FileUploadCommand(locked.source(), f"{dest}.partial")
    yield from commands[1:]


def fetch_commands(dest: str, locked: LockedFile) -> list[str]:
    """mkdir, the download (unless the file is uploaded), the size and sha256 check, the move.

    The one place these commands are built: every value is quoted here, the lock's sha256 and
    size too (validated as hex and int, quoted all the same)."""
    q = shlex.quote
    partial = f"{dest}.partial"
    lock_says = f"the lock says {locked.sha256}, {locked.size} bytes. The previous file is kept."
    check = (
        f"got=$(sha256sum {q(partial)} | cut -d' ' -f1); size=$(stat -c %s {q(partial)}); "
        f'if [ "$got" != {q(locked.sha256)} ] || [ "$size" != {q(str(locked.size))} ]; then rm -f {q(partial)}; '
        f'echo {q(f"{dest}: refused: sha256")} "$got, $size bytes;" {q(lock_says)} >&2; exit 1; fi'
    )
    download = [] if locked.path else [f"curl -fsSL --retry 3 -o {q(partial)} {q(locked.source())}"]
    return [f"mkdir -p {q(str(PurePosixPath(dest).parent))}", *download, f"sh -c {q(check)}",
            f"mv -f {q(partial)} {q(dest)} && echo {q(locked.sha256)} > {q(model_marker(dest))}"]


@operation()
def local_image(ref: str, image_id: str, seen: HostState):
    """Images built on the control machine cannot be pulled: the host must have this exact id."""
    have = seen.images.get(ref)
    if have != image_id:
        raise OperationError(f"{ref}: the host has {have or 'no such image'}, the lock wants {image_id} "
                             "(built on the control machine: `aistack sandbox up` loads it)")
    host.noop(f"{ref} present as {image_id[:19]}")
    yield from ()  # an operation is a generator, even when it only checks


@operation()
def barrier(label: str):
    """A point every host passes before any goes on (the same call on all hosts is one node of
    pyinfra's operation graph): orders stacks across hosts, a Ray head before its workers."""
    host.noop(f"{label}: reached on every host")
    yield from ()


def compose(project: str, directory: str) -> str:
    """`docker compose` on one stack: its project name and the compose file in its directory."""
    return f"docker compose -p {shlex.quote(project)} -f {shlex.quote(directory + '/compose.yaml')}"


def compose_up(stack: Stack) -> str:
    """`up -d --wait`, then the stack's known start failures (its containers' failure_hints) looked
    for in what they logged since: a match fails the run, named, with the log quoted (uvicorn
    respawning killed LiteLLM workers still answers healthy, with fewer workers than configured).
    A stack that does not come up healthy quotes its containers' logs the same way."""
    q, cli = shlex.quote, compose(stack.project, stack.directory)
    logs = "; ".join(f"echo '--- {c.name}:' >&2; {cli} logs --no-color --tail 40 {q(c.name)} >&2" for c in stack.containers)
    hints = []
    for c in stack.containers:
        for pattern, meaning in c.failure_hints:
            found = f"{cli} logs --no-color --since \"$since\" {q(c.name)} 2>&1 | grep -E {q(pattern)}"
            hints.append(f"if {found} >&2; then echo {q(f'{stack.service}/{c.name}: {meaning}')} >&2; failed=1; fi")
    named = f"failed=0; {'; '.join(hints)}" if hints else "failed=0"
    return (f"since=$(date -u +%Y-%m-%dT%H:%M:%SZ); {cli} up -d --remove-orphans --wait --wait-timeout {stack.wait_s} "
            f"|| {{ rc=$?; {cli} ps -a >&2; {logs}; {named}; exit $rc; }}; {named}; [ $failed = 0 ]")


@operation()
def stack_absent(directory: str, project: str):
    """Stop a compose stack that no longer belongs on this host and remove its files (the role
    calls it for a directory the state read listed)."""
    q = shlex.quote
    yield f"if [ -f {q(directory + '/compose.yaml')} ]; then {compose(project, directory)} down --remove-orphans --timeout 30; fi"
    yield f"rm -rf {q(directory)}"
