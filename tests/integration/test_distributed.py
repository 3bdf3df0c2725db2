"""The distributed lane's rendered Ray start commands form a real two-node cluster in the sandbox
(nx head, orin worker, CPU Ray from PyPI); vLLM's own container attaches to it the way the
rendered compose file says and sees every node and GPU the model declares before it would serve."""

from __future__ import annotations

import re

import pytest

from aistack.inventory import load_cluster
from tests.integration.sandbox_run import SANDBOX, ssh

VLLM_STACK = "/srv/aistack/stacks/vllm-ray"


@pytest.fixture(scope="module")
def lane(converged):
    return load_cluster(SANDBOX).distributed


def test_ray_status_shows_both_nodes_with_the_declared_gpus(lane):
    status = ssh(lane.head, "docker exec ray-head-ray-1 ray status")
    active = status.split("Active:")[1].split("Pending:")[0]
    assert len(re.findall(r"\bnode_[0-9a-f]+", active)) == len(lane.nodes), status
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
