"""The whole cluster: hosts, the services placed on them, the gateway chain, and cross-host rules."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..errors import InventoryError, Problem, did_you_mean
from .base import StrictModel, tuned
from .catalogue import ModelSpec, builtin
from .curves import Curve, builtin_curves
from .generated import add_generated, port_field
from .hosts import PORT_RANGE, Host, Platform
from .load import Load
from .locks import ImageLock, LockedImage
from .types import NAME, Address, Component, FileKey, IbHca, ImageKey, Nic, Text
from .services import (
    LLM_LANES,
    VLLM,
    Asr,
    Detector,
    Gateway,
    GpuService,
    LlamaCpp,
    Nginx,
    Qdrant,
    Route,
    Service,
    SGLang,
    Tts,
    WebUI,
)


class TimeoutChain(StrictModel):
    """Seconds each layer waits, outermost first. An outer layer must never give up first (000)."""

    # At most a day: nginx's time values are milliseconds in a 32-bit int underneath.
    nginx_s: int = tuned(300, "3,200-token answers were cut at 120 s while the GPU kept generating (000)", ge=1, le=86400)
    webui_client_s: int = tuned(300, "the 120 s client timeout cancelled jobs the GPU was still running (000)", ge=1, le=86400)
    gateway_s: int = tuned(300, "every HTTP client in the chain waits 300 s (000)", ge=1, le=86400)
    backend_s: int = tuned(300, "every HTTP client in the chain waits 300 s (000)", ge=1, le=86400)
    http_pool: int = tuned(128, "pool exhaustion at the tool loop caused the round-one failures (000)", ge=1, le=65536)

    def layers(self) -> list[tuple[str, int]]:
        """(layer, seconds) from the user inwards: nginx -> Open WebUI -> LiteLLM -> engine."""
        return [
            ("nginx proxy_read_timeout", self.nginx_s),
            ("Open WebUI client timeout", self.webui_client_s),
            ("LiteLLM router timeout", self.gateway_s),
            ("LiteLLM per-deployment timeout", self.backend_s),
        ]


class AlertThresholds(StrictModel):
    """Where the alerts fire; each number is the edge a seed saw users fall off."""

    kv_cache_ratio: float = tuned(0.90, "KV cache near full is the cliff; preemption pauses come right after (003)", gt=0, le=1)
    gpu_temp_c: int = tuned(85, "alert on temperature > 85 C, ECC errors or clock throttling (004)", ge=40, le=110)
    jetson_memory_ratio: float = tuned(0.90, "the Orin froze when unified memory ran out (000)", gt=0, le=1)
    queue_growth_minutes: int = tuned(10, "requests queued behind long jobs until they timed out (000)", ge=1)


MonitoringPart = Literal["prometheus", "grafana", "node-exporter", "gpu-exporter"]


class Monitoring(StrictModel):
    """Prometheus and Grafana on one host, exporters on every host; rendered from the model (001, 004)."""

    enabled: bool = tuned(True, "a card that looks idle can still be owned: only GPU metrics show it (001)")
    host: str | None = Field(None, pattern=NAME)  # where Prometheus and Grafana run; None: the gateway's host (or the first)
    bind: Address | None = None  # Prometheus and Grafana listen here; None: that host's address
    prometheus_port: int = Field(9090, ge=1, le=65535)
    grafana_port: int = Field(3000, ge=1, le=65535)
    node_exporter_port: int = Field(9100, ge=1, le=65535)
    dcgm_port: int = Field(9400, ge=1, le=65535)  # DCGM exporter's own default
    jetson_exporter_port: int = Field(9102, ge=1, le=65535)
    node_exporter: bool = True
    gpu_exporter: bool = tuned(True, "DCGM exporter: memory, utilisation, power, temperature, Xid, throttling (001)")
    scrape_interval_s: int = Field(15, ge=1, le=300)  # the 2-10 min alert windows hold several samples
    retention_days: int = Field(15, ge=1, le=3650)  # Prometheus' own default
    alerts: AlertThresholds = AlertThresholds()
    not_started: dict[MonitoringPart, Text] = {}  # part -> why it is rendered but not run here


class Interconnect(StrictModel):
    kind: Literal["ethernet", "infiniband", "roce"] = "ethernet"
    gbps: float = Field(gt=0, le=10000)
    mtu: dict[str, int] = {}  # per node: must be equal on all (004)

    @field_validator("mtu")
    @classmethod
    def _mtu(cls, value: dict[str, int]) -> dict[str, int]:
        for node, mtu in value.items():
            if not 68 <= mtu <= 65536:  # IPv4's minimum, the kernel's maximum
                raise ValueError(f"{node}: MTU {mtu} is not within 68-65536")
        return value


class RayLane(StrictModel):
    """An optional multi-node vLLM lane: TP inside a node, PP across nodes (004)."""

    name: str = Field("vllm-ray", pattern=NAME)  # the vLLM service, its served model and gateway alias
    head: str = Field(pattern=NAME)
    workers: list[Annotated[str, Field(pattern=NAME)]] = []
    gpus_per_node: int = Field(ge=1, le=64)
    tp_size: int = Field(ge=1, le=64)
    pp_size: int = Field(ge=1, le=64)
    model: Component
    quant: FileKey
    interconnect: Interconnect
    nic: Nic | None = None  # NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME
    ib_hca: IbHca | None = None
    port: int = Field(8000, ge=1024, le=65535)
    bind: Address | None = None  # vLLM listens here; None: the head's address
    ray_port: int = Field(6379, ge=1024, le=65535)
    dashboard_bind: Address | None = None  # None: no dashboard; the seed's 0.0.0.0 only when written here
    dashboard_port: int = Field(8265, ge=1024, le=65535)
    metrics_port: int = Field(8090, ge=1024, le=65535)  # each node's --metrics-export-port, with the dashboard
    object_store_mib: int | None = Field(None, ge=75, le=1 << 24)  # None: Ray's default (30% of RAM)
    shm_gb: float = tuned(10.24, "vLLM's cluster script gives each node --shm-size 10.24g for NCCL and Ray (004)", gt=0, le=4096)
    gpu_memory_utilization: float = tuned(0.90, "leave KV headroom for continuous batching (002, 003)", gt=0, lt=1)
    image: ImageKey | None = None  # one image for nodes and vLLM: their Ray versions must match; None: vllm
    not_started: Text | None = None  # vLLM held with this reason; the Ray nodes still run

    @model_validator(mode="after")
    def _nodes_once(self) -> RayLane:
        if self.head in self.workers:
            raise ValueError(f"head {self.head!r} is also listed as a worker")
        if len(set(self.workers)) != len(self.workers):
            raise ValueError(f"a worker is listed twice: {self.workers}")
        return self

    @property
    def nodes(self) -> list[str]:
        return [self.head, *self.workers]


# `ray start`'s --min-worker-port/--max-worker-port defaults (Ray 2.49).
RAY_WORKER_PORTS = range(10002, 20000)


# (service kind, platform tag) -> image key in the lock. Jetson images are per L4T major.
DEFAULT_IMAGES: dict[tuple[str, str], str] = {
    ("sglang", "x86-gpu"): "sglang",
    ("vllm", "x86-gpu"): "vllm",
    ("llamacpp", "x86-gpu"): "llamacpp-cuda",
    # Built on the Jetsons: the published dustynv/llama_cpp tags load neither gemma4 nor --rerank.
    ("llamacpp", "jetson-r36"): "llamacpp-jetson-r36-site",
    ("llamacpp", "jetson-r35"): "llamacpp-jetson-r35-site",
    ("llamacpp", "cpu"): "llamacpp-cpu",
    ("asr", "x86-gpu"): "speaches-cuda",
    ("asr", "jetson-r36"): "speaches-jetson-r36",
    ("asr", "cpu"): "speaches-cpu",
    ("tts", "x86-gpu"): "kokoro-gpu",
    ("tts", "jetson-r36"): "kokoro-jetson-r36",
    ("tts", "cpu"): "kokoro-cpu",
    ("detector", "jetson-r36"): "nanoowl-r36",
    ("detector", "jetson-r35"): "nanoowl-r35",
    ("qdrant", "*"): "qdrant",
    ("litellm", "*"): "litellm",
    ("nginx", "*"): "nginx",
    ("openwebui", "*"): "openwebui",
    ("ray", "x86-gpu"): "vllm",  # Ray nodes run vLLM's image: the ranks are vLLM processes
    ("prometheus", "*"): "prometheus",
    ("grafana", "*"): "grafana",
    ("node-exporter", "*"): "node-exporter",
    ("gpu-exporter", "x86-gpu"): "dcgm-exporter",
    ("gpu-exporter", "jetson-r36"): "jetson-exporter-r36",
    ("gpu-exporter", "jetson-r35"): "jetson-exporter-r35",
}
# Images a stack needs besides its main one.
SIDECAR_IMAGES: dict[str, list[str]] = {"openwebui": ["postgres", "redis"]}
# The preflight's checks by name: what force_checks may name (a test keeps it equal to preflight.py).
PREFLIGHT_CHECKS = ("ceiling", "distributed", "engine-build", "image-pin", "kv-pool", "kv-type", "memory",
                    "one-lane-per-gpu", "retries", "routes", "slot-context", "timeout-chain", "webui-db")
SINGLETONS = ("litellm", "nginx", "openwebui", "prometheus", "grafana")

# What an alias route speaks; all routes of one alias must speak the same.
ApiKind = Literal["chat", "embeddings", "rerank", "stt", "tts"]


def api_kind(service: Any) -> ApiKind | None:
    if isinstance(service, (SGLang, VLLM)):
        return "chat"
    if isinstance(service, LlamaCpp):
        return {"chat": "chat", "vision": "chat", "embedding": "embeddings", "rerank": "rerank"}[service.role]
    if isinstance(service, Asr):
        return "stt"
    if isinstance(service, Tts):
        return "tts"
    return None


def platform_tag(host: Host) -> str:
    if host.platform is Platform.JETSON:
        return f"jetson-r{host.l4t[1:3]}"
    return host.platform.value


class Cluster(StrictModel):
    """The validated cluster. Build it with `Cluster.build(raw, lock)`: that runs every cross-host rule."""

    name: str = Field("homelab", pattern=NAME)
    hosts: dict[str, Host]
    services: dict[str, Service] = {}
    timeouts: TimeoutChain = TimeoutChain()
    monitoring: Monitoring = Monitoring()
    distributed: RayLane | None = None
    catalogue: dict[Component, ModelSpec] = {}  # site entries, added to (or replacing) the built-in ones
    load: Load = Load()  # the users and request mix the plan must serve
    curves: dict[Component, Curve] = {}  # site decode curves, added to (or replacing) curves.yaml's
    image_map: dict[ImageKey, ImageKey] = {}  # image key -> another key (the sandbox swaps in local images)
    allow_unpinned: list[ImageKey] = []  # image keys deploy may use without a digest, by explicit choice
    allow_unverified_models: list[Component] = []  # catalogue names deploy may leave unfetched, by explicit choice
    force_checks: list[str] = []  # preflight checks whose BLOCK the run goes through anyway, by name
    # What `aistack load` measured (inventory/<cluster>.load.yaml): request type -> served_up_to,
    # failed_at, layer; and notes on evidence not read. Not inventory data: the ladder writes it.
    _measured: dict[str, dict] = PrivateAttr(default_factory=dict)
    _evidence_notes: list[str] = PrivateAttr(default_factory=list)

    @field_validator("services", "hosts")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not isinstance(name, str) or not re.match(NAME, name):
                raise ValueError(f"name {name!r}: a lowercase letter, then letters, digits and '-' (at most 63)")
        return value

    @field_validator("force_checks")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        for check in value:
            if check not in PREFLIGHT_CHECKS:
                raise ValueError(f"no preflight check {check!r}{did_you_mean(check, PREFLIGHT_CHECKS)} "
                                 f"(checks: {', '.join(PREFLIGHT_CHECKS)})")
        return value

    @field_validator("hosts")
    @classmethod
    def _some_hosts(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("the inventory has no hosts")
        return value

    @model_validator(mode="before")
    @classmethod
    def _host_names(cls, data: Any) -> Any:
        # The dict key is the host's name: fill it so the two cannot disagree.
        if isinstance(data, dict) and isinstance(data.get("hosts"), dict):
            data = dict(data)
            data["hosts"] = {
                name: {**spec, "name": name} if isinstance(spec, dict) else spec
                for name, spec in data["hosts"].items()
            }
        return data

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def build(cls, raw: dict[str, Any], lock: ImageLock) -> Cluster:
        """Validate types, then every cross-host rule; raise InventoryError naming host and field."""
        try:
            cluster = cls.model_validate(raw)
        except ValidationError as exc:
            raise InventoryError(problems_from_validation(exc, raw)) from None
        cluster._lock = lock
        problems = add_generated(cluster)
        problems += cluster._resolve_gpus() + cluster.cross_check(lock)
        if problems:
            raise InventoryError(problems)
        return cluster

    _lock: ImageLock | None = None

    # ---- lookups -------------------------------------------------------------------------

    @property
    def models(self) -> dict[str, ModelSpec]:
        return {**builtin(), **self.catalogue}

    @property
    def measured(self) -> dict[str, dict]:
        return self._measured

    @property
    def evidence_notes(self) -> list[str]:
        return self._evidence_notes

    @property
    def decode_curves(self) -> dict[str, Curve]:
        return {**builtin_curves(), **self.curves}

    def on_host(self, host: str) -> dict[str, Any]:
        return {name: s for name, s in self.services.items() if s.host == host}

    def of_kind(self, kind: type) -> dict[str, Any]:
        return {name: s for name, s in self.services.items() if isinstance(s, kind)}

    def one(self, kind: type) -> tuple[str, Any] | tuple[None, None]:
        found = self.of_kind(kind)
        return next(iter(found.items())) if found else (None, None)

    def image_key(self, name: str) -> str:
        """The lock key for a service's image, after the default and the site's image map."""
        service = self.services[name]
        key = service.image or self.default_image(service.kind, self.hosts[service.host])
        return self.image_map.get(key, key)

    def llamacpp_build(self, name: str) -> int | None:
        """The llama.cpp build inside a service's locked image (None: the lock does not record one)."""
        return self.locked_image(self.image_key(name)).llamacpp_build

    def sidecar_image(self, key: str) -> str:
        return self.image_map.get(key, key)

    @staticmethod
    def default_image(kind: str, host: Host) -> str | None:
        return DEFAULT_IMAGES.get((kind, platform_tag(host))) or DEFAULT_IMAGES.get((kind, "*"))

    @property
    def image_lock(self) -> ImageLock:
        assert self._lock is not None, "build the cluster with Cluster.build"
        return self._lock

    def locked_image(self, key: str) -> LockedImage:
        assert self._lock is not None, "build the cluster with Cluster.build"
        return self._lock.images[key]

    def route_weight(self, gateway: Gateway, route: Route) -> int:
        """Explicit weight, else by memory kind: a dedicated card takes the burst, unified memory overflows (000)."""
        if route.weight is not None:
            return route.weight
        host = self.hosts[self.services[route.service].host]
        return gateway.weight_unified if host.unified else gateway.weight_dedicated

    def endpoint(self, name: str) -> tuple[str, int]:
        """Where another host reaches a service."""
        service = self.services[name]
        return service.bind or self.hosts[service.host].address, service.port

    # ---- cross-host rules ------------------------------------------------------------------

    def _resolve_gpus(self) -> list[Problem]:
        """GPU services default to GPU 0 where the host has one, and to the CPU where it has none."""
        problems = []
        for name, service in self.services.items():
            host = self.hosts.get(service.host)
            if host is None or not isinstance(service, GpuService):
                continue
            if not host.accelerators and service.gpus == [0] and "gpus" not in service.model_fields_set:
                service.gpus = []
            for index in service.gpus:
                if index >= len(host.accelerators):
                    problems.append(
                        Problem(
                            host.name,
                            f"services.{name}.gpus",
                            f"GPU {index} does not exist: {host.name} has {len(host.accelerators)} accelerator(s)",
                        )
                    )
        return problems

    def cross_check(self, lock: ImageLock) -> list[Problem]:
        checks = (
            self._check_placement,
            self._check_sockets,
            self._check_models,
            self._check_routes,
            self._check_webui,
            self._check_singletons,
            self._check_addresses,
            self._check_monitoring,
            self._check_distributed,
        )
        problems = [p for check in checks for p in check()]
        return problems + self._check_images(lock)

    def _check_placement(self) -> list[Problem]:
        problems = []
        for name, service in self.services.items():
            host = self.hosts.get(service.host)
            field = f"services.{name}"
            if host is None:
                known = ", ".join(sorted(self.hosts))
                problems.append(Problem(None, f"{field}.host", f"unknown host {service.host!r} (hosts: {known})"))
                continue
            if isinstance(service, (SGLang, VLLM)):
                if host.platform is not Platform.X86_GPU and not service.not_started:
                    problems.append(Problem(host.name, f"{field}.kind", f"{service.kind} needs an x86 GPU host"))
                tp = service.tp_size or len(service.gpus)
                if tp != len(service.gpus) and getattr(service, "executor", "mp") == "mp":
                    problems.append(
                        Problem(host.name, f"{field}.tp_size", f"tp_size {tp} differs from the {len(service.gpus)} GPU(s) listed")
                    )
            # Held where it cannot run (the sandbox): rendered and validated, its reason reported.
            if isinstance(service, Detector) and host.platform is not Platform.JETSON and not service.not_started:
                problems.append(Problem(host.name, f"{field}.host", "NanoOWL's TensorRT engine is built for a Jetson"))
        return problems

    def _check_sockets(self) -> list[Problem]:
        """Two listeners on one port of one address (or of the wildcard) cannot both start."""
        problems: list[Problem] = []
        taken: dict[str, dict[int, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
        for name, service in self.services.items():
            host = self.hosts.get(service.host)
            if host is None:
                continue
            for address, port in service.sockets(host.address):
                for other_address, other in taken[host.name][port]:
                    if "0.0.0.0" in (address, other_address) or address == other_address:
                        problems.append(
                            Problem(host.name, port_field(name, service, port), f"port {port} on {address} is already used by {other}")
                        )
                taken[host.name][port].append((address, name))
        return problems

    def _check_models(self) -> list[Problem]:
        wanted_kind = {
            "sglang": {"llm", "vision-llm"},
            "vllm": {"llm", "vision-llm"},
            "asr": {"asr"},
            "tts": {"tts"},
            "detector": {"detector"},
        }
        llama_kind = {"chat": {"llm", "vision-llm"}, "vision": {"vision-llm"}, "embedding": {"embedding"}, "rerank": {"reranker"}}
        problems = []
        models = self.models
        for name, service in self.services.items():
            model_name = getattr(service, "model", None)
            if model_name is None:
                continue
            field = f"services.{name}"
            spec = models.get(model_name)
            if spec is None:
                problems.append(Problem(service.host, f"{field}.model", f"unknown model {model_name!r}: add it to the catalogue"))
                continue
            kinds = llama_kind[service.role] if isinstance(service, LlamaCpp) else wanted_kind[service.kind]
            if spec.kind not in kinds:
                problems.append(Problem(service.host, f"{field}.model", f"{model_name} is a {spec.kind}, not usable here"))
            for attr in ("quant", "mmproj"):
                key = getattr(service, attr, None)
                if key is not None and key not in spec.files:
                    have = ", ".join(sorted(spec.files)) or "none"
                    problems.append(Problem(service.host, f"{field}.{attr}", f"{model_name} has no file {key!r} (has: {have})"))
            curve = getattr(service, "curve", None)
            if curve is not None and curve not in self.decode_curves:
                problems.append(Problem(service.host, f"{field}.curve", f"unknown decode curve {curve!r}"
                                        f"{did_you_mean(curve, self.decode_curves)} (curves: {', '.join(sorted(self.decode_curves))})"))
        return problems

    def _check_routes(self) -> list[Problem]:
        problems = []
        for gw_name, gateway in self.of_kind(Gateway).items():
            gw_host = gateway.host
            for alias, routes in gateway.aliases.items():
                kinds = set()
                for i, route in enumerate(routes):
                    field = f"services.{gw_name}.aliases.{alias}.{i}.service"
                    target = self.services.get(route.service)
                    if target is None:
                        problems.append(Problem(gw_host, field, f"route to unknown service {route.service!r}"))
                        continue
                    kind = api_kind(target)
                    if kind is None:
                        problems.append(Problem(gw_host, field, f"{route.service} ({target.kind}) is not a model endpoint"))
                        continue
                    kinds.add(kind)
                    if target.host != gw_host and (target.bind or "").startswith("127."):
                        problems.append(
                            Problem(target.host, f"services.{route.service}.bind", f"bound to loopback, unreachable from the gateway on {gw_host}")
                        )
                if len(kinds) > 1:
                    problems.append(
                        Problem(gw_host, f"services.{gw_name}.aliases.{alias}", f"mixes endpoint kinds {sorted(kinds)}")
                    )
        return problems

    def _alias_kind(self, alias: str) -> ApiKind | None:
        for gateway in self.of_kind(Gateway).values():
            for route in gateway.aliases.get(alias, []):
                if route.service in self.services:
                    return api_kind(self.services[route.service])
        return None

    def _check_webui(self) -> list[Problem]:
        problems = []
        for name, webui in self.of_kind(WebUI).items():
            field = f"services.{name}"
            if not self.of_kind(Gateway):
                problems.append(Problem(webui.host, field, "Open WebUI needs a litellm gateway"))
            if webui.vector_db is not None and not isinstance(self.services.get(webui.vector_db), Qdrant):
                problems.append(Problem(webui.host, f"{field}.vector_db", f"{webui.vector_db!r} is not a qdrant service"))
            reranker = self.services.get(webui.reranker) if webui.reranker else None
            if webui.reranker is not None and not (isinstance(reranker, LlamaCpp) and reranker.role == "rerank"):
                problems.append(Problem(webui.host, f"{field}.reranker", f"{webui.reranker!r} is not a rerank service"))
            for attr, kind in (("embeddings", "embeddings"), ("stt", "stt"), ("tts", "tts")):
                alias = getattr(webui, attr)
                if alias is not None and self._alias_kind(alias) != kind:
                    problems.append(Problem(webui.host, f"{field}.{attr}", f"no gateway alias {alias!r} serving {kind}"))
        return problems

    def _check_singletons(self) -> list[Problem]:
        problems = []
        for kind in SINGLETONS:
            names = [n for n, s in self.services.items() if s.kind == kind]
            for extra in names[1:]:
                problems.append(Problem(self.services[extra].host, f"services.{extra}.kind", f"only one {kind} per cluster ({names[0]} exists)"))
        _, nginx = self.one(Nginx)
        gw_name, gateway = self.one(Gateway)
        if nginx is not None and gateway is None:
            problems.append(Problem(nginx.host, "services", "nginx fronts the gateway, but no litellm service is placed"))
        elif nginx is not None and gateway.host != nginx.host and (gateway.bind or "").startswith("127."):
            problems.append(Problem(gateway.host, f"services.{gw_name}.bind", f"loopback-bound, unreachable from nginx on {nginx.host}"))
        return problems

    def _check_addresses(self) -> list[Problem]:
        problems = []
        seen: dict[tuple[str, int], str] = {}
        for name, host in self.hosts.items():
            key = (host.ssh.hostname, host.ssh.port)
            if key in seen:
                problems.append(Problem(name, "ssh", f"same SSH endpoint {key[0]}:{key[1]} as host {seen[key]}"))
            seen[key] = name
        return problems

    def _check_monitoring(self) -> list[Problem]:
        if self.monitoring.host is not None and self.monitoring.host not in self.hosts:
            return [Problem(None, "monitoring.host", f"unknown host {self.monitoring.host!r}")]
        return []

    def _check_distributed(self) -> list[Problem]:
        lane = self.distributed
        # The Ray executor needs the lane's Ray nodes, which only `distributed:` starts.
        problems = [
            Problem(s.host, f"services.{n}.executor", "the Ray executor runs only on the distributed lane: declare it "
                    "under `distributed:`")
            for n, s in self.of_kind(VLLM).items() if s.executor == "ray" and (lane is None or n != lane.name)
        ]
        if lane is None:
            return problems
        problems += [
            Problem(None, "distributed.head" if node == lane.head else "distributed.workers", f"unknown host {node!r}")
            for node in lane.nodes
            if node not in self.hosts
        ]
        if lane.model not in self.models:
            problems.append(Problem(None, "distributed.model", f"unknown model {lane.model!r}"))
        return problems + self._check_ray_ports(lane)

    def _check_ray_ports(self, lane: RayLane) -> list[Problem]:
        """`ray start` refuses any port of its own inside its worker ports (a ValueError, the node restarts)."""
        workers = f"{RAY_WORKER_PORTS.start}-{RAY_WORKER_PORTS.stop - 1}"
        problems = [
            Problem(None, f"distributed.{field}", f"port {port} is inside Ray's worker ports {workers}")
            for field in ("ray_port", "dashboard_port", "metrics_port")
            if (port := getattr(lane, field)) in RAY_WORKER_PORTS
        ]
        # Ray picks its agents' ports at random at or above a port the kernel hands out: a low
        # ephemeral range lands some starts inside the worker ports (seen in the sandbox).
        for node in (n for n in lane.nodes if n in self.hosts):
            ephemeral = self.hosts[node].tuning.ephemeral_ports
            if ephemeral.start < RAY_WORKER_PORTS.stop and RAY_WORKER_PORTS.start < ephemeral.stop:
                problems.append(Problem(node, f"hosts.{node}.tuning.sysctl", f"{PORT_RANGE} {ephemeral.start}-{ephemeral.stop - 1} overlaps "
                                        f"Ray's worker ports {workers}: start it above {RAY_WORKER_PORTS.stop - 1}"))
        return problems

    def _check_images(self, lock: ImageLock) -> list[Problem]:
        problems = []
        for name, service in self.services.items():
            host = self.hosts.get(service.host)
            if host is None:
                continue
            key = self.image_key(name)
            field = f"services.{name}.image"
            if key is None:
                problems.append(Problem(host.name, field, f"no default {service.kind} image for platform {platform_tag(host)}: name one"))
                continue
            keys = [key, *(self.sidecar_image(k) for k in SIDECAR_IMAGES.get(service.kind, []))]
            for k in keys:
                entry = lock.images.get(k)
                if entry is None:
                    problems.append(Problem(host.name, field, f"image {k!r} is not in the image lock"))
                    continue
                platform = "linux/arm64" if host.arch == "aarch64" else "linux/amd64"
                if platform not in entry.platforms and not service.not_started:  # a held stack never pulls
                    problems.append(Problem(host.name, field, f"image {k!r} has no {platform} build"))
                if host.platform is Platform.JETSON and entry.l4t and entry.l4t[:3] != host.l4t[:3]:
                    problems.append(
                        Problem(host.name, field, f"image {k!r} is built for L4T {entry.l4t}, the host runs {host.l4t}")
                    )
        for key in self.allow_unpinned:
            if key not in lock.images:
                problems.append(Problem(None, "allow_unpinned", f"image {key!r} is not in the image lock"))
        for model in self.allow_unverified_models:
            if model not in self.models:
                problems.append(Problem(None, "allow_unverified_models", f"model {model!r} is not in the catalogue"))
        return problems

    # ---- lanes -----------------------------------------------------------------------------

    def lanes(self) -> dict[str, Any]:
        """Generation lanes (LLM engines that own GPUs while active)."""
        return {
            n: s for n, s in self.services.items() if isinstance(s, LLM_LANES) and (not isinstance(s, LlamaCpp) or s.generates)
        }


def _model_names() -> list[str]:
    """Every model class's name: pydantic puts it in an error's location inside a union."""
    found, todo = [], [StrictModel]
    while todo:
        cls = todo.pop()
        found.append(cls.__name__)
        todo += cls.__subclasses__()
    return found


def problems_from_validation(exc: ValidationError, raw: dict[str, Any]) -> list[Problem]:
    """Turn pydantic's errors into Problems that name the host the bad value belongs to."""
    problems = []
    errors = exc.errors()
    # A union field (one file or a list of shards) reports each member's error; the member
    # the input did not even look like ("Input should be a valid list") is noise.
    member = re.compile(rf"^(?:{'|'.join(_model_names())})$|^list\[")
    by_field = defaultdict(list)
    for error in errors:
        by_field[tuple(str(p) for p in error["loc"] if not member.match(str(p)))].append(error)
    errors = [e for group in by_field.values()
              for e in (group if len(group) == 1 else [e for e in group if not e["type"].endswith(("list_type", "model_type", "dict_type"))] or group)]
    for error in errors:
        loc = [str(part) for part in error["loc"] if not member.match(str(part))]
        # Drop the discriminator tag pydantic inserts (services.<name>.<kind>.<field>).
        if len(loc) >= 3 and loc[0] == "services":
            service = raw.get("services", {}).get(loc[1])
            if isinstance(service, dict) and loc[2] == service.get("kind"):
                del loc[2]
        host = None
        if loc[:1] == ["hosts"] and len(loc) > 1:
            host = loc[1]
        elif loc[:1] == ["services"] and len(loc) > 1:
            service = raw.get("services", {}).get(loc[1])
            host = service.get("host") if isinstance(service, dict) else None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the model for every knob)"
        elif error["type"] == "union_tag_invalid":
            message = f"unknown kind {error.get('input', {}).get('kind')!r}"
        problems.append(Problem(host, ".".join(loc) or "inventory", message))
    return problems
