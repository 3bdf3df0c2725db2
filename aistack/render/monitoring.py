"""Monitoring from the model: what Prometheus scrapes, what it alerts on, what Grafana shows.

Scrape targets are the services the cluster runs (a held stack is not scraped; a parked lane
is, so a lane started by hand beside the active one shows up). Every PromQL expression is
built here from the metric names below, which tests check against the engines themselves:
llama.cpp and LiteLLM live in the sandbox, vLLM and SGLang in their pinned versions' source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import (
    VLLM,
    Cluster,
    Gateway,
    GpuExporter,
    Grafana,
    Host,
    LlamaCpp,
    NodeExporter,
    Platform,
    Prometheus,
    RayNode,
    SGLang,
)
from .containers import (
    Container,
    Secret,
    Stack,
    secret_file,
)
from .dashboards import dashboards

if TYPE_CHECKING:
    from .stacks import StackBuilder

PROMETHEUS_UID = 65534  # the prom/prometheus image runs as nobody
GATEWAY_KEY = "/etc/prometheus/gateway.key"

# Metric names, per exporter, as the pinned versions expose them (see tests/render/test_monitoring*).
LLAMACPP = {
    "busy": "llamacpp:requests_processing",  # busy slots
    "deferred": "llamacpp:requests_deferred",  # requests waiting for a slot
    "decode_rate": "llamacpp:predicted_tokens_seconds",
    "prompt_tokens": "llamacpp:prompt_tokens_total",
    "prompt_cached": "llamacpp:prompt_tokens_cached_total",
}
VLLM_METRICS = {
    "ttft": "vllm:time_to_first_token_seconds_bucket",
    "itl": "vllm:inter_token_latency_seconds_bucket",
    "kv": "vllm:kv_cache_usage_perc",
    "preemptions": "vllm:num_preemptions_total",
    "waiting": "vllm:num_requests_waiting",
    "running": "vllm:num_requests_running",
    "prefix_queries": "vllm:prefix_cache_queries_total",
    "prefix_hits": "vllm:prefix_cache_hits_total",
}
SGLANG_METRICS = {
    "ttft": "sglang:time_to_first_token_seconds_bucket",
    "itl": "sglang:inter_token_latency_seconds_bucket",
    "kv": "sglang:token_usage",
    "preemptions": "sglang:num_retracted_requests_total",  # SGLang calls a preemption a retraction
    "waiting": "sglang:num_queue_reqs",
    "running": "sglang:num_running_reqs",
    "cache_hit_rate": "sglang:cache_hit_rate",
}
LITELLM = {
    "latency": "litellm_request_total_latency_metric_bucket",  # label model_group: the alias
    "requests": "litellm_proxy_total_requests_metric_total",
    "failures": "litellm_proxy_failed_requests_metric_total",  # counts scrapes too: filter route
}
DCGM = {
    "temp": "DCGM_FI_DEV_GPU_TEMP",
    "power": "DCGM_FI_DEV_POWER_USAGE",
    "util": "DCGM_FI_DEV_GPU_UTIL",
    "fb_used": "DCGM_FI_DEV_FB_USED",
    "fb_free": "DCGM_FI_DEV_FB_FREE",
    "xid": "DCGM_FI_DEV_XID_ERRORS",  # the last Xid seen, 0 when none
    "ecc_dbe": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "thermal_violation": "DCGM_FI_DEV_THERMAL_VIOLATION",  # time clocks were held down by heat
}
# The exporter's default counters leave ECC and throttling out: ship our own list, every row
# the dashboards and alerts read (field, Prometheus type, help), as dcgm-exporter's CSV takes it.
DCGM_COUNTERS = [
    (DCGM["temp"], "gauge", "GPU temperature (in C)."),
    (DCGM["power"], "gauge", "Power draw (in W)."),
    (DCGM["util"], "gauge", "GPU utilization (in %)."),
    (DCGM["fb_used"], "gauge", "Framebuffer memory used (in MiB)."),
    (DCGM["fb_free"], "gauge", "Framebuffer memory free (in MiB)."),
    (DCGM["xid"], "gauge", "Value of the last XID error encountered."),
    (DCGM["ecc_dbe"], "counter", "Total number of double-bit volatile ECC errors."),
    (DCGM["thermal_violation"], "counter", "Throttling duration due to thermal constraints (in us)."),
]
JETSON = {
    "ram_used": "jetson_ram_used_bytes",
    "ram_total": "jetson_ram_total_bytes",
    "gpu_util": "jetson_gpu_utilization_ratio",
    "temp": "jetson_temperature_celsius",
    "power": "jetson_power_milliwatts",
}
NODE = {"mem_available": "node_memory_MemAvailable_bytes", "mem_total": "node_memory_MemTotal_bytes"}


@dataclass
class Target:
    address: str
    labels: dict[str, str]


@dataclass
class Job:
    name: str
    targets: list[Target] = field(default_factory=list)
    path: str = "/metrics"
    bearer_file: str | None = None


@dataclass(frozen=True)
class Rule:
    alert: str
    expr: str
    for_: str
    severity: str
    summary: str


# ---- scrape targets --------------------------------------------------------------------


def _runs(service) -> bool:
    return service.not_started is None


def lane_state(cluster: Cluster, name: str) -> str:
    """active / parked for generation lanes; 'service' for embedding, rerank and other servers."""
    service = cluster.services[name]
    if name in cluster.lanes():
        return "active" if service.active else "parked"
    return "service"


def scrape_jobs(cluster: Cluster, from_host: Host, reach) -> list[Job]:
    """Every endpoint Prometheus on `from_host` scrapes, grouped by exporter kind."""
    jobs: dict[str, Job] = {}

    def add(job: str, name: str, port: int, **labels: str) -> None:
        service = cluster.services[name]
        address = reach(name, from_host)
        labels = {"host": service.host, "service": name, **labels}
        jobs.setdefault(job, Job(job)).targets.append(Target(f"{address}:{port}", labels))

    for name, service in sorted(cluster.services.items()):
        if not _runs(service):
            continue
        gpus = ",".join(str(i) for i in getattr(service, "gpus", [])) or "none"
        if isinstance(service, LlamaCpp) and service.metrics:
            add("llamacpp", name, service.port, lane_state=lane_state(cluster, name), gpus=gpus)
        elif isinstance(service, SGLang) and service.enable_metrics:
            add("sglang", name, service.port, lane_state=lane_state(cluster, name), gpus=gpus)
        elif isinstance(service, VLLM):
            add("vllm", name, service.port, lane_state=lane_state(cluster, name), gpus=gpus)
        elif isinstance(service, Gateway) and service.host == from_host.name:
            # Scraped with the gateway's key, which only its own host holds.
            add("litellm", name, service.port)
        elif isinstance(service, NodeExporter):
            add("node", name, service.port)
        elif isinstance(service, GpuExporter):
            jetson = cluster.hosts[service.host].platform is Platform.JETSON
            add("tegrastats" if jetson else "dcgm", name, service.port)
        elif isinstance(service, RayNode) and service.metrics_port is not None:
            add("ray", name, service.metrics_port, role=service.role)
        elif isinstance(service, Prometheus):
            add("prometheus", name, service.port)
    if "litellm" in jobs:
        # LiteLLM's /metrics needs its key since v1.85 (FACTS.md), and redirects to /metrics/.
        jobs["litellm"].bearer_file = GATEWAY_KEY
        jobs["litellm"].path = "/metrics/"
    return list(jobs.values())


# ---- alert rules -----------------------------------------------------------------------


def alert_rules(cluster: Cluster) -> list[Rule]:
    """The alerts the seeds asked for, with the model's thresholds."""
    a = cluster.monitoring.alerts
    v, s, ll, d, j = VLLM_METRICS, SGLANG_METRICS, LLAMACPP, DCGM, JETSON
    window = f"{a.queue_growth_minutes}m"
    lanes = 'job=~"llamacpp|sglang|vllm"'
    return [
        Rule("KvCacheNearlyFull", f"{v['kv']} > {a.kv_cache_ratio} or {s['kv']} > {a.kv_cache_ratio}", "2m", "warning",
             f"KV cache above {a.kv_cache_ratio:.0%} on {{{{ $labels.service }}}}: preemption pauses come next (003)"),
        Rule("Preemptions", f"increase({v['preemptions']}[5m]) > 0 or increase({s['preemptions']}[5m]) > 0", "0m", "warning",
             "{{ $labels.service }} preempted requests: users see pauses mid-answer (003)"),
        Rule("QueueGrowing",
             f"(deriv({v['waiting']}[{window}]) > 0 and {v['waiting']} > 0)"
             f" or (deriv({s['waiting']}[{window}]) > 0 and {s['waiting']} > 0)"
             f" or (deriv({ll['deferred']}[{window}]) > 0 and {ll['deferred']} > 0)",
             window, "warning", "{{ $labels.service }}: requests queue faster than they finish (000)"),
        Rule("GpuHot", f"{d['temp']} > {a.gpu_temp_c} or {j['temp']}{{sensor=~\"gpu|tj\"}} > {a.gpu_temp_c}", "5m",
             "critical", f"{{{{ $labels.host }}}} GPU above {a.gpu_temp_c} C: it will throttle (004)"),
        Rule("GpuXid", f"{d['xid']} > 0", "0m", "critical", "{{ $labels.host }} GPU reported Xid {{ $value }} (001)"),
        Rule("GpuEccErrors", f"increase({d['ecc_dbe']}[10m]) > 0", "0m", "critical",
             "{{ $labels.host }} GPU has uncorrectable ECC errors (004)"),
        Rule("GpuThrottled", f"rate({d['thermal_violation']}[5m]) > 0", "5m", "warning", "{{ $labels.host }} GPU clocks held down by heat or power (004)"),
        Rule("JetsonMemoryHigh", f"{j['ram_used']} / {j['ram_total']} > {a.jetson_memory_ratio}", "2m", "critical",
             f"{{{{ $labels.host }}}} unified memory above {a.jetson_memory_ratio:.0%}: the Orin froze there (000)"),
        Rule("LaneDown", f'up{{{lanes}, lane_state="active"}} == 0', "2m", "critical",
             "{{ $labels.service }} on {{ $labels.host }} is not answering (001)"),
        Rule("GpuLaneCount", f'sum by (host, gpus) (up{{{lanes}, lane_state=~"active|parked", gpus!="none"}}) != 1',
             "5m", "critical", "{{ $value }} lanes up on {{ $labels.host }} GPU {{ $labels.gpus }}: exactly one may own it (001)"),
    ]


# ---- stacks ----------------------------------------------------------------------------


def prometheus(b: StackBuilder, name: str, prom: Prometheus, host: Host, stack: Stack) -> None:
    image, entrypoint = b.image(name)
    bind = b.bind(name)
    jobs = scrape_jobs(b.cluster, host, b.reach)
    mon = b.cluster.monitoring
    stack.configs["prometheus.yml"] = ("prometheus/prometheus.yml.j2", {
        "p": {"service": name, "host": host.name, "interval_s": mon.scrape_interval_s, "jobs": jobs}})
    stack.configs["rules.yml"] = ("prometheus/rules.yml.j2", {"rules": alert_rules(b.cluster)})
    volumes = [f"{stack.directory}/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
               f"{stack.directory}/rules.yml:/etc/prometheus/rules.yml:ro"]
    if any(job.bearer_file for job in jobs):  # the gateway beside Prometheus is scraped with its key
        gateway, _ = b.cluster.one(Gateway)
        key = secret_file(host, f"{name}-gateway-key")
        stack.secrets.append(Secret(key, {}, copied={"KEY": (secret_file(host, gateway), "LITELLM_MASTER_KEY")},
                                    value_only=True, owner=PROMETHEUS_UID))
        volumes.append(f"{key}:{GATEWAY_KEY}:ro")
    stack.containers.append(Container(
        name="prometheus",
        image=image,
        entrypoint=entrypoint,
        command=["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                 f"--storage.tsdb.retention.time={mon.retention_days}d", f"--web.listen-address={bind}:{prom.port}"],
        volumes=volumes,
        named_volumes={"prometheus-data": "/prometheus"},
        healthcheck=b.probe(name, prom.port, "/-/ready"),
        # A restart leaves a dropped target's last sample current for 5 minutes (a switched lane
        # then shows as an active lane down); a reload marks its series stale at once.
        reload_signal="SIGHUP",
    ))


def grafana(b: StackBuilder, name: str, g: Grafana, host: Host, stack: Stack) -> None:
    image, entrypoint = b.image(name)
    bind = b.bind(name)
    source = b.cluster.services[g.prometheus]
    prom_url = f"http://{b.reach(g.prometheus, host)}:{source.port}"
    stack.configs["datasource.yaml"] = ("grafana/datasource.yaml.j2", {"url": prom_url})
    stack.configs["dashboards.yaml"] = ("grafana/dashboards.yaml.j2", {})
    mounts = [f"{stack.directory}/datasource.yaml:/etc/grafana/provisioning/datasources/aistack.yaml:ro",
              f"{stack.directory}/dashboards.yaml:/etc/grafana/provisioning/dashboards/aistack.yaml:ro"]
    for file_name, board in dashboards(b.cluster).items():
        stack.configs[f"dashboards/{file_name}"] = ("grafana/dashboard.json.j2", {"dashboard": json.dumps(board, indent=2)})
        mounts.append(f"{stack.directory}/dashboards/{file_name}:/var/lib/aistack-dashboards/{file_name}:ro")
    secrets = secret_file(host, name)
    stack.secrets.append(Secret(secrets, {"GF_SECURITY_ADMIN_PASSWORD": ""}))
    stack.containers.append(Container(
        name="grafana",
        image=image,
        entrypoint=entrypoint,
        environment={
            "GF_SERVER_HTTP_ADDR": bind,
            "GF_SERVER_HTTP_PORT": str(g.port),
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_USERS_ALLOW_SIGN_UP": "false",
        },
        env_files=[secrets],  # GF_SECURITY_ADMIN_PASSWORD
        volumes=mounts,
        named_volumes={"grafana-data": "/var/lib/grafana"},
        healthcheck=b.probe(name, g.port, "/api/health"),
    ))


def node_exporter(b: StackBuilder, name: str, n: NodeExporter, host: Host, stack: Stack) -> None:
    image, entrypoint = b.image(name)
    bind = b.bind(name)
    stack.containers.append(Container(
        name="node-exporter",
        image=image,
        entrypoint=entrypoint,
        # The host's filesystems and processes, read-only (the exporter's documented container form).
        # No systemd inside a container: its collector would only log errors.
        command=[f"--web.listen-address={bind}:{n.port}", "--path.rootfs=/host", "--no-collector.systemd"],
        volumes=["/:/host:ro,rslave"],
        pid_host=True,
        healthcheck=b.probe(name, n.port, "/metrics"),
    ))


def gpu_exporter(b: StackBuilder, name: str, e: GpuExporter, host: Host, stack: Stack) -> None:
    image, entrypoint = b.image(name)
    bind = b.bind(name)
    if host.platform is Platform.JETSON:
        stack.configs["exporter.py"] = ("jetson_exporter/exporter.py", {})
        container = Container(
            name="tegrastats",
            image=image,
            entrypoint=entrypoint or ["python3", "/opt/aistack/exporter.py"],
            environment={"JETSON_EXPORTER_HOST": bind, "JETSON_EXPORTER_PORT": str(e.port),
                         "JETSON_EXPORTER_TEGRASTATS": "/usr/bin/tegrastats"},
            volumes=[f"{stack.directory}/exporter.py:/opt/aistack/exporter.py:ro", "/usr/bin/tegrastats:/usr/bin/tegrastats:ro"],
            healthcheck=b.probe(name, e.port, "/health"),
        )
    else:
        stack.configs["counters.csv"] = ("dcgm/counters.csv.j2", {"counters": DCGM_COUNTERS})
        container = Container(
            name="dcgm-exporter",
            image=image,
            entrypoint=entrypoint,
            command=["--address", f"{bind}:{e.port}", "--collectors", "/etc/dcgm-exporter/aistack.csv"],
            volumes=[f"{stack.directory}/counters.csv:/etc/dcgm-exporter/aistack.csv:ro"],
            cap_add=["SYS_ADMIN"],  # DCGM's profiling counters (FACTS.md)
            healthcheck=b.probe(name, e.port),
        )
    stack.containers.append(b.gpu(container, host, e.gpus))

