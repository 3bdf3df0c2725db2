"""Every tuned default of DESIGN.md's table is a model field default whose reason names its seed."""

import pytest

from aistack.model import (
    VLLM,
    Asr,
    Gateway,
    Host,
    LlamaCpp,
    Nginx,
    RayLane,
    SGLang,
    Storage,
    TimeoutChain,
    WebUI,
    Workload,
)
from aistack.model.base import SEED_REF, tuned_fields

# (DESIGN.md row, model class, field, value)
DESIGN_DEFAULTS = [
    ("nginx read/send timeout 300 s", TimeoutChain, "nginx_s", 300),
    ("nginx buffering off for streams", Nginx, "proxy_buffering", False),
    ("HTTP clients wait 300 s", TimeoutChain, "gateway_s", 300),
    ("HTTP clients wait 300 s", TimeoutChain, "backend_s", 300),
    ("HTTP clients wait 300 s", TimeoutChain, "webui_client_s", 300),
    ("connection pool 128", TimeoutChain, "http_pool", 128),
    ("SGLang --max-running-requests 128", SGLang, "max_running_requests", 128),
    ("LiteLLM 8 workers", Gateway, "workers", 8),
    ("LiteLLM num_retries 0", Gateway, "num_retries", 0),
    ("Open WebUI 8 workers", WebUI, "workers", 8),
    ("Open WebUI database without a write lock", WebUI, "database", "postgresql"),
    ("edge Gemma -c 32768", LlamaCpp, "ctx", 32768),
    ("edge Gemma -np 4", LlamaCpp, "parallel", 4),
    ("KV cache q4_0 (K)", LlamaCpp, "cache_type_k", "q4_0"),
    ("KV cache q4_0 (V)", LlamaCpp, "cache_type_v", "q4_0"),
    ("vision routing: dedicated VRAM 8", Gateway, "weight_dedicated", 8),
    ("vision routing: unified memory 1", Gateway, "weight_unified", 1),
    ("two Whisper instances", Asr, "instances", 2),
    ("Whisper int8_float16", Asr, "compute_type", "int8_float16"),
    ("images bounded to 1280 px", LlamaCpp, "max_image_px", 1280),
    ("models on their own path", Storage, "models", "/srv/models"),
    ("vectors on their own path", Storage, "vectors", "/srv/vectors"),
    ("vLLM --gpu-memory-utilization 0.90", VLLM, "gpu_memory_utilization", 0.90),
    ("vLLM prefix caching on", VLLM, "enable_prefix_caching", True),
    ("vLLM --max-num-seqs sized to the KV pool", VLLM, "max_num_seqs", None),
    ("Ray lane memory utilisation 0.90", RayLane, "gpu_memory_utilization", 0.90),
    ("Jetson OS reserve in the unified budget", Host, "os_reserve_mib", 1024),
    ("plan for typical prompts, not toys", Workload, "prompt_tokens", 2000),
]


@pytest.mark.parametrize(("row", "model", "field", "value"), DESIGN_DEFAULTS, ids=[r[0] for r in DESIGN_DEFAULTS])
def test_design_default_is_a_tuned_field(row, model, field, value):
    tuned = tuned_fields(model)
    assert field in tuned, f"{model.__name__}.{field} is not marked tuned"
    default, why = tuned[field]
    assert default == value
    assert SEED_REF.search(why), why


def test_every_tuned_reason_names_a_seed():
    classes = {m for _, m, _, _ in DESIGN_DEFAULTS}
    for model in classes:
        for field, (_, why) in tuned_fields(model).items():
            assert SEED_REF.search(why), f"{model.__name__}.{field}: {why}"


def test_a_tuned_default_without_a_seed_is_refused():
    from aistack.model.base import tuned

    with pytest.raises(ValueError, match="seed reference"):
        tuned(1, "because it felt right")
