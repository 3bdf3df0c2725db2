"""The bridge from a running `pyinfra ... deploy.py` to the rollout decided on the control machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn
from weakref import WeakKeyDictionary

import gevent
from pyinfra import host, logger
from pyinfra.api.state import BaseStateCallback, State
from pyinfra.context import ctx_state

from .errors import InventoryError, Problem, UsageError
from .models_lock import ModelLock, load_model_lock
from .preflight import Level
from .rollout import Rollout, RolloutRefused, prepare

EXIT_BLOCK, EXIT_USAGE = Level.BLOCK.value, 2

# Per run: keyed by the State itself (pyinfra.state is a proxy whose id is the same for every run).
_CACHE: WeakKeyDictionary[State, Rollout] = WeakKeyDictionary()


def overrides_from_data(run: State) -> list[str]:
    """`--data aistack_set='["a.b=1", ...]'` (pyinfra reads the JSON) or a single 'a.b=1'."""
    value = _first_data(run, "aistack_set") or []
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else [value]
        except json.JSONDecodeError as exc:
            raise UsageError(f"--data aistack_set: not a JSON list ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError("--data aistack_set: a JSON list of \"dotted.path=value\" strings")
    return value


def model_lock_from_data(run: State) -> ModelLock | None:
    """`--data aistack_model_lock=PATH`: another model lock (tests; a staged lock update)."""
    path = _first_data(run, "aistack_model_lock")
    if path is None:
        return None
    if not isinstance(path, str) or not path:
        raise UsageError("--data aistack_model_lock: a path to a model lock file")
    return load_model_lock(Path(path), must_exist=True)


def _first_data(run: State, key: str):
    first = next(iter(run.inventory), None)
    return first.data.get(key) if first is not None else None


def current_rollout(run: State | None = None) -> Rollout:
    """Prepared once per run; a refusal stops the run before any host is dialled (see Gate)."""
    run = run or ctx_state.get()
    if run not in _CACHE:
        try:
            _CACHE[run] = prepare(run.inventory, overrides_from_data(run), model_lock=model_lock_from_data(run))
        except (InventoryError, RolloutRefused) as exc:
            _refuse(exc.problems)
        except UsageError as exc:
            _refuse([Problem(None, "usage", str(exc))], code=EXIT_USAGE)
        for stack_host, plan in _CACHE[run].hosts.items():
            for stack in plan.stacks:
                if stack.not_started:
                    logger.warning(f"{stack_host}: {stack.service} rendered and validated, not started: {stack.not_started}")
    return _CACHE[run]


class Refused(SystemExit):
    """The run's exit, raised in the greenlet that dials a host: gevent passes a SystemExit on to
    the main greenlet quietly (its reasons are already printed), and pyinfra's own handlers,
    which catch Exception, let it through."""


def _refuse(problems: list[Problem], code: int = EXIT_BLOCK) -> NoReturn:
    """Every reason on its own line, then exit: no traceback, no host touched."""
    logger.error(f"aistack refused the rollout ({len(problems)} problem(s)); nothing was changed:")
    for problem in problems:
        logger.error(f"REFUSED {problem}")
    raise Refused(code)


class Gate(BaseStateCallback):
    """pyinfra's hook before it dials a host: the cluster is validated, preflighted and rendered
    first, so a refusal prints its reasons with no SSH attempt. config.py (read by pyinfra
    before the inventory) registers it."""

    @staticmethod
    def host_before_connect(state: State, host) -> None:  # noqa: ARG004 (pyinfra's signature)
        try:
            current_rollout(state)
        except Refused:
            # The other hosts' connects are greenlets not started yet: none of them may dial.
            for other in list(state.pool.greenlets):
                if other is not gevent.getcurrent():
                    other.kill(block=False)
            raise


def gate_after_init(run: State) -> None:
    """Register the Gate on this state as soon as State.init has made its callback list."""
    init = run.init

    def init_then_gate(*args, **kwargs):
        init(*args, **kwargs)
        run.add_callback_handler(Gate())

    run.init = init_then_gate


def runtime_pending(runtime_ops: list, force: bool) -> bool:
    """Will this run change the container runtime? Then stack changes wait for the next run (001).

    Read before execution (pyinfra's will_change runs the operations' fact checks): holding back
    stack files is a decision about this run, made before it starts.
    """
    pending = [op for op in runtime_ops if op.will_change]
    if pending and not force:
        logger.warning(f"{host.name}: container runtime changes this run; stack changes are held for the next "
                       "run (or pass --data force_runtime=true)")
    return bool(pending) and not force
