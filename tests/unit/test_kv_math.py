"""KV bytes per token from the architecture, and what a pool of a given size holds (003)."""

import pytest

from aistack.capacity import KV_BYTES, kv_bytes_per_token, kv_cache_bytes
from aistack.model.catalogue import Arch, builtin

GIB = 1024**3


def test_seed_003_bytes_per_token_from_the_catalogue():
    qwen = builtin()["qwen2.5-7b-instruct-awq"].arch
    llama2 = builtin()["llama-2-7b-chat-gptq"].arch
    assert kv_bytes_per_token(qwen) == 2 * 28 * 4 * 128 * 2 == 56 * 1024  # GQA: ~56 KB
    assert kv_bytes_per_token(llama2) == 2 * 32 * 32 * 128 * 2 == 512 * 1024  # MHA: ~512 KB


def test_a_6_6_gb_pool_holds_about_120k_qwen_tokens_and_13k_llama2_tokens():
    pool = 6.6 * GIB
    qwen = pool / kv_bytes_per_token(builtin()["qwen2.5-7b-instruct-awq"].arch)
    llama2 = pool / kv_bytes_per_token(builtin()["llama-2-7b-chat-gptq"].arch)
    assert 115_000 < qwen < 130_000
    assert 12_500 < llama2 < 14_500
    assert qwen / llama2 == pytest.approx(512 / 56)


def test_quantised_blocks_carry_their_scales():
    assert KV_BYTES["q8_0"] == 34 / 32
    assert KV_BYTES["q4_0"] == 18 / 32
    arch = Arch(layers=10, kv_heads=2, head_dim=64, max_context=4096)
    f16 = kv_bytes_per_token(arch, "f16", "f16")
    assert kv_bytes_per_token(arch, "q4_0", "q4_0") == pytest.approx(f16 * 18 / 64)
    assert kv_bytes_per_token(arch, "q8_0", "q8_0") == pytest.approx(f16 * 34 / 64)


def test_sliding_window_layers_hold_only_their_window():
    arch = Arch(layers=12, kv_heads=4, head_dim=128, sliding_window=1024, sliding_layers=10, max_context=131072)
    short = kv_cache_bytes(arch, 1024, "f16", "f16")
    long = kv_cache_bytes(arch, 131072, "f16", "f16")
    full_only = Arch(layers=2, kv_heads=4, head_dim=128, max_context=131072)
    # Past the window, only the two full-attention layers grow.
    assert long - short == pytest.approx(kv_cache_bytes(full_only, 131072 - 1024, "f16", "f16"), rel=0.02)
    # More sequences keep more window tokens (one window per slot with split KV).
    assert kv_cache_bytes(arch, 65536, "f16", "f16", sequences=8) > kv_cache_bytes(arch, 65536, "f16", "f16", sequences=1)


def test_linear_attention_layers_add_no_kv():
    hybrid = Arch(layers=40, kv_heads=2, head_dim=256, linear_attention_layers=30, max_context=262144)
    dense = Arch(layers=10, kv_heads=2, head_dim=256, max_context=262144)
    assert kv_bytes_per_token(hybrid) == kv_bytes_per_token(dense)
