"""What one ladder run measured: its steps, each request's record and stages.

Plain data, kept apart from the ladder (which imports Locust and so gevent-patches the process)
so the report, the evidence and their tests read it without that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .attribution import Answer


@dataclass(frozen=True)
class Step:
    label: str  # "smoke" or the concurrency
    users: int
    total: int  # requests handed out (a session's turns count one each)
    duration_s: float


@dataclass
class StageResult:
    alias: str
    operation: str
    status: int | None
    lane: str | None
    elapsed_s: float
    first_token_s: float | None = None
    tokens: int | None = None
    prompt_tokens: int | None = None
    decode_tok_s: float | None = None
    error: str | None = None


@dataclass
class Record:
    """One request of the ladder, a line of results.jsonl."""

    step: str
    users: int
    mode: str
    type: str
    started: float  # seconds since the ladder started
    elapsed_s: float
    ok: bool
    turn: int = 1
    stages: list[StageResult] = field(default_factory=list)
    layer: str | None = None
    kind: str | None = None
    reason: str | None = None
    failed: Answer | None = None  # the failing stage's answer, until the step's evidence judges it
    failed_lanes: list[str] = field(default_factory=list)

    @property
    def answer(self) -> StageResult | None:
        return next((s for s in self.stages if s.operation == "chat"), None)

    def as_json(self) -> dict:
        found = asdict(self)
        del found["failed"], found["failed_lanes"]
        return found


@dataclass
class StepResult:
    step: Step
    mode: str
    started: float
    ended: float = 0.0
    records: list[Record] = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    cut_off: int = 0  # requests still running when the step's hard cap stopped its users
    interrupted: bool = False


@dataclass(frozen=True)
class Options:
    mode: str = "burst"  # or "session"
    turns: int = 4  # a session's turns
    timeout_s: float = 330.0  # the client's deadline per call: past the chain's, so the servers give up first
    seed: int = 0
