"""A tiny llama-architecture GGUF with random weights, for sandbox tests.

The file is a real GGUF (written with PyPI's ``gguf`` package) that llama.cpp's
``llama-server`` loads like any other model: a 2-layer llama with grouped-query attention,
a SentencePiece-style vocabulary with byte fallback (so any text tokenizes), and a ChatML
chat template (so ``/v1/chat/completions`` works). The weights are random, so the answers
are gibberish; what the tests exercise is the serving path: loading, slots, context
limits, metrics, routing.

The module writes a second kind too, a tiny BERT (``generate_bert``), for the embed and
rerank lanes, which need an encoder, not a decoder: ``llama-server --embeddings`` refuses
``/v1/embeddings`` when the pooling type is ``none`` (what a llama file gets), and
``--rerank`` scores a query/document pair by reading a classifier head over the [CLS] row.
It has BERT's tensors (learned position and token-type embeddings, post-norm layers with
biases, GELU feed-forward) and a WordPiece vocabulary laid out like bert-base-uncased
(the specials at ids 0 and 100-103, where llama.cpp's ``bert`` tokenizer looks for them by
default), and by default the classification head too (``cls`` dense + tanh, then
``cls.output`` to one score), so one file serves both lanes: ``--embeddings`` (pooling
``cls``, the file's own, or ``--pooling mean``) ignores the head, ``--rerank`` applies it.
The file says pooling ``cls``, not ``rank``: the command line's ``--rerank`` sets rank
anyway, while a file that says rank makes a plain ``--embeddings`` server answer
``/v1/embeddings`` with 200 and a vector of zeros and nulls (the rank output is one float
per input, read as if it were ``n_embd``).

Generation is deterministic: the same seed gives a byte-identical file (same sha256).

    python -m aistack.sandbox.tiny_gguf [OUT.gguf] [--seed N] [--bert [--no-head]]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(os.environ.get("AISTACK_CACHE", Path.home() / ".cache" / "aistack")) / "models"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyLlama:
    """Hyperparameters of the tiny model (all small on purpose)."""

    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2  # GQA, like the real models the planner sizes
    n_ff: int = 256
    context_length: int = 4096
    rms_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def _vocab() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocabulary: specials, 256 byte-fallback tokens, then pieces."""
    from gguf import TokenType

    tokens: list[str] = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types: list[int] = [TokenType.UNKNOWN] + [TokenType.CONTROL] * 4
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces = ["\u2581"] + list(chars) + ["\u2581" + c for c in chars]
    words = ["the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was",
             "for", "on", "are", "as", "with", "his", "they", "at", "be", "this"]
    pieces += ["\u2581" + w for w in words] + ["user", "assistant", "system"]
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    # SPM merges prefer higher scores: longer pieces score higher.
    scores = [0.0] * (len(tokens) - len(pieces)) + [-1000.0 + 10.0 * len(p) for p in pieces]
    return tokens, scores, [int(t) for t in types]


def generate(path: str | os.PathLike[str] | None = None, seed: int = 0,
             hp: TinyLlama = TinyLlama(), quiet: bool = False) -> Path:
    """Write the tiny GGUF to ``path`` (default: the aistack cache) and return the path."""
    import gguf

    out = Path(path) if path else DEFAULT_DIR / f"tiny-llama-s{seed}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    tmp = out.with_name(out.name + ".tmp")
    writer = _start(tmp, "llama", "aistack-tiny-llama", hp)
    writer.add_head_count_kv(hp.n_head_kv)
    writer.add_rope_dimension_count(hp.head_dim)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_vocab_size(n_vocab)

    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    # numpy shape is (rows, cols) = reversed GGUF ne: (out_features, in_features).
    n_embd_kv = hp.n_head_kv * hp.head_dim
    writer.add_tensor("token_embd.weight", w(n_vocab, hp.n_embd))
    for i in range(hp.n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hp.n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", w(hp.n_embd, hp.n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", w(n_embd_kv, hp.n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", w(n_embd_kv, hp.n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", w(hp.n_embd, hp.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hp.n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", w(hp.n_ff, hp.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", w(hp.n_ff, hp.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", w(hp.n_embd, hp.n_ff))
    writer.add_tensor("output_norm.weight", np.ones(hp.n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", w(n_vocab, hp.n_embd))

    return _finish(writer, tmp, out, quiet)


@dataclass(frozen=True)
class TinyBert:
    """Hyperparameters of the tiny BERT encoder (all small on purpose)."""

    n_embd: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_ff: int = 256
    # llama.cpp sizes position_embd by this (it is {n_embd, n_ctx_train}), and a
    # non-causal encoder must fit a whole input into one ubatch (512 by default).
    context_length: int = 512
    n_token_types: int = 2  # "sentence A" / "sentence B", as in BERT
    norm_eps: float = 1e-12


# bert-base-uncased's ids, which llama.cpp's "bert" tokenizer assumes unless told otherwise
BERT_PAD, BERT_UNK, BERT_CLS, BERT_SEP, BERT_MASK = 0, 100, 101, 102, 103


def _bert_vocab() -> tuple[list[str], list[int]]:
    """WordPiece vocabulary in llama.cpp's form: word starts carry the phantom space
    (U+2581), continuation pieces (WordPiece's ``##x``) are bare. Every lowercase letter,
    digit and ASCII punctuation mark exists both ways, so ASCII text never falls to [UNK]
    (the tokenizer lowercases first)."""
    from gguf import TokenType

    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(BERT_UNK - 1)]
    types = [TokenType.CONTROL] + [TokenType.UNUSED] * (BERT_UNK - 1)
    tokens += ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    types += [TokenType.CONTROL] * 4
    chars = string.ascii_lowercase + string.digits + string.punctuation
    words = ["the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was",
             "for", "on", "are", "as", "with", "his", "they", "at", "be", "this",
             "query", "document", "passage", "answer", "question"]
    pieces = (["\u2581" + c for c in chars] + list(chars) + ["\u2581" + w for w in words]
              + ["ing", "ed", "s", "er", "ly"])
    pieces = list(dict.fromkeys(pieces))  # "s" is a letter already
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    return tokens, [int(t) for t in types]


def generate_bert(path: str | os.PathLike[str] | None = None, seed: int = 0,
                  hp: TinyBert = TinyBert(), rerank: bool = True,
                  quiet: bool = False) -> Path:
    """Write the tiny BERT GGUF to ``path`` (default: the aistack cache) and return the path.

    ``rerank=True`` (the default) adds the sequence-classification head that
    ``llama-server --rerank`` applies to the [CLS] row. Without it ``--rerank`` still
    answers, but its score is the first component of the raw [CLS] vector; the other
    tensors, and so the embeddings, are the same either way (the head is drawn last).
    """
    import gguf

    kind = "tiny-bert" if rerank else "tiny-bert-nohead"
    out = Path(path) if path else DEFAULT_DIR / f"{kind}-s{seed}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    tokens, types = _bert_vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def lin(n_out: int, n_in: int) -> np.ndarray:
        # 1/sqrt(fan_in), not BERT's 0.02: at 0.02 the residual stream swamps attention,
        # so the [CLS] row (what cls pooling and the rerank head read) hardly depends on
        # the rest of the input and every text embeds alike.
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    tmp = out.with_name(out.name + ".tmp")
    writer = _start(tmp, "bert", f"aistack-{kind}", hp)
    writer.add_layer_norm_eps(hp.norm_eps)  # bert.attention.layer_norm_epsilon: required
    writer.add_causal_attention(False)  # llama.cpp's default is causal
    writer.add_pooling_type(gguf.PoolingType.CLS)  # not RANK: see the module docstring
    writer.add_vocab_size(n_vocab)

    writer.add_tokenizer_model("bert")  # WordPiece: [CLS] text [SEP]
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_type_count(hp.n_token_types)  # required: llama.cpp refuses 0
    writer.add_unk_token_id(BERT_UNK)
    writer.add_bos_token_id(BERT_CLS)  # llama.cpp's "BOS" for WordPiece is [CLS]
    writer.add_sep_token_id(BERT_SEP)  # the reranker joins query [SEP] document
    writer.add_pad_token_id(BERT_PAD)
    writer.add_mask_token_id(BERT_MASK)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)  # no EOS: the reranker falls back to SEP
    writer.add_add_sep_token(True)

    # numpy shape is (rows, cols) = reversed GGUF ne: (out_features, in_features).
    e, f = hp.n_embd, hp.n_ff
    writer.add_tensor("token_embd.weight", w(n_vocab, e))
    writer.add_tensor("token_types.weight", w(hp.n_token_types, e))
    writer.add_tensor("position_embd.weight", w(hp.context_length, e))
    writer.add_tensor("token_embd_norm.weight", ones(e))
    writer.add_tensor("token_embd_norm.bias", zeros(e))
    for i in range(hp.n_layer):
        for proj in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{proj}.weight", lin(e, e))
            writer.add_tensor(f"blk.{i}.{proj}.bias", w(e))
        writer.add_tensor(f"blk.{i}.attn_output_norm.weight", ones(e))
        writer.add_tensor(f"blk.{i}.attn_output_norm.bias", zeros(e))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", lin(f, e))
        writer.add_tensor(f"blk.{i}.ffn_up.bias", w(f))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", lin(e, f))
        writer.add_tensor(f"blk.{i}.ffn_down.bias", w(e))
        writer.add_tensor(f"blk.{i}.layer_output_norm.weight", ones(e))
        writer.add_tensor(f"blk.{i}.layer_output_norm.bias", zeros(e))
    if rerank:
        writer.add_tensor("cls.weight", lin(e, e))
        writer.add_tensor("cls.bias", w(e))
        writer.add_tensor("cls.output.weight", lin(1, e))
        writer.add_tensor("cls.output.bias", zeros(1))

    return _finish(writer, tmp, out, quiet)


def _start(tmp: Path, arch: str, name: str, hp: TinyLlama | TinyBert) -> "gguf.GGUFWriter":
    """A writer with the header both models share, in the order the locked files were written."""
    import gguf

    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(hp.context_length)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layer)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
    return writer


def _finish(writer: "gguf.GGUFWriter", tmp: Path, out: Path, quiet: bool) -> Path:
    """Write the file under its temporary name, then move it into place: never half a model."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    if not quiet:
        print(f"{sha256(out)}  {out}")
    return out


def sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", help="output .gguf path (default: aistack cache)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bert", action="store_true", help="write the tiny BERT encoder instead")
    ap.add_argument("--no-head", action="store_true",
                    help="with --bert: leave out the rerank classifier head (embeddings only)")
    args = ap.parse_args(argv)
    if args.no_head and not args.bert:
        ap.error("--no-head needs --bert")
    if args.bert:
        generate_bert(args.out, seed=args.seed, rerank=not args.no_head)
    else:
        generate(args.out, seed=args.seed)


if __name__ == "__main__":
    main()
