"""Checks before anything is touched: PASS / WARN / BLOCK, with exit codes 0 / 10 / 20 (001)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .capacity import HEADROOM_WARN, MIB, Plan, kv_bytes_per_token, plan, weights_mib
from .ceilings import SERVED, PathCeiling, ceilings
from .model import VLLM, Cluster, Gateway, LlamaCpp, RayLane, SGLang, WebUI, Workload
from .model.calibration import FULL_PRECISION
from .model.cluster import SIDECAR_IMAGES
from .render.engine_args import FLAG_SINCE, llamacpp_args

# Interconnect between the nodes of a distributed lane (004): tensor parallel across 10 Gbps is
# worse than one card and 100 Gbps is the minimum credible; 1 Gbps: "don't, just don't".
TP_ACROSS_NODES_MIN_GBPS = 100
PP_ACROSS_NODES_WARN_BELOW_GBPS = 100  # 100 Gbps is borderline for PP; below it PP only fits memory
MULTI_NODE_MIN_GBPS = 1  # at or below: BLOCK


class Level(IntEnum):
    """The numbers are the exit codes of `aistack plan` and `aistack switch` (001)."""

    PASS = 0
    WARN = 10
    BLOCK = 20


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    host: str | None
    subject: str
    message: str


@dataclass
class Preflight:
    plan: Plan
    findings: list[Finding]
    paths: list[PathCeiling]

    @property
    def level(self) -> Level:
        return max((f.level for f in self.findings), default=Level.PASS)


def preflight(cluster: Cluster) -> Preflight:
    p = plan(cluster)
    paths = ceilings(cluster, p.lanes)
    findings = [
        *ceiling_findings(cluster, paths),
        *budget_findings(p),
        *lane_findings(cluster, p),
        *llamacpp_findings(cluster),
        *gpu_lane_findings(cluster),
        *timeout_findings(cluster),
        *gateway_findings(cluster),
        *webui_findings(cluster),
        *image_findings(cluster),
        *distributed_findings(cluster),
    ]
    return Preflight(p, [_forced(cluster, _held_lane(cluster, _parked(cluster, f))) for f in findings], paths)


def _parked(cluster: Cluster, finding: Finding) -> Finding:
    """A parked lane does not run, so it cannot fail now: its BLOCK waits for `aistack switch`,
    which preflights the lane as active before starting it."""
    service = cluster.services.get(finding.subject)
    if finding.level is Level.BLOCK and service is not None and not service.active:
        return Finding(Level.WARN, finding.check, finding.host, finding.subject,
                       f"{finding.message} (parked: `aistack switch` refuses it until this is fixed)")
    return finding


def _held_lane(cluster: Cluster, finding: Finding) -> Finding:
    """A distributed lane whose engine is held (`not_started`) serves nothing: its BLOCKs are WARNs
    that say so, and its Ray nodes may still form their cluster (the sandbox declares GPUs it lacks)."""
    lane = cluster.distributed
    if finding.level is Level.BLOCK and finding.check == "distributed" and lane is not None and lane.not_started:
        return Finding(Level.WARN, finding.check, finding.host, finding.subject,
                       f"{finding.message} (held: {lane.not_started})")
    return finding


def _forced(cluster: Cluster, finding: Finding) -> Finding:
    """A BLOCK the inventory overrides by the check's name runs as a WARN that says so."""
    if finding.level is Level.BLOCK and finding.check in cluster.force_checks:
        return Finding(Level.WARN, finding.check, finding.host, finding.subject,
                       f"{finding.message} (a BLOCK, forced by force_checks: expect this to fail at runtime)")
    return finding


def ceiling_findings(cluster: Cluster, paths: list[PathCeiling]) -> list[Finding]:
    """Request types cut by a timeout (BLOCK) or capped below the declared users (WARN), one
    finding per layer at fault with every type it holds back; then types that queue past a timeout."""
    users = cluster.load.users
    cut: dict[tuple[str, int], list[PathCeiling]] = {}
    capped: dict[object, list[PathCeiling]] = {}
    queued: dict[object, list[PathCeiling]] = {}
    found = []
    for r in (r for r in paths if r.served_by is None):
        if r.cut:
            cut.setdefault(r.timeout, []).append(r)
        elif r.ceiling is not None and r.ceiling < users:
            capped.setdefault(r.bottleneck, []).append(r)
        elif r.expected_pass is not None and r.expected_pass < SERVED:
            queued.setdefault(r.queue, []).append(r)
    for (layer, seconds), held in cut.items():
        worst = max(held, key=lambda r: r.seconds)
        found.append(Finding(Level.BLOCK, "ceiling", None, "timeouts",
                             f"{layer} {seconds} s < {worst.speed} = {worst.seconds:,.0f} s: cuts every request of "
                             f"{', '.join(r.name for r in held)} while the GPU is still generating (000)"))
    for layer, held in capped.items():
        shown = ", ".join(f"{r.name} {r.ceiling:,.0f}" for r in sorted(held, key=lambda r: r.ceiling))
        found.append(Finding(Level.WARN, "ceiling", _host_of(cluster, layer.name), layer.setting,
                             f"{layer.name} caps {shown} of {users:,} users: {layer.why}"))
    for layer, held in queued.items():
        shown = ", ".join(f"{r.name} {r.expected_pass:.0%}" for r in held)
        wait = max(r.wait_s for r in held)
        where = f"{layer.name} queues the mix (wait ~{wait:,.0f} s)" if layer else "the mix queues"
        found.append(Finding(Level.WARN, "ceiling", _host_of(cluster, layer.name) if layer else None,
                             layer.setting if layer else "load", f"{where}: expected to finish at {users:,} users: {shown}"))
    return found


def _host_of(cluster: Cluster, name: str) -> str | None:
    service = cluster.services.get(name)
    return service.host if service is not None else None


def budget_findings(p: Plan) -> list[Finding]:
    found = []
    for b in p.budgets:
        subject = f"{b.host}/{b.accelerator}"
        usage = f"{b.used_mib:,.0f} of {b.total_mib:,.0f} MiB used, {b.free_mib:,.0f} free"
        if not b.items:
            continue
        if b.free_mib < 0:
            kind = "unified memory (OS, CPU side, GPU, KV, engines)" if b.unified else "VRAM"
            found.append(Finding(Level.BLOCK, "memory", b.host, subject, f"{kind} overcommitted: {usage}"))
        elif b.free_mib < HEADROOM_WARN * b.total_mib:
            found.append(Finding(Level.WARN, "memory", b.host, subject, f"under {HEADROOM_WARN:.0%} headroom: {usage}"))
        else:
            found.append(Finding(Level.PASS, "memory", b.host, subject, usage))
        for missing in b.unknown:
            found.append(Finding(Level.WARN, "memory", b.host, subject, f"budget incomplete: {missing}"))
    return found


def lane_findings(cluster: Cluster, p: Plan) -> list[Finding]:
    found = []
    for name, lane in p.lanes.items():
        service = cluster.services[name]
        host = service.host
        need = f"{lane.request_tokens:,} tokens a request needs ({_shape(cluster, name)})"
        if lane.fits_request is False:
            what = "shared KV pool" if lane.unified_kv else f"per-slot context {lane.slot_context:,} (ctx {service.ctx:,} / {lane.slots} slots)"
            found.append(Finding(Level.BLOCK, "slot-context", host, name, f"{what} < {need}"))
        elif isinstance(service, LlamaCpp):
            found.append(
                Finding(Level.PASS, "slot-context", host, name, f"{lane.slots} slots x {lane.slot_context:,} tokens >= {need}")
            )
        if isinstance(service, (SGLang, VLLM)):
            found += _engine_lane_findings(name, service, lane)
        spec = cluster.models[service.model]
        if isinstance(service, LlamaCpp) and spec.arch.max_context and lane.slot_context > spec.arch.max_context:
            found.append(
                Finding(Level.WARN, "slot-context", host, name, f"per-slot context {lane.slot_context:,} exceeds the model's trained {spec.arch.max_context:,}")
            )
    return found


def _shape(cluster: Cluster, name: str) -> str:
    service = cluster.services[name]
    w = service.workload
    spec = cluster.models[service.model]
    parts = []
    if w.images and spec.vision:
        build = cluster.llamacpp_build(name) if isinstance(service, LlamaCpp) else None
        parts.append(f"{w.images} image x {spec.image_tokens(build):,}")
    parts += [f"prompt {w.prompt_tokens:,}", f"output {w.output_tokens:,}"]
    return " + ".join(parts)


def _engine_lane_findings(name: str, service: SGLang | VLLM, lane) -> list[Finding]:
    host = service.host
    if lane.kv_tokens is None:
        return [Finding(Level.WARN, "kv-pool", host, name, "weights size unknown: KV pool not planned")]
    if lane.kv_tokens <= 0:
        return [Finding(Level.BLOCK, "kv-pool", host, name, "the weights leave no KV pool at this memory fraction")]
    cap_name = "max_running_requests" if isinstance(service, SGLang) else "max_num_seqs"
    cap = lane.slots
    holds = f"KV pool holds {lane.kv_tokens:,} tokens = {lane.concurrent:,} sequences of {lane.request_tokens:,}"
    if cap is not None and cap > lane.concurrent:
        return [
            Finding(
                Level.WARN, "kv-pool", host, name,
                f"{cap_name} {cap} > {lane.concurrent}: {holds}; past that, requests queue or are preempted (003)",
            )
        ]
    return [Finding(Level.PASS, "kv-pool", host, name, holds)]


def llamacpp_findings(cluster: Cluster) -> list[Finding]:
    found = []
    for name, lane in cluster.of_kind(LlamaCpp).items():
        if lane.cache_type_v not in FULL_PRECISION and lane.flash_attn == "off":
            found.append(
                Finding(Level.BLOCK, "kv-type", lane.host, name, f"a {lane.cache_type_v} V cache needs flash attention; flash_attn is off")
            )
        if lane.cache_type_k != lane.cache_type_v and lane.gpus:
            found.append(
                Finding(Level.WARN, "kv-type", lane.host, name, f"K {lane.cache_type_k} / V {lane.cache_type_v}: CUDA builds support matching K/V types by default")
            )
        found += _engine_build(cluster, name, lane)
    return found


def _engine_build(cluster: Cluster, name: str, lane: LlamaCpp) -> list[Finding]:
    """The lane's image must carry a llama.cpp that loads its model and accepts every flag it renders."""
    key = cluster.image_key(name)
    build = cluster.llamacpp_build(name)
    if build is None:
        return [Finding(Level.BLOCK, "engine-build", lane.host, name,
                        f"image {key} records no llama.cpp build (locks/images.yaml engine): its flags and models cannot be checked")]
    carries = f"image {key} carries llama.cpp b{build}"
    found = []
    support = cluster.models[lane.model].llamacpp
    if support is not None and build < support.since_build:
        found.append(Finding(Level.BLOCK, "engine-build", lane.host, name,
                             f"{carries}; {lane.model} (architecture {support.arch}) loads from b{support.since_build}"))
    flags = llamacpp_args(lane, model="m", mmproj="p" if lane.mmproj else None, bind="b", build=build, alias="a")
    for flag, (since, _) in FLAG_SINCE.items():
        if flag in flags and build < since:
            found.append(Finding(Level.BLOCK, "engine-build", lane.host, name,
                                 f"{carries}; it renders {flag}, which llama-server accepts from b{since}"))
    if not found:
        found.append(Finding(Level.PASS, "engine-build", lane.host, name, f"{carries}: loads {lane.model}, accepts its flags"))
    return found


def gpu_lane_findings(cluster: Cluster) -> list[Finding]:
    """Exactly one active generation lane per GPU; the rest are parked (001)."""
    found = []
    for host in cluster.hosts.values():
        for index in range(len(host.accelerators)):
            on_gpu = {n: s for n, s in cluster.lanes().items() if s.host == host.name and index in s.gpus}
            active = sorted(n for n, s in on_gpu.items() if s.active)
            if len(active) > 1:
                found.append(
                    Finding(Level.BLOCK, "one-lane-per-gpu", host.name, f"{host.name}/gpu{index}", f"{len(active)} active lanes: {', '.join(active)}; park all but one")
                )
            elif on_gpu and not active:
                found.append(Finding(Level.WARN, "one-lane-per-gpu", host.name, f"{host.name}/gpu{index}", "every lane on this GPU is parked"))
    return found


def timeout_findings(cluster: Cluster) -> list[Finding]:
    """An outer layer that gives up first cancels work the GPU is still doing (000)."""
    layers = cluster.timeouts.layers()
    found = []
    for (outer, outer_s), (inner, inner_s) in zip(layers, layers[1:]):
        if outer_s < inner_s:
            found.append(
                Finding(Level.BLOCK, "timeout-chain", None, "timeouts", f"{outer} {outer_s}s < {inner} {inner_s}s: the outer layer gives up first")
            )
    if not found:
        chain = " >= ".join(f"{s}s" for _, s in layers)
        found.append(Finding(Level.PASS, "timeout-chain", None, "timeouts", f"monotone: {chain}"))
    return found


def gateway_findings(cluster: Cluster) -> list[Finding]:
    found = []
    for name, gw in cluster.of_kind(Gateway).items():
        if gw.num_retries > 0:
            found.append(Finding(Level.WARN, "retries", gw.host, name, f"num_retries {gw.num_retries}: silent retries amplified queue depth (000)"))
        for alias, routes in gw.aliases.items():
            targets = [cluster.services[r.service] for r in routes]
            if not any(t.active for t in targets):
                found.append(Finding(Level.WARN, "routes", gw.host, f"{name}.{alias}", "every route goes to a parked lane"))
            weights = {r.service: cluster.route_weight(gw, r) for r in routes}
            unified = [s for s in weights if cluster.hosts[cluster.services[s].host].unified]
            dedicated = [s for s in weights if s not in unified]
            if unified and dedicated and max(weights[s] for s in unified) >= min(weights[s] for s in dedicated):
                found.append(
                    Finding(Level.WARN, "routes", gw.host, f"{name}.{alias}", "a unified-memory host weighs as much as a dedicated card: the Orin wedged at 4/8 (000)")
                )
    return found


def webui_findings(cluster: Cluster) -> list[Finding]:
    found = []
    for name, webui in cluster.of_kind(WebUI).items():
        if webui.workers > 1 and webui.database == "sqlite":
            found.append(
                Finding(Level.BLOCK, "webui-db", webui.host, name, f"{webui.workers} workers on SQLite: 'database is locked' under load (000)")
            )
    return found


def image_findings(cluster: Cluster) -> list[Finding]:
    """Images without a digest: one WARN listing them; deploy refuses those not allowed by name (001)."""
    keys = []
    for name, service in cluster.services.items():
        if service.not_started:
            continue  # held where it cannot run: never pulled
        keys += [cluster.image_key(name), *(cluster.sidecar_image(k) for k in SIDECAR_IMAGES.get(service.kind, []))]
    unpinned = sorted({k for k in keys if cluster.locked_image(k).digest is None and not cluster.locked_image(k).local})
    if not unpinned:
        return [Finding(Level.PASS, "image-pin", None, "images", f"all {len(set(keys))} images pinned by digest")]
    refused = [k for k in unpinned if k not in cluster.allow_unpinned]
    message = f"{len(unpinned)} image(s) without a digest: {', '.join(unpinned)}; run `aistack images lock`"
    if refused:
        message += f" (deploy refuses {', '.join(refused)} unless listed in allow_unpinned)"
    return [Finding(Level.WARN, "image-pin", None, "images", message)]


def distributed_findings(cluster: Cluster) -> list[Finding]:
    """The optional Ray/vLLM lane: GPUs, interconnect, NIC pinning and fit, before any host is touched (004)."""
    lane = cluster.distributed
    if lane is None:
        return []
    return [*_ray_gpus(cluster, lane), *_ray_network(lane), *_ray_fit(cluster, lane)]


def _ray_gpus(cluster: Cluster, lane: RayLane) -> list[Finding]:
    found = []
    given = len(lane.nodes) * lane.gpus_per_node
    if lane.tp_size * lane.pp_size != given:
        found.append(Finding(Level.BLOCK, "distributed", lane.head, "distributed",
                             f"TP {lane.tp_size} x PP {lane.pp_size} = {lane.tp_size * lane.pp_size} GPUs, but "
                             f"{len(lane.nodes)} node(s) x {lane.gpus_per_node} give {given}"))
    for node in lane.nodes:
        have = len(cluster.hosts[node].accelerators)
        if have < lane.gpus_per_node:
            found.append(Finding(Level.BLOCK, "distributed", node, "distributed.gpus_per_node",
                                 f"{node} has {have} GPU(s), the lane asks {lane.gpus_per_node} per node"))
    return found


def _ray_network(lane: RayLane) -> list[Finding]:
    if len(lane.nodes) < 2:
        return []
    link, found = lane.interconnect, []
    where = f"{link.gbps:g} Gbps {link.kind}"
    if link.gbps <= MULTI_NODE_MIN_GBPS:
        found.append(Finding(Level.BLOCK, "distributed", None, "distributed.interconnect",
                             f"{where}: too slow for any multi-node lane (004)"))
    elif lane.tp_size > lane.gpus_per_node and link.gbps < TP_ACROSS_NODES_MIN_GBPS:
        found.append(Finding(Level.BLOCK, "distributed", None, "distributed.tp_size",
                             f"TP {lane.tp_size} spans nodes of {lane.gpus_per_node} GPU(s) over {where}: under "
                             f"{TP_ACROSS_NODES_MIN_GBPS} Gbps it is worse than one card (004); keep TP inside a node, PP across"))
    elif lane.pp_size > 1 and link.gbps < PP_ACROSS_NODES_WARN_BELOW_GBPS:
        found.append(Finding(Level.WARN, "distributed", None, "distributed.pp_size",
                             f"PP {lane.pp_size} over {where}: a memory-fitting strategy at low concurrency, not a "
                             "throughput one (004)"))
    mtus = {node: link.mtu.get(node) for node in lane.nodes}
    if len(set(mtus.values())) > 1:
        shown = ", ".join(f"{n} {m or 'unset'}" for n, m in mtus.items())
        found.append(Finding(Level.BLOCK, "distributed", None, "distributed.interconnect.mtu",
                             f"MTU differs between nodes ({shown}): silent drops and regressions (004)"))
    if lane.nic is None:
        found.append(Finding(Level.BLOCK, "distributed", None, "distributed.nic",
                             "NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME unset: inter-node NCCL with non-uniform NIC "
                             "choice hangs at init (004)"))
    return found


def _ray_fit(cluster: Cluster, lane: RayLane) -> list[Finding]:
    spec = cluster.models[lane.model]
    weights = weights_mib(spec, lane.quant)
    if weights is None or spec.arch is None:
        return [Finding(Level.WARN, "distributed", lane.head, "distributed.model",
                        f"{lane.model} {lane.quant}: size or architecture unknown, fit not checked")]
    cards = [a.memory_mib for n in lane.nodes for a in cluster.hosts[n].accelerators[:lane.gpus_per_node]]
    if not cards:
        return []  # no GPUs at all: _ray_gpus has said so
    shard, smallest = weights / (lane.tp_size * lane.pp_size), min(cards)
    usable = lane.gpu_memory_utilization * smallest
    found = []
    if shard >= usable:
        found.append(Finding(Level.BLOCK, "distributed", lane.head, "distributed.model",
                             f"shard {shard:,.0f} MiB of {lane.model} >= {usable:,.0f} MiB usable on the smallest GPU "
                             f"({lane.gpu_memory_utilization:.0%} of {smallest:,} MiB): no room for KV"))
    else:
        found.append(Finding(Level.PASS, "distributed", lane.head, "distributed.model",
                             f"shard {shard:,.0f} MiB + {usable - shard:,.0f} MiB KV per GPU"))
    one_request = kv_bytes_per_token(spec.arch) * (Workload().prompt_tokens + Workload().output_tokens) / MIB
    largest = max((a.memory_mib for h in cluster.hosts.values() for a in h.accelerators), default=0)
    if weights + one_request < lane.gpu_memory_utilization * largest:
        found.append(Finding(Level.WARN, "distributed", lane.head, "distributed.model",
                             f"{lane.model} ({weights:,.0f} MiB) fits one {largest:,} MiB card of this cluster: a single "
                             "card serves it and the cluster only adds cost (004)"))
    return found
