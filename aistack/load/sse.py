"""Reading a streamed chat answer: the server-sent events every OpenAI-compatible server writes.

One reader for the ladder and the probes: the first and last token times, the usage LiteLLM and
the engines append, [DONE], and an error event mid-stream.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

MIN_CHUNKS = 3  # streamed chunks a decode rate is read from: fewer arrive coalesced by the proxies


@dataclass
class EventStream:
    """What one streamed answer carried, fed line by line as the lines arrive."""

    start: float  # time.monotonic() when the request was sent
    first: float | None = None
    last: float | None = None
    chunks: int = 0
    usage_tokens: int | None = None  # completion_tokens, where the stream reports usage
    prompt_tokens: int | None = None
    done: bool = False  # the stream ended with [DONE]
    error: str | None = None  # the line of an error event (LiteLLM's JSON), judged like a status
    parts: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        if not line.startswith("data: "):
            return
        data = line[6:].strip()
        if data == "[DONE]":
            self.done = True
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if "error" in event:
            self.error = line
            return
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                self.last = time.monotonic()
                self.first = self.first or self.last
                self.chunks += 1
                self.parts.append(piece)
        if usage := event.get("usage"):
            self.usage_tokens = usage.get("completion_tokens")
            self.prompt_tokens = usage.get("prompt_tokens")

    @property
    def tokens(self) -> int:
        return self.usage_tokens or self.chunks

    @property
    def first_token_s(self) -> float | None:
        return None if self.first is None else round(self.first - self.start, 4)

    @property
    def decode_tok_s(self) -> float | None:
        """Tokens after the first over the time they took; None where too few chunks came to tell."""
        if self.first is None or self.last <= self.first or self.chunks < MIN_CHUNKS:
            return None
        return round((self.tokens - 1) / (self.last - self.first), 3)

    @property
    def text(self) -> str:
        return "".join(self.parts)
