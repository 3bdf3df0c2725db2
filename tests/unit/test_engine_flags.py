"""aistack.engine_flags: flags read from each engine's own source at the pinned version.

Two layers:
* offline tests feed small synthetic sources to the parsers (they pin the derivation rules:
  dataclass field -> --kebab-name, BooleanOptionalAction -> --no-x, llama.cpp example filtering
  and value arity);
* `network` tests fetch the pinned versions from PyPI (cached under ~/.cache/aistack/engine-src,
  or $AISTACK_ENGINE_SRC_CACHE) and check the flags aistack relies on. A flag renamed upstream
  makes these fail when the pin moves.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from aistack import engine_flags as ef

PROJECT = Path(__file__).resolve().parents[2]

SGLANG_KNOWN = [
    "--model-path", "--tp-size", "--max-running-requests", "--mem-fraction-static", "--context-length",
    "--max-total-tokens", "--chunked-prefill-size", "--enable-metrics", "--host", "--port",
    "--served-model-name", "--kv-cache-dtype",
]
VLLM_KNOWN = [
    "--tensor-parallel-size", "--pipeline-parallel-size", "--distributed-executor-backend",
    "--gpu-memory-utilization", "--max-model-len", "--max-num-seqs", "--kv-cache-dtype",
    "--enable-prefix-caching", "--no-enable-prefix-caching", "--host", "--port", "--served-model-name",
    "--api-key", "-tp", "-pp",
]
LLAMACPP_KNOWN = [
    "-m", "-fa", "--flash-attn", "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "--kv-unified",
    "--metrics", "-np", "--parallel", "--mmproj", "--jinja", "-ngl", "-a", "--alias", "--host", "--port",
    "-c", "--ctx-size", "--slots", "--embedding", "--rerank",
]
# near misses: singular/abbreviated/renamed spellings that must NOT be reported as accepted
NOT_FLAGS = {
    "sglang": ["--max-running-request", "--mem-fraction", "--tensor-parallel", "--enable-metric"],
    "vllm": ["--gpu-mem-util", "--max-running-requests", "--tp", "--max-model-length", "--no-host"],
    "llamacpp": ["--ctx", "--n-parallel", "--flash-attention", "--metric", "--kv-unify"],
}


# ---------------------------------------------------------------------------------------------
# offline: the derivation rules
# ---------------------------------------------------------------------------------------------

ARG_CPP = textwrap.dedent(r'''
    static std::initializer_list<enum llama_example> mmproj_examples = {
        LLAMA_EXAMPLE_MTMD,
        LLAMA_EXAMPLE_SERVER,
    };
    common_params_context common_params_parser_init(common_params & params, llama_example ex) {
        auto add_opt = [&](common_arg arg) { /* add_opt(common_arg({"--in-comment"}, ...)) */ };
        add_opt(common_arg(
            {"-c", "--ctx-size"}, "N",
            string_format("size of the prompt context (default: %d, 0 = loaded from model)", params.n_ctx),
            [](common_params & params, int value) { params.n_ctx = value; }
        ).set_env("LLAMA_ARG_CTX_SIZE"));
        add_opt(common_arg({ "-fa", "--flash-attn" }, "[on|off|auto]",
            "set Flash Attention use ('on', 'off', or 'auto', default: '" "auto" "')",
            [](common_params & params, const std::string & value) { (void) value; }
        ).set_env("LLAMA_ARG_FLASH_ATTN"));
        add_opt(common_arg(
            {"-kvu", "--kv-unified"},
            {"-no-kvu", "--no-kv-unified"},
            "use single unified KV buffer, with a comma, inside",
            [](common_params & params, bool value) { params.kv_unified = value; }
        ).set_env("LLAMA_ARG_KV_UNIFIED").set_examples({LLAMA_EXAMPLE_SERVER, LLAMA_EXAMPLE_PERPLEXITY}));
        add_opt(common_arg(
            {"-p", "--prompt"}, "PROMPT", R"(prompt with "quotes", commas)",
            [](common_params & params, const std::string & value) { params.prompt = value; }
        ).set_excludes({LLAMA_EXAMPLE_SERVER}));
        add_opt(common_arg(
            {"--mmproj"}, "FILE", "path to a multimodal projector file",
            [](common_params & params, const std::string & value) { params.mmproj.path = value; }
        ).set_examples(mmproj_examples).set_env("LLAMA_ARG_MMPROJ"));
        add_opt(common_arg(
            {"-cnv", "--conversation"}, "run in conversation mode",
            [](common_params & params) { params.conversation_mode = COMMON_CONVERSATION_MODE_ENABLED; }
        ).set_examples({LLAMA_EXAMPLE_COMPLETION}));
        add_opt(common_arg(
            {"--control-vector-layer-range"}, "START", "END", "layer range",
            [](common_params & params, const std::string & start, const std::string & end) {}
        ));
        if (ex == LLAMA_EXAMPLE_SERVER) {
            add_opt(common_arg({"-np", "--parallel"}, "N", "number of server slots",
                [](common_params & params, int value) { params.n_parallel = value; }
            ).set_examples({LLAMA_EXAMPLE_SERVER}));
        } else {
            add_opt(common_arg({"--sequences-only-elsewhere"}, "N", "not on the server",
                [](common_params & params, int value) { params.n_parallel = value; }));
        }
        return ctx_arg;
    }
''')


def test_llamacpp_parser_filters_by_example_and_counts_values():
    specs = {s.names[-1]: s for s in ef.parse_llamacpp(ARG_CPP)}
    assert set(specs) == {"--ctx-size", "--flash-attn", "--kv-unified", "--mmproj",
                          "--control-vector-layer-range", "--parallel"}
    assert specs["--flash-attn"].value_arity == 1
    assert specs["--flash-attn"].value_hint == "[on|off|auto]"
    assert specs["--kv-unified"].value_arity == 0
    assert specs["--kv-unified"].negated == ("-no-kvu", "--no-kv-unified")
    assert specs["--control-vector-layer-range"].value_arity == 2
    assert specs["--ctx-size"].env == "LLAMA_ARG_CTX_SIZE"
    completion = {n for s in ef.parse_llamacpp(ARG_CPP, "LLAMA_EXAMPLE_COMPLETION") for n in s.all_names}
    assert {"-p", "-cnv", "--sequences-only-elsewhere"} <= completion
    assert "--mmproj" not in completion and "-np" not in completion


def test_llamacpp_bare_flash_attn_is_a_switch():
    old = 'add_opt(common_arg({"-fa", "--flash-attn"}, "enable Flash Attention", ' \
          '[](common_params & params) { params.flash_attn = true; }).set_env("LLAMA_ARG_FLASH_ATTN"));'
    (spec,) = ef.parse_llamacpp(old)
    assert spec.names == ("-fa", "--flash-attn") and spec.value_arity == 0


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))


def test_sglang_dataclass_fields_become_flags(tmp_path):
    _write(tmp_path, "sglang/srt/server_args.py", '''
        import argparse, dataclasses
        from typing import Optional
        from sglang.srt.arg_groups.arg_utils import A, Arg, NS, add_cli_args_from_dataclass
        HELP = "a help constant"

        @dataclasses.dataclass
        class ServerArgs:
            model_path: A[str, Arg(help="weights", aliases=["--model"])]
            tp_size: A[int, Arg(help="tp", cli_name="--tensor-parallel-size", aliases=["--tp-size"]), NS("p")] = 1
            enable_metrics: A[bool, "metrics"] = False
            max_running_requests: A[Optional[int], HELP, NS("sched")] = None
            internal_only: A[int, Arg(help="x", no_cli=True)] = 0
            no_annotation_help: A[int, NS("x")] = 0
            plain: int = 0
            overlap: A[bool, Arg(help="o", action=argparse.BooleanOptionalAction)] = True

            @staticmethod
            def add_cli_args(parser):
                add_cli_args_from_dataclass(parser, ServerArgs)
                parser.add_argument("--reasoning-parser", type=str)
                parser.add_argument("--old-flag", action=DeprecatedStoreTrueAction)
    ''')
    specs = ef.parse_sglang(tmp_path)
    names = {n for s in specs for n in s.all_names}
    assert {"--model-path", "--model", "--tensor-parallel-size", "--tp-size", "--enable-metrics",
            "--max-running-requests", "--reasoning-parser", "--overlap", "--no-overlap", "--old-flag"} <= names
    assert not names & {"--internal-only", "--no-annotation-help", "--plain", "--no-enable-metrics"}
    assert next(s for s in specs if "--old-flag" in s.names).deprecated
    assert next(s for s in specs if "--enable-metrics" in s.names).value_arity == 0


def test_vllm_get_kwargs_types_and_frontend_loop(tmp_path):
    _write(tmp_path, "vllm/config/cache.py", '''
        from typing import Literal, Optional
        from pydantic import SkipValidation
        CacheDType = Literal["auto", "fp8"]
        @config
        @dataclass
        class CacheConfig:
            gpu_memory_utilization: float = 0.9
            enable_prefix_caching: Optional[bool] = None
            kv_cache_dtype: CacheDType = "auto"
            flags_list: list[bool] = None
        @config
        @dataclass
        class SchedulerConfig:
            enable_chunked_prefill: SkipValidation[bool] = None
            max_num_seqs: int | None = None
    ''')
    _write(tmp_path, "vllm/engine/arg_utils.py", '''
        import argparse
        from vllm.config import CacheConfig, SchedulerConfig
        class EngineArgs:
            @staticmethod
            def add_cli_args(parser):
                cache_kwargs = get_kwargs(CacheConfig)
                g = parser.add_argument_group("cache")
                g.add_argument("--gpu-memory-utilization", **cache_kwargs["gpu_memory_utilization"])
                g.add_argument("--enable-prefix-caching", **{**cache_kwargs["enable_prefix_caching"], "default": None})
                g.add_argument("--kv-cache-dtype", **cache_kwargs["kv_cache_dtype"])
                g.add_argument("--flags-list", **cache_kwargs["flags_list"])
                s = get_kwargs(SchedulerConfig)
                parser.add_argument("--enable-chunked-prefill", **s["enable_chunked_prefill"])
                parser.add_argument("--max-num-seqs", **s["max_num_seqs"])
                for arg, type in [("--old-a", str), ("--old-b", bool)]:
                    parser.add_argument(arg, type=type, deprecated=True)
                return parser
        class AsyncEngineArgs(EngineArgs):
            @staticmethod
            def add_cli_args(parser, async_args_only=False):
                parser = EngineArgs.add_cli_args(parser)
                parser.add_argument("--enable-log-requests", action=argparse.BooleanOptionalAction)
                return parser
    ''')
    _write(tmp_path, "vllm/entrypoints/openai/cli_args.py", '''
        @config
        @dataclass
        class FrontendArgs:
            host: str | None = None
            port: int = 8000
            enable_auto_tool_choice: bool = False
            lora_modules: bool = False
            @staticmethod
            def add_cli_args(parser):
                frontend_kwargs = get_kwargs(FrontendArgs)
                frontend_kwargs["lora_modules"]["action"] = LoRAParserAction
                group = parser.add_argument_group("Frontend")
                for key, value in frontend_kwargs.items():
                    group.add_argument(f"--{key.replace('_', '-')}", **value)
                return parser
        def make_arg_parser(parser):
            parser.add_argument("model_tag", nargs="?")
            parser.add_argument("--api-server-count", "-asc", type=int)
            parser = FrontendArgs.add_cli_args(parser)
            parser = AsyncEngineArgs.add_cli_args(parser)
            return parser
    ''')
    _write(tmp_path, "vllm/entrypoints/cli/serve.py",
           "from vllm.entrypoints.openai.cli_args import make_arg_parser\n")
    notes: list[str] = []
    names = {n for s in ef.parse_vllm(tmp_path, notes) for n in s.all_names}
    assert notes == []
    assert {"--gpu-memory-utilization", "--enable-prefix-caching", "--no-enable-prefix-caching",
            "--kv-cache-dtype", "--flags-list", "--enable-chunked-prefill", "--no-enable-chunked-prefill",
            "--max-num-seqs", "--old-a", "--old-b", "--enable-log-requests", "--no-enable-log-requests",
            "--host", "--port", "--enable-auto-tool-choice", "--no-enable-auto-tool-choice", "--lora-modules",
            "--api-server-count", "-asc", "-h", "--help"} == names


def test_flash_attn_falls_back_to_build_threshold_without_source(monkeypatch, tmp_path):
    def unavailable(*a, **k):
        raise ef.EngineSourceUnavailable("offline")

    monkeypatch.setattr(ef, "_ensure_source", unavailable)
    ef._flag_specs_cached.cache_clear()
    try:
        assert ef.flash_attn_takes_value("b6327", tmp_path) is True
        assert ef.flash_attn_takes_value("b6326", tmp_path) is False
        with pytest.raises(ef.EngineSourceUnavailable):
            ef.accepted_flags("llamacpp", "b6869", tmp_path)
    finally:
        ef._flag_specs_cached.cache_clear()


# ---------------------------------------------------------------------------------------------
# network: the pinned versions, read from PyPI
# ---------------------------------------------------------------------------------------------

LLAMACPP_PIN = ef.PINNED["llamacpp"]["build"]


@pytest.mark.network
@pytest.mark.parametrize(
    "engine,version,known",
    [
        ("sglang", ef.PINNED["sglang"], SGLANG_KNOWN),
        ("vllm", ef.PINNED["vllm"], VLLM_KNOWN),
        ("llamacpp", LLAMACPP_PIN, LLAMACPP_KNOWN),
    ],
)
def test_pinned_versions_accept_the_flags_aistack_renders(engine, version, known):
    flags = ef.accepted_flags(engine, version)
    missing = [f for f in known if f not in flags]
    assert not missing, f"{engine} {version} lacks {missing}"
    wrong = [f for f in NOT_FLAGS[engine] if f in flags]
    assert not wrong, f"{engine} {version} unexpectedly accepts {wrong}"


@pytest.mark.network
def test_vllm_0_11_0_flags_and_boolean_optional_forms():
    flags = ef.accepted_flags("vllm", "0.11.0")
    assert set(VLLM_KNOWN) <= flags
    # bool config fields -> argparse.BooleanOptionalAction
    assert {"--enforce-eager", "--no-enforce-eager", "--trust-remote-code", "--no-trust-remote-code",
            "--enable-chunked-prefill", "--no-enable-chunked-prefill"} <= flags
    assert "--no-max-model-len" not in flags and "--gpu-mem-util" not in flags
    assert ef.accepts("vllm", "0.11.0", "--max_model_len=4096")  # FlexibleArgumentParser folding


@pytest.mark.network
def test_sglang_bool_flags_have_no_negated_form():
    flags = ef.accepted_flags("sglang", ef.PINNED["sglang"])
    assert "--enable-metrics" in flags and "--no-enable-metrics" not in flags


@pytest.mark.network
def test_flash_attn_value_arity_per_build():
    assert ef.flash_attn_takes_value(LLAMACPP_PIN) is True
    # llama-cpp-python 0.3.16 vendors ggerganov/llama.cpp@4227c9be (before b6327): bare -fa
    assert ef.flash_attn_takes_value("llama-cpp-python==0.3.16") is False
    (spec,) = [s for s in ef.flag_specs("llamacpp", LLAMACPP_PIN) if "--flash-attn" in s.names]
    assert spec.value_hint == "[on|off|auto]" and spec.env == "LLAMA_ARG_FLASH_ATTN"


@pytest.mark.network
def test_llamacpp_pairing_sources_agree():
    """The pinned build's arg.cpp is byte-identical in every PyPI sdist that vendors it."""
    texts = set()
    for project, version, _inner in ef.LLAMACPP_SOURCES[LLAMACPP_PIN]:
        d = ef.source_dir("llamacpp", f"{project}=={version}")
        texts.add((d / "common" / "arg.cpp").read_bytes())
    assert len(texts) == 1


@pytest.mark.network
def test_cached_source_is_not_downloaded_again(monkeypatch):
    ef.accepted_flags("sglang", ef.PINNED["sglang"])  # warm
    ef._flag_specs_cached.cache_clear()

    def no_network(*a, **k):
        raise AssertionError("network used although the source is cached")

    monkeypatch.setattr(ef.urllib.request, "urlopen", no_network)
    assert "--max-running-requests" in ef.accepted_flags("sglang", ef.PINNED["sglang"])
    info = ef.source_info("sglang", ef.PINNED["sglang"])
    assert info["sha256"] and info["members"]


def _lock_engines() -> list[tuple[str, str, str]]:
    lock = yaml.safe_load((PROJECT / "locks" / "images.yaml").read_text())["images"]
    out = []
    for key, entry in lock.items():
        version = str(entry.get("engine") or "")
        if not version:
            continue
        engine = "llamacpp" if key.startswith("llamacpp") else key.split("-")[0]
        if engine in ("sglang", "vllm", "llamacpp"):
            out.append((key, engine, version))
    return out


@pytest.mark.network
@pytest.mark.parametrize("key,engine,version", _lock_engines())
def test_lock_engine_versions_are_checkable(key, engine, version):
    try:
        flags = ef.accepted_flags(engine, version)
    except ef.EngineSourceUnavailable as e:
        pytest.skip(f"locks/images.yaml {key} pins {engine} {version}; no source to check flags against: {e}")
    known = {"sglang": SGLANG_KNOWN, "vllm": VLLM_KNOWN, "llamacpp": ["-m", "-c", "--port", "--host", "-ngl"]}
    assert set(known[engine]) <= flags
