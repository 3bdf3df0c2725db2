"""Each host: the container runtime, its kernel and descriptor limits, and what listens where."""

from __future__ import annotations

import re

import pytest

LIMIT = re.compile(r"^Max open files\s+(\d+|unlimited)\s+", re.MULTILINE)


def test_docker_engine_and_compose_v2(runtime, on, compare):
    host = on(runtime.host)
    engine = host.run("docker info --format '{{.ServerVersion}}'")
    compose = host.run("docker compose version --short")
    found = f"engine {engine.stdout.strip() or 'down'}, compose {compose.stdout.strip() or 'absent'}"
    compare(found, "engine answering, compose 2.x",
            ok=engine.rc == 0 and compose.rc == 0 and compose.stdout.strip().lstrip("v").startswith("2."))


def test_sysctl(sysctl, on, compare):
    compare(" ".join(str(on(sysctl.host).sysctl(sysctl.key)).split()), " ".join(sysctl.value.split()))


def test_container_open_files_limit(open_files, on, compare):
    host = on(open_files.host)
    pid = host.run("docker inspect -f '{{.State.Pid}}' %s", open_files.container).stdout.strip()
    limits = host.run("cat /proc/%s/limits", pid).stdout if pid not in ("", "0") else ""
    match = LIMIT.search(limits)
    compare(int(match.group(1)) if match and match.group(1).isdigit() else "not running", open_files.limit)


def test_ports_listen_on_declared_addresses_only(listening, on, compare):
    sockets = on(listening.host).socket.get_listening_sockets()
    found = {s.split("://", 1)[1].rsplit(":", 1)[0] or "*" for s in sockets
             if s.startswith("tcp://") and s.rsplit(":", 1)[1] == str(listening.port)}
    compare(found, set(listening.addresses))


def test_gpu_visible_inside_gpu_containers(gpu, on, compare):
    if gpu.container is None:
        pytest.skip(f"{gpu.host}: no container here runs on a GPU")
    host = on(gpu.host)
    if gpu.jetson:  # the nvidia runtime maps the iGPU's nvmap/nvhost devices in
        found = host.run("docker exec %s sh -c 'ls /dev/nvmap'", gpu.container)
        compare("/dev/nvmap" if found.rc == 0 else found.stderr.strip(), "/dev/nvmap")
    else:
        listed = host.run("docker exec %s nvidia-smi -L", gpu.container)
        count = sum(line.startswith("GPU ") for line in listed.stdout.splitlines())
        compare(f"{count} GPU(s)" if listed.rc == 0 else listed.stderr.strip()[:200], f"{gpu.gpus} GPU(s)")
