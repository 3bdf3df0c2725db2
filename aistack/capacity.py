"""Will it fit, and how many users: memory budgets per accelerator and KV capacity per lane.

All arithmetic lives here; templates and roles only read the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import (
    VLLM,
    Asr,
    Cluster,
    Detector,
    GpuService,
    Host,
    LlamaCpp,
    RayNode,
    SGLang,
    Tts,
)
from .model.calibration import FULL_PRECISION, LLAMACPP_UBATCH, llamacpp_table
from .model.catalogue import Arch, ModelSpec, total_bytes
from .model.hosts import Accelerator

MIB = 1024 * 1024

# Bytes per cached element. ggml's quantised blocks carry a fp16 scale per 32 values:
# q8_0 = 34 bytes / 32, q4_0 = 18 / 32, q4_1 and q5_0 and q5_1 add a min or high bits.
KV_BYTES = {
    "f32": 4.0, "f16": 2.0, "bf16": 2.0, "auto": 2.0,
    "q8_0": 34 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32, "q4_1": 20 / 32, "q5_0": 22 / 32, "q5_1": 24 / 32,
    "fp8": 1.0, "fp8_e4m3": 1.0, "fp8_e5m2": 1.0, "fp4_e2m1": 0.5,
}
# llama.cpp pads the sliding-window cache to 256 cells (b11312 src/llama-kv-cache-iswa.cpp, issue 17037).
SWA_PAD = 256
# A decoded RGB image briefly costs several times its raw size (the seed saw 50-125 MB spikes
# from a 25 MB decode, 000); one image per busy slot.
IMAGE_SPIKE_FACTOR = 5
# int8 weights take about half the bytes of the fp16 files Systran publishes.
CT2_WEIGHT_FACTOR = {"int8_float16": 0.5, "int8": 0.5, "float16": 1.0, "float32": 2.0}
# SGLang picks mem_fraction_static itself when unset: (gpu_mem - reserved) / gpu_mem with
# reserved ~ 512 MB + 1.5 MB per activation token (>= 2,048) + graph buffers (0.5.19,
# srt/arg_groups/memory_hook.py). About 0.85 on a 24 GB card: plan with that.
SGLANG_AUTO_FRACTION = 0.85
# Free memory under this share of an accelerator is a WARN: allocator growth has nowhere to go.
HEADROOM_WARN = 0.05


def kv_bytes_per_token(arch: Arch, k_type: str = "f16", v_type: str = "f16") -> float:
    """Per token over the full-attention layers that own a cache: layers x kv_heads x head_dim x (K + V bytes)."""
    dim = arch.head_dim_full or arch.head_dim
    return arch.full_cache_layers * arch.kv_heads * dim * (KV_BYTES[k_type] + KV_BYTES[v_type])


def sliding_cells(arch: Arch, ctx: int, sequences: int, unified: bool, ubatch: int) -> int:
    """Cells llama.cpp gives the sliding-window layers: a window and a micro-batch per KV stream, padded.

    Split KV keeps one stream per slot of ctx / slots cells; unified KV one stream whose window
    covers every slot (b11312 llama-kv-cache-iswa.cpp, checked against the calibration logs).
    """
    streams = 1 if unified else sequences
    window = arch.sliding_window * (sequences if unified else 1) + ubatch
    per_stream = min(ctx // streams, window)
    return streams * -(-per_stream // SWA_PAD) * SWA_PAD


def kv_cache_bytes(arch: Arch, tokens: int, k_type: str, v_type: str, sequences: int = 1, *, unified: bool = False,
                   ubatch: int = LLAMACPP_UBATCH, flash_attn: bool = True) -> float:
    """The KV cache llama.cpp allocates for `tokens` of context; sliding-window layers hold only their window."""
    full = kv_bytes_per_token(arch, k_type, v_type) * tokens
    if not arch.sliding_cache_layers:
        return full
    heads = arch.kv_heads_sliding or arch.kv_heads
    k_dim = arch.head_dim_sliding or arch.head_dim
    # Without flash attention V is stored transposed at the widest V of any layer (n_embd_v_gqa_max).
    v_dim = k_dim if flash_attn else max(k_dim, arch.head_dim_full or arch.head_dim)
    cells = sliding_cells(arch, tokens, sequences, unified, ubatch)
    return full + arch.sliding_cache_layers * heads * (k_dim * KV_BYTES[k_type] + v_dim * KV_BYTES[v_type]) * cells


@dataclass
class LaneCapacity:
    """What one generation lane can hold, against what its typical request needs."""

    service: str
    engine: str
    slots: int | None  # llama.cpp: -np; engines: max running sequences
    slot_context: int | None  # tokens one request may use
    request_tokens: int  # image tokens + prompt + output of the lane's workload
    kv_tokens: int | None  # tokens the KV cache/pool holds
    kv_bytes_per_token: float | None
    concurrent: int | None  # sequences of typical length the KV holds at once
    unified_kv: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def fits_request(self) -> bool | None:
        return None if self.slot_context is None else self.slot_context >= self.request_tokens


@dataclass
class Item:
    """One line of an accelerator's memory budget."""

    service: str
    what: str
    mib: float
    source: str = ""  # where the figure comes from, where it is measured rather than a file size


@dataclass
class Budget:
    host: str
    accelerator: str  # "gpu0", or "unified" for a Jetson's shared memory
    total_mib: float
    unified: bool
    items: list[Item] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # sizes the catalogue does not have yet

    @property
    def used_mib(self) -> float:
        return sum(i.mib for i in self.items)

    @property
    def free_mib(self) -> float:
        return self.total_mib - self.used_mib


@dataclass
class Plan:
    budgets: list[Budget]
    lanes: dict[str, LaneCapacity]


# ---- lanes --------------------------------------------------------------------------------


def request_tokens(service: LlamaCpp | SGLang | VLLM, spec: ModelSpec, build: int | None = None) -> int:
    """Image tokens (the largest image at the engine's build) + prompt + output of the lane's workload."""
    w = service.workload
    return w.images * spec.image_tokens(build) + w.prompt_tokens + w.output_tokens


def llamacpp_lane(name: str, lane: LlamaCpp, spec: ModelSpec, build: int | None = None) -> LaneCapacity:
    """Split KV (explicit -np): each slot owns ctx / np. Unified KV: one pool, any request up to ctx."""
    need = request_tokens(lane, spec, build)
    slot_ctx = lane.ctx if lane.kv_unified else lane.ctx // lane.parallel
    concurrent = lane.ctx // need if lane.kv_unified else (lane.parallel if slot_ctx >= need else 0)
    return LaneCapacity(
        service=name,
        engine="llama.cpp",
        slots=lane.parallel,
        slot_context=slot_ctx,
        request_tokens=need,
        kv_tokens=lane.ctx,
        kv_bytes_per_token=kv_bytes_per_token(spec.arch, lane.cache_type_k, lane.cache_type_v),
        concurrent=min(concurrent, lane.parallel),
        unified_kv=lane.kv_unified,
    )


def engine_pool_mib(lane: SGLang | VLLM, cards_mib: list[int], weights_mib: float | None) -> float | None:
    """The KV pool across the lane's GPUs: the engine's memory share minus the weights."""
    if weights_mib is None:
        return None
    return engine_fraction(lane) * sum(cards_mib) - weights_mib


def lane_cards(cluster: Cluster, name: str) -> list[int]:
    """Memory of every card a lane's ranks use: its own GPUs, or each Ray node's on the distributed lane."""
    lane = cluster.services[name]
    ray = cluster.distributed
    if isinstance(lane, VLLM) and lane.executor == "ray" and ray is not None:
        return [a.memory_mib for n in ray.nodes for a in cluster.hosts[n].accelerators[:ray.gpus_per_node]]
    return [cluster.hosts[lane.host].accelerators[i].memory_mib for i in lane.gpus]


def engine_fraction(lane: SGLang | VLLM) -> float:
    """The share of each card the engine takes for weights + KV pool."""
    if isinstance(lane, VLLM):
        return lane.gpu_memory_utilization
    return lane.mem_fraction_static or SGLANG_AUTO_FRACTION


def engine_lane(name: str, lane: SGLang | VLLM, cards_mib: list[int], spec: ModelSpec) -> LaneCapacity:
    weights = weights_mib(spec, lane.quant)
    pool = engine_pool_mib(lane, cards_mib, weights)
    need = request_tokens(lane, spec)
    per_token = kv_bytes_per_token(spec.arch, lane.kv_cache_dtype, lane.kv_cache_dtype)
    tokens = int(pool * MIB / per_token) if pool and pool > 0 else (0 if pool is not None else None)
    cap = lane.max_running_requests if isinstance(lane, SGLang) else lane.max_num_seqs
    notes = [] if pool is not None else ["weights size unknown: KV pool not computed"]
    max_len = (lane.context_length if isinstance(lane, SGLang) else lane.max_model_len) or spec.arch.max_context
    return LaneCapacity(
        service=name,
        engine=lane.kind,
        slots=cap,
        slot_context=max_len,
        request_tokens=need,
        kv_tokens=tokens,
        kv_bytes_per_token=per_token,
        concurrent=None if tokens is None else tokens // need,
        unified_kv=True,
        notes=notes,
    )


def vllm_max_num_seqs(capacity: LaneCapacity, lane: VLLM) -> int:
    """--max-num-seqs sized to the KV pool at the lane's workload, never above the cliff (003)."""
    if lane.max_num_seqs is not None:
        return lane.max_num_seqs
    return max(1, capacity.concurrent or 1)


# ---- memory -------------------------------------------------------------------------------


def weights_mib(spec: ModelSpec, key: str | None) -> float | None:
    if key is None:
        return 0.0
    size = total_bytes(spec.files[key])
    return None if size is None else size / MIB


def service_items(name: str, service: GpuService, spec: ModelSpec | None, host: Host) -> tuple[list[Item], list[str]]:
    """The accelerator memory one service takes, line by line, and the sizes that are unknown."""
    items: list[Item] = []
    unknown: list[str] = []

    def weights(key: str | None, what: str, factor: float = 1.0) -> None:
        size = weights_mib(spec, key) if spec else None
        if size is None:
            unknown.append(f"{name}: {what} size of {key} unknown")
        elif size:
            items.append(Item(name, what, size * factor))

    per_gpu = max(1, len(service.gpus))
    acc = host.accelerators[service.gpus[0]]
    if isinstance(service, LlamaCpp):
        found, missing = llamacpp_items(name, service, spec, acc, host.unified)
        items += found
        unknown += missing
    elif isinstance(service, (SGLang, VLLM)):
        fraction = engine_fraction(service)
        reserved = fraction * acc.memory_mib
        items.append(Item(name, f"engine reservation ({fraction:.0%} of the card: weights/{per_gpu} + KV pool)", reserved))
        items.append(Item(name, "runtime (CUDA context, graphs)", service.runtime_mib))
    elif isinstance(service, Asr):
        context, how = llamacpp_table().cuda_context(acc)
        for i in range(service.instances):
            weights("model", f"whisper #{i + 1} weights ({service.compute_type})", CT2_WEIGHT_FACTOR[service.compute_type])
            items.append(Item(name, f"whisper #{i + 1} CUDA context", context, how))
            items.append(Item(name, f"whisper #{i + 1} work buffers", service.runtime_mib))
    elif isinstance(service, Tts):
        weights("model", "weights")
        context, how = llamacpp_table().cuda_context(acc)
        items.append(Item(name, "CUDA context", context, how))
        items.append(Item(name, "work buffers", service.runtime_mib))
    elif isinstance(service, RayNode) and service.engine_share:
        # A worker's cards hold vLLM ranks; the head's are counted on the vLLM service itself.
        share = service.engine_share * acc.memory_mib
        items.append(Item(name, f"vLLM ranks of {service.lane} ({service.engine_share:.0%} of the card)", share))
    elif isinstance(service, Detector):
        items.append(Item(name, "TensorRT engine", service.engine_mib))
        items.append(Item(name, "runtime (CUDA context, TRT workspace)", service.runtime_mib))
        spike = service.max_image_px**2 * 3 * IMAGE_SPIKE_FACTOR / MIB
        items.append(Item(name, f"image decode at <= {service.max_image_px} px", spike))
    return items, unknown


def llamacpp_items(name: str, lane: LlamaCpp, spec: ModelSpec | None, acc: Accelerator, unified: bool) -> tuple[list[Item], list[str]]:
    """llama-server's memory from the calibration table: what it puts on the GPU, and on a Jetson all of it."""
    if spec is None:
        return [], [f"{name}: {lane.model} is not in the catalogue"]
    items, unknown = llamacpp_memory(
        name, lane.model, spec, quant=lane.quant, mmproj=lane.mmproj, ctx=lane.ctx, parallel=lane.parallel,
        cache_type_k=lane.cache_type_k, cache_type_v=lane.cache_type_v, flash_attn=lane.flash_attn != "off",
        unified_kv=lane.kv_unified, ubatch=LLAMACPP_UBATCH, acc=acc, unified_memory=unified, runtime_mib=lane.runtime_mib,
    )
    if unified and lane.role == "vision":
        # Images are decoded on the CPU side: on a Jetson that is the same memory (000).
        spike = lane.parallel * lane.max_image_px**2 * 3 * IMAGE_SPIKE_FACTOR / MIB
        items.append(Item(name, f"image decode, {lane.parallel} slots at <= {lane.max_image_px} px", spike))
    return items, unknown


def llamacpp_memory(name: str, model: str, spec: ModelSpec, *, quant: str, mmproj: str | None, ctx: int, parallel: int,
                    cache_type_k: str, cache_type_v: str, flash_attn: bool, unified_kv: bool, ubatch: int,
                    acc: Accelerator, unified_memory: bool, runtime_mib: int | None) -> tuple[list[Item], list[str]]:
    """Each buffer llama-server allocates for this configuration, with where its size comes from."""
    table = llamacpp_table()
    items: list[Item] = []
    unknown: list[str] = []
    file_mib = weights_mib(spec, quant)
    on_gpu = table.weights_on_device(model, quant)
    if on_gpu is not None:
        # The input layer (token and per-layer embeddings) always stays on the CPU (llama-model.cpp)
        # as mmap'd file pages: on a Jetson too they are page cache the kernel reclaims, not a charge.
        items.append(Item(name, "weights on the GPU", on_gpu, table.source))
    elif file_mib is not None:
        items.append(Item(name, "weights (whole file: this model is not calibrated)", file_mib))
    else:
        unknown.append(f"{name}: weights size of {quant} unknown")
    if mmproj:
        size = weights_mib(spec, mmproj)
        if size is None:
            unknown.append(f"{name}: mmproj size of {mmproj} unknown")
        else:
            items.append(Item(name, "mmproj weights", size))
    if spec.arch is not None:  # encoders (embedding, rerank) keep no KV cache
        kv = kv_cache_bytes(spec.arch, ctx, cache_type_k, cache_type_v, parallel, unified=unified_kv, ubatch=ubatch, flash_attn=flash_attn)
        items.append(Item(name, f"KV {cache_type_k}/{cache_type_v} x {ctx:,} tokens", kv / MIB))
    compute = table.compute(model, flash_attn=flash_attn, quantised_kv=cache_type_k not in FULL_PRECISION,
                            unified=unified_kv, ubatch=ubatch, ctx=ctx)
    if compute is None:
        unknown.append(f"{name}: compute buffers of {model} not measured (python -m aistack.calibrate)")
    else:
        items.append(Item(name, "compute buffers", compute.device_mib, f"{table.source}: {compute.how}"))
        if unified_memory:
            items.append(Item(name, "compute buffers (host side)", compute.host_mib, f"{table.source}: {compute.how}"))
    vision = table.vision_compute(model, flash_attn) if mmproj else None
    if vision is not None:
        items.append(Item(name, "vision compute buffers", vision, table.source))
    if runtime_mib is not None:
        items.append(Item(name, "runtime (CUDA context and pools, as set)", runtime_mib))
    else:
        context, how = table.cuda_context(acc)
        items.append(Item(name, "CUDA context", context, how))
        items.append(Item(name, "runtime beyond its buffers (after a request)", table.runtime_mib, table.source))
    return items, unknown


def budgets(cluster: Cluster) -> list[Budget]:
    """One budget per accelerator; a Jetson's single budget is its whole unified memory."""
    found = []
    models = cluster.models
    for host in cluster.hosts.values():
        placed = cluster.on_host(host.name)
        active = {n: s for n, s in placed.items() if s.active}
        if host.unified:
            budget = Budget(host.name, "unified", host.accelerators[0].memory_mib, unified=True)
            budget.items.append(Item("os", "kernel and system reserve", host.os_reserve_mib))
            for name, service in active.items():
                budget.items.append(Item(name, "CPU side (process RAM)", service.cpu_ram_mib * _instances(service)))
                if isinstance(service, GpuService):
                    items, unknown = service_items(name, service, _spec(models, service), host)
                    budget.items += items
                    budget.unknown += unknown
            found.append(budget)
            continue
        for index, acc in enumerate(host.accelerators):
            budget = Budget(host.name, f"gpu{index}", acc.memory_mib, unified=False)
            for name, service in active.items():
                if isinstance(service, GpuService) and index in service.gpus:
                    items, unknown = service_items(name, service, _spec(models, service), host)
                    if isinstance(service, LlamaCpp) and len(service.gpus) > 1:
                        items = [Item(i.service, f"{i.what} / {len(service.gpus)}", i.mib / len(service.gpus)) for i in items]
                    budget.items += items
                    budget.unknown += unknown
            found.append(budget)
    return found


def _instances(service: object) -> int:
    return service.instances if isinstance(service, Asr) else 1


def _spec(models: dict[str, ModelSpec], service: GpuService) -> ModelSpec | None:
    model = getattr(service, "model", None)
    return models.get(model) if model else None


def lane_capacity(cluster: Cluster) -> dict[str, LaneCapacity]:
    found = {}
    models = cluster.models
    for name, service in cluster.services.items():
        spec = _spec(models, service) if isinstance(service, GpuService) else None
        if spec is None or spec.arch is None:
            continue
        if isinstance(service, LlamaCpp) and service.generates:
            found[name] = llamacpp_lane(name, service, spec, cluster.llamacpp_build(name))
        elif isinstance(service, (SGLang, VLLM)):
            found[name] = engine_lane(name, service, lane_cards(cluster, name), spec)
    return found


def plan(cluster: Cluster) -> Plan:
    return Plan(budgets=budgets(cluster), lanes=lane_capacity(cluster))
