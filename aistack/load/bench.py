"""`make bench`: what the load generator itself can drive, against a lane that never queues.

The ladder's client (Locust's FastHttpUser on gevent, one process) is run at 1 to 1,024 users
against aistack/load/token_server.py on loopback, which streams every request at once at a fixed
token pace. Printed per step: the concurrency the server saw against the users asked for; the
time to first token and the whole answer's latency the ladder recorded over the stream's own
schedule (p50, p95), and how late the server itself was (both share the machine's cores); the
client's CPU seconds. Where the achieved concurrency falls short or the added latency grows, the
ladder measures itself, not the cluster: read its results above that step with care.

The default pace is 13.6 tokens a second a stream: SGLang's per-user decode at 105 concurrent
users in seed 000's sweep (curve sglang-000), about the most a GPU lane gives each of that many.

A benchmark, not a test: it prints figures and asserts only that every request came back.

    python -m aistack.load.bench [--users 1,4,16,64,256,1024] [--tokens 32] [--gap 0.0735]
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..inventory import load_cluster
from ..model.load import RequestType
from ..model.locks import PROJECT_DIR
from .ladder import Ladder
from .records import Options, Step
from .report import percentile
from .traffic import Stage, Target

SERVER = Path(__file__).with_name("token_server.py")
REQUESTS_PER_USER = 2  # each user's second request reuses its connection, as a ladder step does


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, gap_s: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port), str(gap_s)], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise SystemExit("the token server did not start")
    return proc


def server_stats(port: int) -> dict:
    """The server's peak streams and lateness since the last call (which resets them)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
        return json.load(resp)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1,4,16,64,256,1024")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--gap", type=float, default=round(1 / 13.6, 4), help="seconds between tokens")
    args = parser.parse_args()
    # The sandbox inventory only lends the ladder a cluster to read its timeouts from; no lane of
    # it is reached (the target's stage names none) and Prometheus is left out.
    cluster = load_cluster(PROJECT_DIR / "inventory" / "sandbox.py")
    cluster = cluster.model_copy(update={"services": {k: v for k, v in cluster.services.items() if k != "prometheus"}})
    kind = RequestType(entry="api", prompt_tokens=8, output_tokens=args.tokens)
    target = Target("bench", kind, (Stage("chat", "chat"),))
    stream_s = args.tokens * args.gap
    port = free_port()
    server = start_server(port, args.gap)
    ladder = Ladder(cluster, [target], "bench", f"http://127.0.0.1:{port}", Options(timeout_s=120))
    print(f"load generator bench: one process, {args.tokens} tokens a stream at {args.gap * 1000:.0f} ms "
          f"({stream_s:.2f} s a request on a lane that never queues)")
    print(f"{'users':>6} {'requests':>8} {'achieved':>8} {'ttft+ p50':>9} {'ttft+ p95':>9} {'added p50':>9} "
          f"{'added p95':>9} {'server late':>11} {'req/s':>6} {'cpu s':>6}")
    try:
        for users in (int(u) for u in args.users.split(",")):
            server_stats(port)  # resets the server's figures
            before = cpu_s()
            result = ladder.run_step(Step(str(users), users, users * REQUESTS_PER_USER, 600))
            stats, used = server_stats(port), cpu_s() - before
            ok = [r for r in result.records if r.ok]
            if len(ok) != users * REQUESTS_PER_USER:
                raise SystemExit(f"{users} users: {len(ok)} of {users * REQUESTS_PER_USER} requests came back")
            ttft = [r.answer.first_token_s - args.gap for r in ok]
            added = [r.elapsed_s - stream_s for r in ok]
            wall = result.ended - result.started
            print(f"{users:>6} {len(ok):>8} {stats['peak']:>8} {percentile(ttft, 50):>9.3f} {percentile(ttft, 95):>9.3f} "
                  f"{percentile(added, 50):>9.3f} {percentile(added, 95):>9.3f} {stats['late_s']:>11.3f} "
                  f"{len(ok) / wall:>6.1f} {used:>6.1f}", flush=True)
    finally:
        ladder.close()
        server.kill()


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"bench: {time.perf_counter() - started:.0f} s")
