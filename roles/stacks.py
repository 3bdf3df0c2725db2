"""Compose stacks: prune what moved away, put files, and start a stack only when its files changed.

GPU engines take minutes to load a model: a stack whose files are unchanged and whose
containers are up and healthy is never touched. One that is still starting (a host that just
rebooted) or stopped gets `up --wait`, so a run ends only when what it reports is serving.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server

from aistack.host_state import HostState, StateQuery
from aistack.operations import barrier, compose, compose_up, stack_absent
from aistack.render.containers import Stack
from aistack.rollout import HostRollout

RELOAD_RECORD = ".reloaded"  # beside a stack's files: the config digests its containers were last signalled for
PHASES = (0, 1, 2)  # Ray heads, Ray workers, everything else (aistack.render.containers.Stack.phase)


def root(plan: HostRollout) -> str:
    return f"{plan.host.storage.state}/stacks"


def reads(plan: HostRollout) -> StateQuery:
    """Stack directories (and which are there), every stack file, reload records, containers."""
    stack_files = tuple(path for stack in plan.stacks for path, _ in _stack_files(plan, stack))
    return StateQuery(listing=root(plan), directories=tuple(stack.directory for stack in plan.stacks),
                      hashed=stack_files + tuple(_record(stack) for stack in plan.stacks), containers=True)


@deploy("Stacks")
def converge(plan: HostRollout, seen: HostState) -> None:
    wanted = {stack.directory for stack in plan.stacks}
    for directory in host.loop(sorted(seen.subdirectories - wanted)):
        stack_absent(name="Remove stacks no longer placed here", directory=directory,
                     project=directory.rsplit("/", 1)[1])
    puts = {stack.service: _put_files(plan, stack, seen) for stack in host.loop(plan.stacks)}
    # One loop per call site: pyinfra orders operations by call site and loop position, and
    # hosts with different stacks must not see two sites in opposite orders.
    present, healthy = seen.compose_services()
    # A command whose _if can only be false (no file to change, nothing to fix) is not declared.
    for stack in host.loop([s for s in plan.stacks if s.not_started and (puts[s.service] or s.project in present)]):
        cli = compose(stack.project, stack.directory)
        server.shell(name="Held stacks: compose config valid, not running",
                     commands=[f"{cli} config -q", f"{cli} down --remove-orphans"],
                     _if=_changed(puts[stack.service], or_=stack.project in present))
    started = [s for s in plan.stacks if not s.not_started]
    # Every host passes each phase's barrier before any host starts the next phase's stacks.
    for phase in host.loop(PHASES):
        for stack in host.loop([s for s in started if s.phase == phase and (puts[s.service] or _not_serving(s, healthy))]):
            not_serving = _not_serving(stack, healthy)
            server.shell(name="Started stacks: up and healthy (when changed, stopped or not yet healthy)",
                         commands=[compose_up(stack)],
                         _if=_changed(puts[stack.service], or_=not_serving))
        barrier(name="Every host has started this phase's stacks", label=f"phase {phase}")
    # A run that put the files and failed before the signal leaves nothing changed for the next
    # run to see: the record of what was last signalled keeps the reload owed.
    reloading = [s for s in started if any(c.reload_signal for c in s.containers)
                 and (puts[s.service] or _reload_owed(s, seen))]
    for stack in host.loop(reloading):
        cli = compose(stack.project, stack.directory)
        owed = _reload_owed(stack, seen)
        server.shell(name="Changed config reloaded in place (by signal)",
                     commands=[f"{cli} kill -s {shlex.quote(c.reload_signal)} {shlex.quote(c.name)}"
                               for c in stack.containers if c.reload_signal],
                     _if=_changed(puts[stack.service], or_=owed))
        files.put(name="Reload recorded", src=StringIO(stack.reload_record), dest=_record(stack), mode="644")


def _not_serving(stack: Stack, healthy: dict[str, set[str]]) -> bool:
    return bool({c.name for c in stack.containers} - healthy.get(stack.project, set()))


def _record(stack: Stack) -> str:
    return f"{stack.directory}/{RELOAD_RECORD}"


def _reload_owed(stack: Stack, seen: HostState) -> bool:
    return not seen.file_is(_record(stack), stack.reload_record, 0o644)


def _stack_files(plan: HostRollout, stack: Stack) -> list:
    """The rendered files in this stack's directory, as (path, file), in path order."""
    return [(p, f) for p, f in sorted(plan.render.files.items()) if p.startswith(stack.directory + "/")]


def _changed(ops: list, or_: bool = False) -> Callable[[], bool]:
    """At execute time: did any of these file operations change something?"""
    return lambda: or_ or any(op.did_change() for op in ops)


def _put_files(plan: HostRollout, stack: Stack, seen: HostState) -> list:
    """Operations only for what differs: an unchanged stack has none, so nothing restarts it."""
    ops = []
    if not seen.directory_is(stack.directory, 0o755):
        ops.append(files.directory(name="Stack directory", path=stack.directory, mode="755"))
    changed = [(p, f) for p, f in _stack_files(plan, stack) if not seen.file_is(p, f.content, f.mode)]
    for path, rendered in host.loop(changed):
        ops.append(files.put(name="Stack file", src=StringIO(rendered.content),
                             dest=path, mode=f"{rendered.mode:o}"))
    return ops
