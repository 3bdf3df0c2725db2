"""Hosts: how to reach them, what hardware they carry, where their data lives."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, Strict, field_validator, model_validator

from .base import StrictModel, tuned
from .types import NAME, Address, DataRoot, SysctlValue


class Platform(StrEnum):
    X86_GPU = "x86-gpu"  # NVIDIA cards with dedicated VRAM, driver on the host
    JETSON = "jetson"  # unified memory shared by CPU and GPU, JetPack's runtime
    CPU = "cpu"  # no accelerator (the local sandbox, or a CPU-only box)


class Ssh(StrictModel):
    """SSH settings pyinfra and testinfra both use: the one list of hosts."""

    hostname: Address
    port: int = Field(22, ge=1, le=65535)
    user: str = Field("root", pattern=r"^[a-z_][a-z0-9_-]{0,31}\Z")  # a POSIX login name
    key: str | None = Field(None, pattern=r"^[^\x00-\x1f\x7f]{1,1024}\Z")  # on the control machine
    known_hosts_file: str | None = Field(None, pattern=r"^[^\x00-\x1f\x7f]{1,1024}\Z")
    strict_host_key_checking: Literal["accept-new", "yes", "no", "ask"] = "accept-new"


class Accelerator(StrictModel):
    """One GPU. Unified memory is the whole machine's RAM, shared with the OS and CPU side."""

    model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,63}\Z")
    memory_mib: int = Field(gt=0, le=1 << 24)  # up to 16 TiB: a typo in bytes is caught
    memory: Literal["dedicated", "unified"] = "dedicated"
    compute_capability: str | None = Field(None, pattern=r"^\d{1,2}\.\d\Z")


class Storage(StrictModel):
    """Models and vectors on their own paths, ideally their own disks (001)."""

    # Data roots: deploy creates and chmods them, so none may be a system directory (types.py).
    state: DataRoot = "/srv/aistack"
    models: DataRoot = tuned("/srv/models", "20 GB model files live on their own disk, never fetched at start (001)")
    vectors: DataRoot = tuned("/srv/vectors", "vector growth must not fill the model cache (001)")

    @model_validator(mode="after")
    def _separate(self) -> Storage:
        roots = {"state": PurePosixPath(self.state), "models": PurePosixPath(self.models), "vectors": PurePosixPath(self.vectors)}
        for a, b in (("models", "vectors"), ("state", "models"), ("state", "vectors")):
            one, other = roots[a], roots[b]
            if one == other or one in other.parents or other in one.parents:
                raise ValueError(f"{a} ({one}) and {b} ({other}) must be separate paths (001)")
        return self


PORT_RANGE = "net.ipv4.ip_local_port_range"
KERNEL_PORT_RANGE = (32768, 60999)  # Linux's default ephemeral range


class Tuning(StrictModel):
    """Kernel and process limits for hundreds of concurrent connections on the front hosts."""

    # Network sysctls are per network namespace: set on the host, they are what nginx and the
    # gateway see, and setting them never reaches past the host's own namespace.
    sysctl: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+\Z")], SysctlValue] = tuned(
        {"net.core.somaxconn": "4096", "net.ipv4.tcp_max_syn_backlog": "4096", "net.ipv4.ip_local_port_range": "20000 65000"},
        "64-worker bursts and a 128-connection client pool queue at the accept backlog, not the engine (000); "
        "ephemeral ports start above Ray's worker ports 10002-19999 (004, seen in the sandbox)",
    )
    nofile: int = tuned(65536, "each connection is a descriptor at nginx, the gateway's 8 workers and the engine (000)",
                        ge=1024, le=1 << 20)  # fs.nr_open's default: a higher limit fails the unit's start

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
    address: Address  # where the other hosts reach this one; services bind here by default
    ssh: Ssh
    arch: Literal["x86_64", "aarch64"] = "x86_64"
    platform: Annotated[Platform, Strict(False)]  # written as its value, "x86-gpu"
    l4t: str | None = Field(None, pattern=r"^r\d{2}\.\d+(\.\d+)?\Z")  # Jetson L4T release, e.g. r36.4.0
    ram_mib: int = Field(gt=0, le=1 << 24)  # up to 16 TiB: a value in bytes is caught
    accelerators: list[Accelerator] = []
    os_reserve_mib: int = tuned(
        1024,
        "kernel and system pages share a Jetson's unified memory; the Orin froze when nothing was left (000)",
        ge=0,
        le=1 << 20,
    )
    storage: Storage = Storage()
    docker_source: Literal["distro", "docker-repo", "jetpack"] = "distro"
    # chrony keeps logs and TLS in step across nodes; "host-clock": a container or VM whose
    # clock its parent keeps (the sandbox's test hosts), nothing to run.
    time_sync: Literal["chrony", "host-clock"] = "chrony"
    tuning: Tuning = Tuning()

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
