"""Cheap checks of the calibration GGUF layouts (no file is written)."""

from __future__ import annotations

import glob
import importlib
import sys

import pytest

# models.py needs the gguf-py of the llama.cpp tree (the PyPI gguf in .venv may lack gemma4 keys)
for _p in sorted(glob.glob("/tmp/llamacpp-src/*/vendor/llama.cpp/gguf-py")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
    sys.modules.pop("gguf", None)

gguf = pytest.importorskip("gguf")
if not hasattr(gguf.MODEL_ARCH, "GEMMA4"):
    pytest.skip("gguf-py without gemma4 (extract the llama-cpp-python sdist to /tmp/llamacpp-src)",
                allow_module_level=True)

models = importlib.import_module("aistack.calibrate.models")


def _q8_bytes(plan) -> int:
    # Q8_0: 34 bytes per 32 weights for 2-D+ tensors; 1-D stays as written, and so do the
    # tensors src/llama-quant.cpp never quantises (per_layer_model_proj, position_embd,
    # token_types)
    import numpy as np
    keep = ("per_layer_model_proj", "position_embd", "token_types")
    return sum(int(np.prod(s)) * 34 // 32 if len(s) > 1 and not n.startswith(keep)
               else int(np.prod(s)) * np.dtype(d).itemsize
               for n, s, d, _ in plan.tensors)


def test_gemma4_text_plan_matches_published_q8():
    plan = models.gemma4_e2b_plan()
    names = [t[0] for t in plan.tensors]
    assert len(names) == len(set(names))
    assert "output.weight" not in names  # tied embeddings
    shapes = {n: s for n, s, _, _ in plan.tensors}
    assert shapes["per_layer_token_embd.weight"] == (262144, 256 * 35)
    assert shapes["blk.0.attn_q.weight"] == (8 * 256, 1536)
    assert shapes["blk.4.attn_k.weight"] == (512, 1536)       # full layer: global_head_dim
    assert shapes["blk.14.ffn_up.weight"] == (6144, 1536)
    assert shapes["blk.15.ffn_up.weight"] == (12288, 1536)    # double-wide MLP on shared layers
    assert plan.nbytes() == pytest.approx(9_295_485_068, rel=1e-6)
    published = models.MODELS["gemma-4-e2b-it"]["published_bytes"]["Q8_0"]
    assert _q8_bytes(plan) == pytest.approx(published, rel=0.01)


def test_gemma4_mmproj_plan_vision_part():
    plan = models.gemma4_e2b_mmproj_plan()
    shapes = {n: s for n, s, _, _ in plan.tensors}
    assert shapes["v.position_embd.weight"] == (2, 10240, 768)
    assert shapes["mm.input_projection.weight"] == (1536, 768)
    assert sum(1 for n in shapes if n.endswith("ffn_gate.weight")) == 16
    published = models.MODELS["gemma-4-e2b-it-mmproj"]["published_bytes"]["F16"]
    if models.MODELS["gemma-4-e2b-it-mmproj"].get("vision_only"):
        # vision encoder only: the published file also carries the audio conformer
        assert 0.3 * published < plan.nbytes() < 0.45 * published
    else:
        assert plan.nbytes() == pytest.approx(published, rel=0.02)


def test_bert_plans():
    base = models.bert_plan(models.BGE_BASE)
    rr = models.bert_plan(models.BGE_RERANKER)
    assert base.n_params() == pytest.approx(109.5e6, rel=0.01)   # bge-base: ~109.5M params
    assert rr.n_params() == pytest.approx(568e6, rel=0.01)       # XLM-R large + head
    assert "cls.output.weight" in {t[0] for t in rr.tensors}
    assert "cls.output.weight" not in {t[0] for t in base.tensors}
    published = 635_676_416  # gpustack bge-reranker-v2-m3-Q8_0.gguf (catalogue)
    assert _q8_bytes(rr) == pytest.approx(published, rel=0.05)


def test_models_table():
    for name, m in models.MODELS.items():
        assert callable(m["writer"]) and m["target_quant"] and m["file"].endswith(".gguf")
        assert isinstance(models.quantize_args(name), list)
