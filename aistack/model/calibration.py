"""What llama.cpp really allocates, read from the table measured on a GPU (aistack/calibration/).

The planner's llama.cpp memory items come from here: the weights that go to the GPU (the input
embeddings stay in host RAM), the compute buffers, the CUDA context and what the process holds
beyond its buffers. KV is not read from the table: its formula (capacity.py) is checked against it.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .catalogue import builtin_gpus
from .hosts import Accelerator

TABLE = Path(__file__).resolve().parent.parent / "calibration" / "llamacpp-b11312-h100.json"
FULL_PRECISION = ("f32", "f16", "bf16")  # KV types kept unquantised
LLAMACPP_UBATCH = 512  # llama-server's default -ub
# Maximum resident threads per SM by compute capability (CUDA C++ Programming Guide, "Technical
# Specifications per Compute Capability").
THREADS_PER_SM = {"7.0": 2048, "7.2": 2048, "7.5": 1024, "8.0": 2048, "8.6": 1536, "8.7": 1536, "8.9": 1536,
                  "9.0": 2048, "10.0": 2048, "12.0": 1536}


@dataclass(frozen=True)
class Point:
    """One llama-server start: its flags and every buffer it logged, in MiB."""

    name: str
    model: str  # catalogue name
    file_key: str
    mmproj: str | None  # catalogue file key of the projector it loaded
    ctx: int
    parallel: int
    cache_type_k: str
    cache_type_v: str
    flash_attn: bool
    ubatch: int
    unified: bool
    buffers: dict[str, float]  # "text CUDA0 model", "mmproj CUDA0 compute", ...
    proc_mib: float  # nvidia-smi's figure for the process after a request

    @property
    def quantised_kv(self) -> bool:
        return self.cache_type_k not in FULL_PRECISION

    def on_device(self, scope: str, kind: str) -> float:
        return sum(v for k, v in self.buffers.items() if _is(k, scope, kind, device=True))

    def on_host(self, scope: str, kind: str) -> float:
        return sum(v for k, v in self.buffers.items() if _is(k, scope, kind, device=False))


def _is(key: str, scope: str, kind: str, device: bool) -> bool:
    part_scope, backend, part_kind = key.split(" ", 2)
    on_device = backend.startswith("CUDA") and backend != "CUDA_Host"
    return part_scope == scope and part_kind == kind and on_device == device


@dataclass(frozen=True)
class Compute:
    device_mib: float
    host_mib: float
    how: str  # "measured at ...", "interpolated between ...", or the nearest point's name


@dataclass(frozen=True)
class LlamaCppTable:
    source: str  # where the numbers came from, for each item the planner prints
    gpu: str
    context_mib: float  # a bare CUDA context, nvidia-smi's per-process figure
    stack_mib: float  # of which the per-thread stack reservation (scales with the SM count)
    threads: int  # resident threads of the measured GPU: SMs x threads per SM
    runtime_mib: float  # what a server holds beyond its buffers and the bare context, after a request
    points: tuple[Point, ...]

    def weights_on_device(self, model: str, file_key: str) -> float | None:
        return next((p.on_device("text", "model") for p in self.points if (p.model, p.file_key) == (model, file_key)), None)

    def compute(self, model: str, *, flash_attn: bool, quantised_kv: bool, unified: bool, ubatch: int, ctx: int) -> Compute | None:
        """Compute buffers from the measured points of the same kind (attention, KV type, layout, ubatch)."""
        same_model = [p for p in self.points if p.model == model]
        if not same_model:
            return None
        wanted = (flash_attn, quantised_kv, unified, ubatch)
        kind = sorted((p for p in same_model if (p.flash_attn, p.quantised_kv, p.unified, p.ubatch) == wanted),
                      key=lambda p: p.ctx)
        if kind:
            return _along(kind, ctx)
        # No point of that kind: the nearest, same attention and batch shape first, the KV type last.
        nearest = min(same_model, key=lambda p: (p.flash_attn != flash_attn, p.ubatch != ubatch,
                                                 p.unified != unified, p.quantised_kv != quantised_kv, abs(p.ctx - ctx)))
        return _at(nearest, f"nearest measured point {nearest.name}")

    def vision_compute(self, model: str, flash_attn: bool) -> float | None:
        """The projector's compute buffers (one image at its largest size) on the device."""
        found = [p for p in self.points if p.model == model and p.mmproj and p.flash_attn == flash_attn]
        found = found or [p for p in self.points if p.model == model and p.mmproj]
        return max((p.on_device("mmproj", "compute") for p in found), default=None)

    def cuda_context(self, acc: Accelerator) -> tuple[float, str]:
        """A bare CUDA context on this GPU: measured here, else carried over with its stack scaled by SMs."""
        if acc.model == self.gpu:
            return self.context_mib, f"measured on {self.gpu}"
        spec = builtin_gpus().get(acc.model)
        threads = THREADS_PER_SM.get(acc.compute_capability or "")
        if spec is None or threads is None:
            return self.context_mib, f"carried over from {self.gpu} as is ({acc.model}'s SM count or threads unknown)"
        own = self.stack_mib * (spec.sms * threads) / self.threads
        return self.context_mib - self.stack_mib + own, (
            f"carried over from {self.gpu}: {self.context_mib - self.stack_mib:.0f} MiB fixed + stack for "
            f"{spec.sms} SMs x {threads} threads")


def _at(point: Point, how: str) -> Compute:
    return Compute(point.on_device("text", "compute"), point.on_host("text", "compute"), how)


def _along(points: list[Point], ctx: int) -> Compute:
    """Linear in the KV cells between the two points around ctx: held below the first, extended past the last."""
    exact = next((p for p in points if p.ctx == ctx), None)
    if exact is not None:
        return _at(exact, f"measured at {exact.name}")
    if len(points) == 1 or ctx < points[0].ctx:
        return _at(points[0], f"held at {points[0].name}")
    low, high = next(((lo, hi) for lo, hi in zip(points, points[1:]) if ctx <= hi.ctx), (points[-2], points[-1]))
    share = (ctx - low.ctx) / (high.ctx - low.ctx)
    a, b = _at(low, ""), _at(high, "")
    how = "extended past" if ctx > high.ctx else "interpolated between"
    return Compute(a.device_mib + share * (b.device_mib - a.device_mib), a.host_mib + share * (b.host_mib - a.host_mib),
                   f"{how} {low.name} and {high.name}")


def _flag(flags: list[str], *names: str, default: str | None = None) -> str | None:
    for i, flag in enumerate(flags):
        if flag in names:
            return flags[i + 1] if i + 1 < len(flags) and not flags[i + 1].startswith("-") else "on"
    return default


def _point(raw: dict, models: dict) -> Point:
    flags = raw["flags"]
    fa = _flag(flags, "-fa", "--flash-attn", default="auto")
    after = raw.get("after_prompt") or raw["after_load"]
    return Point(
        name=raw["name"],
        model=models[raw["model"]]["catalogue"],
        file_key=models[raw["model"]]["file_key"],
        mmproj=models["mmproj"]["file_key"] if raw.get("mmproj") else None,
        ctx=int(_flag(flags, "-c", "--ctx-size", default="4096")),
        parallel=int(_flag(flags, "-np", "--parallel", default="1")),
        cache_type_k=_flag(flags, "-ctk", default="f16"),
        cache_type_v=_flag(flags, "-ctv", default="f16"),
        flash_attn=fa == "on",
        ubatch=int(_flag(flags, "-ub", default=str(LLAMACPP_UBATCH))),
        unified=_flag(flags, "--kv-unified") is not None,
        buffers=raw["totals"],
        proc_mib=after["proc_mib"],
    )


@cache
def llamacpp_table(path: Path = TABLE) -> LlamaCppTable:
    """The committed table, read once: points that ran without errors only."""
    data = json.loads(path.read_text())
    meta = data["meta"]
    points = tuple(_point(p, meta["models"]) for p in data["points"] if not p.get("errors") and p.get("after_load"))
    context = meta["cuda_context"]
    threads = context["sms"] * context["threads_per_sm"]
    stack_mib = context["stack"] * threads / 2**20
    runtime = statistics.median(p.proc_mib - sum(v for k, v in p.buffers.items() if _device_key(k)) - context["proc_mib"]
                                for p in points)
    source = f"llama.cpp b{meta['build']} on {meta['gpu']}, {meta['date'][:10]} ({path.parent.name}/{path.name})"
    return LlamaCppTable(source, meta["gpu"], context["proc_mib"], stack_mib, threads, runtime, points)


def _device_key(key: str) -> bool:
    backend = key.split(" ", 2)[1]
    return backend.startswith("CUDA") and backend != "CUDA_Host"
