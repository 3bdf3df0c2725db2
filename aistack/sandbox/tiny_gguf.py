"""A tiny llama-architecture GGUF with random weights, for sandbox tests.

The file is a real GGUF (written with PyPI's ``gguf`` package) that llama.cpp's
``llama-server`` loads like any other model: a 2-layer llama with grouped-query attention,
a SentencePiece-style vocabulary with byte fallback (so any text tokenizes), and a ChatML
chat template (so ``/v1/chat/completions`` works). The weights are random, so the answers
are gibberish; what the tests exercise is the serving path: loading, slots, context
limits, metrics, routing.

Generation is deterministic: the same seed gives a byte-identical file (same sha256).

    python -m aistack.sandbox.tiny_gguf [OUT.gguf] [--seed N]
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
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name("aistack-tiny-llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(hp.context_length)
    writer.add_embedding_length(hp.n_embd)
    writer.add_block_count(hp.n_layer)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_head_count(hp.n_head)
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
    args = ap.parse_args(argv)
    generate(args.out, seed=args.seed)


if __name__ == "__main__":
    main()
