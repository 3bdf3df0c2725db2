"""Compose stacks: prune what moved away, put files, and start a stack only when its files changed.

GPU engines take minutes to load a model: a stack whose files are unchanged and whose
containers are up and healthy is never touched. One that is still starting (a host that just
rebooted) or stopped gets `up --wait`, so a run ends only when what it reports is serving.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from hashlib import sha256
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.docker import DockerContainers
from pyinfra.facts.files import FindDirectories, Sha256File
from pyinfra.operations import files, server

from aistack.operations import barrier, compose, compose_up, stack_absent
from aistack.render.containers import Stack
from aistack.rollout import HostRollout

PROJECT_LABEL = "com.docker.compose.project"
RELOAD_RECORD = ".reloaded"  # beside a stack's files: the config digests its containers were last signalled for
PHASES = (0, 1, 2)  # Ray heads, Ray workers, everything else (aistack.render.containers.Stack.phase)


@deploy("Stacks")
def converge(plan: HostRollout) -> None:
    root = f"{plan.host.storage.state}/stacks"
    wanted = {stack.directory for stack in plan.stacks}
    for directory in host.loop(sorted(set(host.get_fact(FindDirectories, path=root, maxdepth=1) or []) - wanted - {root})):
        stack_absent(name="Remove stacks no longer placed here", directory=directory,
                     project=directory.rsplit("/", 1)[1])
    puts = {stack.service: _put_files(plan, stack) for stack in host.loop(plan.stacks)}
    # One loop per call site: pyinfra orders operations by call site and loop position, and
    # hosts with different stacks must not see two sites in opposite orders.
    present, healthy = _project_services()
    for stack in host.loop([s for s in plan.stacks if s.not_started]):
        cli = compose(stack.project, stack.directory)
        server.shell(name="Held stacks: compose config valid, not running",
                     commands=[f"{cli} config -q", f"{cli} down --remove-orphans"],
                     _if=_changed(puts[stack.service], or_=stack.project in present))
    started = [s for s in plan.stacks if not s.not_started]
    # Every host passes each phase's barrier before any host starts the next phase's stacks.
    for phase in host.loop(PHASES):
        for stack in host.loop([s for s in started if s.phase == phase]):
            not_serving = bool({c.name for c in stack.containers} - healthy.get(stack.project, set()))
            server.shell(name="Started stacks: up and healthy (when changed, stopped or not yet healthy)",
                         commands=[compose_up(stack)],
                         _if=_changed(puts[stack.service], or_=not_serving))
        barrier(name="Every host has started this phase's stacks", label=f"phase {phase}")
    for stack in host.loop([s for s in started if any(c.reload_signal for c in s.containers)]):
        cli = compose(stack.project, stack.directory)
        record = f"{stack.directory}/{RELOAD_RECORD}"
        # A run that put the files and failed before the signal leaves nothing changed for the
        # next run to see: the record of what was last signalled keeps the reload owed.
        owed = host.get_fact(Sha256File, path=record) != sha256(stack.reload_record.encode()).hexdigest()
        server.shell(name="Changed config reloaded in place (by signal)",
                     commands=[f"{cli} kill -s {shlex.quote(c.reload_signal)} {shlex.quote(c.name)}"
                               for c in stack.containers if c.reload_signal],
                     _if=_changed(puts[stack.service], or_=owed))
        files.put(name="Reload recorded", src=StringIO(stack.reload_record), dest=record, mode="644")


def _changed(ops: list, or_: bool = False) -> Callable[[], bool]:
    """At execute time: did any of these file operations change something?"""
    return lambda: or_ or any(op.did_change() for op in ops)


def _put_files(plan: HostRollout, stack: Stack) -> list:
    ops = [files.directory(name="Stack directory", path=stack.directory, mode="755")]
    for path, rendered in host.loop([(p, f) for p, f in sorted(plan.render.files.items()) if p.startswith(stack.directory + "/")]):
        ops.append(files.put(name="Stack file", src=StringIO(rendered.content),
                             dest=path, mode=f"{rendered.mode:o}"))
    return ops


def _project_services() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Compose project -> its services with a container in any state (a crash-looping one
    included), and -> those running and healthy (or running without a healthcheck)."""
    present: dict[str, set[str]] = {}
    healthy: dict[str, set[str]] = {}
    for container in host.get_fact(DockerContainers) or []:
        labels = container.get("Config", {}).get("Labels") or {}
        if PROJECT_LABEL not in labels:
            continue
        project, service = labels[PROJECT_LABEL], labels.get("com.docker.compose.service", "")
        present.setdefault(project, set()).add(service)
        state = container.get("State", {})
        if state.get("Running") and (state.get("Health") or {}).get("Status", "healthy") == "healthy":
            healthy.setdefault(project, set()).add(service)
    return present, healthy
