"""The distributed lane renders as vLLM's own cluster recipe (004, FACTS.md): a Ray head, a worker
per node, and vLLM on the head with the Ray executor, each node pinned to its NIC and address."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from aistack.capacity import lane_capacity, plan, vllm_max_num_seqs
from aistack.inventory import load_cluster
from aistack.render import render_cluster
from tests.conftest import HOMELAB

LANE = {"head": "main", "workers": ["edge"], "gpus_per_node": 1, "tp_size": 1, "pp_size": 2,
        "model": "qwen3.6-35b-a3b", "quant": "UD-Q4_K_M", "nic": "enp5s0", "ib_hca": "mlx5_0",
        "ray_port": 6380,  # Open WebUI's Redis has 6379 on main (see the test below)
        "interconnect": {"kind": "ethernet", "gbps": 100, "mtu": {"main": 9000, "edge": 9000}}}
DISTRIBUTED = ['hosts.edge.accelerators=[{"model": "RTX PRO 4000 Blackwell", "memory_mib": 24467}]',
               f"distributed={json.dumps(LANE)}"]


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    root = tmp_path_factory.mktemp("hosts")
    cluster = load_cluster(HOMELAB, [*DISTRIBUTED, *(f"hosts.{h}.storage.state={root}/{h}" for h in ("main", "edge", "orin", "nx"))])
    rendered = render_cluster(cluster)
    for render in rendered.values():
        for path, file in render.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(file.content)
    return cluster, rendered


def compose(rendered, host, stack):
    render = rendered[host]
    path = f"{render.stacks[stack].directory}/compose.yaml"
    return path, yaml.safe_load(render.files[path].content)["services"]


def test_each_node_runs_ray_start_with_its_own_address_and_the_declared_gpus(lane):
    _, rendered = lane
    _, head = compose(rendered, "main", "ray-head")
    _, worker = compose(rendered, "edge", "ray-edge")
    head, worker = head["ray"], worker["ray"]
    assert 'exec ray "$@"' in head["entrypoint"][2] and head["command"][:2] == ["start", "--block"]
    assert head["command"][head["command"].index("--node-ip-address") + 1] == "192.0.2.10"
    assert "--head" in head["command"] and head["command"][head["command"].index("--port") + 1] == "6380"
    assert worker["command"][worker["command"].index("--address") + 1] == "192.0.2.10:6380"
    assert worker["command"][worker["command"].index("--node-ip-address") + 1] == "192.0.2.11"
    for node in (head, worker):
        assert node["command"][node["command"].index("--num-gpus") + 1] == "1"
        assert node["network_mode"] == "host" and node["shm_size"] == "10.24g"
        assert node["environment"]["NCCL_SOCKET_IFNAME"] == node["environment"]["GLOO_SOCKET_IFNAME"] == "enp5s0"
        assert node["environment"]["NCCL_IB_HCA"] == "mlx5_0"
        assert node["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0"]
    assert head["environment"]["VLLM_HOST_IP"] == "192.0.2.10" and worker["environment"]["VLLM_HOST_IP"] == "192.0.2.11"
    # No dashboard unless the inventory binds one (the seed's 0.0.0.0 is never a default).
    assert head["command"][head["command"].index("--include-dashboard") + 1] == "false"
    # Ray's metrics agent comes with the dashboard packages: no metrics port promised without them.
    assert "--metrics-export-port" not in head["command"] + worker["command"]


def test_vllm_serves_on_the_head_with_ray_pp_and_the_planned_sequences(lane):
    cluster, rendered = lane
    _, services = compose(rendered, "main", "vllm-ray")
    vllm = services["vllm"]
    args = vllm["command"]
    assert args[args.index("--distributed-executor-backend") + 1] == "ray"
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    assert args[args.index("--pipeline-parallel-size") + 1] == "2"
    seqs = vllm_max_num_seqs(lane_capacity(cluster)["vllm-ray"], cluster.services["vllm-ray"])
    assert args[args.index("--max-num-seqs") + 1] == str(seqs) and seqs > 1
    # It waits for both nodes and both GPUs before `vllm serve`, attached to the head's Ray node.
    assert vllm["entrypoint"][:2] == ["sh", "-c"] and "exec vllm serve" in vllm["entrypoint"][2]
    env = vllm["environment"]
    assert (env["RAY_ADDRESS"], env["AISTACK_RAY_NODES"], env["AISTACK_RAY_GPUS"]) == ("192.0.2.10:6380", "2", "2")
    head_tmp = next(v for v in compose(rendered, "main", "ray-head")[1]["ray"]["volumes"] if v.endswith(":/tmp/ray"))
    assert head_tmp in vllm["volumes"]


def test_the_kv_pool_spans_both_nodes_and_the_worker_budget_holds_its_ranks(lane):
    cluster, _ = lane
    capacity = lane_capacity(cluster)["vllm-ray"]
    weights = 21_247  # qwen3.6-35b-a3b UD-Q4_K_M, MiB (catalogue)
    pool = 0.90 * (24_467 + 24_467) - weights
    assert capacity.kv_tokens == pytest.approx(pool * 1024 * 1024 / capacity.kv_bytes_per_token, rel=0.01)
    edge = next(b for b in plan(cluster).budgets if b.host == "edge")
    assert any(i.service == "ray-edge" and "vLLM ranks of vllm-ray" in i.what for i in edge.items)


def test_start_phases_and_the_gateway_alias(lane):
    _, rendered = lane
    phases = {name: rendered[h].stacks[name].phase for h in rendered for name in rendered[h].stacks}
    assert (phases["ray-head"], phases["ray-edge"], phases["vllm-ray"]) == (0, 1, 2)
    gateway = rendered["main"].files[f"{rendered['main'].stacks['gateway'].directory}/config.yaml"].content
    assert 'model_name: "vllm-ray"' in gateway and '"http://192.0.2.10:8000/v1"' in gateway


def test_a_dashboard_is_bound_where_the_inventory_says():
    cluster = load_cluster(HOMELAB, [*DISTRIBUTED, "distributed.dashboard_bind=127.0.0.1"])
    _, services = compose(render_cluster(cluster), "main", "ray-head")
    args = services["ray"]["command"]
    assert args[args.index("--dashboard-host") + 1] == "127.0.0.1" and args[args.index("--dashboard-port") + 1] == "8265"
    assert ("127.0.0.1", 8265) in cluster.services["ray-head"].sockets("192.0.2.10")
    assert args[args.index("--metrics-export-port") + 1] == "8090"
    # GCS and metrics agent have no bind address in Ray: declared (and verified) as every interface.
    assert {("0.0.0.0", 6380), ("0.0.0.0", 8090)} <= set(cluster.services["ray-head"].sockets("192.0.2.10"))


def test_the_lane_compose_files_pass_compose_v2(lane):
    _, rendered = lane
    for host, stack in (("main", "ray-head"), ("edge", "ray-edge"), ("main", "vllm-ray")):
        path, _ = compose(rendered, host, stack)
        result = subprocess.run(["docker", "compose", "-f", path, "config", "-q"], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, f"{path}: {result.stderr}"


def test_a_generated_name_cannot_be_taken():
    from aistack.errors import InventoryError

    with pytest.raises(InventoryError) as refused:
        load_cluster(HOMELAB, [*DISTRIBUTED, 'services.ray-head={"kind": "qdrant", "host": "nx"}'])
    assert "services.ray-head: the name is taken by the service `distributed` generates" in str(refused.value)


def test_rays_gcs_on_every_interface_clashes_with_a_loopback_listener_on_its_port():
    from aistack.errors import InventoryError

    with pytest.raises(InventoryError) as refused:
        load_cluster(HOMELAB, [*DISTRIBUTED, "distributed.ray_port=6379"])
    assert "host main: distributed.ray_port: port 6379 on 0.0.0.0 is already used by webui" in str(refused.value)


def test_the_ray_executor_outside_the_distributed_lane_is_refused_by_name():
    from aistack.errors import InventoryError

    with pytest.raises(InventoryError) as refused:
        load_cluster(HOMELAB, ["services.chat-main.kind=vllm", "services.chat-main.executor=ray"])
    assert "host main: services.chat-main.executor: the Ray executor runs only on the distributed lane" in str(refused.value)
