"""Services placed on hosts. Placement is data (`host:`), so moving a stack is a one-line edit."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import StrictModel, tuned
from .types import NAME, Address, Alias, Component, FileKey, IbHca, ImageKey, Nic, Text


def _unprivileged(port: int) -> int:
    """Below 1024 are the system's own services (22 is sshd): only nginx's HTTP ports are written so."""
    if port < 1024:
        raise ValueError(f"port {port} is a system port (below 1024): use 1024-65535")
    return port


def _web(port: int) -> int:
    return port if port in (80, 443) else _unprivileged(port)


Port = Annotated[int, Field(ge=1, le=65535), AfterValidator(_unprivileged)]
WebPort = Annotated[int, Field(ge=1, le=65535), AfterValidator(_web)]  # nginx: 80 or 443, or unprivileged
ModelName = Component  # a catalogue entry: also the models folder of a file without a hub repo
LlamaKvType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
EngineKvType = Literal["auto", "bf16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1"]


class Workload(StrictModel):
    """The request a lane is sized for: capacity is planned for this, not for a toy prompt."""

    prompt_tokens: int = tuned(2000, "the memory-wall test used ~2,000-token prompts (003)", ge=1, le=1 << 22)
    output_tokens: int = tuned(1000, "homelab answers run 1,000-3,200 output tokens (000)", ge=1, le=1 << 22)
    images: int = Field(0, ge=0, le=64)  # images per request; vision lanes set 1


class ServiceBase(StrictModel):
    """What every service has: a host, a port, an address to bind and an image from the lock."""

    host: str = Field(pattern=NAME)
    port: Port
    bind: Address | None = None  # None: the host's own address. Never 0.0.0.0 unless written here.
    image: ImageKey | None = None  # key in locks/images.yaml; None picks the platform's default
    active: bool = True  # False: rendered but parked (one active lane per GPU, 001)
    # Rendered, put and validated on the host but never started, with the reason the run reports
    # (the sandbox has no GPU and no registry: its SGLang, TensorRT and speech stacks wait here).
    not_started: Text | None = None
    cpu_ram_mib: int = Field(256, ge=0, le=1 << 24, description="host RAM of the process; counts against a Jetson's unified memory")

    def sockets(self, host_address: str) -> list[tuple[str, int]]:
        """Every (address, TCP port) this service listens on."""
        return [(self.bind or host_address, self.port)]


class GpuService(ServiceBase):
    """A service that runs on one or more of its host's accelerators (indices)."""

    gpus: list[Annotated[int, Field(ge=0, le=63)]] = [0]
    runtime_mib: int = Field(
        250,
        ge=0,
        le=1 << 20,
        description="per process: CUDA context and compute buffers. A planning estimate, calibrated so the "
        "seed's edge VRAM table comes out (000); put your own measurement here",
    )

    @field_validator("gpus")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"gpu indices repeat: {value}")
        return value


class LanePlacement(GpuService):
    """A generation lane: an LLM engine that owns its GPUs while active (001)."""

    model: ModelName
    quant: FileKey
    workload: Workload = Workload()
    served_name: Alias | None = None  # name the engine reports; defaults to the service name
    curve: Component | None = None  # decode curve (curves.yaml); None: the one matching engine, model, memory


class SGLang(LanePlacement):
    kind: Literal["sglang"]
    port: Port = 30000
    tp_size: int | None = Field(None, ge=1, le=64)  # None: one rank per listed GPU
    max_running_requests: int = tuned(
        128,
        "64 made short image requests queue behind 200 s text jobs and time out (000)",
        ge=1,
        le=4096,
    )
    mem_fraction_static: float | None = Field(None, gt=0, lt=1)  # None: SGLang's auto choice
    context_length: int | None = Field(None, ge=256, le=1 << 22)
    kv_cache_dtype: EngineKvType = "auto"
    chunked_prefill_size: int | None = Field(None, ge=-1, le=1 << 22)  # -1: off
    enable_metrics: bool = tuned(True, "KV use, queue depth and TTFT are the numbers users feel (003)")


class VLLM(LanePlacement):
    kind: Literal["vllm"]
    port: Port = 8000
    tp_size: int | None = Field(None, ge=1, le=64)
    gpu_memory_utilization: float = tuned(0.90, "leave KV headroom for continuous batching (002, 003)", gt=0, lt=1)
    max_model_len: int | None = Field(None, ge=256, le=1 << 22)
    max_num_seqs: int | None = tuned(
        None,
        "None: sized by the planner to what the KV pool holds at the lane's workload, the cliff not the comfort (002, 003)",
    )
    kv_cache_dtype: EngineKvType = "auto"
    pp_size: int = Field(1, ge=1, le=64)  # pipeline stages: >1 only on the distributed lane (004)
    executor: Literal["mp", "ray"] = "mp"  # "ray": ranks run on the lane's Ray nodes (004)
    enable_prefix_caching: bool = tuned(True, "a shared system prompt cut TTFT 12-17x for the second user (003)")


class LlamaCpp(LanePlacement):
    """llama-server. Roles: chat and vision lanes, or an embedding / rerank server."""

    kind: Literal["llamacpp"]
    port: Port = 8080
    role: Literal["chat", "vision", "embedding", "rerank"] = "chat"
    mmproj: FileKey | None = None  # catalogue file key of the vision projector
    ctx: int = tuned(32768, "131,072 ctx took 5.2 GB of the 6 GB card and left one slot (000)", ge=256, le=1 << 22)
    parallel: int = tuned(4, "-c 32768 -np 4: 8K per slot holds an image, its prompt and the answer (000)", ge=1, le=4096)
    kv_unified: bool = Field(False, description="explicit -np splits the KV cache per slot unless this is set")
    cache_type_k: LlamaKvType = tuned("q4_0", "q4_0 freed 1.2 GB against fp16 on the 6 GB card (000)")
    cache_type_v: LlamaKvType = tuned("q4_0", "q4_0 freed 1.2 GB against fp16 on the 6 GB card (000)")
    flash_attn: Literal["on", "off", "auto"] = tuned("on", "the q4_0 V cache (000) only works with flash attention")
    runtime_mib: int | None = Field(
        None, ge=0, le=1 << 20,
        description="None: the CUDA context and runtime from the calibration table (aistack/calibration); "
        "a number replaces both with your own measurement",
    )
    n_gpu_layers: int = Field(999, ge=0, le=9999)
    metrics: bool = tuned(True, "busy slots and deferred requests showed where image requests waited (000)")
    max_image_px: int = tuned(1280, "a 4K photo decoded to 25 MB and spiked the Orin's unified memory (000)", ge=64, le=16384)

    @model_validator(mode="after")
    def _role_shape(self) -> LlamaCpp:
        if self.role == "vision" and self.mmproj is None:
            raise ValueError("a vision lane needs its mmproj (the vision projector file)")
        if self.role != "vision" and self.mmproj is not None:
            raise ValueError(f"mmproj only applies to a vision lane, not role {self.role!r}")
        if self.role == "vision" and self.workload.images == 0:
            self.workload = self.workload.model_copy(update={"images": 1})
        if self.parallel > self.ctx:
            raise ValueError(f"parallel ({self.parallel}) exceeds ctx ({self.ctx}): a slot needs at least one token")
        return self

    @property
    def generates(self) -> bool:
        return self.role in ("chat", "vision")


class Asr(GpuService):
    """speaches (faster-whisper). Several instances, round-robined by the gateway."""

    kind: Literal["asr"]
    port: Port = 8000  # first instance; the next ones take the following ports
    model: ModelName
    instances: int = tuned(2, "one instance serialised under burst: ~10 -> ~70 concurrent ASR (000)", ge=1, le=16)
    compute_type: Literal["int8_float16", "int8", "float16", "float32"] = tuned(
        "int8_float16", "int8 weights let two Whisper copies fit beside Gemma on the 6 GB card (000)"
    )
    cpu_ram_mib: int = Field(512, ge=0, le=1 << 24, description="per instance")
    # The CUDA context is its own item (calibration table); seed 000's edge VRAM table checks the sum.
    runtime_mib: int = Field(120, ge=0, le=1 << 20, description="per instance: CTranslate2's buffers beyond the CUDA context (planning estimate)")

    def sockets(self, host_address: str) -> list[tuple[str, int]]:
        return [(self.bind or host_address, self.port + i) for i in range(self.instances)]


class Tts(GpuService):
    """Kokoro-FastAPI."""

    kind: Literal["tts"]
    port: Port = 8880
    model: ModelName = "kokoro-82m"
    voice: str = Field("af_heart", pattern=r"^[a-z][a-z0-9_+]{0,63}\Z")  # Kokoro's voice ids, blendable with +
    cpu_ram_mib: int = Field(512, ge=0, le=1 << 24)
    runtime_mib: int = Field(150, ge=0, le=1 << 20, description="PyTorch's buffers beyond the CUDA context (planning estimate)")


class Detector(GpuService):
    """NanoOWL: a TensorRT engine built on the target, cached, rebuilt when GPU arch or TRT changes."""

    kind: Literal["detector"]
    port: Port = 7860
    model: ModelName = "owlvit-base-patch32"
    engine_mib: int = Field(gt=0, le=1 << 20, description="the built TensorRT engine resident in memory: measure it on the target")
    cpu_ram_mib: int = Field(1024, ge=0, le=1 << 24, description="the Python/PyTorch side of the detector")
    max_image_px: int = tuned(1280, "a 4K photo decoded to 25 MB and spiked the Orin's unified memory (000)", ge=64, le=16384)


class Qdrant(ServiceBase):
    kind: Literal["qdrant"]
    port: Port = 6333
    grpc_port: Port = 6334
    cpu_ram_mib: int = Field(1024, ge=0, le=1 << 24, description="resident set; the vectors themselves live on storage.vectors")

    def sockets(self, host_address: str) -> list[tuple[str, int]]:
        return [(self.bind or host_address, p) for p in (self.port, self.grpc_port)]


class Route(StrictModel):
    """One deployment behind a gateway alias."""

    service: str = Field(pattern=NAME)
    weight: int | None = Field(None, gt=0, le=1000)  # None: by memory kind, see Gateway.weight_*


class Gateway(ServiceBase):
    """LiteLLM proxy: stable aliases in front of engines that move (001)."""

    kind: Literal["litellm"]
    port: Port = 4000
    bind: Address | None = "127.0.0.1"  # nginx is the front door
    workers: int = tuned(8, "one worker serialised every request through one event loop (000)", ge=1, le=256)
    worker_start_timeout_s: int = tuned(
        180, "uvicorn kills a worker not answering its health check in time (5 s by default) and a LiteLLM "
        "worker imports for tens of seconds: 5 s killed workers at every start (measured: LiteLLM 1.106.2, uvicorn 0.55, 2 cores)",
        ge=5, le=3600)
    streams_per_worker: int = tuned(
        16, "one worker failed the 128-worker ladder and eight held it: at least 16 streams each (000)", ge=1, le=1 << 16)
    num_retries: int = tuned(0, "silent retries on near-timeouts amplified queue depth (000)", ge=0, le=10)
    weight_dedicated: int = tuned(8, "a card with its own VRAM takes the vision burst: edge 8 (000)", gt=0)
    weight_unified: int = tuned(1, "4/8 sent two thirds of bursts to the Orin and wedged it; it is overflow (000)", gt=0)
    aliases: dict[Alias, list[Route]] = {}

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[Route]]) -> dict[str, list[Route]]:
        for alias, routes in value.items():
            if not routes:
                raise ValueError(f"alias {alias!r} has no routes")
            names = [r.service for r in routes]
            if len(set(names)) != len(names):
                raise ValueError(f"alias {alias!r} lists a service twice: {names}")
        return value


class Nginx(ServiceBase):
    kind: Literal["nginx"]
    port: WebPort = 80
    client_max_body_mb: int = tuned(64, "PDF upload + query is one of the 11 workflow types (000)", ge=1, le=1 << 20)
    proxy_buffering: bool = tuned(False, "streamed tokens must reach the user as they are generated (000)")

    @staticmethod
    def worker_connections(http_pool: int) -> int:
        """nginx's default 1024, or room for the client pool's and the upstream keepalive's connections."""
        return max(1024, 4 * http_pool)


class WebUI(ServiceBase):
    """Open WebUI with a database and websocket manager that allow several workers."""

    kind: Literal["openwebui"]
    port: Port = 8080
    workers: int = tuned(8, "RAG embedding is CPU-bound: 1 worker queued everything, 4 -> 8 recovered RAG (000)", ge=1, le=256)
    database: Literal["postgresql", "sqlite"] = tuned(
        "postgresql", "4 workers contended on one SQLite write lock (000)"
    )
    postgres_port: Port = 5432
    redis_port: Port = 6379
    vector_db: str | None = Field(None, pattern=NAME)  # qdrant service
    embeddings: Alias | None = None  # gateway alias for RAG embeddings
    reranker: str | None = Field(None, pattern=NAME)  # rerank service (external reranker URL)
    stt: Alias | None = None  # gateway alias
    tts: Alias | None = None  # gateway alias

    def sockets(self, host_address: str) -> list[tuple[str, int]]:
        # Its database and websocket broker are private to the host.
        return [(self.bind or host_address, self.port), ("127.0.0.1", self.postgres_port), ("127.0.0.1", self.redis_port)]


class RayNode(GpuService):
    """One node of the distributed lane's Ray cluster (004). Generated from `distributed`, not written."""

    kind: Literal["ray"]
    role: Literal["head", "worker"]
    lane: str = Field(pattern=NAME)  # the vLLM service this node serves
    head_address: Address  # where the workers reach the head's GCS
    port: Port = 6379  # the head's GCS port (workers dial it)
    num_gpus: int = Field(ge=0, le=64)  # the GPU resource the node declares to Ray: the lane's gpus_per_node
    nic: Nic | None = None
    ib_hca: IbHca | None = None
    dashboard_bind: Address | None = None  # head only; None: no dashboard
    dashboard_port: Port = 8265
    metrics_port: int | None = Field(None, ge=1, le=65535)  # set when the dashboard packages run its agent
    object_store_mib: int | None = Field(None, ge=75)  # None: Ray's own choice (30% of RAM)
    shm_gb: float = Field(gt=0, le=4096)
    engine_share: float | None = None  # a worker's GPUs hold vLLM ranks: this share of each card
    cpu_ram_mib: int = Field(1024, ge=0, le=1 << 24, description="Ray idles at 180-290 MiB per node in the sandbox; ranks add their own")

    def sockets(self, host_address: str) -> list[tuple[str, int]]:
        # Ray has no bind address for its GCS and metrics agent: they listen on every interface
        # (seen in the sandbox), so that is what is declared, checked for clashes and verified.
        found = [("0.0.0.0", self.metrics_port)] if self.metrics_port else []
        if self.role == "head":
            found.append(("0.0.0.0", self.port))
            if self.dashboard_bind is not None:
                found.append((self.dashboard_bind, self.dashboard_port))
        return found


class Prometheus(ServiceBase):
    """Scrapes every exporter and engine the cluster runs; rules from the model. Generated from `monitoring`."""

    kind: Literal["prometheus"]
    port: Port = 9090
    cpu_ram_mib: int = Field(512, ge=0, le=1 << 24)


class Grafana(ServiceBase):
    """Dashboards and the Prometheus datasource, provisioned as code. Generated from `monitoring`."""

    kind: Literal["grafana"]
    port: Port = 3000
    prometheus: str = Field("prometheus", pattern=NAME)  # the prometheus service it reads


class NodeExporter(ServiceBase):
    kind: Literal["node-exporter"]
    port: Port = 9100
    cpu_ram_mib: int = Field(32, ge=0, le=1 << 24, description="one Go binary; counts on a Jetson's unified memory")


class GpuExporter(GpuService):
    """DCGM on x86 GPU hosts; a tegrastats exporter on Jetsons, where DCGM does not run."""

    kind: Literal["gpu-exporter"]
    port: Port = 9400
    cpu_ram_mib: int = Field(48, ge=0, le=1 << 24, description="DCGM's Go exporter, or Python beside tegrastats on a Jetson")


Service = Annotated[
    SGLang | VLLM | LlamaCpp | Asr | Tts | Detector | Qdrant | Gateway | Nginx | WebUI
    | RayNode | Prometheus | Grafana | NodeExporter | GpuExporter,
    Field(discriminator="kind"),
]
LLM_LANES = (SGLang, VLLM, LlamaCpp)
