"""The servers' own counters around a step: what queued, what ran, what was preempted, what failed.

Each generation lane's /metrics is read at the step's start, every half second during it and at its
end: gauges (slots busy, requests deferred or waiting) keep their highest value, counters their
increase. A lane whose endpoint does not answer is down for that step. LiteLLM's failures per
deployment come from Prometheus where monitoring runs (LiteLLM itself binds to its host's
loopback); Prometheus scrapes every scrape_interval_s, so a short step may read them late.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..model import SGLang, VLLM, Cluster, LlamaCpp
from .traffic import address_of, by_address

# Per engine: the gauges worth their highest value in a step, and the counters worth their increase
# (names: FACTS.md, each engine's /metrics; llama.cpp needs --metrics, SGLang --enable-metrics).
GAUGES = {
    "llamacpp": ("llamacpp:requests_processing", "llamacpp:requests_deferred"),
    "sglang": ("sglang:num_running_reqs", "sglang:num_queue_reqs"),
    "vllm": ("vllm:num_requests_running", "vllm:num_requests_waiting"),
}
COUNTERS = {
    "llamacpp": ("llamacpp:tokens_predicted_total", "llamacpp:prompt_tokens_total"),
    "sglang": (),
    "vllm": ("vllm:num_preemptions_total",),
}
# Requests waiting for a slot or a batch place, per engine: the queue the step built.
QUEUED = {"llamacpp": "llamacpp:requests_deferred", "sglang": "sglang:num_queue_reqs", "vllm": "vllm:num_requests_waiting"}
LITELLM_FAILURES = "sum by (api_base, exception_status) (litellm_deployment_failure_responses_total)"
TIMEOUT_S = 3.0


@dataclass
class LaneCounters:
    engine: str | None  # None: no metrics endpoint, only reachability is checked
    up: bool = True
    reads: int = 0
    highest: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"engine": self.engine, "up": self.up, "reads": self.reads, "highest": self.highest,
                "increase": {k: self.last[k] - self.first[k] for k in self.last if k in self.first}}

    @property
    def queued(self) -> float:
        return self.highest.get(QUEUED.get(self.engine or "", ""), 0.0)


def engine_of(cluster: Cluster, lane: str) -> str | None:
    service = cluster.services[lane]
    if isinstance(service, LlamaCpp):
        return "llamacpp" if service.metrics else None
    if isinstance(service, SGLang):
        return "sglang" if service.enable_metrics else None
    if isinstance(service, VLLM):
        return "vllm"
    return None


class Sampler:
    """One step's counters, for the lanes its requests may reach."""

    def __init__(self, cluster: Cluster, lanes: list[str], client: httpx.Client | None = None):
        self.cluster = cluster
        self.lanes = {lane: LaneCounters(engine_of(cluster, lane)) for lane in lanes}
        self.client = client or httpx.Client(timeout=TIMEOUT_S)
        self.prometheus = prometheus_url(cluster)
        self.failures_before = self._litellm_failures()
        self.failures_after: dict[str, float] = {}

    def sample(self) -> None:
        for lane, found in self.lanes.items():
            address, port = self.cluster.endpoint(lane)
            if found.engine is None:
                found.up = found.up and _reachable(address, port)
                found.reads += 1
                continue
            try:
                text = self.client.get(f"http://{address}:{port}/metrics").text
            except httpx.HTTPError:
                found.up = False
                continue
            found.reads += 1
            values = _values(text)
            for name in GAUGES[found.engine]:
                if name in values:
                    found.highest[name] = max(found.highest.get(name, 0.0), values[name])
            for name in COUNTERS[found.engine]:
                if name in values:
                    found.first.setdefault(name, values[name])
                    found.last[name] = values[name]

    def finish(self) -> None:
        self.sample()
        self.failures_after = self._litellm_failures()

    def down(self) -> frozenset[str]:
        return frozenset(lane for lane, c in self.lanes.items() if not c.up)

    def queued(self) -> dict[str, float]:
        return {lane: c.queued for lane, c in self.lanes.items() if c.queued}

    def gateway_failures(self) -> dict[str, float]:
        """LiteLLM's failed responses per lane (and status) during the step, where Prometheus runs."""
        by_base = {k: v - self.failures_before.get(k, 0.0) for k, v in self.failures_after.items()}
        lanes = by_address(self.cluster, list(self.lanes))
        found: dict[str, float] = {}
        for key, value in by_base.items():
            base, _, status = key.partition("|")
            lane = lanes.get(address_of(base), base)
            if value > 0:
                found[f"{lane} {status}".strip()] = found.get(f"{lane} {status}".strip(), 0.0) + value
        return found

    def as_dict(self) -> dict:
        return {"lanes": {lane: c.as_dict() for lane, c in self.lanes.items()},
                "gateway_failures": self.gateway_failures() if self.prometheus else None}

    def _litellm_failures(self) -> dict[str, float]:
        if self.prometheus is None:
            return {}
        try:
            data = self.client.get(f"{self.prometheus}/api/v1/query", params={"query": LITELLM_FAILURES}).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return {f"{r['metric'].get('api_base', '')}|{r['metric'].get('exception_status', '')}": float(r["value"][1])
                for r in data.get("data", {}).get("result", [])}


def prometheus_url(cluster: Cluster) -> str | None:
    if "prometheus" not in cluster.services or cluster.services["prometheus"].not_started:
        return None
    address, port = cluster.endpoint("prometheus")
    return f"http://{address}:{port}"


def _values(text: str) -> dict[str, float]:
    """Each sample name's value, summed over its labels."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[s.name] = found.get(s.name, 0.0) + s.value
    return found


def _reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=TIMEOUT_S).close()
        return True
    except OSError:
        return False
