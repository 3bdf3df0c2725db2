"""The distributed lane's containers: Ray nodes and vLLM on the head with the Ray executor (004).

Follows vLLM's own cluster script (FACTS.md): host network, a large shm, `ray start --block`
per node with the node's own address, VLLM_HOST_IP per node, and the NCCL/GLOO interface
pinned on every node. vLLM runs in its own container beside the head and attaches to the
head's Ray node through the shared /tmp/ray; it serves only once every node and GPU joined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import VLLM, Host, RayNode
from ..model.generated import RAY_HEAD
from .containers import (
    CONTAINER_MODELS,
    GPU_ENGINE_START_S,
    Container,
    Stack,
)
from .engine_args import vllm_args

if TYPE_CHECKING:
    from .stacks import StackBuilder

RAY_TMP = "/tmp/ray"  # Ray's session dir: sockets the vLLM container needs to reach the head's node
WAIT_SCRIPT = "/opt/aistack/wait_for_nodes.py"
JOIN_WAIT_S = 600  # workers may still be pulling a 10 GB image when vLLM starts waiting


def ray_tmp(host: Host) -> str:
    return f"{host.storage.state}/ray/tmp"


def node_env(node_address: str, nic: str | None, ib_hca: str | None) -> dict[str, str]:
    """Per node: vLLM's own address, and NCCL/GLOO pinned to one NIC (an unpinned NIC hangs init, 004)."""
    env = {"VLLM_HOST_IP": node_address}
    if nic:
        env |= {"NCCL_SOCKET_IFNAME": nic, "GLOO_SOCKET_IFNAME": nic}
    if ib_hca:
        env["NCCL_IB_HCA"] = ib_hca
    return env


def ray_start_args(node: RayNode, address: str) -> list[str]:
    """`ray start` for one node, the arguments of `ray` (the container's entrypoint)."""
    args = ["start", "--block", "--disable-usage-stats", "--node-ip-address", address]
    if node.role == "head":
        args += ["--head", "--port", str(node.port)]
        if node.dashboard_bind is None:
            args += ["--include-dashboard", "false"]
        else:
            args += ["--include-dashboard", "true", "--dashboard-host", node.dashboard_bind,
                     "--dashboard-port", str(node.dashboard_port)]
    else:
        args += ["--address", f"{node.head_address}:{node.port}"]
    # Declared, not detected: the node offers exactly the GPUs the lane plans with.
    args += ["--num-gpus", str(node.num_gpus)]
    if node.metrics_port is not None:
        args += ["--metrics-export-port", str(node.metrics_port)]
    if node.object_store_mib is not None:
        args += ["--object-store-memory", str(node.object_store_mib * 1024 * 1024)]
    return args


def ray_node(b: StackBuilder, name: str, node: RayNode, host: Host, stack: Stack) -> None:
    image, _ = b.image(name)
    address = host.address
    stack.phase = 0 if node.role == "head" else 1
    container = Container(
        name="ray",
        image=image,
        # Ray caches a node's ports in its session dir under an id that survives a restart, so a
        # port it refused once was refused on every restart after (seen in the sandbox): start clean.
        entrypoint=["sh", "-c", f'rm -rf {RAY_TMP}/session_* && exec ray "$@"', "ray"],
        command=ray_start_args(node, address),
        environment=node_env(address, node.nic, node.ib_hca) | {"HF_HUB_OFFLINE": "1"},
        volumes=[f"{host.storage.models}:{CONTAINER_MODELS}:ro", f"{ray_tmp(host)}:{RAY_TMP}"],
        shm_size=f"{node.shm_gb:g}g",
        # The GCS answers: for the head its own, for a worker the head it joined.
        healthcheck=["CMD", "ray", "health-check", "--address", f"{node.head_address}:{node.port}"],
    )
    stack.containers.append(b.gpu(container, host, node.gpus))


def vllm_on_ray(b: StackBuilder, name: str, lane: VLLM, host: Host, stack: Stack, max_num_seqs: int) -> None:
    image, _ = b.image(name)
    bind = b.bind(name)
    head = b.cluster.services[RAY_HEAD]
    stack.configs["wait_for_nodes.py"] = ("ray/wait_for_nodes.py", {})
    container = Container(
        name="vllm",
        image=image,
        # Wait for every node and GPU, then hand the process over to `vllm serve`.
        entrypoint=["sh", "-c", f'python3 {WAIT_SCRIPT} && exec vllm serve "$@"', "vllm-serve"],
        command=vllm_args(lane, model=b.model_dir(lane.model), bind=bind, alias=lane.served_name or name,
                          max_num_seqs=max_num_seqs),
        environment=node_env(host.address, head.nic, head.ib_hca) | {
            "RAY_ADDRESS": f"{head.head_address}:{head.port}",
            "AISTACK_RAY_NODES": str(len(b.cluster.distributed.nodes)),
            "AISTACK_RAY_GPUS": str(lane.tp_size * lane.pp_size),
            "AISTACK_RAY_WAIT_S": str(JOIN_WAIT_S),
            "HF_HUB_OFFLINE": "1",
        },
        volumes=[
            f"{host.storage.models}:{CONTAINER_MODELS}:ro",
            f"{ray_tmp(host)}:{RAY_TMP}",
            f"{stack.directory}/wait_for_nodes.py:{WAIT_SCRIPT}:ro",
        ],
        shm_size=f"{head.shm_gb:g}g",
        healthcheck=b.probe(name, lane.port, "/health"),
        start_period_s=GPU_ENGINE_START_S + JOIN_WAIT_S,
    )
    stack.containers.append(b.gpu(container, host, lane.gpus))
