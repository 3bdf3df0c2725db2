"""Every flag rendered for SGLang, vLLM and llama.cpp exists in the parser of the exact version
the image lock pins, read from that version's own source (PyPI), without importing the engine.

Where no source of a pinned build is reachable (the Jetson images' llama.cpp b5283), the test
says so and skips: those flags are checked on the hardware by the live suite.
"""

import pytest
import yaml

from aistack.engine_flags import (
    EngineSourceUnavailable,
    accepted_flags,
    flash_attn_takes_value,
)
from aistack.inventory import load_cluster
from aistack.model import VLLM, LlamaCpp, SGLang
from aistack.render import render_cluster
from aistack.model.locks import llamacpp_build
from tests.conftest import HOMELAB
from tests.render.test_distributed_render import DISTRIBUTED

ENGINE = {LlamaCpp: "llamacpp", SGLang: "sglang", VLLM: "vllm"}
# The homelab as shipped, with its main lane on vLLM instead of SGLang, and with the distributed
# lane of tests/render/test_distributed_render.py (vLLM with Ray, PP across main and edge).
VARIANTS = [[], ["services.chat-main.kind=vllm"], DISTRIBUTED]


def rendered_commands(overrides=()):
    cluster = load_cluster(HOMELAB, list(overrides))
    rendered = render_cluster(cluster)
    for name, service in cluster.services.items():
        engine = next((e for kind, e in ENGINE.items() if isinstance(service, kind)), None)
        if engine is None:
            continue
        compose = rendered[service.host].files[f"{rendered[service.host].stacks[name].directory}/compose.yaml"].content
        containers = yaml.safe_load(compose)["services"]
        args = (containers.get("server") or containers["vllm"])["command"]
        version = cluster.locked_image(cluster.image_key(name)).engine
        yield name, engine, version, [a for a in args if a.startswith("-") and not a.lstrip("-").isdigit()]


CASES = {(n, e, v): f for overrides in VARIANTS for n, e, v, f in rendered_commands(overrides)}


@pytest.mark.network
@pytest.mark.parametrize(("name", "engine", "version"), sorted(CASES, key=str), ids=lambda v: v if isinstance(v, str) else None)
def test_rendered_flags_exist_in_the_pinned_engine(name, engine, version):
    flags = CASES[name, engine, version]
    if version is None:
        pytest.skip(f"{name}: its image records no {engine} build; its flags are checked on hardware by tests/live")
    try:
        known = accepted_flags(engine, version)
    except EngineSourceUnavailable as exc:
        pytest.skip(f"{name}: no source for {engine} {version} on the index ({exc}); checked on hardware by tests/live")
    assert flags, name
    unknown = [f for f in flags if f not in known]
    assert not unknown, f"{name}: {engine} {version} does not accept {unknown}"


@pytest.mark.network
def test_a_renamed_flag_is_caught():
    known = accepted_flags("sglang", "0.5.19")
    assert "--max-running-requests" in known
    assert "--max-running-request" not in known  # what a typo or an upstream rename would render


@pytest.mark.network
def test_renderer_and_source_agree_on_flash_attention_form():
    cluster = load_cluster(HOMELAB)
    build = cluster.locked_image(cluster.image_key("gemma-edge")).engine
    assert llamacpp_build(build) >= 6327 and flash_attn_takes_value(build)
    assert not flash_attn_takes_value("llama-cpp-python==0.3.16")  # a pre-b6327 build: bare -fa


def test_vllm_args_are_rendered_for_a_vllm_lane():
    from aistack.render.engine_args import vllm_args

    lane = VLLM(kind="vllm", host="main", model="qwen2.5-7b-instruct-awq", quant="AWQ", gpus=[0])
    args = vllm_args(lane, model="/models/x", bind="127.0.0.1", alias="chat", max_num_seqs=64)
    # The image's entrypoint is vLLM's api_server, which ignores a positional model (0.11.0): --model.
    assert args[:2] == ["--model", "/models/x"] and "--enable-prefix-caching" in args
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.90"
