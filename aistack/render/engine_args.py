"""Engine command lines from the model, in the form the pinned engine version accepts.

Flags move between versions (llama.cpp's `-fa` took a value from b6327): every function here
takes the engine version the image lock records, and tests check each flag against that
version's own argument parser.
"""

from __future__ import annotations

from ..model import VLLM, LlamaCpp, SGLang

# llama.cpp: `--flash-attn on|off|auto` from this build; before it a bare switch (FACTS.md).
FA_TAKES_VALUE_SINCE = 6327
# The first llama.cpp build whose llama-server accepts each flag it may be given here; an older
# image refuses it at start ("unknown argument"). Where the exact build could not be read, the
# number is an upper estimate from the merge date (the history exceeds what can be fetched).
FLAG_SINCE: dict[str, tuple[int, str]] = {
    "--mmproj": (5331, "b5331 release notes: 'server : vision support via libmtmd' (PR #12898)"),
    "--kv-unified": (5913, "issue #14847: the flag is present in b5913, not in b5912"),
    "--rerank": (3850, "PR #9510 (merged 2024-09-28): upper estimate"),
    "--jinja": (4500, "PR #11016 (merged January 2025): upper estimate"),
}


def llamacpp_args(lane: LlamaCpp, *, model: str, mmproj: str | None, bind: str, build: int | None, alias: str) -> list[str]:
    """llama-server arguments. Always explicit -np and --port (the defaults move between builds)."""
    args = ["-m", model]
    if mmproj:
        args += ["--mmproj", mmproj]
    args += ["-c", str(lane.ctx), "-np", str(lane.parallel)]
    if lane.kv_unified:
        args.append("--kv-unified")
    args += ["-ctk", lane.cache_type_k, "-ctv", lane.cache_type_v]
    args += _flash_attn(lane.flash_attn, build)
    if lane.gpus:
        args += ["-ngl", str(lane.n_gpu_layers)]
    if lane.role == "embedding":
        args.append("--embedding")
    elif lane.role == "rerank":
        args.append("--rerank")
    else:
        args.append("--jinja")
    if lane.metrics:
        args.append("--metrics")
    args += ["-a", alias, "--host", bind, "--port", str(lane.port)]
    return args


def _flash_attn(mode: str, build: int | None) -> list[str]:
    if build is not None and build >= FA_TAKES_VALUE_SINCE:
        return ["-fa", mode]
    # Older builds: a bare switch, off unless given; "auto" did not exist, so "on" is the safe reading.
    return ["-fa"] if mode in ("on", "auto") else []


def sglang_args(lane: SGLang, *, model: str, bind: str, alias: str) -> list[str]:
    args = [
        "--model-path", model,
        "--served-model-name", alias,
        "--tp-size", str(lane.tp_size or len(lane.gpus)),
        "--max-running-requests", str(lane.max_running_requests),
        "--kv-cache-dtype", lane.kv_cache_dtype,
        "--host", bind,
        "--port", str(lane.port),
    ]
    if lane.mem_fraction_static is not None:
        args += ["--mem-fraction-static", str(lane.mem_fraction_static)]
    if lane.context_length is not None:
        args += ["--context-length", str(lane.context_length)]
    if lane.chunked_prefill_size is not None:
        args += ["--chunked-prefill-size", str(lane.chunked_prefill_size)]
    if lane.enable_metrics:
        args.append("--enable-metrics")
    return args


def vllm_args(lane: VLLM, *, model: str, bind: str, alias: str, max_num_seqs: int) -> list[str]:
    # --model, not the positional: the image's ENTRYPOINT is `python3 -m vllm.entrypoints.openai.api_server`,
    # whose __main__ parses a positional model_tag but never uses it (only `vllm serve` does; 0.11.0).
    args = [
        "--model", model,
        "--served-model-name", alias,
        "--tensor-parallel-size", str(lane.tp_size or len(lane.gpus)),
        *(["--pipeline-parallel-size", str(lane.pp_size)] if lane.pp_size > 1 else []),
        # Multi-node needs Ray; the multiprocessing backend is single-node only (004).
        *(["--distributed-executor-backend", "ray"] if lane.executor == "ray" else []),
        "--gpu-memory-utilization", f"{lane.gpu_memory_utilization:.2f}",
        "--max-num-seqs", str(max_num_seqs),
        "--kv-cache-dtype", lane.kv_cache_dtype,
        "--host", bind,
        "--port", str(lane.port),
    ]
    if lane.max_model_len is not None:
        args += ["--max-model-len", str(lane.max_model_len)]
    args.append("--enable-prefix-caching" if lane.enable_prefix_caching else "--no-enable-prefix-caching")
    return args
