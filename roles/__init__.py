"""pyinfra roles, in the order deploy.py runs them: host, runtime, models, images, secrets, stacks.

Each role declares what it reads (``reads``); ``observed`` asks a host all of it in one command,
once per run, and every role decides from that answer (aistack.host_state says why).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from gevent.lock import RLock
from pyinfra.api.state import State
from pyinfra.context import ctx_state

from aistack.host_state import HostState, StateQuery, read_state
from aistack.rollout import Rollout

from . import artifacts, base, docker_engine, nvidia, stacks

_SEEN: WeakKeyDictionary[State, dict[str, HostState]] = WeakKeyDictionary()  # per run, per host
# Hosts prepare in parallel greenlets: a host that another one asks about is still read once.
_READING: WeakKeyDictionary[State, dict[str, RLock]] = WeakKeyDictionary()


def state_query(rollout: Rollout, name: str) -> StateQuery:
    plan = rollout.hosts[name]
    return StateQuery.merge(base.reads(plan.host), docker_engine.reads(plan.host), nvidia.reads(plan.host),
                            artifacts.reads(rollout, name), stacks.reads(plan))


def observed(rollout: Rollout, name: str) -> HostState:
    """Host ``name``'s state, read the first time this run asks for it (its own deploy.py run, or
    another host's secret copy comparing digests with it)."""
    run = ctx_state.get()
    seen = _SEEN.setdefault(run, {})
    with _READING.setdefault(run, {}).setdefault(name, RLock()):
        if name not in seen:
            seen[name] = read_state(run.inventory.get_host(name), state_query(rollout, name))
    return seen[name]
