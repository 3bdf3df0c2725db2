"""How many users feel served: each request type's path, the layer that caps it, and its timing.

The seeds' lesson is that the layers in front of the GPU set the ceiling (000: the HTTP pool and
its timeouts, one Open WebUI worker, SGLang's max running requests, one LiteLLM worker, one
Whisper instance, one after another). So each request type of the declared load is followed
through the services the model deploys, every layer on that path gets a capacity from the model
with the source of that number, and the type's time comes from its lane's measured decode curve.

The queueing model is the seed's burst mode: every user has one request in flight, all at once.
A layer of capacity C with D requests runs them in waves of C, each wave holding it for its
requests' time; a request in wave j waits j waves. Past a *measured* ceiling (Whisper's "holds
~70 concurrent") the excess fails instead. A layer whose hold time nobody has measured gives no
ceiling: the plan says so rather than guess (`aistack load` measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .capacity import LaneCapacity, vllm_max_num_seqs
from .model import VLLM, Asr, Cluster, Detector, Gateway, LlamaCpp, Nginx, SGLang, WebUI
from .model.base import tuned_fields
from .model.curves import Curve
from .model.load import RequestType

# Expected pass at or above this share counts as served.
SERVED = 0.99
# Whisper base on the edge's RTX 2060, int8_float16, behind a 30 s ASR client timeout: one
# instance held ~10 concurrent calls, two held ~70 (000, round four). Past two, 35 per instance
# is an extrapolation and is marked as one.
WHISPER_HOLDS = {1: 10, 2: 70}
WHISPER_PER_INSTANCE = 35
# Seconds the speech stages add to a voice request: "Whisper(~2s) ... Kokoro(~2s)" (000).
ASR_S = 2.0
TTS_S = 2.0
# An upper bound on the time an Open WebUI worker spends retrieving (embed, search, rerank): the
# quick lookup's whole no-load time, retrieval and answer together, was 7.7 s (000).
RETRIEVAL_BOUND_S = 7.7
# nginx counts the upstream connection of a proxied request against worker_connections too
# (nginx docs, worker_connections); `worker_processes auto` is counted as one process.
NGINX_CONNECTIONS_PER_REQUEST = 2


@dataclass(frozen=True)
class Layer:
    """One place a request can wait: how many it works on at once, and where that comes from."""

    name: str
    capacity: float | None  # requests at once; None: not measured
    setting: str  # the inventory field that sets it
    why: str
    fails_over: bool = False  # a measured ceiling: past it requests fail rather than queue
    hold_s: float | None = None  # fixed hold time (a stage); None: the request's whole time
    hold_unmeasured: bool = False  # nobody has timed how long a request holds it


@dataclass
class PathCeiling:
    """One request type at the declared load."""

    name: str
    served_by: str | None  # why the cluster does not serve it, else None
    path: list[Layer] = field(default_factory=list)
    seconds: float | None = None  # one request, unqueued, at the declared mix's concurrency
    speed: str = ""  # how that time was found
    timeout: tuple[str, int] | None = None  # the tightest timeout of its chain
    ceiling: float | None = None  # users of this type alone the path serves
    bottleneck: Layer | None = None
    expected_pass: float | None = None  # at the declared mix
    wait_s: float | None = None  # expected queue wait at the mix's busiest layer
    queue: Layer | None = None  # that layer
    notes: list[str] = field(default_factory=list)

    @property
    def cut(self) -> bool:
        """Every request of this type outlives a timeout of its chain, even with no queue."""
        return self.seconds is not None and self.timeout is not None and self.seconds > self.timeout[1]


class Paths:
    """The layers of one cluster, built once, and each request type's path through them."""

    def __init__(self, cluster: Cluster, lanes: dict[str, LaneCapacity]):
        self.cluster = cluster
        self.lanes = lanes
        self.gateway_name, self.gateway = cluster.one(Gateway)
        self.webui_name, self.webui = cluster.one(WebUI)
        self.detector_name, self.detector = cluster.one(Detector)

    # ---- which services a type passes ---------------------------------------------------

    def routes(self, alias: str) -> list[tuple[str, float]]:
        """(service, share of the alias's traffic) over its running routes, by weight (000)."""
        running = [r for r in self.gateway.aliases.get(alias, []) if self._runs(r.service)]
        weights = {r.service: self.cluster.route_weight(self.gateway, r) for r in running}
        total = sum(weights.values())
        return [(s, w / total) for s, w in weights.items()]

    def _runs(self, name: str) -> bool:
        service = self.cluster.services[name]
        return service.active and not service.not_started

    def unserved(self, t: RequestType) -> str | None:
        """Why the cluster cannot carry this type, or None."""
        if self.gateway is None:
            return "no gateway"
        needs = [t.alias] + (["stt", "tts"] if t.speech else [])
        for alias in needs:
            if not self.routes(alias):
                return f"no running route for alias {alias}"
        if t.entry == "webui" and (self.webui is None or not self._runs(self.webui_name)):
            return "Open WebUI does not run"
        if t.detect and (self.detector is None or not self._runs(self.detector_name)):
            return "no detector runs"
        return None

    def path(self, t: RequestType) -> list[Layer]:
        """The layers a request of this type passes, outermost first."""
        found = [self.client_pool(), self.nginx()]
        if t.detect:
            found.append(self.detector_layer())
        if t.entry == "webui":
            found.append(self.webui_layer(t))
        found.append(self.gateway_layer())
        if t.speech:
            found.append(self.whisper_layer())
        found.append(self.alias_layer(t.alias))
        if t.speech:
            found.append(Layer("kokoro", None, "services.kokoro", "no concurrency measured for Kokoro", hold_s=TTS_S))
        return found

    # ---- the layers ------------------------------------------------------------------------

    def client_pool(self) -> Layer:
        pool = self.cluster.timeouts.http_pool
        return Layer("client pool", pool, "timeouts.http_pool", f"{pool} connections{_tuned(self.cluster.timeouts, 'http_pool')}")

    def nginx(self) -> Layer:
        _, ngx = self.cluster.one(Nginx)
        if ngx is None:
            return Layer("nginx", None, "services", "no nginx in front")
        connections = ngx.worker_connections(self.cluster.timeouts.http_pool)
        return Layer("nginx", connections // NGINX_CONNECTIONS_PER_REQUEST, "timeouts.http_pool",
                     f"worker_connections {connections} / {NGINX_CONNECTIONS_PER_REQUEST} (client + upstream, nginx docs)")

    def webui_layer(self, t: RequestType) -> Layer:
        workers = self.webui.workers
        setting = f"services.{self.webui_name}.workers"
        if not (t.retrieval or t.upload):
            return Layer("Open WebUI", None, setting, "no per-worker stream limit measured")
        return Layer("Open WebUI", workers, setting,
                     f"{workers} worker(s), one CPU-bound retrieval at a time each{_tuned(self.webui, 'workers')}",
                     hold_s=RETRIEVAL_BOUND_S)

    def gateway_layer(self) -> Layer:
        gw = self.gateway
        cap = gw.workers * gw.streams_per_worker
        return Layer("LiteLLM", cap, f"services.{self.gateway_name}.workers",
                     f"{gw.workers} worker(s) x {gw.streams_per_worker} streams{_tuned(gw, 'workers')}")

    def whisper_layer(self) -> Layer:
        names = [s for s, _ in self.routes("stt")]
        instances = sum(self.cluster.services[n].instances for n in names if isinstance(self.cluster.services[n], Asr))
        holds = WHISPER_HOLDS.get(instances)
        why = f"{instances} instance(s) hold ~{holds} concurrent (000)"
        if holds is None:
            holds = WHISPER_PER_INSTANCE * instances
            why = f"{instances} instance(s) x ~{WHISPER_PER_INSTANCE} (extrapolated from two holding ~70, 000)"
        first = names[0] if names else "whisper"
        asr = self.cluster.services.get(first)
        return Layer("whisper", holds, f"services.{first}.instances",
                     why + (_tuned(asr, "instances") if isinstance(asr, Asr) else ""), fails_over=True)

    def detector_layer(self) -> Layer:
        return Layer(self.detector_name, 1, f"services.{self.detector_name}",
                     "one TensorRT context: requests take turns (templates/nanoowl/server.py); hold time not measured",
                     hold_unmeasured=True)

    def alias_layer(self, alias: str) -> Layer:
        """An alias saturates when its first route does: routes take shares by weight, busy or not."""
        options = []
        for name, share in self.routes(alias):
            cap, setting, why = self.route_capacity(name)
            options.append((cap / share, name, share, setting, why))
        capacity, name, share, setting, why = min(options, key=lambda o: o[0])
        spread = f", {share:.0%} of {alias}" if len(options) > 1 else ""
        return Layer(name, capacity, setting, why + spread)

    def route_capacity(self, name: str) -> tuple[float, str, str]:
        """What one generation lane runs at once, with its setting and why."""
        service = self.cluster.services[name]
        lane = self.lanes.get(name)
        field_ = f"services.{name}"
        if isinstance(service, LlamaCpp):
            if lane is not None and lane.fits_request is False:
                return 0, f"{field_}.parallel", f"per-slot context {lane.slot_context:,} < {lane.request_tokens:,} tokens: every request refused"
            return service.parallel, f"{field_}.parallel", f"{service.parallel} slots{_tuned(service, 'parallel')}"
        if isinstance(service, SGLang):
            cap, what = service.max_running_requests, "max_running_requests"
        elif isinstance(service, VLLM):
            cap, what = (vllm_max_num_seqs(lane, service) if lane else service.max_num_seqs or 1), "max_num_seqs"
        else:
            return math.inf, field_, "not a generation lane"
        if lane is not None and lane.concurrent is not None and lane.concurrent < cap:
            return lane.concurrent, f"{field_}.{what}", f"the KV pool holds {lane.concurrent} requests (003)"
        return cap, f"{field_}.{what}", f"{what} {cap}{_tuned(service, what)}"

    # ---- time -------------------------------------------------------------------------------

    def curve(self, name: str) -> tuple[str, Curve] | None:
        """The lane's named curve, else the most specific built-in for its engine, model and memory."""
        service = self.cluster.services[name]
        curves = self.cluster.decode_curves
        if getattr(service, "curve", None):
            return service.curve, curves[service.curve]
        memory = self._memory(name)
        best = None
        for cname, c in curves.items():
            if c.engine != service.kind or c.model not in (None, service.model) or c.memory not in (None, memory):
                continue
            score = (c.model is not None) + (c.memory is not None)
            if best is None or score > best[0]:
                best = (score, cname, c)
        return None if best is None else (best[1], best[2])

    def generation(self, t: RequestType, on_route: dict[str, float]) -> tuple[float | None, str, list[str]]:
        """Seconds one request takes on the slowest route of its alias, given the requests on each route."""
        slowest, how, notes = None, "", []
        for name, _ in self.routes(t.alias):
            found = self.curve(name)
            if found is None:
                notes.append(f"{name}: no decode curve for its engine and model; time not planned")
                return None, "", notes
            cname, curve = found
            cap, _, _ = self.route_capacity(name)
            concurrency = max(1.0, min(on_route.get(name, 0.0), cap))
            speed = curve.at(concurrency)
            seconds = speed.seconds(t.output_tokens)
            if slowest is None or seconds > slowest:
                slowest = seconds
                rate = f"{speed.tok_s:.1f} tok/s per user" if speed.tok_s else f"{speed.request_s:g} s a request"
                how = f"{t.output_tokens:,} tokens at {rate} ({name} at c{concurrency:.0f}, curve {cname})"
            service = self.cluster.services[name]
            if curve.model != service.model or (curve.memory and curve.memory != self._memory(name)):
                notes.append(f"{name}: curve {cname} was measured on {curve.model}, {curve.hardware}")
        return slowest, how, notes

    def _memory(self, name: str) -> str:
        return "unified" if self.cluster.hosts[self.cluster.services[name].host].unified else "dedicated"

    def timeout(self, t: RequestType) -> tuple[str, int]:
        """The tightest timeout the request's chain applies (Open WebUI's only on its own entry)."""
        layers = [(n, s) for n, s in self.cluster.timeouts.layers() if t.entry == "webui" or "Open WebUI" not in n]
        return min(layers, key=lambda layer: layer[1])


def _tuned(obj: object, name: str) -> str:
    """', below the tuned N: <the seed's finding>' when a setting is set back past its tuned default."""
    tuned = tuned_fields(type(obj)).get(name)
    value = getattr(obj, name, None)
    if tuned is None or not isinstance(value, (int, float)) or value >= tuned[0]:
        return ""
    return f"; tuned {tuned[0]}: {tuned[1]}"


def stage_seconds(t: RequestType) -> float:
    """Time outside the generation lane: speech in and out, the retrieval bound."""
    return (ASR_S + TTS_S if t.speech else 0.0) + (RETRIEVAL_BOUND_S if t.retrieval or t.upload else 0.0)


def ceilings(cluster: Cluster, lanes: dict[str, LaneCapacity]) -> list[PathCeiling]:
    """Every request type of the declared load: its path, ceiling, timing and expected pass."""
    paths = Paths(cluster, lanes)
    load = cluster.load
    results = {name: PathCeiling(name, paths.unserved(t)) for name, t in load.mix.items()}
    served = {n: load.mix[n] for n, r in results.items() if r.served_by is None}
    if not served:
        return list(results.values())
    weight = sum(t.weight for t in served.values())
    for name, t in served.items():
        results[name].path = paths.path(t)
    # Requests of the whole mix at each layer and on each lane: every user has one in flight.
    demand: dict[str, float] = {}
    on_route: dict[str, float] = {}
    for name, t in served.items():
        users = load.users * t.weight / weight
        for layer in results[name].path:
            demand[layer.name] = demand.get(layer.name, 0.0) + users
        for route, share in paths.routes(t.alias):
            on_route[route] = on_route.get(route, 0.0) + users * share
    for name, t in served.items():
        _time(results[name], paths, t, on_route)
        _ceiling(results[name], paths, t, load.users)
    for name, t in served.items():
        _expected(results[name], results, served, demand)
    return list(results.values())


def _time(r: PathCeiling, paths: Paths, t: RequestType, on_route: dict[str, float]) -> None:
    generation, how, notes = paths.generation(t, on_route)
    r.notes += notes
    r.timeout = paths.timeout(t)
    if generation is not None:
        r.seconds = generation + stage_seconds(t)
        r.speed = how


def _holds(layer: Layer, seconds: float | None) -> float | None:
    """How long one request holds this layer, if known."""
    if layer.hold_unmeasured:
        return None
    return seconds if layer.hold_s is None else layer.hold_s


def _waves(layer: Layer, seconds: float | None, hold: float | None, timeout: int) -> float | None:
    """Waves of requests that finish inside the timeout at this layer; None if it cannot be said."""
    if layer.fails_over:
        return 1.0
    if hold is None or seconds is None:
        return None
    if seconds > timeout:
        return 0.0
    return math.floor((timeout - seconds) / hold) + 1 if hold > 0 else math.inf


def _ceiling(r: PathCeiling, paths: Paths, t: RequestType, users: int) -> None:
    """Users of this type alone the path serves: the first layer to give way sets it."""
    alone, _, _ = paths.generation(t, {route: users * share for route, share in paths.routes(t.alias)})
    seconds = None if alone is None else alone + stage_seconds(t)
    best = None
    for layer in r.path:
        if layer.capacity is None:
            continue
        waves = _waves(layer, seconds, _holds(layer, seconds), r.timeout[1])
        if waves is None:
            continue
        users_here = layer.capacity * waves
        if best is None or users_here < best[0]:
            best = (users_here, layer)
    if best is not None:
        r.ceiling, r.bottleneck = best


def _expected(r: PathCeiling, results: dict[str, PathCeiling], served: dict[str, RequestType],
              demand: dict[str, float]) -> None:
    """The share of this type's requests that finish at the declared mix, and its queue wait."""
    if r.seconds is None:
        return
    passing, wait = 1.0, 0.0
    for layer in r.path:
        d = round(demand[layer.name], 6)  # a sum of shares: 128.00000000000003 is 128
        if layer.capacity is None or d <= layer.capacity:
            continue
        if layer.fails_over or layer.capacity == 0:
            passing *= layer.capacity / d
            continue
        # The layer's hold is the mean over the types that pass it, weighted by their share.
        holds = [(_holds(layer, results[n].seconds), served[n].weight) for n in served if layer in results[n].path]
        if any(h is None for h, _ in holds):
            r.notes.append(f"{layer.name}: {d:.0f} requests for {layer.capacity:.0f} at once; hold time unmeasured")
            continue
        hold = sum(h * w for h, w in holds) / sum(w for _, w in holds)
        layer_wait = hold * (math.ceil(d / layer.capacity) - 1) / 2
        if layer_wait > wait:
            wait, r.queue = layer_wait, layer
        ok = math.floor((r.timeout[1] - r.seconds) / hold) + 1 if r.seconds <= r.timeout[1] else 0
        passing *= min(1.0, layer.capacity * ok / d)
    r.expected_pass = 0.0 if r.cut else round(passing, 6)
    r.wait_s = wait
