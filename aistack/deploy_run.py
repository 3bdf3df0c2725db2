"""The bridge from a running `pyinfra ... deploy.py` to the rollout decided on the control machine."""

from __future__ import annotations

import json
from pathlib import Path

from pyinfra import host, logger, state
from pyinfra.api.exceptions import PyinfraError

from .models_lock import ModelLock, load_model_lock
from .rollout import Rollout, RolloutRefused, prepare

_CACHE: dict[int, Rollout] = {}


def overrides_from_data() -> list[str]:
    """`--data aistack_set='["a.b=1", ...]'` (pyinfra reads the JSON) or a single 'a.b=1'."""
    first = next(iter(state.inventory))
    value = first.data.get("aistack_set") or []
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else [value]
    return list(value)


def model_lock_from_data() -> ModelLock | None:
    """`--data aistack_model_lock=PATH`: another model lock (tests; a staged lock update)."""
    path = next(iter(state.inventory)).data.get("aistack_model_lock")
    return load_model_lock(Path(path)) if path else None


def current_rollout() -> Rollout:
    """Prepared once per run (deploy.py runs per host); a refusal stops the run before any change."""
    key = id(state)
    if key not in _CACHE:
        try:
            _CACHE[key] = prepare(state.inventory, overrides_from_data(), model_lock=model_lock_from_data())
        except RolloutRefused as exc:
            for problem in exc.problems:
                logger.error(f"REFUSED {problem}")
            raise PyinfraError(f"aistack refused the rollout ({len(exc.problems)} problem(s)); nothing was changed:\n"
                               + "\n".join(f"  - {p}" for p in exc.problems)) from None
        for stack_host, plan in _CACHE[key].hosts.items():
            for stack in plan.stacks:
                if stack.not_started:
                    logger.warning(f"{stack_host}: {stack.service} rendered and validated, not started: {stack.not_started}")
    return _CACHE[key]


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
