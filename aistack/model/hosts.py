"""Hosts: how to reach them, what hardware they carry, where their data lives."""

from __future__ import annotations

import re
from enum import StrEnum
from ipaddress import ip_address
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel, tuned

NAME = r"^[a-z][a-z0-9-]{0,62}$"
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def check_address(value: str) -> str:
    """An IP address or a DNS name; anything else cannot be dialled."""
    try:
        ip_address(value)
    except ValueError:
        if not HOSTNAME.match(value):
            raise ValueError(f"{value!r} is neither an IP address nor a host name") from None
    return value


class Platform(StrEnum):
    X86_GPU = "x86-gpu"  # NVIDIA cards with dedicated VRAM, driver on the host
    JETSON = "jetson"  # unified memory shared by CPU and GPU, JetPack's runtime
    CPU = "cpu"  # no accelerator (the local sandbox, or a CPU-only box)


class Ssh(StrictModel):
    """SSH settings pyinfra and testinfra both use: the one list of hosts."""

    hostname: str
    port: int = Field(22, ge=1, le=65535)
    user: str = "root"
    key: str | None = None
    known_hosts_file: str | None = None
    strict_host_key_checking: Literal["accept-new", "yes", "no", "ask"] = "accept-new"

    _hostname = field_validator("hostname")(check_address)


class Accelerator(StrictModel):
    """One GPU. Unified memory is the whole machine's RAM, shared with the OS and CPU side."""

    model: str
    memory_mib: int = Field(gt=0)
    memory: Literal["dedicated", "unified"] = "dedicated"
    compute_capability: str | None = Field(None, pattern=r"^\d+\.\d+$")


class Storage(StrictModel):
    """Models and vectors on their own paths, ideally their own disks (001)."""

    state: str = "/srv/aistack"
    models: str = tuned("/srv/models", "20 GB model files live on their own disk, never fetched at start (001)")
    vectors: str = tuned("/srv/vectors", "vector growth must not fill the model cache (001)")

    @field_validator("state", "models", "vectors")
    @classmethod
    def _absolute(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError(f"{value!r} must be an absolute path without '..'")
        return str(path)

    @model_validator(mode="after")
    def _separate(self) -> Storage:
        models, vectors = PurePosixPath(self.models), PurePosixPath(self.vectors)
        if models == vectors or models in vectors.parents or vectors in models.parents:
            raise ValueError(f"models ({self.models}) and vectors ({self.vectors}) must be separate paths (001)")
        return self


PORT_RANGE = "net.ipv4.ip_local_port_range"
KERNEL_PORT_RANGE = (32768, 60999)  # Linux's default ephemeral range


class Tuning(StrictModel):
    """Kernel and process limits for hundreds of concurrent connections on the front hosts."""

    # Network sysctls are per network namespace: set on the host, they are what nginx and the
    # gateway see, and setting them never reaches past the host's own namespace.
    sysctl: dict[str, str] = tuned(
        {"net.core.somaxconn": "4096", "net.ipv4.tcp_max_syn_backlog": "4096", "net.ipv4.ip_local_port_range": "20000 65000"},
        "64-worker bursts and a 128-connection client pool queue at the accept backlog, not the engine (000); "
        "ephemeral ports start above Ray's worker ports 10002-19999 (004, seen in the sandbox)",
    )
    nofile: int = tuned(65536, "each connection is a descriptor at nginx, the gateway's 8 workers and the engine (000)", ge=1024)

    @field_validator("sysctl")
    @classmethod
    def _port_range(cls, sysctl: dict[str, str]) -> dict[str, str]:
        value = sysctl.get(PORT_RANGE)
        if value is not None and _port_range(value) is None:
            raise ValueError(f"{PORT_RANGE} {value!r} is not 'LOW HIGH' within 1-65535")
        return sysctl

    @property
    def ephemeral_ports(self) -> range:
        """The source ports the kernel hands out (its own default when not set here)."""
        value = self.sysctl.get(PORT_RANGE)
        low, high = _port_range(value) if value is not None else KERNEL_PORT_RANGE
        return range(low, high + 1)


def _port_range(value: str) -> tuple[int, int] | None:
    """`ip_local_port_range` as the kernel reads it: 'LOW HIGH', or None if it is not that."""
    found = re.fullmatch(r"\s*(\d+)\s+(\d+)\s*", value)
    if found is None or not 1 <= int(found[1]) <= int(found[2]) <= 65535:
        return None
    return int(found[1]), int(found[2])


class Host(StrictModel):
    """A machine of the cluster, as the inventory describes it."""

    name: str = Field(pattern=NAME)
    address: str  # where the other hosts reach this one; services bind here by default
    ssh: Ssh
    arch: Literal["x86_64", "aarch64"] = "x86_64"
    platform: Platform
    l4t: str | None = Field(None, pattern=r"^r\d{2}\.\d+(\.\d+)?$")  # Jetson L4T release, e.g. r36.4.0
    ram_mib: int = Field(gt=0)
    accelerators: list[Accelerator] = []
    os_reserve_mib: int = tuned(
        1024,
        "kernel and system pages share a Jetson's unified memory; the Orin froze when nothing was left (000)",
        ge=0,
    )
    storage: Storage = Storage()
    docker_source: Literal["distro", "docker-repo", "jetpack"] = "distro"
    # chrony keeps logs and TLS in step across nodes; "host-clock": a container or VM whose
    # clock its parent keeps (the sandbox's test hosts), nothing to run.
    time_sync: Literal["chrony", "host-clock"] = "chrony"
    tuning: Tuning = Tuning()

    _address = field_validator("address")(check_address)

    @model_validator(mode="after")
    def _platform_fits_hardware(self) -> Host:
        kinds = {a.memory for a in self.accelerators}
        if self.platform is Platform.JETSON:
            if self.arch != "aarch64":
                raise ValueError("a Jetson is aarch64")
            if self.l4t is None:
                raise ValueError("a Jetson needs its L4T release (l4t: r35.x or r36.x): images are built per release")
            if len(self.accelerators) != 1 or kinds != {"unified"}:
                raise ValueError("a Jetson has exactly one accelerator with unified memory")
            if self.accelerators[0].memory_mib > self.ram_mib:
                raise ValueError("unified memory cannot exceed the machine's RAM")
            if self.docker_source != "jetpack":
                raise ValueError("a Jetson keeps JetPack's Docker engine (docker_source: jetpack)")
        else:
            if self.l4t is not None:
                raise ValueError("l4t is only for Jetsons")
            if self.docker_source == "jetpack":
                raise ValueError("docker_source 'jetpack' is only for Jetsons")
            if "unified" in kinds:
                raise ValueError("only a Jetson has unified memory")
        if self.platform is Platform.X86_GPU and not self.accelerators:
            raise ValueError("an x86-gpu host needs at least one accelerator")
        if self.platform is Platform.CPU and self.accelerators:
            raise ValueError("a cpu host has no accelerators")
        return self

    @property
    def unified(self) -> bool:
        return self.platform is Platform.JETSON

    @property
    def jetpack_major(self) -> int | None:
        """JetPack 5 is L4T r35 (Xavier NX tops out there), JetPack 6 is r36 (Orin only)."""
        if self.l4t is None:
            return None
        return {"35": 5, "36": 6}.get(self.l4t[1:3])
