"""Services the cluster's own blocks imply: the distributed lane's Ray nodes and vLLM engine, and
the monitoring stack on every host.

The inventory says `distributed:` and `monitoring:` once; what they imply becomes ordinary
services, so every check (ports, images, memory), render, rollout and verify step sees them
without a special case. Their names are reserved: a written service of the same name is an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import Problem
from .hosts import Platform
from .services import (
    VLLM,
    Gateway,
    GpuExporter,
    Grafana,
    NodeExporter,
    Prometheus,
    RayNode,
    Route,
)

if TYPE_CHECKING:
    from .cluster import Cluster, Monitoring, RayLane

RAY_HEAD = "ray-head"  # the head node's service; workers are ray-<host>


def add_generated(cluster: Cluster) -> list[Problem]:
    """Add the generated services to `cluster.services`; problems name the block that implies them."""
    generated: dict[str, Any] = {}
    problems: list[Problem] = []
    lane = cluster.distributed
    if lane is not None and all(node in cluster.hosts for node in lane.nodes):
        generated |= distributed_services(cluster, lane)
    if cluster.monitoring.enabled:
        generated |= monitoring_services(cluster, cluster.monitoring)
    for name, service in generated.items():
        if name in cluster.services:
            block = "distributed" if isinstance(service, (RayNode, VLLM)) else "monitoring"
            problems.append(Problem(cluster.services[name].host, f"services.{name}",
                                    f"the name is taken by the service `{block}` generates: rename this one"))
        else:
            cluster.services[name] = service
    if lane is not None and lane.name in cluster.services:
        _add_alias(cluster, lane.name)
    return problems


def distributed_services(cluster: Cluster, lane: RayLane) -> dict[str, Any]:
    """Ray head, one Ray worker per worker host, and vLLM on the head with the Ray executor (004)."""
    head = cluster.hosts[lane.head]

    def gpus(host_name: str) -> list[int]:
        # The GPUs the node's container gets; on a host without enough, preflight BLOCKs the lane.
        return list(range(min(lane.gpus_per_node, len(cluster.hosts[host_name].accelerators))))

    def node(host_name: str, role: str) -> RayNode:
        return RayNode(
            kind="ray", role=role, lane=lane.name, host=host_name, head_address=head.address, port=lane.ray_port,
            gpus=gpus(host_name), num_gpus=lane.gpus_per_node, nic=lane.nic, ib_hca=lane.ib_hca,
            dashboard_bind=lane.dashboard_bind if role == "head" else None, dashboard_port=lane.dashboard_port,
            # Ray's metrics agent comes with its dashboard packages (ray[default]): scraped only then.
            metrics_port=lane.metrics_port if lane.dashboard_bind is not None else None,
            object_store_mib=lane.object_store_mib, shm_gb=lane.shm_gb, image=lane.image,
            engine_share=lane.gpu_memory_utilization if role == "worker" else None,
        )

    found: dict[str, Any] = {RAY_HEAD: node(lane.head, "head")}
    found |= {f"ray-{worker}": node(worker, "worker") for worker in lane.workers}
    found[lane.name] = VLLM(
        kind="vllm", host=lane.head, port=lane.port, bind=lane.bind, model=lane.model, quant=lane.quant,
        gpus=gpus(lane.head), tp_size=lane.tp_size, pp_size=lane.pp_size, executor="ray",
        gpu_memory_utilization=lane.gpu_memory_utilization,
        image=lane.image, not_started=lane.not_started,
    )
    return found


def monitoring_services(cluster: Cluster, mon: Monitoring) -> dict[str, Any]:
    """Prometheus and Grafana beside the gateway (or on `monitoring.host`), a node exporter on
    every host, a GPU exporter on every host with a GPU."""
    _, gateway = cluster.one(Gateway)
    where = mon.host or (gateway.host if gateway else next(iter(cluster.hosts), None))
    if where not in cluster.hosts:
        return {}  # an unknown monitoring.host: _check_monitoring names it
    held = mon.not_started
    found: dict[str, Any] = {
        "prometheus": Prometheus(kind="prometheus", host=where, port=mon.prometheus_port, bind=mon.bind,
                                 not_started=held.get("prometheus")),
        "grafana": Grafana(kind="grafana", host=where, port=mon.grafana_port, bind=mon.bind,
                           not_started=held.get("grafana")),
    }
    for host in cluster.hosts.values():
        if mon.node_exporter:
            found[f"node-exporter-{host.name}"] = NodeExporter(
                kind="node-exporter", host=host.name, port=mon.node_exporter_port, not_started=held.get("node-exporter"))
        if mon.gpu_exporter and host.accelerators:
            port = mon.jetson_exporter_port if host.platform is Platform.JETSON else mon.dcgm_port
            found[f"gpu-exporter-{host.name}"] = GpuExporter(
                kind="gpu-exporter", host=host.name, port=port, gpus=list(range(len(host.accelerators))),
                not_started=held.get("gpu-exporter"))
    return found


def port_field(name: str, service: Any, port: int) -> str:
    """The inventory field a port comes from: a generated service's port is set in its block."""
    if isinstance(service, RayNode):
        attr = {service.port: "ray_port", service.dashboard_port: "dashboard_port", service.metrics_port: "metrics_port"}[port]
        return f"distributed.{attr}"
    if isinstance(service, VLLM) and service.executor == "ray":
        return "distributed.port"
    block = {Prometheus: "prometheus_port", Grafana: "grafana_port", NodeExporter: "node_exporter_port"}
    for kind, attr in block.items():
        if isinstance(service, kind):
            return f"monitoring.{attr}"
    if isinstance(service, GpuExporter):
        return "monitoring.dcgm_port / jetson_exporter_port"
    return f"services.{name}.port"


def _add_alias(cluster: Cluster, lane: str) -> None:
    """The lane answers under its own name at the gateway, unless the site routes that alias itself."""
    for gateway in cluster.of_kind(Gateway).values():
        if lane not in gateway.aliases:
            gateway.aliases = {**gateway.aliases, lane: [Route(service=lane)]}
