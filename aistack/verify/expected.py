"""What each converged host must show, derived from the same rollout deploy applies.

One expectation is one row of the verification report: a host, what is checked, and the value
the model asks for. The live suite (tests/live) compares each with what the host reports; it
holds no values of its own, so the model, render and verify cannot drift apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..capacity import lane_capacity, vllm_max_num_seqs
from ..model import (
    LLM_LANES,
    VLLM,
    Asr,
    Cluster,
    Gateway,
    LlamaCpp,
    Nginx,
    Qdrant,
    SGLang,
    Tts,
)
from ..render.containers import Stack, url_host
from ..rollout import Rollout


@dataclass(frozen=True)
class Expectation:
    host: str

    @property
    def label(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Runtime(Expectation):
    @property
    def label(self) -> str:
        return "docker engine and compose v2"


@dataclass(frozen=True)
class ContainerUp(Expectation):
    project: str
    container: str
    healthcheck: bool

    @property
    def label(self) -> str:
        return f"{self.container} running" + (" and healthy" if self.healthcheck else "")


@dataclass(frozen=True)
class OnlyPlacedRunning(Expectation):
    """Running compose projects: exactly the started stacks the model places here."""

    projects: frozenset[str]

    @property
    def label(self) -> str:
        return "only placed stacks running"


@dataclass(frozen=True)
class OnlyPlacedStacks(Expectation):
    """Stack directories: the placed ones (started or held); a moved stack's is pruned."""

    directories: frozenset[str]
    root: str

    @property
    def label(self) -> str:
        return f"only placed stacks under {self.root}"


@dataclass(frozen=True)
class Listening(Expectation):
    service: str
    port: int
    addresses: frozenset[str]  # every address this port may listen on; others are a finding

    @property
    def label(self) -> str:
        return f"{self.service} listens on {', '.join(sorted(self.addresses))} port {self.port} only"


@dataclass(frozen=True)
class RenderedFile(Expectation):
    path: str
    sha256: str
    mode: int

    @property
    def label(self) -> str:
        return f"{self.path} as rendered"


@dataclass(frozen=True)
class ModelFile(Expectation):
    path: str
    size: int
    sha256: str

    @property
    def label(self) -> str:
        return f"{self.path} as locked"


@dataclass(frozen=True)
class SecretFile(Expectation):
    path: str

    @property
    def label(self) -> str:
        return f"{self.path} present, 0600"


@dataclass(frozen=True)
class Sysctl(Expectation):
    key: str
    value: str

    @property
    def label(self) -> str:
        return f"sysctl {self.key}"


@dataclass(frozen=True)
class OpenFiles(Expectation):
    container: str
    limit: int

    @property
    def label(self) -> str:
        return f"{self.container} open-files limit"


@dataclass(frozen=True)
class GpuVisible(Expectation):
    container: str | None  # None: nothing on this host runs on a GPU
    gpus: int = 0  # x86: the devices reserved; Jetson: 0, the nvidia runtime exposes the iGPU
    jetson: bool = False

    @property
    def label(self) -> str:
        return f"GPU visible in {self.container}" if self.container else "GPU visible in GPU containers"


@dataclass(frozen=True)
class EngineSettings(Expectation):
    """What the running engine reports (or, for vLLM, was started with) against the model."""

    service: str
    engine: str
    container: str
    url: str  # the engine's own address, queried from its host
    settings: tuple[tuple[str, int], ...]

    @property
    def label(self) -> str:
        return f"{self.service} runs with {', '.join(k for k, _ in self.settings)}"


@dataclass(frozen=True)
class NginxTimeouts(Expectation):
    container: str
    read_s: int
    send_s: int

    @property
    def label(self) -> str:
        return "nginx effective proxy timeouts"


@dataclass(frozen=True)
class AliasAnswers(Expectation):
    """A tiny request on a gateway alias through the front door, sent from the gateway's host
    so the master key never leaves it."""

    alias: str
    request: str  # chat | embeddings | rerank | transcription | speech
    url: str
    key_file: str
    key_var: str
    held: str | None = None  # every route is held: the reason, reported as a skip

    @property
    def label(self) -> str:
        return f"alias {self.alias} answers through nginx"


@dataclass(frozen=True)
class ServiceReady(Expectation):
    service: str
    url: str
    held: str | None = None

    @property
    def label(self) -> str:
        return f"{self.service} ready"


@dataclass
class Expected:
    items: list[Expectation] = field(default_factory=list)

    def of(self, kind: type) -> list:
        return [e for e in self.items if isinstance(e, kind)]


def container_name(stack: Stack, service: str) -> str:
    """compose v2's name for the first replica: project-service-1."""
    return f"{stack.project}-{service}-1"


def expectations(rollout: Rollout, hosts: list[str] | None = None) -> Expected:
    cluster = rollout.cluster
    found = Expected()
    for name, plan in rollout.hosts.items():
        if hosts and name not in hosts:
            continue
        started = [s for s in plan.stacks if not s.not_started]
        found.items.append(Runtime(name))
        found.items += [ContainerUp(name, s.project, container_name(s, c.name), bool(c.healthcheck))
                        for s in started for c in s.containers]
        found.items.append(OnlyPlacedRunning(name, frozenset(s.project for s in started)))
        found.items.append(OnlyPlacedStacks(name, frozenset(s.directory for s in plan.stacks),
                                            f"{plan.host.storage.state}/stacks"))
        found.items += _listening(cluster, name, started)
        found.items += [RenderedFile(name, path, hashlib.sha256(f.content.encode()).hexdigest(), f.mode)
                        for path, f in sorted(plan.render.files.items())]
        found.items += [ModelFile(name, m.dest, m.locked.size, m.locked.sha256) for m in plan.models]
        found.items += [RenderedFile(name, path, hashlib.sha256(rev.encode()).hexdigest(), 0o644)
                        for path, rev in sorted(plan.model_refs.items())]
        found.items += [SecretFile(name, s.path) for s in plan.secrets]
        found.items += [Sysctl(name, k, str(v)) for k, v in sorted(plan.host.tuning.sysctl.items())]
        found.items += [OpenFiles(name, container_name(s, c.name), c.nofile) for s in started for c in s.containers
                        if c.nofile]
        found.items += _gpus(name, started)
        found.items += _engines(cluster, started)
        found.items += _nginx(cluster, started)
        found.items += _ready(cluster, plan.stacks)
    found.items += _aliases(rollout, hosts)
    return found


def _listening(cluster: Cluster, host: str, started: list[Stack]) -> list[Listening]:
    address = cluster.hosts[host].address
    by_port: dict[tuple[str, int], set[str]] = {}
    for stack in started:
        for bind, port in cluster.services[stack.service].sockets(address):
            by_port.setdefault((stack.service, port), set()).add(bind)
    return [Listening(host, service, port, frozenset(binds)) for (service, port), binds in sorted(by_port.items())]


def _gpus(host: str, started: list[Stack]) -> list[GpuVisible]:
    found = [GpuVisible(host, container_name(s, c.name), len(c.gpu_ids), c.jetson_runtime)
             for s in started for c in s.containers if c.gpu_ids or c.jetson_runtime]
    return found or [GpuVisible(host, None)]


def _engines(cluster: Cluster, started: list[Stack]) -> list[EngineSettings]:
    capacity = lane_capacity(cluster)
    found = []
    for stack in started:
        lane = cluster.services[stack.service]
        if not isinstance(lane, LLM_LANES):
            continue
        address, port = cluster.endpoint(stack.service)
        url = f"http://{url_host(address)}:{port}"
        container = container_name(stack, stack.containers[0].name)
        if isinstance(lane, LlamaCpp):
            settings = (("total_slots", lane.parallel),)
            if stack.service in capacity:  # generating lanes: the per-slot context the planner counted on
                settings += (("n_ctx", capacity[stack.service].slot_context),)
        elif isinstance(lane, SGLang):
            settings = (("max_running_requests", lane.max_running_requests),)
        else:
            settings = (("max_num_seqs", vllm_max_num_seqs(capacity[stack.service], lane)),)
        found.append(EngineSettings(stack.host, stack.service, lane.kind, container, url, settings))
    return found


def _nginx(cluster: Cluster, started: list[Stack]) -> list[NginxTimeouts]:
    t = cluster.timeouts
    return [NginxTimeouts(s.host, container_name(s, s.containers[0].name), t.nginx_s, t.nginx_s)
            for s in started if isinstance(cluster.services[s.service], Nginx)]


def _ready(cluster: Cluster, stacks: list[Stack]) -> list[ServiceReady]:
    found = []
    for stack in stacks:
        service = cluster.services[stack.service]
        if isinstance(service, Qdrant):
            address, port = cluster.endpoint(stack.service)
            found.append(ServiceReady(stack.host, stack.service, f"http://{url_host(address)}:{port}/readyz",
                                      stack.not_started))
    return found


def _aliases(rollout: Rollout, hosts: list[str] | None) -> list[AliasAnswers]:
    cluster = rollout.cluster
    gw_name, gateway = cluster.one(Gateway)
    ngx_name, _ = cluster.one(Nginx)
    if gateway is None or ngx_name is None or (hosts and gateway.host not in hosts):
        return []
    stacks = {s.service: s for plan in rollout.hosts.values() for s in plan.stacks}
    key = stacks[gw_name].secrets[0]
    key_var = next(iter(key.tokens))
    address, port = cluster.endpoint(ngx_name)
    front = f"http://{url_host(address)}:{port}"
    found = []
    for alias, routes in sorted(gateway.aliases.items()):
        reasons = [stacks[r.service].not_started for r in routes]
        held = "; ".join(f"{r.service}: {why}" for r, why in zip(routes, reasons, strict=True)) if all(reasons) else None
        found.append(AliasAnswers(gateway.host, alias, _request(cluster.services[routes[0].service]), front, key.path, key_var,
                                  held or stacks[gw_name].not_started or stacks[ngx_name].not_started))
    return found


def _request(service: object) -> str:
    if isinstance(service, Asr):
        return "transcription"
    if isinstance(service, Tts):
        return "speech"
    if isinstance(service, LlamaCpp) and service.role in ("embedding", "rerank"):
        return {"embedding": "embeddings", "rerank": "rerank"}[service.role]
    if isinstance(service, (SGLang, VLLM, LlamaCpp)):
        return "chat"
    raise ValueError(f"no request shape for a gateway route to {type(service).__name__}")
