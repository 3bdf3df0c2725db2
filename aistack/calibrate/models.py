"""Real-layout, random-weight GGUF files for GPU memory calibration.

Each writer produces a GGUF with the real llama.cpp architecture, hyperparameters, tensor
names, shapes and dtypes (and a synthetic tokenizer with the real vocabulary size) of a
catalogue model, filled with small random numbers (normal * 0.02, fixed seed), so that
llama.cpp allocates exactly what it would for the published file while the forward pass
stays finite. Layouts follow llama.cpp b11312 (vendored in llama-cpp-python 0.3.36):
``src/models/gemma4.cpp`` (load_arch_hparams / load_arch_tensors), ``src/llama-vocab.cpp``,
``tools/mtmd/clip.cpp`` + ``tools/mtmd/models/gemma4v.cpp``, and the converters in
``conversion/gemma.py`` and ``conversion/bert.py``.

Self-contained on purpose: imports only the stdlib, numpy and gguf-py (use the gguf-py of
the llama.cpp tree, it knows the gemma4 keys), so it can be copied alone to the GPU host.
Tensors are declared first and then written one at a time (peak RAM: one tensor, the
largest being gemma4's per_layer_token_embd at 4.7 GB in F16; the random values come from
a fixed pool that is tiled, so no multi-GB RNG draw is needed).

    PYTHONPATH=/path/to/llama.cpp/gguf-py python3 models.py OUT_DIR [name ...]
"""

from __future__ import annotations

import os
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gguf

F16 = np.float16
F32 = np.float32
SEED = 1234

# ---------------------------------------------------------------------------------------
# Plans: a list of (name, numpy shape (= reversed GGUF ne), dtype, init) per model.
# init: "w" random normal*0.02, "lin" random normal/sqrt(fan_in), "ones", "zeros",
# "rope_freqs" (gemma4 proportional-rope factors), "scalar1".
# ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    arch: str
    tensors: list[tuple[str, tuple[int, ...], type, str]] = field(default_factory=list)

    def add(self, name: str, shape: tuple[int, ...], dtype: type = F16, init: str = "w") -> None:
        self.tensors.append((name, tuple(int(s) for s in shape), dtype, init))

    def nbytes(self) -> int:
        return sum(int(np.prod(s)) * np.dtype(d).itemsize for _, s, d, _ in self.tensors)

    def n_params(self) -> int:
        return sum(int(np.prod(s)) for _, s, _, _ in self.tensors)


# ---------------------------------------------------------------------------------------
# Gemma 4 E2B (text)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gemma4E2B:
    # google/gemma-4-E2B-it config.json text_config, as echoed verbatim in a third-party
    # Rust test (search-index file id 64225531835, test_parse_gemma4_e2b_config) and
    # consistent with ids 56566372487 (Swift test) and 70072784898:
    n_embd: int = 1536                 # hidden_size
    n_layer: int = 35                  # num_hidden_layers (catalogue, gemma.cpp PR #919)
    n_head: int = 8                    # num_attention_heads
    n_head_kv: int = 1                 # num_key_value_heads (num_global_key_value_heads null)
    head_dim_swa: int = 256            # head_dim (sliding layers)
    head_dim_full: int = 512           # global_head_dim (full-attention layers)
    n_ff: int = 6144                   # intermediate_size
    double_wide_mlp: bool = True       # use_double_wide_mlp: kv-shared layers get 2*n_ff
    n_kv_shared: int = 20              # num_kv_shared_layers
    n_embd_per_layer: int = 256        # hidden_size_per_layer_input
    n_vocab: int = 262144              # vocab_size == vocab_size_per_layer_input
    n_swa: int = 512                   # sliding_window
    ctx: int = 131072                  # max_position_embeddings
    rms_eps: float = 1e-6              # rms_norm_eps
    final_softcap: float = 30.0        # final_logit_softcapping
    rope_base_full: float = 1_000_000.0  # rope_parameters.full_attention.rope_theta
    rope_base_swa: float = 10_000.0      # rope_parameters.sliding_attention.rope_theta
    partial_rotary_full: float = 0.25    # full_attention partial_rotary_factor ("proportional")
    # layer_types: 4 x sliding + 1 x full, repeating (full at 4, 9, ..., 34)

    def is_swa(self, il: int) -> bool:
        return il % 5 != 4

    def n_ff_layer(self, il: int) -> int:
        # conversion/gemma.py Gemma4Model.set_gguf_parameters: use_double_wide_mlp doubles
        # n_ff for il >= n_layer - num_kv_shared_layers
        first_shared = self.n_layer - self.n_kv_shared
        return self.n_ff * 2 if (self.double_wide_mlp and il >= first_shared) else self.n_ff


GEMMA4_E2B = Gemma4E2B()


def gemma4_e2b_plan(hp: Gemma4E2B = GEMMA4_E2B) -> Plan:
    """Tensors in the order (and with the dtypes) convert_hf_to_gguf.py --outtype f16 writes
    them: 2-D weights F16, 1-D norms / scales / rope_freqs F32. token_embd is tied (no
    output.weight). K/V projections are written for every layer, KV-shared ones included:
    the HF checkpoint carries them and the converter keeps them (llama.cpp marks them
    TENSOR_NOT_REQUIRED there and loads them anyway when present); this is what makes the
    quantised sizes match the published files (see MODELS / tests)."""
    p = Plan("gemma4")
    e, pl, L = hp.n_embd, hp.n_embd_per_layer, hp.n_layer
    p.add("token_embd.weight", (hp.n_vocab, e))
    p.add("per_layer_token_embd.weight", (hp.n_vocab, pl * L))
    p.add("per_layer_model_proj.weight", (pl * L, e))
    p.add("per_layer_proj_norm.weight", (pl,), F32, "ones")
    p.add("output_norm.weight", (e,), F32, "ones")
    p.add("rope_freqs.weight", (hp.head_dim_full // 2,), F32, "rope_freqs")
    for i in range(L):
        hd = hp.head_dim_swa if hp.is_swa(i) else hp.head_dim_full
        q, kv, ff = hp.n_head * hd, hp.n_head_kv * hd, hp.n_ff_layer(i)
        b = f"blk.{i}."
        p.add(b + "attn_norm.weight", (e,), F32, "ones")
        p.add(b + "attn_q.weight", (q, e), F16, "lin")
        p.add(b + "attn_k.weight", (kv, e), F16, "lin")
        p.add(b + "attn_v.weight", (kv, e), F16, "lin")
        p.add(b + "attn_output.weight", (e, q), F16, "lin")
        p.add(b + "attn_q_norm.weight", (hd,), F32, "ones")
        p.add(b + "attn_k_norm.weight", (hd,), F32, "ones")
        p.add(b + "post_attention_norm.weight", (e,), F32, "ones")
        p.add(b + "layer_output_scale.weight", (1,), F32, "ones")
        p.add(b + "ffn_norm.weight", (e,), F32, "ones")
        p.add(b + "ffn_gate.weight", (ff, e), F16, "lin")
        p.add(b + "ffn_up.weight", (ff, e), F16, "lin")
        p.add(b + "ffn_down.weight", (e, ff), F16, "lin")
        p.add(b + "post_ffw_norm.weight", (e,), F32, "ones")
        p.add(b + "inp_gate.weight", (pl, e), F16, "lin")
        p.add(b + "proj.weight", (e, pl), F16, "lin")
        p.add(b + "post_norm.weight", (e,), F32, "ones")
    return p


def _gemma4_vocab(n_vocab: int) -> tuple[list[str], list[float], list[int], list[str]]:
    """A synthetic BPE vocabulary of the real size for llama.cpp's "gemma4" tokenizer
    (BPE with merges; spaces are escaped to U+2581). Ids follow Gemma's specials:
    0 <pad>, 1 <eos>, 2 <bos>, 3 <unk>, 105 <start_of_turn>, 106 <end_of_turn>. Every
    printable ASCII character (bare and with a leading U+2581) is a token, so ASCII prompts
    tokenize; the rest are unique filler tokens."""
    T = gguf.TokenType
    toks: list[str] = [f"<unused{i}>" for i in range(n_vocab)]
    types = [int(T.UNUSED)] * n_vocab
    for i, t in {0: "<pad>", 1: "<eos>", 2: "<bos>", 3: "<unk>", 4: "<mask>",
                 105: "<start_of_turn>", 106: "<end_of_turn>"}.items():
        toks[i] = t
        types[i] = int(T.CONTROL if i != 3 else T.UNKNOWN)
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces = ["\u2581", "\n"] + list(chars) + ["\u2581" + c for c in chars]
    base = 256
    for k, piece in enumerate(pieces):
        toks[base + k] = piece
        types[base + k] = int(T.NORMAL)
    merges = ["\u2581 " + c for c in chars]
    scores = [0.0] * n_vocab
    return toks, scores, types, merges


CHAT_TEMPLATE_GEMMA = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
    "else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def _header(path: Path, arch: str, name: str, *, ctx: int, n_embd: int, n_layer: int, n_ff: int | list[int],
            n_head: int) -> "gguf.GGUFWriter":
    """An F16 writer with the keys every text model here starts with, in the order they were written."""
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"aistack-calib {name} (random weights)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    return w


def write_gemma4_e2b(path: Path) -> None:
    """Gemma 4 E2B text model, F16 (quantise on the GPU host: see quantize_args)."""
    hp = GEMMA4_E2B
    plan = gemma4_e2b_plan(hp)
    w = _header(path, plan.arch, "gemma-4-E2B-it", ctx=hp.ctx, n_embd=hp.n_embd, n_layer=hp.n_layer,
                n_ff=[hp.n_ff_layer(i) for i in range(hp.n_layer)], n_head=hp.n_head)
    w.add_head_count_kv(hp.n_head_kv)
    w.add_layer_norm_rms_eps(hp.rms_eps)
    w.add_key_length(hp.head_dim_full)
    w.add_value_length(hp.head_dim_full)
    w.add_key_length_swa(hp.head_dim_swa)
    w.add_value_length_swa(hp.head_dim_swa)
    w.add_rope_freq_base(hp.rope_base_full)
    w.add_rope_freq_base_swa(hp.rope_base_swa)
    w.add_rope_dimension_count(hp.head_dim_full)      # converter: n_rot_full = head_dim_full
    w.add_rope_dimension_count_swa(hp.head_dim_swa)   # partial_rotary_factor 1.0 on SWA
    w.add_final_logit_softcapping(hp.final_softcap)
    w.add_sliding_window(hp.n_swa)
    w.add_shared_kv_layers(hp.n_kv_shared)
    w.add_embedding_length_per_layer_input(hp.n_embd_per_layer)
    w.add_sliding_window_pattern([hp.is_swa(i) for i in range(hp.n_layer)])

    toks, scores, types, merges = _gemma4_vocab(hp.n_vocab)
    w.add_tokenizer_model("gemma4")
    w.add_tokenizer_pre("gemma4")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(2)
    w.add_eos_token_id(106)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_space_prefix(False)
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE_GEMMA)
    _write(w, plan, extra={"rope_freqs": _gemma4_rope_freqs(hp)})


def _gemma4_rope_freqs(hp: Gemma4E2B) -> np.ndarray:
    # conversion/gemma.py generate_extra_tensors: proportional rope on full layers
    n_rot = int(hp.head_dim_full * hp.partial_rotary_full / 2)
    n_unrot = hp.head_dim_full // 2 - n_rot
    return np.array([1.0] * n_rot + [1e30] * n_unrot, dtype=F32)


def quantize_args(name: str) -> list[str]:
    """Extra ``llama-quantize`` arguments (before IN OUT TYPE) for a catalogue model.

    gemma-4-e2b-it: ``--tensor-type per_layer_token_embd=q5_k``. Why: with tied embeddings
    (no output.weight) src/llama-quant.cpp puts every TOKEN_EMBD-category tensor, and
    per_layer_token_embd is one (tensor_name_match_token_embd), on the output rule ->
    Q6_K. That 2.35 G-weight table alone is then 1.93 GB and the stock Q4_K_M of this
    layout comes to ~3.41 GB (estimate: Q4_K everywhere, Q6_K on token_embd and on
    attn_v/ffn_down of the use_more_bits layers, per_layer_model_proj kept F16), 9.8% over
    unsloth's published 3,106,736,256 B. With per_layer_token_embd at Q5_K the same
    estimate is ~3.100 GB (-0.2%); at Q4_K it would be ~2.81 GB (-9.7%). So the
    published file's mix is consistent with Q5_K there (inferred from sizes, not read
    from the file). The regex matches only that tensor (token_embd.weight stays Q6_K).
    Q8_0 needs no override (estimate 0.3% under ggml-org's 4,967,494,592 B)."""
    return list(MODELS.get(name, {}).get("quantize_args", []))


# ---------------------------------------------------------------------------------------
# Gemma 4 E2B vision projector (mmproj, clip "gemma4v")
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gemma4Vision:
    # google/gemma-4-E2B-it config.json vision_config (search-index id 64225531835):
    n_embd: int = 768            # hidden_size
    n_ff: int = 3072             # intermediate_size
    n_layer: int = 16            # num_hidden_layers
    n_head: int = 12             # num_attention_heads (head_dim 64)
    head_dim: int = 64
    patch_size: int = 16
    pos_size: int = 10240        # position_embedding_size (x and y tables)
    proj_dim: int = 1536         # text hidden_size (mm.input_projection output)
    eps: float = 1e-6


GEMMA4_VISION = Gemma4Vision()


def gemma4_e2b_mmproj_plan(hv: Gemma4Vision = GEMMA4_VISION, with_audio: bool = True) -> Plan:
    """Vision encoder tensors as conversion/gemma.py Gemma4VisionAudioModel writes them and
    clip.cpp (PROJECTOR_TYPE_GEMMA4V + generic ViT loader) reads them. The published
    mmproj-F16.gguf (985,654,080 B) also carries the 12-layer audio conformer (gemma4a),
    so by default it is written too (llama-server loads both encoders); with_audio=False
    gives the vision encoder alone (~369 MB)."""
    p = Plan("clip")
    e, f = hv.n_embd, hv.n_ff
    p.add("v.patch_embd.weight", (e, 3, hv.patch_size, hv.patch_size), F16, "lin")
    p.add("v.position_embd.weight", (2, hv.pos_size, e), F32, "w")  # forced F32 by converter
    for i in range(hv.n_layer):
        b = f"v.blk.{i}."
        for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
            p.add(b + t + ".weight", (e, e), F16, "lin")
        p.add(b + "attn_q_norm.weight", (hv.head_dim,), F32, "ones")
        p.add(b + "attn_k_norm.weight", (hv.head_dim,), F32, "ones")
        p.add(b + "ln1.weight", (e,), F32, "ones")
        p.add(b + "ln2.weight", (e,), F32, "ones")
        p.add(b + "attn_post_norm.weight", (e,), F32, "ones")
        p.add(b + "ffn_post_norm.weight", (e,), F32, "ones")
        p.add(b + "out_scale.weight", (1,), F32, "ones")
        p.add(b + "ffn_gate.weight", (f, e), F16, "lin")
        p.add(b + "ffn_up.weight", (f, e), F16, "lin")
        p.add(b + "ffn_down.weight", (e, f), F16, "lin")
    p.add("mm.input_projection.weight", (hv.proj_dim, e), F16, "lin")
    if with_audio:
        _gemma4_audio_tensors(p, GEMMA4_AUDIO)
    return p


@dataclass(frozen=True)
class Gemma4Audio:
    # google/gemma-4-E2B-it config.json audio_config (search-index id 64225531835):
    n_embd: int = 1024           # hidden_size
    n_layer: int = 12            # num_hidden_layers
    n_head: int = 8              # num_attention_heads (d_head 128)
    sub_channels: tuple = (128, 32)  # subsampling_conv_channels
    conv_kernel: int = 5         # conv_kernel_size (depthwise light conv)
    n_mel: int = 128             # input_feat_size default in conversion/gemma.py
    out_dims: int = 1536         # output_proj_dims
    proj_dim: int = 1536         # text hidden_size
    # intermediate_size = 4 * hidden_size (conversion/gemma.py remaps it so)

    @property
    def n_ff(self) -> int:
        return 4 * self.n_embd


GEMMA4_AUDIO = Gemma4Audio()


def _gemma4_audio_tensors(p: Plan, ha: Gemma4Audio) -> None:
    """Audio conformer (clip "gemma4a"), shapes as tools/mtmd/models/gemma4a.cpp uses them;
    conv weights F32 (converter's tensor_force_quant for audio convs)."""
    c0, c1 = ha.sub_channels
    p.add("a.conv1d.0.weight", (c0, 1, 3, 3), F32, "lin")
    p.add("a.conv1d.0.norm.weight", (c0,), F32, "ones")
    p.add("a.conv1d.1.weight", (c1, c0, 3, 3), F32, "lin")
    p.add("a.conv1d.1.norm.weight", (c1,), F32, "ones")
    D, F = ha.n_embd, ha.n_ff
    p.add("a.input_projection.weight", (D, c1 * ha.n_mel // 4), F16, "lin")
    for i in range(ha.n_layer):
        b = f"a.blk.{i}."
        p.add(b + "ffn_norm.weight", (D,), F32, "ones")
        p.add(b + "ffn_up.weight", (F, D), F16, "lin")
        p.add(b + "ffn_down.weight", (D, F), F16, "lin")
        p.add(b + "ffn_post_norm.weight", (D,), F32, "ones")
        p.add(b + "attn_pre_norm.weight", (D,), F32, "ones")
        for t in ("attn_q", "attn_k", "attn_v", "attn_out", "attn_k_rel"):
            p.add(b + t + ".weight", (D, D), F16, "lin")
        p.add(b + "per_dim_scale.weight", (D // ha.n_head,), F32, "ones")
        p.add(b + "per_dim_k_scale.weight", (D // ha.n_head,), F32, "ones")
        p.add(b + "attn_post_norm.weight", (D,), F32, "ones")
        p.add(b + "norm_conv.weight", (D,), F32, "ones")
        p.add(b + "conv_pw1.weight", (2 * D, D), F16, "lin")
        p.add(b + "conv_dw.weight", (D, ha.conv_kernel), F32, "lin")
        p.add(b + "conv_norm.weight", (D,), F32, "ones")
        p.add(b + "conv_pw2.weight", (D, D), F16, "lin")
        p.add(b + "ffn_norm_1.weight", (D,), F32, "ones")
        p.add(b + "ffn_up_1.weight", (F, D), F16, "lin")
        p.add(b + "ffn_down_1.weight", (D, F), F16, "lin")
        p.add(b + "ffn_post_norm_1.weight", (D,), F32, "ones")
        p.add(b + "ln2.weight", (D,), F32, "ones")
    p.add("a.pre_encode.out.weight", (ha.out_dims, D), F16, "lin")
    p.add("mm.a.soft_emb_norm.weight", (ha.out_dims,), F32, "ones")
    p.add("mm.a.input_projection.weight", (ha.proj_dim, ha.out_dims), F16, "lin")


def write_gemma4_e2b_mmproj(path: Path, with_audio: bool = True) -> None:
    hv, ha = GEMMA4_VISION, GEMMA4_AUDIO
    plan = gemma4_e2b_mmproj_plan(hv, with_audio)
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("aistack-calib gemma-4-E2B-it mmproj (random weights)")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_clip_has_vision_encoder(True)
    w.add_vision_projection_dim(hv.proj_dim)
    w.add_vision_image_size(224)          # converter: "unused, but set to avoid error"
    w.add_vision_patch_size(hv.patch_size)
    w.add_vision_embedding_length(hv.n_embd)
    w.add_vision_feed_forward_length(hv.n_ff)
    w.add_vision_block_count(hv.n_layer)
    w.add_vision_head_count(hv.n_head)
    w.add_vision_image_mean([0.0, 0.0, 0.0])   # Gemma 4 processor: rescale only
    w.add_vision_image_std([1.0, 1.0, 1.0])
    w.add_clip_vision_projector_type(gguf.VisionProjectorType.GEMMA4V)
    w.add_vision_attention_layernorm_eps(hv.eps)
    if with_audio:
        w.add_clip_has_audio_encoder(True)
        w.add_audio_projection_dim(ha.proj_dim)
        w.add_audio_embedding_length(ha.n_embd)
        w.add_audio_feed_forward_length(ha.n_ff)
        w.add_audio_block_count(ha.n_layer)
        w.add_audio_head_count(ha.n_head)
        w.add_clip_audio_projector_type(gguf.VisionProjectorType.GEMMA4A)
        w.add_audio_num_mel_bins(ha.n_mel)
        w.add_audio_attention_layernorm_eps(1e-6)
    _write(w, plan)


# ---------------------------------------------------------------------------------------
# BERT family: bge-base-en-v1.5 and bge-reranker-v2-m3 (XLM-RoBERTa -> llama.cpp "bert")
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BertHP:
    n_embd: int
    n_layer: int
    n_head: int
    n_ff: int
    n_vocab: int
    n_pos: int            # rows of position_embd as written (= context_length)
    n_token_types: int
    eps: float
    rank_head: bool
    name: str


# BAAI/bge-base-en-v1.5 config.json: BertModel, hidden 768, 12 layers, 12 heads,
# intermediate 3072, vocab 30522, max_position_embeddings 512, type_vocab_size 2, eps 1e-12.
BGE_BASE = BertHP(768, 12, 12, 3072, 30522, 512, 2, 1e-12, False, "bge-base-en-v1.5")
# BAAI/bge-reranker-v2-m3 config.json: XLMRobertaForSequenceClassification, hidden 1024,
# 24 layers, 16 heads, intermediate 4096, vocab 250002, max_position_embeddings 8194,
# type_vocab_size 1, eps 1e-5, num_labels 1. conversion/bert.py XLMRobertaModel chops the
# first pad_token_id+1 = 2 position rows -> 8192 rows / context 8192.
BGE_RERANKER = BertHP(1024, 24, 16, 4096, 250002, 8192, 1, 1e-5, True, "bge-reranker-v2-m3")


def bert_plan(hp: BertHP) -> Plan:
    p = Plan("bert")
    e, f = hp.n_embd, hp.n_ff
    p.add("token_embd.weight", (hp.n_vocab, e))
    p.add("token_types.weight", (hp.n_token_types, e), F32)  # converter keeps it F32
    p.add("position_embd.weight", (hp.n_pos, e))
    p.add("token_embd_norm.weight", (e,), F32, "ones")
    p.add("token_embd_norm.bias", (e,), F32, "zeros")
    for i in range(hp.n_layer):
        b = f"blk.{i}."
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            p.add(b + t + ".weight", (e, e), F16, "lin")
            p.add(b + t + ".bias", (e,), F32)
        p.add(b + "attn_output_norm.weight", (e,), F32, "ones")
        p.add(b + "attn_output_norm.bias", (e,), F32, "zeros")
        p.add(b + "ffn_up.weight", (f, e), F16, "lin")
        p.add(b + "ffn_up.bias", (f,), F32)
        p.add(b + "ffn_down.weight", (e, f), F16, "lin")
        p.add(b + "ffn_down.bias", (e,), F32)
        p.add(b + "layer_output_norm.weight", (e,), F32, "ones")
        p.add(b + "layer_output_norm.bias", (e,), F32, "zeros")
    if hp.rank_head:
        p.add("cls.weight", (e, e), F16, "lin")
        p.add("cls.bias", (e,), F32)
        p.add("cls.output.weight", (1, e), F16, "lin")
        p.add("cls.output.bias", (1,), F32, "zeros")
    return p


def _bert_vocab(n_vocab: int) -> tuple[list[str], list[int]]:
    """WordPiece vocabulary (llama.cpp "bert" tokenizer) of the real size: bert-base specials
    at 0/100-103, every lowercase letter / digit / punctuation bare and with U+2581, then
    unique filler. For the XLM-R reranker this stands in for its SentencePiece (UGM) vocab:
    same size, so token_embd and the output buffers are the real ones."""
    T = gguf.TokenType
    toks = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    types = [int(T.CONTROL)] + [int(T.UNUSED)] * 99 + [int(T.UNKNOWN)] + [int(T.CONTROL)] * 3
    chars = string.ascii_lowercase + string.digits + string.punctuation
    pieces = list(dict.fromkeys(["\u2581" + c for c in chars] + list(chars)))
    toks += pieces
    types += [int(T.NORMAL)] * len(pieces)
    k = 0
    while len(toks) < n_vocab:
        toks.append(f"[fill{k}]")
        types.append(int(T.UNUSED))
        k += 1
    return toks, types


def _write_bert(path: Path, hp: BertHP) -> None:
    plan = bert_plan(hp)
    w = _header(path, "bert", hp.name, ctx=hp.n_pos, n_embd=hp.n_embd, n_layer=hp.n_layer, n_ff=hp.n_ff, n_head=hp.n_head)
    w.add_layer_norm_eps(hp.eps)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.RANK if hp.rank_head else gguf.PoolingType.CLS)
    w.add_vocab_size(hp.n_vocab)
    toks, types = _bert_vocab(hp.n_vocab)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_type_count(hp.n_token_types)
    w.add_unk_token_id(100)
    w.add_bos_token_id(101)
    w.add_sep_token_id(102)
    w.add_pad_token_id(0)
    w.add_mask_token_id(103)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_sep_token(True)
    _write(w, plan)


def write_bge_base(path: Path) -> None:
    _write_bert(path, BGE_BASE)


def write_bge_reranker(path: Path) -> None:
    _write_bert(path, BGE_RERANKER)


# ---------------------------------------------------------------------------------------
# Streaming writer
# ---------------------------------------------------------------------------------------

_POOL_N = 1 << 24  # 16 Mi random normals, tiled with random offsets per tensor


def _write(w: "gguf.GGUFWriter", plan: Plan, extra: dict[str, np.ndarray] | None = None) -> None:
    """Declare every tensor, write header/KV/tensor-info, then stream the data tensor by
    tensor (peak RAM ~ the largest tensor)."""
    extra = extra or {}
    rng = np.random.default_rng(SEED)
    pool = rng.standard_normal(_POOL_N).astype(F32)
    for name, shape, dtype, _ in plan.tensors:
        n = int(np.prod(shape))
        w.add_tensor_info(name, shape, np.dtype(dtype), n * np.dtype(dtype).itemsize)
    path = Path(w.path) if w.path is not None else None
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, dtype, init in plan.tensors:
        n = int(np.prod(shape))
        if init == "ones":
            arr = np.ones(shape, dtype=dtype)
        elif init == "zeros":
            arr = np.zeros(shape, dtype=dtype)
        elif init == "rope_freqs":
            arr = extra["rope_freqs"].astype(dtype).reshape(shape)
        else:
            scale = 0.02 if init == "w" else 1.0 / np.sqrt(shape[-1])
            arr = np.empty(n, dtype=dtype)
            off, pos = int(rng.integers(0, _POOL_N)), 0
            while pos < n:
                k = min(n - pos, _POOL_N - off)
                np.multiply(pool[off:off + k], scale, out=arr[pos:pos + k], casting="unsafe")
                pos += k
                off = 0
            arr = arr.reshape(shape)
        w.write_tensor_data(arr)
        del arr
    w.close()
    _ = path


# ---------------------------------------------------------------------------------------
# Catalogue descriptions for the runner
# ---------------------------------------------------------------------------------------

MODELS: dict[str, dict] = {
    "gemma-4-e2b-it": {
        "catalogue": "gemma-4-e2b-it",
        "file": "gemma4-e2b-f16.gguf",
        "writer": write_gemma4_e2b,
        "plan": gemma4_e2b_plan,
        "written_type": "F16",
        "target_quant": "Q4_K_M",
        "published_bytes": {"Q4_K_M": 3_106_736_256, "Q8_0": 4_967_494_592},
        # see quantize_args(): reproduces the published Q4_K_M size (estimate -0.2%)
        "quantize_args": ["--tensor-type", "per_layer_token_embd=q5_k"],
        "quantize_args_q8_0": [],
        "server_args": ["--mmproj", "{mmproj}"],
    },
    "gemma-4-e2b-it-mmproj": {
        "catalogue": "gemma-4-e2b-it",
        "file": "gemma4-e2b-mmproj-f16.gguf",
        "writer": write_gemma4_e2b_mmproj,
        "plan": gemma4_e2b_mmproj_plan,
        "written_type": "F16",
        "target_quant": "F16",
        # published mmproj-F16.gguf: vision encoder + audio conformer, both written here
        "published_bytes": {"F16": 985_654_080},
        "vision_only": False,
        "quantize_args": [],
    },
    "bge-base-en-v1.5": {
        "catalogue": "bge-base-en-v1.5",
        "file": "bge-base-en-v1.5-f16.gguf",
        "writer": write_bge_base,
        "plan": lambda: bert_plan(BGE_BASE),
        "written_type": "F16",
        "target_quant": "F16",
        "published_bytes": {},
        "quantize_args": [],
        "server_args": ["--embedding", "--pooling", "cls"],
    },
    "bge-reranker-v2-m3": {
        "catalogue": "bge-reranker-v2-m3",
        "file": "bge-reranker-v2-m3-f16.gguf",
        "writer": write_bge_reranker,
        "plan": lambda: bert_plan(BGE_RERANKER),
        "written_type": "F16",
        "target_quant": "Q8_0",
        # gpustack/bge-reranker-v2-m3-GGUF Q8_0 (catalogue); this layout's Q8_0 estimate is
        # ~612 MB (-3.7%): the synthetic WordPiece vocab is smaller than the real
        # SentencePiece one, and the source file's exact mix is not known
        "published_bytes": {"Q8_0": 635_676_416},
        "quantize_args": [],
        "server_args": ["--rerank"],
    },
}


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    names = argv[1:] or list(MODELS)
    for n in names:
        m = MODELS[n]
        dst = out / m["file"]
        tmp = dst.with_name(dst.name + ".tmp")
        m["writer"](tmp)
        os.replace(tmp, dst)
        print(f"{dst} {dst.stat().st_size}")


if __name__ == "__main__":
    main(sys.argv[1:])
