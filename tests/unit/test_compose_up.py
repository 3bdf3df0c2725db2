"""The command deploy runs to start a stack names a known start failure from what the container
logged, and fails the run, though compose reported the stack healthy. The shell is run for real,
against a `docker` on PATH that answers as compose does for one scripted case."""

from __future__ import annotations

import os
import subprocess

import pytest

from aistack.operations import compose_up
from aistack.render.containers import Container, Stack

DIED = r"Child process \[[0-9]+\] died"
DOCKER = """#!/bin/sh
# compose's answers for this case: up exits $UP_RC, logs prints $LOGS.
case "$*" in
  *" up "*) exit "$UP_RC" ;;
  *" ps "*) echo "NAME STATUS"; exit 0 ;;
  *" logs "*) printf '%b\\n' "$LOGS"; exit 0 ;;
esac
exit 0
"""


def _run(tmp_path, up_rc: int, logs: str, hints=((DIED, "uvicorn killed workers: raise worker_start_timeout_s"),)):
    (tmp_path / "docker").write_text(DOCKER)
    (tmp_path / "docker").chmod(0o755)
    stack = Stack("gateway", "main", "gateway", "/srv/aistack/stacks/gateway",
                  [Container("litellm", "img", failure_hints=list(hints)), Container("sidecar", "img")])
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "UP_RC": str(up_rc), "LOGS": logs}
    return subprocess.run(["sh", "-c", compose_up(stack)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)


def test_a_healthy_start_that_lost_workers_fails_named(tmp_path):
    run = _run(tmp_path, 0, "INFO: Started server process [9]\\nINFO:     Child process [10] died")
    assert run.returncode == 1
    assert "Child process [10] died" in run.stderr
    assert "gateway/litellm: uvicorn killed workers: raise worker_start_timeout_s" in run.stderr


def test_a_clean_start_passes_silently(tmp_path):
    run = _run(tmp_path, 0, "INFO: Application startup complete.")
    assert (run.returncode, run.stderr) == (0, "")


def test_a_stack_that_never_gets_healthy_quotes_every_log_and_the_cause(tmp_path):
    run = _run(tmp_path, 1, "INFO:     Child process [12] died")
    assert run.returncode == 1
    assert "--- litellm:" in run.stderr and "--- sidecar:" in run.stderr
    assert "gateway/litellm: uvicorn killed workers" in run.stderr


@pytest.mark.parametrize("payload", ["$(touch pwned)", "'; touch pwned; '", "`touch pwned`"])
def test_hint_text_is_quoted(tmp_path, payload):
    run = _run(tmp_path, 0, "boom", hints=(("boom", payload),))
    assert run.returncode == 1 and payload in run.stderr and not (tmp_path / "pwned").exists()
