"""What the ladder sends: each request type of the declared load as the HTTP calls a user makes.

A type's stages follow its path (aistack.ceilings): speech in through the stt alias, retrieval
through embed and rerank, the answer streamed from its alias, speech out through tts. Which
call an alias takes is read from the service behind it, so a moved lane moves nothing here.
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import wave
from dataclasses import dataclass, field
from functools import cache
from typing import Literal
from urllib.parse import urlsplit

from urllib3 import encode_multipart_formdata

from ..ceilings import Paths
from ..model import Asr, Cluster, Gateway, LlamaCpp, Tts
from ..model.load import RequestType

Operation = Literal["chat", "embed", "rerank", "stt", "tts"]
PATHS: dict[Operation, str] = {"chat": "/v1/chat/completions", "embed": "/v1/embeddings", "rerank": "/v1/rerank",
                               "stt": "/v1/audio/transcriptions", "tts": "/v1/audio/speech"}
WEBUI_CHAT = "/api/chat/completions"  # Open WebUI's OpenAI-compatible endpoint, behind its own API keys
# Plain words, so any tokenizer gives roughly one token per word (English: ~1.3 tokens a word).
WORDS = ("the quick brown fox jumps over a lazy dog while seven bright stars shine above old quiet hills "
         "and rivers run to distant seas").split()
SPEECH_SECONDS = 2.0  # a short spoken question, generated: a tone, which Whisper transcribes as little or nothing
SPEECH_RATE = 16000  # Whisper's sample rate


@dataclass(frozen=True)
class Stage:
    """One call of a request: the alias it names, what it asks, and the lanes that may answer."""

    alias: str
    operation: Operation
    lanes: dict[str, str] = field(default_factory=dict)  # "address:port" -> lane, to read LiteLLM's api_base header

    def lane_of(self, api_base: str | None) -> str | None:
        return self.lanes.get(address_of(api_base)) if api_base else None


@dataclass(frozen=True)
class Target:
    """One request type as the ladder sends it."""

    name: str
    type: RequestType
    stages: tuple[Stage, ...]
    image_px: int | None = None  # the smallest max_image_px of the vision routes

    @property
    def answer(self) -> Stage:
        return next(s for s in self.stages if s.operation == "chat")


def operation(cluster: Cluster, service: str) -> Operation:
    found = cluster.services[service]
    if isinstance(found, Asr):
        return "stt"
    if isinstance(found, Tts):
        return "tts"
    if isinstance(found, LlamaCpp) and found.role == "embedding":
        return "embed"
    if isinstance(found, LlamaCpp) and found.role == "rerank":
        return "rerank"
    return "chat"


def address_of(url: str) -> str:
    """"address:port" of a URL: how LiteLLM's api_base header and Prometheus' label name a lane."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def by_address(cluster: Cluster, lanes: list[str]) -> dict[str, str]:
    """"address:port" -> lane, to tell from a URL which lane answered."""
    return {"{}:{}".format(*cluster.endpoint(name)): name for name in lanes}


def stage(cluster: Cluster, paths: Paths, alias: str) -> Stage:
    routes = [name for name, _ in paths.routes(alias)]
    return Stage(alias, operation(cluster, routes[0]), by_address(cluster, routes))


def targets(cluster: Cluster, names: list[str] | None = None, webui_key: bool = False
            ) -> tuple[list[Target], dict[str, str]]:
    """The types to send (the declared mix, or `names` of it) and why each other one is left out."""
    from ..capacity import plan  # the lane capacities the paths are read with

    paths = Paths(cluster, plan(cluster).lanes)
    mix = cluster.load.mix
    unknown = sorted(set(names or []) - set(mix))
    if unknown:
        raise ValueError(f"not in the declared load (load.mix): {', '.join(unknown)}; known: {', '.join(mix)}")
    found, skipped = [], {}
    for name in names or list(mix):
        t = mix[name]
        why = paths.unserved(t)
        if why is None and t.entry == "webui" and not webui_key:
            why = "enters through Open WebUI, which needs one of its API keys (--webui-key)"
        if why is None and t.weight == 0 and names is None:
            why = "weight 0 in the declared mix"
        if why is not None:
            skipped[name] = why
            continue
        found.append(_target(cluster, paths, name, t))
    return found, skipped


def _target(cluster: Cluster, paths: Paths, name: str, t: RequestType) -> Target:
    wanted = (["stt"] if t.speech else []) + (["embed", "rerank"] if t.retrieval or t.upload else [])
    before = [stage(cluster, paths, a) for a in wanted if paths.routes(a)]
    after = [stage(cluster, paths, "tts")] if t.speech else []
    answer = stage(cluster, paths, t.alias)
    px = None
    if t.images:
        bounds = [getattr(cluster.services[lane], "max_image_px", None) for lane in answer.lanes.values()]
        px = min((b for b in bounds if b), default=None)
    return Target(name, t, (*before, answer, *after), px)


def gateway_url(cluster: Cluster) -> str:
    """The front door: nginx, where the users' requests enter."""
    from ..model import Nginx

    name, _ = cluster.one(Nginx)
    if name is None:
        name, _ = cluster.one(Gateway)
    address, port = cluster.endpoint(name)
    return f"http://{address}:{port}"


# ---- bodies --------------------------------------------------------------------------------

def prompt(tokens: int, nonce: str) -> str:
    """About `tokens` tokens of plain words, opened by a nonce so no two requests share a prefix."""
    count = max(1, tokens - 8)
    return f"[{nonce}] " + " ".join(WORDS[i % len(WORDS)] for i in range(count))


def chat_body(target: Target, nonce: str, history: list[dict] | None = None) -> dict:
    """A streamed chat request of the type's length. ignore_eos makes every answer the type's full
    length, as the plan times it (llama.cpp, vLLM and SGLang all take it); usage comes last."""
    t = target.type
    text = prompt(t.prompt_tokens, nonce) if not history else f"[{nonce}] and then?"
    content: str | list[dict] = text
    if t.images and target.image_px:
        content = [{"type": "text", "text": text},
                   *({"type": "image_url", "image_url": {"url": image_url(target.image_px)}} for _ in range(t.images))]
    return {"model": target.answer.alias, "messages": [*(history or []), {"role": "user", "content": content}],
            "max_tokens": t.output_tokens, "stream": True, "stream_options": {"include_usage": True},
            "ignore_eos": True}


def stage_request(s: Stage, nonce: str) -> tuple[bytes, str]:
    """(body, content type) of a stage other than the answer."""
    question = prompt(16, nonce)
    if s.operation == "embed":
        return json.dumps({"model": s.alias, "input": [question]}).encode(), "application/json"
    if s.operation == "rerank":
        docs = [prompt(48, f"{nonce}-{i}") for i in range(4)]
        return json.dumps({"model": s.alias, "query": question, "documents": docs}).encode(), "application/json"
    if s.operation == "tts":
        return json.dumps({"model": s.alias, "input": question[:200], "response_format": "wav"}).encode(), "application/json"
    if s.operation == "stt":
        return encode_multipart_formdata({"model": s.alias, "file": ("question.wav", speech_wav(), "audio/wav")})
    raise ValueError(f"{s.operation} is sent as a chat body")


@cache
def speech_wav(seconds: float = SPEECH_SECONDS) -> bytes:
    """A short 16 kHz mono WAV: a 440 Hz tone at half scale."""
    frames = b"".join(struct.pack("<h", int(16383 * math.sin(2 * math.pi * 440 * i / SPEECH_RATE)))
                      for i in range(int(seconds * SPEECH_RATE)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SPEECH_RATE)
        w.writeframes(frames)
    return buf.getvalue()


@cache
def image_url(side: int) -> str:
    """A side x side PNG (a gradient, so it is not a blank a server may shortcut) as a data URL."""
    from PIL import Image  # matplotlib's dependency; only vision requests need it

    img = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
