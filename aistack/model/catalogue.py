"""The model catalogue: architecture and file sizes the planner needs, read from the publishers.

Built-in entries live in catalogue.yaml next to this module, each number with its source.
A site adds or replaces entries under `catalogue:` in its group data.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from .base import StrictModel, load_yaml
from .types import RelativePath, RepoId

REVISION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z"  # a commit or a tag: a folder name in the HF cache

CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "catalogue.yaml"
ModelKind = Literal["llm", "vision-llm", "embedding", "reranker", "asr", "tts", "detector"]


class Arch(StrictModel):
    """What sets the KV cache size: layers x KV heads x head dim, and which layers keep all tokens."""

    layers: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    sliding_window: int | None = Field(None, gt=0)
    sliding_layers: int = Field(0, ge=0)  # layers that keep only the last `sliding_window` tokens
    linear_attention_layers: int = Field(0, ge=0)  # constant-size state, no per-token KV
    max_context: int | None = Field(gt=0)  # None: not read from the config yet
    kv_heads_sliding: int | None = Field(None, gt=0)  # where sliding layers differ (else kv_heads)
    head_dim_sliding: int | None = Field(None, gt=0)
    head_dim_full: int | None = Field(None, gt=0)  # Gemma 4: 512-wide global heads beside 256-wide sliding ones
    # Where later layers reuse an earlier layer's KV (Gemma 4's num_kv_shared_layers), only the
    # layers that own a cache count: how many full and sliding ones those are.
    full_kv_layers: int | None = Field(None, ge=0)
    sliding_kv_layers: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _layers_add_up(self) -> Arch:
        if self.sliding_layers + self.linear_attention_layers > self.layers:
            raise ValueError("sliding + linear-attention layers exceed the layer count")
        if self.sliding_layers and self.sliding_window is None:
            raise ValueError("sliding_layers given without sliding_window")
        if (self.full_kv_layers or 0) > self.full_layers or (self.sliding_kv_layers or 0) > self.sliding_layers:
            raise ValueError("more layers own a KV cache than the model has of that kind")
        return self

    @property
    def full_layers(self) -> int:
        return self.layers - self.sliding_layers - self.linear_attention_layers

    @property
    def full_cache_layers(self) -> int:
        """Full-attention layers that keep a KV cache of their own."""
        return self.full_layers if self.full_kv_layers is None else self.full_kv_layers

    @property
    def sliding_cache_layers(self) -> int:
        return self.sliding_layers if self.sliding_kv_layers is None else self.sliding_kv_layers


class Vision(StrictModel):
    tokens_per_image: int = Field(gt=0)


class ModelFile(StrictModel):
    file: RelativePath | None  # None: not identified yet
    bytes: int | None = Field(None, gt=0)  # None: not read from a listing yet; the plan says so
    repo: RepoId | None = None
    revision: str | None = Field(None, pattern=REVISION)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}\Z")
    display_size: str | None = None  # the rounded size a web page shows; never used as bytes


# One file, or the shards of one checkpoint.
FileSet = ModelFile | list[ModelFile]


def total_bytes(files: FileSet) -> int | None:
    """All shards' bytes, or None if any size is unknown."""
    parts = files if isinstance(files, list) else [files]
    sizes = [p.bytes for p in parts]
    return None if any(s is None for s in sizes) else sum(sizes)


class ImageTokens(StrictModel):
    """What one image costs in llama.cpp's projector at a build, read from that build's clip.cpp."""

    build: int = Field(gt=0)
    min: int = Field(gt=0)
    max: int = Field(gt=0)
    source: str


class LlamaCppSupport(StrictModel):
    """The GGUF architecture and the first llama.cpp build that loads it, with where that was read."""

    arch: str
    since_build: int = Field(gt=0)
    source: str
    image_tokens: list[ImageTokens] = []  # by build read; the limits move between builds

    def tokens_per_image(self, build: int) -> ImageTokens | None:
        """The largest image at this build: between two builds read, the larger of the two."""
        read = sorted(self.image_tokens, key=lambda t: t.build)
        if not read:
            return None
        below = [t for t in read if t.build <= build]
        above = [t for t in read if t.build >= build]
        near = [x for x in (below[-1] if below else None, above[0] if above else None) if x is not None]
        return max(near, key=lambda t: t.max)


class ModelSpec(StrictModel):
    kind: ModelKind
    hf_repo: RepoId | None = None
    source: list[str] = []
    arch: Arch | None = None
    vision: Vision | None = None
    llamacpp: LlamaCppSupport | None = None  # a model llama.cpp serves: from which build it loads
    files: dict[str, FileSet] = {}
    todo: str | None = None
    note: str | None = None
    extra: dict[str, Any] = {}  # facts the planner does not read (yet), kept with their source

    def image_tokens(self, build: int | None) -> int:
        """Tokens one image takes at the lane's llama.cpp build (its largest; catalogue.yaml says where
        each limit was read), else the model's own default image budget."""
        if self.vision is None:
            return 0
        limits = self.llamacpp.tokens_per_image(build) if self.llamacpp and build is not None else None
        return self.vision.tokens_per_image if limits is None else limits.max

    @model_validator(mode="after")
    def _shape(self) -> ModelSpec:
        if self.kind in ("llm", "vision-llm") and self.arch is None:
            raise ValueError(f"a {self.kind} entry needs arch (layers, kv_heads, head_dim, ...)")
        if self.kind == "vision-llm" and self.vision is None:
            raise ValueError("a vision-llm entry needs vision.tokens_per_image")
        return self


class GpuSpec(StrictModel):
    """A GPU model's size, for carrying a measured CUDA context to it."""

    sms: int = Field(gt=0)
    source: str


@cache
def builtin_gpus() -> dict[str, GpuSpec]:
    raw = load_yaml(CATALOGUE_FILE.read_text()).get("gpus", {})
    return {name: GpuSpec.model_validate(entry) for name, entry in raw.items()}


@cache
def builtin() -> dict[str, ModelSpec]:
    """The shipped catalogue, validated once per process."""
    raw = load_yaml(CATALOGUE_FILE.read_text())["models"]
    return {name: ModelSpec.model_validate(entry) for name, entry in raw.items()}
