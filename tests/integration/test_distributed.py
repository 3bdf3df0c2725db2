"""The distributed lane's rendered Ray start commands form a real two-node cluster in the sandbox
(nx head, orin worker, CPU Ray from PyPI); vLLM's own container attaches to it the way the
rendered compose file says and sees every node and GPU the model declares before it would serve."""

from __future__ import annotations

import re
import time

import pytest

from aistack.inventory import load_cluster
from tests.integration.sandbox_run import SANDBOX, ssh

VLLM_STACK = "/srv/aistack/stacks/vllm-ray"


@pytest.fixture(scope="module")
def lane(converged):
    return load_cluster(SANDBOX).distributed


def ray_status(head: str) -> str:
    return ssh(head, "docker exec ray-head-ray-1 ray status")


def active_nodes(status: str) -> int:
    return len(re.findall(r"\bnode_[0-9a-f]+", status.split("Active:")[1].split("Pending:")[0]))


def test_ray_status_shows_both_nodes_with_the_declared_gpus(lane):
    status = ray_status(lane.head)
    assert active_nodes(status) == len(lane.nodes), status
    gpus = len(lane.nodes) * lane.gpus_per_node
    assert re.search(rf"\b0\.0/{gpus}\.0 GPU\b", status), status
    assert re.search(r"/200\.00MiB object_store_memory", status), status  # 100 MiB per node, as declared


def compose_run(env: str = "") -> str:
    """The held vLLM service's own container (image, env, volumes as rendered), running only the wait."""
    cli = f"docker compose -p vllm-ray -f {VLLM_STACK}/compose.yaml run --rm --no-deps {env}"
    return ssh("nx", f"{cli} --entrypoint python3 vllm /opt/aistack/wait_for_nodes.py; echo exit=$?")


def test_the_vllm_container_attaches_and_sees_every_node_before_serving(lane):
    out = compose_run()
    assert "ray: 2/2 nodes, 2/2 GPUs" in out and out.strip().endswith("exit=0"), out


def test_the_wait_gives_up_and_says_why_when_a_node_is_missing(lane):
    out = compose_run("-e AISTACK_RAY_NODES=3 -e AISTACK_RAY_WAIT_S=3")
    assert "ray: 2/3 nodes" in out and out.strip().endswith("exit=1"), out


def test_a_worker_restarts_clean_after_ray_refused_a_port(lane, sandbox):
    """Ray caches a node's ports in the session dir under its address and plasma socket name. A
    start that Ray refuses (a port inside its worker ports) dies before making the socket, so every
    restart after reused the same name, the same cached port and died again (28 restarts in the
    sandbox). Poison the entry the next start will read: the node must still come back."""
    worker = lane.workers[0]
    container = f"ray-{worker}-ray-1"
    poison = ("import json, os\n"
              "session = os.path.realpath('/tmp/ray/session_latest')\n"
              "name, i = 'plasma_store', 0\n"
              "while os.path.exists(f'{session}/sockets/{name}'):\n"
              "    i += 1; name = f'plasma_store.{i}'\n"
              "path = f'{session}/ports_by_node.json'\n"
              "ports = json.load(open(path))\n"
              f"ports[f'{sandbox.hosts[worker].address}:{{session}}/sockets/{{name}}'] = {{'metrics_export_port': 16392}}\n"
              "json.dump(ports, open(path, 'w'))\n")
    restarts = f"docker inspect -f '{{{{.RestartCount}}}}' {container}"
    before = ssh(worker, restarts)
    ssh(worker, f"docker exec {container} python3 -c \"{poison}\" && docker restart {container}")
    time.sleep(15)  # a refused `ray start` exits within seconds and its restart policy counts it
    assert ssh(worker, restarts) == before, ssh(worker, f"docker logs --tail 5 {container} 2>&1")
    deadline = time.monotonic() + 90
    while active_nodes(ray_status(lane.head)) != len(lane.nodes) and time.monotonic() < deadline:
        time.sleep(3)
    assert active_nodes(status := ray_status(lane.head)) == len(lane.nodes), status
