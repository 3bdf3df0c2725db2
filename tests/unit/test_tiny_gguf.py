"""The tiny BERT GGUF for the embed and rerank lanes: deterministic, and shaped the way
llama.cpp's BERT loader wants it (the names and shapes below were read from llama.cpp
build b11312, the tree vendored in PyPI's llama-cpp-python 0.3.36)."""

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from aistack.sandbox.tiny_gguf import (  # noqa: E402
    BERT_CLS,
    BERT_SEP,
    TinyBert,
    generate_bert,
    sha256,
)

HP = TinyBert()

# src/models/bert.cpp, llama_model_bert::load_arch_tensors: the tensors created with
# flag 0 (required) and their GGUF shapes (ne). attn_q/k/v are required unless a fused
# attn_qkv is there instead (llama_model_base::create_tensor_qkv, src/llama-model.cpp).
REQUIRED = {
    "token_embd.weight": None,  # {n_embd, n_vocab}, checked against the vocab below
    "position_embd.weight": [HP.n_embd, HP.context_length],  # {n_embd, n_ctx_train}
    "token_embd_norm.weight": [HP.n_embd],
    "token_embd_norm.bias": [HP.n_embd],
}
for _i in range(HP.n_layer):
    REQUIRED |= {
        f"blk.{_i}.attn_q.weight": [HP.n_embd, HP.n_embd],
        f"blk.{_i}.attn_k.weight": [HP.n_embd, HP.n_embd],
        f"blk.{_i}.attn_v.weight": [HP.n_embd, HP.n_embd],
        f"blk.{_i}.attn_output.weight": [HP.n_embd, HP.n_embd],
        f"blk.{_i}.attn_output_norm.weight": [HP.n_embd],
        f"blk.{_i}.attn_output_norm.bias": [HP.n_embd],
        f"blk.{_i}.ffn_up.weight": [HP.n_embd, HP.n_ff],
        f"blk.{_i}.ffn_down.weight": [HP.n_ff, HP.n_embd],
        f"blk.{_i}.layer_output_norm.weight": [HP.n_embd],
        f"blk.{_i}.layer_output_norm.bias": [HP.n_embd],
    }
# Optional there (TENSOR_NOT_REQUIRED), but what real BERT files carry; token_types
# is sized by tokenizer.ggml.token_type_count, which the loader refuses to be 0.
OPTIONAL = {"token_types.weight": [HP.n_embd, HP.n_token_types]}
for _i in range(HP.n_layer):
    OPTIONAL |= {f"blk.{_i}.{p}.bias": [HP.n_embd]
                 for p in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_down")}
    OPTIONAL[f"blk.{_i}.ffn_up.bias"] = [HP.n_ff]
# The classifier head llm_graph_context::build_pooling (src/llama-graph.cpp) applies
# under pooling rank: cls (+bias, tanh), then cls.output to n_cls_out (1) scores.
HEAD = {
    "cls.weight": [HP.n_embd, HP.n_embd],
    "cls.bias": [HP.n_embd],
    "cls.output.weight": [HP.n_embd, 1],
    "cls.output.bias": [1],
}


def _field(reader, key):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    return f.parts[f.data[0]][0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-bert")
    return {
        "head": generate_bert(d / "a.gguf", seed=3, quiet=True),
        "head_again": generate_bert(d / "b.gguf", seed=3, quiet=True),
        "other_seed": generate_bert(d / "c.gguf", seed=4, quiet=True),
        "nohead": generate_bert(d / "d.gguf", seed=3, rerank=False, quiet=True),
    }


def test_same_seed_same_bytes(files):
    assert sha256(files["head"]) == sha256(files["head_again"])
    assert sha256(files["head"]) != sha256(files["other_seed"])
    assert sha256(files["head"]) != sha256(files["nohead"])


@pytest.mark.parametrize("kind", ["head", "nohead"])
def test_metadata_is_what_llama_cpp_reads(files, kind):
    r = gguf.GGUFReader(files[kind])
    assert _field(r, "general.architecture") == "bert"
    # src/llama-model.cpp load_hparams: required keys (get_key without `false`)
    assert _field(r, "bert.context_length") == HP.context_length
    assert _field(r, "bert.embedding_length") == HP.n_embd
    assert _field(r, "bert.block_count") == HP.n_layer
    assert _field(r, "bert.feed_forward_length") == HP.n_ff
    assert _field(r, "bert.attention.head_count") == HP.n_head
    assert "bert.attention.layer_norm_epsilon" in r.fields  # bert.cpp load_arch_hparams
    # optional there, but the defaults are wrong for BERT: causal, pooling none
    assert bool(_field(r, "bert.attention.causal")) is False
    assert _field(r, "bert.pooling_type") == int(gguf.PoolingType.CLS)
    # src/llama-vocab.cpp: "bert" is the WordPiece (WPM) tokenizer; [CLS] is its BOS
    assert _field(r, "tokenizer.ggml.model") == "bert"
    assert _field(r, "tokenizer.ggml.token_type_count") == HP.n_token_types
    assert _field(r, "tokenizer.ggml.bos_token_id") == BERT_CLS
    assert _field(r, "tokenizer.ggml.seperator_token_id") == BERT_SEP
    tokens = r.fields["tokenizer.ggml.tokens"]
    vocab = [bytes(tokens.parts[i]).decode() for i in tokens.data]
    assert [vocab[i] for i in (0, 100, 101, 102, 103)] == [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "\u2581the" in vocab and "e" in vocab  # word start and continuation pieces


@pytest.mark.parametrize("kind", ["head", "nohead"])
def test_tensors_llama_cpp_requires(files, kind):
    r = gguf.GGUFReader(files[kind])
    shapes = {t.name: [int(n) for n in t.shape] for t in r.tensors}
    n_vocab = len(r.fields["tokenizer.ggml.tokens"].data)
    want = REQUIRED | OPTIONAL | (HEAD if kind == "head" else {})
    want["token_embd.weight"] = [HP.n_embd, n_vocab]
    assert shapes == want
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in r.tensors)


def test_the_head_comes_last_so_the_embeddings_match(files):
    a = {t.name: np.array(t.data) for t in gguf.GGUFReader(files["head"]).tensors}
    b = {t.name: np.array(t.data) for t in gguf.GGUFReader(files["nohead"]).tensors}
    assert set(a) - set(b) == set(HEAD)
    assert all(np.array_equal(a[k], b[k]) for k in b)
