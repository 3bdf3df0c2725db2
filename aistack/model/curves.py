"""Decode curves: one user's decode rate and time to first token as concurrency grows.

Built-in curves live in curves.yaml next to the catalogue, each a measured table with its
source; a site's own (recorded by `aistack load`) replace them by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import StrictModel, load_yaml
from .types import Component, Text

CURVES_FILE = Path(__file__).resolve().parent.parent / "curves.yaml"


class SweepPoint(StrictModel):
    concurrency: int = Field(ge=1)
    req_s: float = Field(gt=0)
    ttft_p50_s: float = Field(ge=0)
    ttft_p95_s: float | None = Field(None, ge=0)


class Sweep(StrictModel):
    """Fixed-length requests at each concurrency: the form of an engine benchmark (000)."""

    input_tokens: int = Field(ge=1)
    output_tokens: int = Field(ge=1)
    points: list[SweepPoint] = Field(min_length=1)


class Point(StrictModel):
    """Per user at one concurrency: decode tok/s and TTFT, or the whole request's seconds."""

    concurrency: int = Field(ge=1)
    tok_s: float | None = Field(None, gt=0)
    ttft_p95_s: float = Field(0.0, ge=0)
    request_s: float | None = Field(None, gt=0)  # one request of the lane's workload, slots busy

    @model_validator(mode="after")
    def _one_kind(self) -> Point:
        if (self.tok_s is None) == (self.request_s is None):
            raise ValueError("a point gives tok_s (with ttft_p95_s) or request_s, not both")
        return self


class Curve(StrictModel):
    engine: Literal["sglang", "vllm", "llamacpp"]
    model: Component | None = None
    memory: Literal["dedicated", "unified"] | None = None
    hardware: Text
    source: Text
    sweep: Sweep | None = None
    points: list[Point] = []

    @model_validator(mode="after")
    def _points(self) -> Curve:
        if (self.sweep is None) == (not self.points):
            raise ValueError("a curve gives a sweep or points (one of the two)")
        if len({p.request_s is None for p in self.points}) > 1:
            raise ValueError("a curve's points are all tok_s or all request_s")
        return self

    @property
    def table(self) -> list[Point]:
        """Per-user points by concurrency; a sweep's are derived from its request rate."""
        found = self.points if self.sweep is None else [_from_sweep(p, self.sweep.output_tokens) for p in self.sweep.points]
        return sorted(found, key=lambda p: p.concurrency)

    def at(self, concurrency: float) -> Speed:
        """One user's speed at this concurrency, interpolated in log(concurrency)."""
        c = max(1.0, concurrency)
        pts = self.table
        if pts[0].request_s is not None:
            return Speed(None, 0.0, _interpolate([(p.concurrency, p.request_s) for p in pts], c))
        last = pts[-1]
        if c > last.concurrency:
            # Past the sweep the engine's total throughput is flat (000: 6.3 req/s at c512 and c1024).
            return Speed(last.tok_s * last.concurrency / c, last.ttft_p95_s, None)
        tok_s = _interpolate([(p.concurrency, p.tok_s) for p in pts], c)
        ttft = _interpolate([(p.concurrency, p.ttft_p95_s) for p in pts], c)
        return Speed(tok_s, ttft, None)


@dataclass(frozen=True)
class Speed:
    tok_s: float | None  # one user's decode rate
    ttft_s: float  # time to first token (p95 where the source gives it)
    request_s: float | None  # where the source timed whole requests instead

    def seconds(self, output_tokens: int) -> float:
        """How long one request of this many output tokens takes."""
        if self.request_s is not None:
            return self.request_s
        return self.ttft_s + output_tokens / self.tok_s


def _from_sweep(p: SweepPoint, output_tokens: int) -> Point:
    """A request takes c / req_s seconds at concurrency c; TTFT of that went to prefill and queue."""
    decode_s = p.concurrency / p.req_s - p.ttft_p50_s
    return Point(concurrency=p.concurrency, tok_s=output_tokens / decode_s,
                 ttft_p95_s=p.ttft_p95_s if p.ttft_p95_s is not None else p.ttft_p50_s)


def _interpolate(points: list[tuple[int, float]], c: float) -> float:
    if c <= points[0][0]:
        return points[0][1]
    for (c0, v0), (c1, v1) in zip(points, points[1:]):
        if c <= c1:
            share = math.log(c / c0) / math.log(c1 / c0)
            return v0 + (v1 - v0) * share
    return points[-1][1]


@cache
def builtin_curves() -> dict[str, Curve]:
    raw = load_yaml(CURVES_FILE.read_text())["curves"]
    return {name: Curve.model_validate(entry) for name, entry in raw.items()}
