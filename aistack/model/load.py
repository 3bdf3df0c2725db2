"""The load a site must carry: how many users at once, and the mix of what they ask.

The default is seed 000's own: 128 concurrent workers over its 11 workflow types, each type
with the no-load time the seed measured. The plan (aistack.ceilings) follows each type's path
through the deployed services and says which layer gives way first.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import StrictModel, tuned
from .types import Alias, Component, Text

# 000's SGLang sweep at c1: 160 tokens in 1 / 0.2 req/s less 0.09 s TTFT = 32.6 tok/s, one user
# alone. A type's answer length is its no-load time at that rate, where the seed gives no length.
SEED_SINGLE_USER_TOK_S = 32.6


def _answer(seconds: float) -> int:
    return round(seconds * SEED_SINGLE_USER_TOK_S)


class RequestType(StrictModel):
    """One workflow type: where it enters, what it passes through, how long its answer is."""

    entry: Literal["webui", "api"]  # Open WebUI (the assistant) or the gateway's API through nginx
    alias: Alias = "chat"  # the gateway alias that writes the answer
    retrieval: bool = False  # embed the query, search Qdrant, rerank, before generating
    upload: bool = False  # a document is chunked and embedded first (its own retrieval stage)
    speech: bool = False  # voice in through the stt alias, the answer spoken through tts
    detect: bool = False  # NanoOWL finds objects before the vision lane describes them
    images: int = Field(0, ge=0, le=64)
    prompt_tokens: int = Field(2000, ge=1, le=1 << 22)  # as Workload: ~2,000-token prompts (003)
    output_tokens: int = Field(ge=1, le=1 << 22)
    weight: float = Field(1.0, ge=0, le=1e6)  # share of the mix, relative to the other types
    baseline_s: float | None = Field(None, gt=0, le=86400)  # the seed's no-load time, shown beside ours
    source: Text | None = None

    @model_validator(mode="after")
    def _shape(self) -> RequestType:
        if self.detect and not self.images:
            raise ValueError("a detection request carries an image (images >= 1)")
        return self


_CAPTION = "no-load {} s (000); a caption: the vision curve times whole requests, its tokens only size the slot"


def _seed_000_mix() -> dict[str, RequestType]:
    """000's 11 types with their no-load times ('These are the no-load baselines')."""
    def t(seconds: float, **kw) -> RequestType:
        out = kw.pop("output_tokens", None) or _answer(seconds)
        why = kw.pop("why", f"no-load {seconds} s (000); answer {out:,} tokens at {SEED_SINGLE_USER_TOK_S} tok/s")
        return RequestType(baseline_s=seconds, output_tokens=out, source=why, **kw)

    return {
        "text-quick-lookup": t(7.7, entry="webui", retrieval=True),
        "text-research": t(37.4, entry="webui", retrieval=True),
        "text-deep-research": t(61.7, entry="webui", retrieval=True),
        "voice-assistant": t(77.2, entry="webui", retrieval=True, speech=True, output_tokens=_answer(75),
                             why="no-load 77.2 s, of it SGLang ~75 s (000)"),
        "image-detection": t(11.1, entry="api", alias="vision", detect=True, images=1, prompt_tokens=100,
                             output_tokens=200, why=_CAPTION.format(11.1)),
        "text-short": t(16.2, entry="api"),
        "text-medium": t(59.6, entry="api"),
        "text-long": t(66.7, entry="api", output_tokens=3200, why="long analysis: 3,200-token responses (000)"),
        "voice-direct": t(60.4, entry="api", speech=True, output_tokens=_answer(57),
                          why="no-load 60.4 s, of it SGLang ~57 s (000)"),
        "image-direct": t(17.2, entry="api", alias="vision", images=1, prompt_tokens=100, output_tokens=200,
                          why=_CAPTION.format(17.2)),
        "pdf-query": t(15.9, entry="webui", upload=True, retrieval=True),
    }


class Load(StrictModel):
    """The declared load: concurrent users in burst mode, each with one request in flight (000)."""

    users: int = tuned(128, "the seed's ladder ran 128 concurrent workers against this stack (000)", ge=1, le=1 << 20)
    mix: dict[Component, RequestType] = Field(default_factory=_seed_000_mix)

    @model_validator(mode="after")
    def _some_weight(self) -> Load:
        if not self.mix or not any(t.weight for t in self.mix.values()):
            raise ValueError("the mix needs at least one request type with a weight above 0")
        return self

    def share(self, name: str) -> float:
        """This type's share of the users."""
        return self.mix[name].weight / sum(t.weight for t in self.mix.values())
