"""Real requests against the rolled-out sandbox: a chat completion through nginx -> LiteLLM ->
llama.cpp, and a burst on the vision alias whose split between the edge and orin lanes is read
from each llama-server's own token counters.

The gateway key is read from main's secret file over SSH for the requests and never printed.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from ..model import Cluster, Gateway, Nginx
from ..render.containers import secret_file
from ..ssh_client import connect

PREDICTED = re.compile(r"^llamacpp:tokens_predicted_total (\d+(?:\.\d+)?)$", re.MULTILINE)


def read_remote(cluster: Cluster, host: str, path: str) -> str:
    """A file from a host over the inventory's own SSH settings."""
    client = connect(cluster.hosts[host].ssh)
    try:
        with client.open_sftp() as sftp, sftp.open(path) as f:
            return f.read().decode()
    finally:
        client.close()


def gateway_key(cluster: Cluster) -> str:
    name, gateway = cluster.one(Gateway)
    text = read_remote(cluster, gateway.host, secret_file(cluster.hosts[gateway.host], name))
    return next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("LITELLM_MASTER_KEY="))


def front_url(cluster: Cluster) -> str:
    name, _ = cluster.one(Nginx)
    address, port = cluster.endpoint(name)
    return f"http://{address}:{port}"


def chat(cluster: Cluster, key: str, alias: str = "chat", content: str = "hello", max_tokens: int = 8,
         timeout: float = 120) -> httpx.Response:
    return httpx.post(f"{front_url(cluster)}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": alias, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens},
                      timeout=timeout)


def embed(cluster: Cluster, key: str, texts: list[str], alias: str = "embed") -> httpx.Response:
    """OpenAI embeddings on an alias, through nginx and LiteLLM."""
    return httpx.post(f"{front_url(cluster)}/v1/embeddings", headers={"Authorization": f"Bearer {key}"},
                      json={"model": alias, "input": texts}, timeout=60)


def rerank(cluster: Cluster, key: str, query: str, documents: list[str], alias: str = "rerank") -> httpx.Response:
    """Cohere-style rerank on an alias, through nginx and LiteLLM (which posts to the lane's /v1/rerank)."""
    return httpx.post(f"{front_url(cluster)}/v1/rerank", headers={"Authorization": f"Bearer {key}"},
                      json={"model": alias, "query": query, "documents": documents}, timeout=60)


def predicted_tokens(cluster: Cluster, service: str) -> float:
    address, port = cluster.endpoint(service)
    text = httpx.get(f"http://{address}:{port}/metrics", timeout=10).text
    match = PREDICTED.search(text)
    return float(match.group(1)) if match else 0.0


@dataclass
class Split:
    sent: int
    ok: int
    served: dict[str, int]  # lane -> requests, from its own counter
    weights: dict[str, int]


def burst(cluster: Cluster, key: str, alias: str = "vision", requests: int = 45, concurrency: int = 6) -> Split:
    """One-token requests on an alias; each lane's tokens_predicted delta counts what it served."""
    _, gateway = cluster.one(Gateway)
    routes = [r for r in gateway.aliases[alias] if cluster.services[r.service].active]  # parked: not routed
    lanes = [r.service for r in routes]
    before = {lane: predicted_tokens(cluster, lane) for lane in lanes}
    with ThreadPoolExecutor(concurrency) as pool:
        codes = list(pool.map(lambda _: chat(cluster, key, alias, "hi", max_tokens=1).status_code, range(requests)))
    served = {lane: round(predicted_tokens(cluster, lane) - before[lane]) for lane in lanes}
    weights = {r.service: cluster.route_weight(gateway, r) for r in routes}
    return Split(requests, codes.count(200), served, weights)
