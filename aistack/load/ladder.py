"""The load ladder on Locust's library API: one step per concurrency, bursts or sessions.

Each step starts its users at once (the seed's cold burst) and hands out a fixed number of
requests; a user takes the next one as soon as its last one ended (burst), or runs a whole
multi-turn conversation one turn at a time (session, 000: 99.5% where burst failed). A step is
capped twice: it hands out no request after `duration_s`, and stops its users outright one client
timeout later. Ctrl-C stops the current step and keeps everything measured so far.

Importing this module imports Locust, which gevent-patches the process: only `aistack load` and
the benchmark import it.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment
from geventhttpclient.response import HTTPConnectionClosed
from geventhttpclient.useragent import ConnectionError  # noqa: A004 (geventhttpclient's own)
from locust.exception import StopUser

from ..capacity import plan
from ..model import Cluster
from .attribution import Answer, StepEvidence, attribute
from .counters import Sampler
from .records import Options, Record, StageResult, Step, StepResult
from .sse import EventStream
from .traffic import PATHS, WEBUI_CHAT, Stage, Target, chat_body, stage_request

SAMPLE_S = 0.5  # how often the servers' counters are read during a step
BODY_HEAD = 2048  # bytes of a failed answer's body kept as evidence
SPAWN_AT_ONCE = 1e6  # users per second: every user of a step starts together (the seed's cold burst)

# Locust warns about a spawn rate above 100/s; starting every user at once is the point here.
logging.getLogger("locust.runners").setLevel(logging.ERROR)


class ClientDeadline(Exception):
    """The client's own timeout: the user gave up."""


class StepState:
    """What one step hands out, and what came back; shared by its users (greenlets, one thread)."""

    def __init__(self, ladder: Ladder, step: Step, t0: float):
        self.ladder, self.step = ladder, step
        self.left = step.total
        self.in_flight = 0
        self.stop_at = time.monotonic() + step.duration_s
        self.result = StepResult(step, ladder.options.mode, t0)
        self.order = ladder.draw(step)

    def take(self) -> Target | None:
        if self.left <= 0 or time.monotonic() >= self.stop_at:
            return None
        self.left -= 1
        self.in_flight += 1
        return self.order[(self.step.total - self.left - 1) % len(self.order)]

    def done(self, record: Record) -> None:
        self.in_flight -= 1
        self.result.records.append(record)

    @property
    def finished(self) -> bool:
        return self.in_flight == 0 and (self.left <= 0 or time.monotonic() >= self.stop_at)


class Ladder:
    """Runs steps against one cluster's front door with its gateway key (never printed)."""

    def __init__(self, cluster: Cluster, targets: list[Target], key: str, base_url: str,
                 options: Options = Options(), webui_key: str | None = None):
        if not targets:
            raise ValueError("nothing to send: no request type of the load is served")
        self.cluster, self.targets, self.options = cluster, targets, options
        self.key, self.webui_key, self.base_url = key, webui_key, base_url
        self.t0 = time.monotonic()
        self.state: StepState | None = None
        self.env = Environment(user_classes=[self._user_class()], host=base_url)
        self.runner = self.env.create_local_runner()
        self.lanes = sorted({lane for t in targets for s in t.stages for lane in s.lanes.values()})
        # Tokens one request may use per lane, as the plan reads it (a unified KV cache: all of ctx).
        self.slot_contexts = {name: lane.slot_context for name, lane in plan(cluster).lanes.items()
                              if lane.slot_context}
        # Ctrl-C ends the step in progress cleanly (gevent's default prints the interrupted greenlet).
        self.interrupted = False
        self._sigint = gevent.signal_handler(signal.SIGINT, self._interrupt)

    def _interrupt(self) -> None:
        self.interrupted = True

    def _user_class(self) -> type[FastHttpUser]:
        ladder = self

        class LadderUser(FastHttpUser):
            wait_time = constant(0)
            network_timeout = ladder.options.timeout_s
            connection_timeout = 10.0
            concurrency = 4  # connections per user: one call is in flight at a time
            insecure = False

            @task
            def one(self) -> None:
                ladder.user_turn(self)

        return LadderUser

    def draw(self, step: Step) -> list[Target]:
        """The requests' types: one of each for smoke, else a weighted draw over the mix (seeded)."""
        if step.label == "smoke":
            return list(self.targets)
        rng = random.Random(f"{self.options.seed}-{step.label}")
        weights = [t.type.weight for t in self.targets]
        return rng.choices(self.targets, weights=weights, k=max(1, step.total))

    # ---- one user ---------------------------------------------------------------------------

    def user_turn(self, user: FastHttpUser) -> None:
        state = self.state
        target = state.take() if state else None
        if target is None:
            raise StopUser()
        if self.options.mode != "session":
            state.done(self.request(user, state, target, str(uuid.uuid4())[:8], None, 1))
            return
        history: list[dict] = []
        nonce = str(uuid.uuid4())[:8]
        for turn in range(1, self.options.turns + 1):
            if turn > 1 and state.take() is None:
                break
            record = self.request(user, state, target, nonce, history, turn)
            state.done(record)
            if not record.ok:
                break

    def request(self, user: FastHttpUser, state: StepState, target: Target, nonce: str,
                history: list[dict] | None, turn: int) -> Record:
        start = time.monotonic()
        record = Record(state.step.label, state.step.users, self.options.mode, target.name,
                        round(start - self.t0, 3), 0.0, True, turn)
        for stage in target.stages:
            result, answer, text = self.call(user, target, stage, nonce, history)
            record.stages.append(result)
            if answer is not None:
                record.ok, record.failed, record.failed_lanes = False, answer, sorted(stage.lanes.values())
                break
            if stage.operation == "chat" and history is not None:
                history += [{"role": "user", "content": f"[{nonce}] turn {turn}"}, {"role": "assistant", "content": text}]
        record.elapsed_s = round(time.monotonic() - start, 4)
        return record

    def call(self, user: FastHttpUser, target: Target, stage: Stage, nonce: str, history: list[dict] | None
             ) -> tuple[StageResult, Answer | None, str]:
        """One stage; its result, the failed Answer (None when it passed), the answer's text."""
        start = time.monotonic()
        result = StageResult(stage.alias, stage.operation, None, None, 0.0)
        answer = Answer(None)
        text = ""
        try:
            with gevent.Timeout(self.options.timeout_s, ClientDeadline):
                if stage.operation == "chat":
                    text = self._stream(user, target, stage, nonce, history, result, answer, start)
                else:
                    self._plain(user, stage, nonce, result, answer)
        except ClientDeadline:
            answer.error = "timeout"
        result.elapsed_s = round(time.monotonic() - start, 4)
        answer.elapsed_s, answer.first_token_s = result.elapsed_s, result.first_token_s
        result.status, result.error = answer.status, answer.error
        ok = answer.error is None and answer.status is not None and answer.status < 400 and answer.complete
        return result, None if ok else answer, text

    def _headers(self, target: Target | None, content_type: str) -> dict[str, str]:
        key = self.webui_key if target is not None and target.type.entry == "webui" else self.key
        return {"Authorization": f"Bearer {key}", "Content-Type": content_type}

    def _plain(self, user: FastHttpUser, stage: Stage, nonce: str, result: StageResult, answer: Answer) -> None:
        body, content_type = stage_request(stage, nonce)
        resp = user.client.post(PATHS[stage.operation], data=body, headers=self._headers(None, content_type),
                                name=stage.alias)
        self._read_head(resp, answer)
        result.lane = stage.lane_of(_header(resp, "x-litellm-model-api-base"))
        if answer.status is not None and answer.status >= 400:
            answer.body = (resp.content or b"")[:BODY_HEAD].decode(errors="replace")

    def _stream(self, user: FastHttpUser, target: Target, stage: Stage, nonce: str, history: list[dict] | None,
                result: StageResult, answer: Answer, start: float) -> str:
        path = WEBUI_CHAT if target.type.entry == "webui" else PATHS["chat"]
        resp = user.client.post(path, data=json.dumps(chat_body(target, nonce, history)),
                                headers=self._headers(target, "application/json"), name=target.name, stream=True)
        self._read_head(resp, answer)
        result.lane = stage.lane_of(_header(resp, "x-litellm-model-api-base"))
        if answer.status is None:
            return ""
        if answer.status >= 400:
            # .content, not iter_content: nginx gzips a JSON error, and only .content decodes it.
            answer.body = (resp.content or b"")[:BODY_HEAD].decode(errors="replace")
            return ""
        return _read_stream(resp, result, answer, start)

    @staticmethod
    def _read_head(resp, answer: Answer) -> None:
        error = getattr(resp, "error", None)
        if error is not None and not resp.status_code:
            answer.error = "connect" if isinstance(error, (ConnectionRefusedError, OSError)) and not isinstance(
                error, TimeoutError) else "closed"
            return
        answer.status = resp.status_code
        answer.server = _header(resp, "server")

    # ---- a step -----------------------------------------------------------------------------

    def run_step(self, step: Step, progress: Callable[[StepState], None] | None = None) -> StepResult:
        state = self.state = StepState(self, step, round(time.monotonic() - self.t0, 3))
        sampler = Sampler(self.cluster, self.lanes)
        sampler.sample()
        hard_stop = state.stop_at + self.options.timeout_s + 5
        next_sample = time.monotonic() + SAMPLE_S
        self.runner.start(step.users, spawn_rate=SPAWN_AT_ONCE)
        try:
            while not state.finished and time.monotonic() < hard_stop and not self.interrupted:
                gevent.sleep(0.1)
                if time.monotonic() >= next_sample:
                    sampler.sample()
                    next_sample = time.monotonic() + SAMPLE_S
                    if progress:
                        progress(state)
        finally:
            state.result.interrupted = self.interrupted
            state.result.cut_off = state.in_flight
            self.runner.stop()
            self.state = None
        sampler.finish()
        state.result.ended = round(time.monotonic() - self.t0, 3)
        state.result.counters = sampler.as_dict()
        self.judge(state.result, sampler)
        if progress:
            progress(state)
        return state.result

    def judge(self, result: StepResult, sampler: Sampler) -> None:
        """Each failure's layer, from its answer and what the counters said during the step."""
        evidence = StepEvidence(sampler.down(), sampler.queued(), self.slot_contexts, self.timeouts())
        for record in result.records:
            if record.failed is None:
                continue
            verdict = attribute(record.failed, record.failed_lanes, evidence)
            if verdict is not None:
                record.layer, record.kind, record.reason = verdict.layer, verdict.kind, verdict.reason

    def timeouts(self) -> dict[str, int]:
        t = self.cluster.timeouts
        return {"nginx": t.nginx_s, "gateway": t.gateway_s, "backend": t.backend_s, "client": int(self.options.timeout_s)}

    def close(self) -> None:
        self.runner.quit()
        self._sigint.cancel()


def _header(resp, name: str) -> str | None:
    headers = getattr(resp, "headers", None)
    return headers.get(name) if headers else None


def _lines(resp) -> Iterator[str]:
    """A stream's lines as each arrives. FastResponse.iter_content(n) waits for n bytes, which
    would hold the first token back until kilobytes had come: read the socket's lines instead."""
    raw = resp._response  # geventhttpclient's response under Locust's FastResponse
    while True:
        try:
            line = raw.readline(b"\n")
        except (HTTPConnectionClosed, ConnectionError, OSError):
            return
        if not line:
            return
        yield line.decode(errors="replace")


def _read_stream(resp, result: StageResult, answer: Answer, start: float) -> str:
    """The answer's events as they arrive: its timings and tokens into `result`, [DONE] or an
    error event into `answer`; returns the answer's text."""
    events = EventStream(start)
    for line in _lines(resp):
        events.feed(line)
    answer.complete = events.done
    if events.error is not None:
        answer.body = events.error[:BODY_HEAD]
    result.first_token_s, result.decode_tok_s = events.first_token_s, events.decode_tok_s
    result.tokens, result.prompt_tokens = events.tokens, events.prompt_tokens
    return events.text
