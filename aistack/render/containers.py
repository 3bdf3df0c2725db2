"""What a compose stack is made of: containers, the secrets deploy generates, and the stack.

Plain data: the builders (stacks, distributed, monitoring) fill it from the model and the
compose template lays it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Host

CONTAINER_MODELS = "/models"
# GPU engines load weights for minutes; compose must not call them unhealthy meanwhile.
GPU_ENGINE_START_S = 900
SERVICE_START_S = 60
PARKED = "parked: another lane owns the GPU (`aistack switch` starts it)"


@dataclass
class Container:
    name: str
    image: str
    command: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    env_files: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    gpu_ids: list[str] = field(default_factory=list)
    jetson_runtime: bool = False
    ipc_host: bool = False
    depends_on: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    start_period_s: int = SERVICE_START_S
    labels: dict[str, str] = field(default_factory=dict)
    nofile: int | None = None  # open-files limit, from the host's tuning
    named_volumes: dict[str, str] = field(default_factory=dict)  # compose volume -> path: keeps the image's owner
    tmpfs: list[str] = field(default_factory=list)
    shm_size: str | None = None
    cap_add: list[str] = field(default_factory=list)
    pid_host: bool = False
    user: str | None = None
    # Rereads its config files on this signal: deploy signals it when they change (or a failed
    # run left the signal owed) instead of letting compose recreate it (Prometheus then marks a
    # dropped target's series stale at once).
    reload_signal: str | None = None
    config_digest: str | None = None  # of the config files it mounts (render sets it)
    # (regex, meaning): a start that fails and logs a match is named by its meaning, log quoted.
    failure_hints: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Secret:
    """An env file deploy generates on the host at first apply (0600) and never rewrites.

    Only names travel: ``tokens`` get fresh random values on the target, ``derived`` values are
    built there from them, ``copied`` values come from another secret file on the same host, or
    on ``source_host`` (Qdrant's key, made on its host, for Open WebUI on another): deploy carries
    those host to host in memory and rewrites the file when the source's value changed.
    """

    path: str
    tokens: dict[str, str]  # variable -> prefix of its random value (LiteLLM keys start "sk-")
    derived: dict[str, str] = field(default_factory=dict)  # variable -> "{TOKEN}" format string
    copied: dict[str, tuple[str, str]] = field(default_factory=dict)  # variable -> (secret file, variable)
    # A credentials file (Prometheus' bearer token) holds one bare value, owned by the container's user.
    value_only: bool = False
    owner: int | None = None
    source_host: str | None = None  # where the ``copied`` files are, when not on this host


@dataclass
class Stack:
    service: str
    host: str
    project: str
    directory: str  # on the host
    containers: list[Container]
    configs: dict[str, tuple[str, dict]] = field(default_factory=dict)  # file name -> (template, context)
    secrets: list[Secret] = field(default_factory=list)  # generated on the host by deploy, never rendered
    not_started: str | None = None  # rendered and validated on the host, not run: the reason
    # Across hosts, every stack of phase 0 is up before any of phase 1 starts, and so on: a Ray
    # head before its workers, the workers before vLLM, which waits for them (004).
    phase: int = 2

    @property
    def named_volumes(self) -> list[str]:
        return sorted({v for c in self.containers for v in c.named_volumes})

    @property
    def reload_record(self) -> str:
        """What deploy records once it has signalled this stack's reloading containers: the config
        digests each was signalled for. While the record on the host differs, a reload is owed."""
        return "".join(f"{c.name} {c.config_digest}\n" for c in self.containers if c.reload_signal)

    @property
    def wait_s(self) -> int:
        """How long `compose up --wait` waits: the slowest container's start period, and a margin."""
        return max((c.start_period_s for c in self.containers), default=SERVICE_START_S) + SERVICE_START_S


def stack_dir(host: Host, service: str) -> str:
    return f"{host.storage.state}/stacks/{service}"


def secret_file(host: Host, service: str) -> str:
    """An env file of generated secrets, 0600, written on the host at first apply."""
    return f"{host.storage.state}/secrets/{service}.env"


def probe_for(image: str, tools: list[str], address: str, port: int, path: str | None = None) -> list[str]:
    """A healthcheck the image can run with what it ships (its `tools` in locks/images.yaml):
    HTTP GET `path` with curl, wget or python3, in that order, else a TCP connect through bash."""
    url = f"http://{url_host(address)}:{port}{path}"
    if path is not None and "curl" in tools:
        return ["CMD-SHELL", f"curl -fsS {url} >/dev/null || exit 1"]
    if path is not None and "wget" in tools:
        return ["CMD", "wget", "-q", "-O", "/dev/null", url]
    if path is not None and "python3" in tools:
        # urlopen raises, so exits non-zero, on anything but a 2xx answer.
        return ["CMD", "python3", "-c", f"import urllib.request; urllib.request.urlopen({url!r}, timeout=5)"]
    if "bash" in tools:
        return ["CMD-SHELL", f"bash -c 'exec 3<>/dev/tcp/{url_host(address)}/{port}' || exit 1"]
    raise ValueError(f"image {image}: ships none of curl, wget, python3, bash (locks/images.yaml tools): "
                     "no healthcheck can run in it")


def url_host(address: str) -> str:
    # Probing 0.0.0.0 means probing loopback.
    return "127.0.0.1" if address == "0.0.0.0" else address
