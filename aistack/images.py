"""`aistack images lock`: resolve each image tag to the digest a registry (or, for images built
here, the local engine) reports, and rewrite the lock. A digest is never invented: an image
that cannot be resolved keeps what the lock had and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import docker
import yaml
from docker.errors import APIError, DockerException, ImageNotFound

from .model.locks import IMAGE_LOCK, ImageLock, load_image_lock

HEADER = """\
# Image lock: every image a stack runs, as a tag plus the digest a registry resolved for it.
# A digest is never typed in or guessed: `aistack images lock` fills it on a machine that reaches
# the registry. Until then `digest: null`, `aistack plan` WARNs, and deploy refuses the image
# unless the inventory lists it under allow_unpinned.
# `engine` is the engine version inside, for flags that changed between versions; `tools`, `user`
# and `source`: what the image ships that rendered files call, whom it runs as, and where each
# fact was read (the image's own source at the pinned tag, or why it is unconfirmed).
"""


@dataclass
class Resolution:
    key: str
    ref: str
    digest: str | None
    error: str | None = None


def resolve(client: docker.DockerClient, ref: str, local: bool) -> str:
    """The registry's manifest digest for a tag, or the local image id for an image built here."""
    if local:
        return client.images.get(ref).id
    return client.images.get_registry_data(ref).id


def lock_images(path: Path = IMAGE_LOCK, only: list[str] | None = None, client: docker.DockerClient | None = None) -> list[Resolution]:
    lock = load_image_lock(path)
    client = client or docker.from_env()
    results = []
    for key, entry in lock.images.items():
        if only and key not in only:
            continue
        try:
            digest = resolve(client, entry.ref, entry.local)
        except (ImageNotFound, APIError, DockerException) as exc:
            results.append(Resolution(key, entry.ref, entry.digest, error=str(exc).splitlines()[0][:200]))
            continue
        entry.digest = digest
        results.append(Resolution(key, entry.ref, digest))
    write_lock(lock, path)
    return results


def write_lock(lock: ImageLock, path: Path = IMAGE_LOCK) -> None:
    def entry(image) -> dict:
        rest = image.model_dump(exclude_defaults=True, exclude={"ref", "digest"})
        return {"ref": image.ref, "digest": image.digest, **rest}

    data = {"images": {key: entry(image) for key, image in lock.images.items()}}
    path.write_text(HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
