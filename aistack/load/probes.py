"""One request at a time, timed: seed 001's acceptance set and the prefix-cache gap per lane.

Acceptance (001): decode tok/s straight at the lane and through the gateway (the proxy's own
cost), decode at a short and at a long context, and the cold prefill TTFT of a long prompt.
The prefix-cache gap (003): the same long prompt twice, cold then warm; the difference is what
a returning user saves, and what a new user pays.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass

import httpx

from ..capacity import plan
from ..model import Cluster
from .sse import EventStream
from .traffic import PATHS, address_of, prompt

SHORT_PROMPT = 64
ANSWER_TOKENS = 128
LONG_SHARE = 0.75  # a long prompt fills this share of one request's context
LONG_CAP = 16384  # tokens: long enough to show prefill cost, short enough to send on any lane
FIT_TRIES = 6
UNKNOWN_CONTEXT = 8192  # tokens, where the plan cannot say: fitting() halves a prompt the lane refuses
VIA_GATEWAY_TRIES = 12  # requests through the alias until one is answered by the lane asked for


@dataclass
class Timed:
    ttft_s: float | None
    decode_tok_s: float | None
    tokens: int
    prompt_tokens: int | None
    lane: str | None  # who answered, from LiteLLM's header (None straight at the lane)


def long_prompt_tokens(cluster: Cluster, lane: str) -> int:
    """A prompt that fills LONG_SHARE of what one request may use on the lane, as the plan reads it."""
    context = plan(cluster).lanes[lane].slot_context or UNKNOWN_CONTEXT
    return max(SHORT_PROMPT * 2, min(LONG_CAP, int(context * LONG_SHARE) - ANSWER_TOKENS))


def stream(client: httpx.Client, url: str, headers: dict, model: str, text: str, max_tokens: int,
           lanes: dict[str, str] | None = None) -> Timed:
    """One streamed chat completion, timed from the request to its first and last token. A kept-alive
    connection the server closed meanwhile (llama-server keeps one 5 s) is retried once, fresh."""
    try:
        return _stream(client, url, headers, model, text, max_tokens, lanes)
    except httpx.RemoteProtocolError:
        return _stream(client, url, headers, model, text, max_tokens, lanes)


def _stream(client: httpx.Client, url: str, headers: dict, model: str, text: str, max_tokens: int,
            lanes: dict[str, str] | None) -> Timed:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True}
    events = EventStream(time.monotonic())
    with client.stream("POST", url, headers=headers, json=body) as resp:
        resp.raise_for_status()
        base = resp.headers.get("x-litellm-model-api-base")
        lane = (lanes or {}).get(address_of(base)) if base else None
        for line in resp.iter_lines():
            events.feed(line)
    return Timed(events.first_token_s, events.decode_tok_s, events.tokens, events.prompt_tokens, lane)


def lane_url(cluster: Cluster, lane: str) -> tuple[str, str]:
    """(chat URL straight at the lane, the model name it serves)."""
    address, port = cluster.endpoint(lane)
    service = cluster.services[lane]
    return f"http://{address}:{port}{PATHS['chat']}", getattr(service, "served_name", None) or lane


def fitting(client: httpx.Client, url: str, model: str, tokens: int, max_tokens: int) -> tuple[str, Timed]:
    """A long prompt the lane accepts: our words are not its tokenizer's, so a prompt the slot refuses
    (400) is halved until it fits."""
    for _ in range(FIT_TRIES):
        text = prompt(tokens, uuid.uuid4().hex[:8])
        try:
            return text, stream(client, url, {}, model, text, max_tokens)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 400 or tokens <= SHORT_PROMPT:
                raise
            tokens //= 2
    raise httpx.HTTPError(f"no prompt down to {tokens} words fits the lane")


def prefix_gap(cluster: Cluster, lane: str, client: httpx.Client) -> dict:
    """Cold then warm TTFT of one long prompt straight at the lane."""
    url, model = lane_url(cluster, lane)
    try:
        text, cold = fitting(client, url, model, long_prompt_tokens(cluster, lane), 1)
        warm = stream(client, url, {}, model, text, 1)
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    gap = None if cold.ttft_s is None or warm.ttft_s is None else round(cold.ttft_s - warm.ttft_s, 4)
    return {"prompt_tokens": cold.prompt_tokens, "cold_ttft_s": cold.ttft_s, "warm_ttft_s": warm.ttft_s, "gap_s": gap}


def acceptance(cluster: Cluster, lane: str, alias: str, gateway: str, key: str, lanes: dict[str, str],
               timeout_s: float) -> dict:
    """Seed 001's acceptance set for one lane."""
    url, model = lane_url(cluster, lane)
    short = lambda: prompt(SHORT_PROMPT, uuid.uuid4().hex[:8])  # noqa: E731: a fresh prefix each time
    long_tokens = long_prompt_tokens(cluster, lane)
    with httpx.Client(timeout=timeout_s) as client:
        direct = stream(client, url, {}, model, short(), ANSWER_TOKENS)
        via = None
        for _ in range(VIA_GATEWAY_TRIES):
            found = stream(client, f"{gateway}{PATHS['chat']}", {"Authorization": f"Bearer {key}"}, alias, short(),
                           ANSWER_TOKENS, lanes)
            if found.lane == lane:
                via = found
                break
        _, long_ctx = fitting(client, url, model, long_tokens, ANSWER_TOKENS)
        gap = prefix_gap(cluster, lane, client)
    overhead = None
    if via and via.decode_tok_s and direct.decode_tok_s:
        overhead = round(1 - via.decode_tok_s / direct.decode_tok_s, 4)
    return {
        "lane": lane, "alias": alias,
        "direct": asdict(direct), "via_gateway": asdict(via) if via else None,
        "gateway_decode_loss": overhead,
        "short_context": {"prompt_tokens": direct.prompt_tokens, "decode_tok_s": direct.decode_tok_s},
        "long_context": {"prompt_tokens": long_ctx.prompt_tokens, "decode_tok_s": long_ctx.decode_tok_s},
        "cold_prefill": gap,
    }
