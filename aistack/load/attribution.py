"""Which layer gave way: decided from what the failed call carried, never from its request type.

The evidence, outermost first: a client-side deadline or refused connection; nginx's own error
page (its Server header and HTML body: 504 is its proxy_read_timeout, 502 a gateway that does
not answer); LiteLLM's JSON error (its message names llama-server's "exceeds the available
context size", its own timeouts, a deployment it cannot reach); and the step's server counters
(a lane whose metrics endpoint refused is down; a lane that deferred requests had full slots).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# llama-server's refusal, as LiteLLM passes it on (captured: llama.cpp b11312 via LiteLLM 1.106.2).
SLOT_CONTEXT = re.compile(r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)")
LITELLM_TIMEOUT = re.compile(r"litellm\.(Timeout|APITimeoutError)|Request timed out", re.IGNORECASE)
LITELLM_CONNECT = re.compile(r"APIConnectionError|Connection error|Connection refused|Cannot connect", re.IGNORECASE)
NO_DEPLOYMENT = re.compile(r"No deployments available|cooldown", re.IGNORECASE)
NGINX_PAGE = re.compile(r"<center>nginx", re.IGNORECASE)


@dataclass
class Answer:
    """What one call came back with, as the client saw it."""

    status: int | None  # None: no HTTP response at all
    body: str = ""  # the head of a failed call's body
    server: str | None = None  # the Server header
    error: str | None = None  # client side: "timeout" (our own deadline), "connect", "closed"
    complete: bool = True  # a stream ended with [DONE]; a plain answer parsed
    lane: str | None = None  # the lane LiteLLM says answered (x-litellm-model-api-base)
    elapsed_s: float = 0.0
    first_token_s: float | None = None


@dataclass(frozen=True)
class StepEvidence:
    """What the servers' own counters said during one step."""

    down: frozenset[str] = frozenset()  # lanes whose metrics endpoint did not answer
    deferred: dict[str, float] = field(default_factory=dict)  # lane -> most requests it deferred at once
    slot_context: dict[str, int] = field(default_factory=dict)  # lane -> tokens one slot holds
    timeouts: dict[str, int] = field(default_factory=dict)  # nginx, gateway, backend, client -> seconds


@dataclass(frozen=True)
class Verdict:
    layer: str  # "client", "nginx", "gateway", "webui" or the service's name
    kind: str  # what gave way there, as a short key
    reason: str  # the evidence, in words


def attribute(answer: Answer, lanes: list[str], evidence: StepEvidence) -> Verdict | None:
    """None for a call that succeeded; else the layer its evidence points at."""
    if answer.error is None and answer.status is not None and answer.status < 400 and answer.complete:
        return None
    down = [lane for lane in lanes if lane in evidence.down]
    if answer.error == "timeout":
        return _client_timeout(answer, lanes, evidence)
    if answer.error == "connect":
        return Verdict("nginx", "front-door", "the connection to the front door was refused or unreachable")
    if NGINX_PAGE.search(answer.body):  # nginx's own error page: it answered, not what is behind it
        return _nginx(answer, evidence)
    if (message := _litellm_error(answer.body)) is not None:  # also an error event inside a stream
        return _gateway(answer.status or 0, message, lanes, down, evidence)
    if answer.status is None or (answer.status < 400 and not answer.complete):
        return _cut(answer, down, evidence)
    if (detail := _webui_detail(answer.body)) is not None:
        return Verdict("webui", "error", f"Open WebUI {answer.status}: {detail[:160]}")
    return Verdict("gateway", "error", f"HTTP {answer.status} without an error body LiteLLM writes: {answer.body[:120]!r}")


def _client_timeout(answer: Answer, lanes: list[str], evidence: StepEvidence) -> Verdict:
    limit = evidence.timeouts.get("client")
    waited = f"the client gave up after {answer.elapsed_s:.0f} s" + (f" (its {limit} s deadline)" if limit else "")
    queued = [lane for lane in lanes if evidence.deferred.get(lane, 0) > 0]
    if answer.first_token_s is None and queued:
        lane = max(queued, key=lambda n: evidence.deferred[n])
        return Verdict(lane, "queued", f"{waited} before a first token, while {lane} deferred up to "
                       f"{evidence.deferred[lane]:.0f} requests: its slots were full")
    return Verdict("client", "client-timeout", waited)


def _cut(answer: Answer, down: list[str], evidence: StepEvidence) -> Verdict:
    """A stream that stopped without [DONE]: the layer whose timeout matches the silence."""
    if down:
        return Verdict(down[0], "lane-down", f"the stream broke and {down[0]}'s metrics endpoint stopped answering")
    for layer, key in (("nginx", "nginx"), ("gateway", "gateway"), ("gateway", "backend")):
        limit = evidence.timeouts.get(key)
        if limit and answer.elapsed_s >= limit * 0.95:
            return Verdict(layer, "stream-cut", f"the stream closed after {answer.elapsed_s:.0f} s without [DONE]: "
                           f"{key} timeout {limit} s")
    return Verdict("gateway", "stream-cut", f"the stream closed after {answer.elapsed_s:.1f} s without [DONE]")


def _nginx(answer: Answer, evidence: StepEvidence) -> Verdict:
    limit = evidence.timeouts.get("nginx")
    if answer.status == 504:
        return Verdict("nginx", "upstream-timeout", f"nginx 504 after {answer.elapsed_s:.0f} s: its proxy_read_timeout"
                       + (f" ({limit} s)" if limit else "") + " ran out before the answer")
    if answer.status == 502:
        return Verdict("gateway", "gateway-down", "nginx 502: the gateway behind it did not answer")
    if answer.status == 413:
        return Verdict("nginx", "body-too-large", "nginx 413: the request body is over client_max_body_size")
    return Verdict("nginx", "error", f"nginx {answer.status}")


def _gateway(status: int, message: str, lanes: list[str], down: list[str], evidence: StepEvidence) -> Verdict:
    if found := SLOT_CONTEXT.search(message):
        need, have = int(found.group(1)), int(found.group(2))
        owners = [lane for lane in lanes if evidence.slot_context.get(lane) == have] or lanes
        return Verdict(owners[0] if len(owners) == 1 else " or ".join(owners), "slot-context",
                       f"llama-server refused a {need:,}-token request: one slot holds {have:,} (ctx / parallel)")
    if LITELLM_CONNECT.search(message) or NO_DEPLOYMENT.search(message):
        if down:
            return Verdict(down[0], "lane-down", f"LiteLLM could not reach a deployment, and {down[0]}'s metrics "
                           "endpoint refused too: the lane is down")
        kind = "no-deployment" if NO_DEPLOYMENT.search(message) else "lane-unreachable"
        return Verdict("gateway", kind, f"LiteLLM {status}: {_first_line(message)}")
    if LITELLM_TIMEOUT.search(message):
        limit = evidence.timeouts.get("backend")
        return Verdict("gateway", "gateway-timeout", "LiteLLM timed out waiting for the lane"
                       + (f" (its {limit} s deployment timeout)" if limit else ""))
    if status == 429:
        return Verdict("gateway", "rate-limit", f"LiteLLM 429: {_first_line(message)}")
    return Verdict("gateway", "error", f"LiteLLM {status}: {_first_line(message)}")


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0][:200] if message.strip() else ""


def _json(body: str) -> dict | None:
    try:
        found = json.loads(body)
    except (ValueError, TypeError):
        return None
    return found if isinstance(found, dict) else None


def _litellm_error(body: str) -> str | None:
    """LiteLLM's {"error": {"message": ...}}, also as the last event of a stream ("data: {...}")."""
    for text in (body, *(line[6:] for line in body.splitlines() if line.startswith("data: {"))):
        found = _json(text)
        if found and isinstance(found.get("error"), dict):
            return str(found["error"].get("message", ""))
    return None


def _webui_detail(body: str) -> str | None:
    found = _json(body)
    return str(found["detail"]) if found and "detail" in found else None
