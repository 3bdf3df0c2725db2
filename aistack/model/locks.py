"""Locks: images pinned by digest, model files by sha256 and size (001). Never guessed."""

from __future__ import annotations

import re

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from .base import StrictModel, load_yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
IMAGE_LOCK = PROJECT_DIR / "locks" / "images.yaml"


def llamacpp_build(engine: str | None) -> int | None:
    """'b6869' -> 6869; None when the image does not record a llama.cpp build."""
    match = re.fullmatch(r"b(\d+)", engine or "")
    return int(match.group(1)) if match else None


class LockedImage(StrictModel):
    """A tag and the digest a registry resolved for it (null until `aistack images lock` ran),
    and the facts about that image the rendered files rely on, each read from its source."""

    ref: str  # repository:tag
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}\Z")
    platforms: list[Literal["linux/amd64", "linux/arm64"]] = ["linux/amd64"]
    l4t: str | None = Field(None, pattern=r"^r\d{2}(\.\d+)*\Z")  # Jetson images are per L4T release
    engine: str | None = None  # the engine version inside, for flags that move (llama.cpp build)
    local: bool = False  # built here (sandbox); its digest is the local image id
    entrypoint: list[str] | None = None  # where the image's own entrypoint is not the server
    # Programs in the image that a rendered file may call (healthchecks): curl, wget, python3,
    # bash, and the server's own (ray, pg_isready, redis-cli). What is not listed is not there.
    tools: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*\Z")]] = []
    user: str | None = None  # whom the server runs as
    # How the server finds a checkpoint: a folder per repo (its path passed on the command line),
    # or the Hugging Face cache it resolves a repo id in (models--ORG--NAME/snapshots/REV/, refs/main).
    # "in-image": the image carries its model (built in at its build), so deploy fetches nothing for it.
    model_layout: Literal["dir", "hf-cache", "in-image"] = "dir"
    # Files the server opens from a checkpoint besides the catalogue's weights (globs, matched
    # against the repo at the weights' revision): each required one must match a locked file.
    model_files: list[str] = []
    model_files_optional: list[str] = []  # opened when the repo has them
    source: list[str] = []  # where each fact above was read: repo@tag path, or why it is unconfirmed

    @property
    def llamacpp_build(self) -> int | None:
        return llamacpp_build(self.engine)

    @property
    def pinned_ref(self) -> str:
        """What compose pulls: by digest when the lock has one."""
        return f"{self.ref}@{self.digest}" if self.digest and not self.local else self.ref


class ImageLock(StrictModel):
    images: dict[str, LockedImage]


def load_image_lock(path: Path = IMAGE_LOCK) -> ImageLock:
    return ImageLock.model_validate(load_yaml(path.read_text()))
