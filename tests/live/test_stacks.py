"""Each host's stacks: the placed ones up and healthy, nothing else running or left behind."""

from __future__ import annotations

import json

PROJECT_LABEL = '{{.Label "com.docker.compose.project"}}'


def test_container_running_and_healthy(container, on, compare):
    result = on(container.host).run("docker inspect %s", container.container)
    if result.rc != 0:
        compare("absent", "running, healthy")
        return
    state = json.loads(result.stdout)[0]["State"]
    found = state["Status"] if state["Status"] != "exited" else f"exited ({state['ExitCode']})"
    if container.healthcheck:
        found += f", {(state.get('Health') or {}).get('Status', 'no healthcheck')}"
    compare(found, "running, healthy" if container.healthcheck else "running")


def test_only_placed_stacks_run(running, on, compare):
    out = on(running.host).check_output("docker ps --format %s", PROJECT_LABEL)
    compare({p for p in out.split() if p}, set(running.projects))


def test_no_stack_left_where_it_moved_from(stacks, on, compare):
    out = on(stacks.host).run("find %s -mindepth 1 -maxdepth 1 -type d", stacks.root).stdout
    compare(set(out.split()), set(stacks.directories))
