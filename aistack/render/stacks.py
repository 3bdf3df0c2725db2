"""One compose stack per service: its containers, and the config files beside its compose file.

Everything a template prints is computed here from the validated model; templates only lay it out.
"""

from __future__ import annotations

from functools import partial

from ..capacity import lane_capacity, vllm_max_num_seqs
from ..models_lock import HF_CACHE
from ..model import (
    VLLM,
    Asr,
    Cluster,
    Detector,
    Gateway,
    Host,
    LlamaCpp,
    Nginx,
    Platform,
    Qdrant,
    SGLang,
    Tts,
    WebUI,
    api_kind,
)
from . import monitoring
from .containers import (
    CONTAINER_MODELS,
    GPU_ENGINE_START_S,
    PARKED,
    SERVICE_START_S,
    Container,
    Secret,
    Stack,
    probe_for,
    secret_file,
    stack_dir,
)
from .distributed import ray_node, vllm_on_ray
from .engine_args import llamacpp_args, sglang_args, vllm_args

LITELLM_METRICS_DIR = "/tmp/litellm-metrics"


class StackBuilder:
    """Builds every stack of a cluster; holds the lookups the per-kind builders share."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.lanes = lane_capacity(cluster)

    # ---- shared lookups ---------------------------------------------------------------

    def image(self, name: str) -> tuple[str, list[str] | None]:
        entry = self.cluster.locked_image(self.cluster.image_key(name))
        return entry.pinned_ref, entry.entrypoint

    def sidecar(self, key: str) -> str:
        return self.cluster.locked_image(self.cluster.sidecar_image(key)).pinned_ref

    def probe(self, name: str, port: int, path: str | None = None) -> list[str]:
        """A healthcheck the service's image can run (its shipped tools, locks/images.yaml)."""
        key = self.cluster.image_key(name)
        return probe_for(key, self.cluster.locked_image(key).tools, self.bind(name), port, path)

    def bind(self, name: str) -> str:
        return self.cluster.endpoint(name)[0]

    def model_path(self, model: str, file_key: str | None) -> str | None:
        """Where the container sees a locked model file (storage.models is mounted at /models)."""
        if file_key is None:
            return None
        spec = self.cluster.models[model]
        entry = spec.files[file_key]
        first = entry[0] if isinstance(entry, list) else entry  # llama.cpp opens shard 1, finds the rest
        return f"{CONTAINER_MODELS}/{first.repo or spec.hf_repo or model}/{first.file}"

    def model_dir(self, model: str) -> str:
        spec = self.cluster.models[model]
        return f"{CONTAINER_MODELS}/{spec.hf_repo or model}"

    def gpu(self, container: Container, host: Host, gpus: list[int]) -> Container:
        if host.platform is Platform.JETSON:
            container.jetson_runtime = True
        elif gpus:
            container.gpu_ids = [str(i) for i in gpus]
        return container

    # ---- per kind ---------------------------------------------------------------------

    def build(self, name: str) -> Stack:
        service = self.cluster.services[name]
        host = self.cluster.hosts[service.host]
        builder = {
            "llamacpp": self.llamacpp,
            "sglang": self.sglang,
            "vllm": self.vllm,
            "asr": self.asr,
            "tts": self.tts,
            "detector": self.detector,
            "qdrant": self.qdrant,
            "litellm": self.litellm,
            "nginx": self.nginx,
            "openwebui": self.webui,
            "ray": partial(ray_node, self),
            "prometheus": partial(monitoring.prometheus, self),
            "grafana": partial(monitoring.grafana, self),
            "node-exporter": partial(monitoring.node_exporter, self),
            "gpu-exporter": partial(monitoring.gpu_exporter, self),
        }[service.kind]
        stack = Stack(service=name, host=host.name, project=name, directory=stack_dir(host, name), containers=[],
                      not_started=service.not_started or (None if service.active else PARKED))
        builder(name, service, host, stack)
        for container in stack.containers:
            container.nofile = host.tuning.nofile
        return stack

    def llamacpp(self, name: str, lane: LlamaCpp, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        build = self.cluster.llamacpp_build(name)
        bind = self.bind(name)
        args = llamacpp_args(
            lane,
            model=self.model_path(lane.model, lane.quant),
            mmproj=self.model_path(lane.model, lane.mmproj),
            bind=bind,
            build=build,
            alias=lane.served_name or name,
        )
        container = Container(
            name="server",
            image=image,
            entrypoint=entrypoint,
            command=args,
            volumes=[f"{host.storage.models}:{CONTAINER_MODELS}:ro"],
            healthcheck=self.probe(name, lane.port, "/health"),
            start_period_s=GPU_ENGINE_START_S if lane.gpus else SERVICE_START_S,
        )
        stack.containers.append(self.gpu(container, host, lane.gpus))

    def sglang(self, name: str, lane: SGLang, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        container = Container(
            name="server",
            image=image,
            entrypoint=entrypoint or ["python3", "-m", "sglang.launch_server"],
            command=sglang_args(lane, model=self.model_dir(lane.model), bind=bind, alias=lane.served_name or name),
            volumes=[f"{host.storage.models}:{CONTAINER_MODELS}:ro"],
            environment={"HF_HUB_OFFLINE": "1"},
            ipc_host=True,
            healthcheck=self.probe(name, lane.port, "/health"),
            start_period_s=GPU_ENGINE_START_S,
        )
        stack.containers.append(self.gpu(container, host, lane.gpus))

    def vllm(self, name: str, lane: VLLM, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        seqs = vllm_max_num_seqs(self.lanes[name], lane) if name in self.lanes else (lane.max_num_seqs or 1)
        if lane.executor == "ray":
            vllm_on_ray(self, name, lane, host, stack, seqs)
            return
        container = Container(
            name="server",
            image=image,
            entrypoint=entrypoint,
            command=vllm_args(lane, model=self.model_dir(lane.model), bind=bind, alias=lane.served_name or name, max_num_seqs=seqs),
            volumes=[f"{host.storage.models}:{CONTAINER_MODELS}:ro", f"{host.storage.state}/cache/vllm:/root/.cache/vllm"],
            environment={"HF_HUB_OFFLINE": "1"},
            ipc_host=True,
            healthcheck=self.probe(name, lane.port, "/health"),
            start_period_s=GPU_ENGINE_START_S,
        )
        stack.containers.append(self.gpu(container, host, lane.gpus))

    def asr(self, name: str, asr: Asr, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        for i in range(asr.instances):
            port = asr.port + i
            container = Container(
                name=f"whisper-{i + 1}",
                image=image,
                entrypoint=entrypoint,
                environment={
                    "UVICORN_HOST": bind,
                    "UVICORN_PORT": str(port),
                    "WHISPER__COMPUTE_TYPE": asr.compute_type,
                    "WHISPER__INFERENCE_DEVICE": "cuda" if asr.gpus else "cpu",
                    # No PRELOAD_MODELS: from v0.9 it lists the hub's models first, which HF_HUB_OFFLINE
                    # refuses, and the app exits (speaches src/speaches/main.py). The model loads on
                    # the first request and stays: an idle TTL would undo the plan's resident memory
                    # (WHISPER__TTL up to v0.8.3, STT_MODEL_TTL from v0.9; -1 = never unload).
                    "WHISPER__TTL": "-1",
                    "STT_MODEL_TTL": "-1",
                    # Models come from the lock ahead of time, never at container start (001).
                    "HF_HUB_OFFLINE": "1",
                    "HF_HUB_CACHE": f"{CONTAINER_MODELS}/{HF_CACHE}",  # where deploy lays out the snapshot
                },
                volumes=[f"{host.storage.models}:{CONTAINER_MODELS}:ro"],
                healthcheck=self.probe(name, port, "/health"),
            )
            stack.containers.append(self.gpu(container, host, asr.gpus))

    def tts(self, name: str, tts: Tts, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        container = Container(
            name="kokoro",
            image=image,
            entrypoint=entrypoint,
            # The image's entrypoint.sh binds 0.0.0.0:8880 (and may download the model): run
            # its server directly, on the address and port the inventory gives; the model is baked in.
            command=["python", "-m", "uvicorn", "api.src.main:app", "--host", bind, "--port", str(tts.port)],
            environment={"HF_HUB_OFFLINE": "1", "DOWNLOAD_MODEL": "false"},
            healthcheck=self.probe(name, tts.port, "/health"),
        )
        stack.containers.append(self.gpu(container, host, tts.gpus))

    def detector(self, name: str, det: Detector, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        # The engine is bound to GPU architecture and TensorRT version: cache it per L4T release.
        engine = f"{CONTAINER_MODELS}/nanoowl/{host.l4t}/owl_image_encoder_patch32.engine"
        stack.configs["server.py"] = ("nanoowl/server.py", {})
        container = Container(
            name="nanoowl",
            image=image,
            entrypoint=entrypoint or ["python3", "/opt/aistack/server.py"],
            environment={
                "NANOOWL_ENGINE": engine,
                "NANOOWL_MAX_IMAGE_PX": str(det.max_image_px),
                "NANOOWL_HOST": bind,
                "NANOOWL_PORT": str(det.port),
                "NANOOWL_MODEL": self.cluster.models[det.model].hf_repo,  # a hub id, resolved in the cache
                "HF_HUB_OFFLINE": "1",  # OWL-ViT weights come from the model lock, not at start (001)
                "HF_HUB_CACHE": f"{CONTAINER_MODELS}/{HF_CACHE}",
                # The image sets TRANSFORMERS_CACHE, which transformers prefers to HF_HUB_CACHE.
                "TRANSFORMERS_CACHE": f"{CONTAINER_MODELS}/{HF_CACHE}",
            },
            volumes=[
                f"{host.storage.models}:{CONTAINER_MODELS}:ro",
                f"{host.storage.models}/nanoowl:{CONTAINER_MODELS}/nanoowl",  # the engine cache
                f"{stack.directory}/server.py:/opt/aistack/server.py:ro",
            ],
            healthcheck=self.probe(name, det.port, "/health"),
            start_period_s=GPU_ENGINE_START_S,
        )
        stack.containers.append(self.gpu(container, host, det.gpus))

    def qdrant(self, name: str, q: Qdrant, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        secrets = secret_file(host, name)
        stack.secrets.append(Secret(secrets, {"QDRANT__SERVICE__API_KEY": ""}))
        stack.containers.append(
            Container(
                name="qdrant",
                image=image,
                entrypoint=entrypoint,
                environment={
                    "QDRANT__SERVICE__HOST": bind,
                    "QDRANT__SERVICE__HTTP_PORT": str(q.port),
                    "QDRANT__SERVICE__GRPC_PORT": str(q.grpc_port),
                    "QDRANT__TELEMETRY_DISABLED": "true",
                },
                env_files=[secrets],  # QDRANT__SERVICE__API_KEY
                volumes=[f"{host.storage.vectors}/qdrant:/qdrant/storage"],
                healthcheck=self.probe(name, q.port),
            )
        )

    def deployments(self, gateway: Gateway) -> list[dict]:
        """One LiteLLM deployment per alias route to an active service."""
        mode = {"embeddings": "embedding", "rerank": "rerank", "stt": "audio_transcription", "tts": "audio_speech"}
        found = []
        for alias, routes in gateway.aliases.items():
            for route in routes:
                target = self.cluster.services[route.service]
                if not target.active:
                    continue
                address = self.cluster.endpoint(route.service)[0]
                kind = api_kind(target)
                served = self.served_model(route.service)
                # Several ASR instances: one deployment each, round-robined at equal weight (000).
                # Rerank speaks Cohere's v1 API: LiteLLM 1.106.2 posts to <api_base>/v2/rerank unless
                # api_base ends in /v1/rerank (its cohere rerank get_complete_url), and llama-server
                # --rerank serves /v1/rerank only.
                provider, suffix = ("cohere", "/v1/rerank") if kind == "rerank" else ("openai", "/v1")
                for _, port in target.sockets(address) if isinstance(target, Asr) else [(address, target.port)]:
                    found.append(
                        {
                            "alias": alias,
                            "model": f"{provider}/{served}",
                            "api_base": f"http://{address}:{port}{suffix}",
                            "api_key": "none",
                            "weight": self.cluster.route_weight(gateway, route),
                            "mode": mode.get(kind),
                        }
                    )
        return found

    def served_model(self, name: str) -> str:
        service = self.cluster.services[name]
        if isinstance(service, Asr):
            return self.cluster.models[service.model].hf_repo or service.model
        if isinstance(service, Tts):
            return "kokoro"
        return service.served_name or name

    def litellm(self, name: str, gw: Gateway, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        secrets = secret_file(host, name)
        stack.secrets.append(Secret(secrets, {"LITELLM_MASTER_KEY": "sk-"}))
        t = self.cluster.timeouts
        stack.configs["config.yaml"] = (
            "litellm/config.yaml.j2",
            {
                "g": {
                    "service": name,
                    "host": host.name,
                    "deployments": self.deployments(gw),
                    "num_retries": gw.num_retries,
                    "router_timeout_s": t.gateway_s,
                    "backend_timeout_s": t.backend_s,
                    "metrics": self.cluster.monitoring.enabled,
                }
            },
        )
        metrics = {}
        if self.cluster.monitoring.enabled and gw.workers > 1:
            # Several workers share one set of counters only through a multiprocess dir (FACTS.md).
            metrics = {"PROMETHEUS_MULTIPROC_DIR": LITELLM_METRICS_DIR}
        stack.containers.append(
            Container(
                name="litellm",
                image=image,
                entrypoint=entrypoint,
                command=["--config", "/app/config.yaml", "--host", bind, "--port", str(gw.port), "--num_workers", str(gw.workers),
                         "--timeout_worker_healthcheck", str(gw.worker_start_timeout_s)],
                env_files=[secrets],  # LITELLM_MASTER_KEY
                environment=metrics,
                tmpfs=[LITELLM_METRICS_DIR] if metrics else [],
                volumes=[f"{stack.directory}/config.yaml:/app/config.yaml:ro"],
                healthcheck=self.probe(name, gw.port, "/health/liveliness"),
                start_period_s=gw.worker_start_timeout_s,
                failure_hints=[(r"Child process \[[0-9]+\] died",
                                f"uvicorn killed LiteLLM workers that did not answer its health check within "
                                f"{gw.worker_start_timeout_s} s: raise services.{name}.worker_start_timeout_s "
                                f"or lower services.{name}.workers")],
            )
        )

    def nginx(self, name: str, ngx: Nginx, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        t = self.cluster.timeouts
        gw_name, gateway = self.cluster.one(Gateway)
        ui_name, webui = self.cluster.one(WebUI)
        upstreams = [{"name": "gateway", "address": self.reach(gw_name, host), "port": gateway.port}]
        locations = [{"path": "/v1/", "upstream": "gateway", "websocket": False}]
        if webui is not None:
            upstreams.append({"name": "webui", "address": self.reach(ui_name, host), "port": webui.port})
            locations.append({"path": "/", "upstream": "webui", "websocket": True})
        else:
            locations.append({"path": "/", "upstream": "gateway", "websocket": False})
        stack.configs["nginx.conf"] = (
            "nginx/nginx.conf.j2",
            {
                "n": {
                    "service": name,
                    "host": host.name,
                    "bind": bind,
                    "port": ngx.port,
                    "client_max_body_mb": ngx.client_max_body_mb,
                    "buffering": ngx.proxy_buffering,
                    "read_timeout_s": t.nginx_s,
                    "send_timeout_s": t.nginx_s,
                    "keepalive": t.http_pool,
                    "worker_connections": ngx.worker_connections(t.http_pool),
                    "upstreams": upstreams,
                    "locations": locations,
                }
            },
        )
        stack.containers.append(
            Container(
                name="nginx",
                image=image,
                entrypoint=entrypoint,
                volumes=[f"{stack.directory}/nginx.conf:/etc/nginx/nginx.conf:ro"],
                healthcheck=self.probe(name, ngx.port, "/nginx-health"),
            )
        )

    def reach(self, name: str, from_host: Host) -> str:
        """The address a service is reached at from another service's host."""
        address, _ = self.cluster.endpoint(name)
        if self.cluster.services[name].host == from_host.name and address == "0.0.0.0":
            return "127.0.0.1"
        return address

    def webui_secret(self, path: str, ui: WebUI, host: Host, gateway: str | None) -> Secret:
        """Session key and database password made on the host; the gateway key copied beside them."""
        derived = {}
        if ui.database == "postgresql":
            derived["DATABASE_URL"] = f"postgresql://openwebui:{{POSTGRES_PASSWORD}}@127.0.0.1:{ui.postgres_port}/openwebui"
        copied = {}
        if gateway is not None and self.cluster.services[gateway].host == host.name:
            key = (secret_file(host, gateway), "LITELLM_MASTER_KEY")
            copied = {v: key for v in ("OPENAI_API_KEYS", "RAG_OPENAI_API_KEY", "AUDIO_STT_OPENAI_API_KEY", "AUDIO_TTS_OPENAI_API_KEY")}
        return Secret(path, {"WEBUI_SECRET_KEY": "", "POSTGRES_PASSWORD": ""}, derived, copied)

    def vector_db_key(self, name: str, vector_db: str, host: Host) -> Secret:
        """Qdrant's API key, made on Qdrant's host, copied into a file of Open WebUI's own (Qdrant
        answers 401 without it): in place when both share a host, else carried by deploy."""
        source = self.cluster.hosts[self.cluster.services[vector_db].host]
        key = (secret_file(source, vector_db), "QDRANT__SERVICE__API_KEY")
        return Secret(secret_file(host, f"{name}-{vector_db}"), {}, copied={"QDRANT_API_KEY": key},
                      source_host=None if source.name == host.name else source.name)

    def webui(self, name: str, ui: WebUI, host: Host, stack: Stack) -> None:
        image, entrypoint = self.image(name)
        bind = self.bind(name)
        secrets = secret_file(host, name)
        gw_name, gateway = self.cluster.one(Gateway)
        stack.secrets.append(self.webui_secret(secrets, ui, host, gw_name))
        env_files = [secrets]
        gateway_url = f"http://{self.reach(gw_name, host)}:{gateway.port}/v1"
        env = {
            "HOST": bind,
            "PORT": str(ui.port),
            "UVICORN_WORKERS": str(ui.workers),
            "ENABLE_PERSISTENT_CONFIG": "False",  # rendered settings win on every re-apply
            "OPENAI_API_BASE_URLS": gateway_url,
            "AIOHTTP_CLIENT_TIMEOUT": str(self.cluster.timeouts.webui_client_s),
            "ENABLE_WEBSOCKET_SUPPORT": "True",
        }
        containers = []
        if ui.database == "postgresql":
            redis_url = f"redis://127.0.0.1:{ui.redis_port}/0"
            env |= {"REDIS_URL": redis_url, "WEBSOCKET_MANAGER": "redis", "WEBSOCKET_REDIS_URL": redis_url}
            containers += [
                Container(
                    name="postgres",
                    image=self.sidecar("postgres"),
                    command=["postgres", "-c", "listen_addresses=127.0.0.1", "-p", str(ui.postgres_port)],
                    environment={"POSTGRES_DB": "openwebui", "POSTGRES_USER": "openwebui"},
                    env_files=[secrets],
                    volumes=[f"{host.storage.state}/data/{name}/postgres:/var/lib/postgresql/data"],
                    healthcheck=["CMD-SHELL", f"pg_isready -h 127.0.0.1 -p {ui.postgres_port} -U openwebui"],
                ),
                Container(
                    name="redis",
                    image=self.sidecar("redis"),
                    command=["redis-server", "--bind", "127.0.0.1", "--port", str(ui.redis_port), "--save", ""],
                    healthcheck=["CMD", "redis-cli", "-p", str(ui.redis_port), "ping"],
                ),
            ]
        if ui.vector_db:
            address, port = self.cluster.endpoint(ui.vector_db)
            env |= {"VECTOR_DB": "qdrant", "QDRANT_URI": f"http://{address}:{port}"}
            vector_key = self.vector_db_key(name, ui.vector_db, host)
            stack.secrets.append(vector_key)
            env_files.append(vector_key.path)  # QDRANT_API_KEY
        if ui.embeddings:
            env |= {
                "RAG_EMBEDDING_ENGINE": "openai",
                "RAG_OPENAI_API_BASE_URL": gateway_url,
                "RAG_EMBEDDING_MODEL": ui.embeddings,
            }
        if ui.reranker:
            address, port = self.cluster.endpoint(ui.reranker)
            env |= {
                "ENABLE_RAG_HYBRID_SEARCH": "true",
                "RAG_RERANKING_ENGINE": "external",
                "RAG_EXTERNAL_RERANKER_URL": f"http://{address}:{port}/v1/rerank",
                "RAG_RERANKING_MODEL": self.served_model(ui.reranker),
            }
        if ui.stt:
            env |= {"AUDIO_STT_ENGINE": "openai", "AUDIO_STT_OPENAI_API_BASE_URL": gateway_url, "AUDIO_STT_MODEL": ui.stt}
        if ui.tts:
            _, tts = next(((n, s) for n, s in self.cluster.of_kind(Tts).items()), (None, None))
            env |= {"AUDIO_TTS_ENGINE": "openai", "AUDIO_TTS_OPENAI_API_BASE_URL": gateway_url, "AUDIO_TTS_MODEL": ui.tts}
            if tts is not None:
                env["AUDIO_TTS_VOICE"] = tts.voice
        containers.append(
            Container(
                name="openwebui",
                image=image,
                entrypoint=entrypoint,
                environment=env,
                env_files=env_files,
                volumes=[f"{host.storage.state}/data/{name}/webui:/app/backend/data"],
                depends_on=[c.name for c in containers],
                healthcheck=self.probe(name, ui.port, "/health"),
                start_period_s=GPU_ENGINE_START_S // 3,
            )
        )
        stack.containers += containers
