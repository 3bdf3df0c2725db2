"""What stacks need before they start: model files, images and secrets, each checked first."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import docker, files

from aistack.operations import barrier, local_image, model_file, secret_env, secret_from_host
from aistack.rollout import HostRollout


@deploy("Model files from the lock")
def models(plan: HostRollout) -> None:
    for need in host.loop(plan.models):
        model_file(name="Model file (verified by sha256)", dest=need.dest, locked=need.locked)
    # A hub id resolves through refs/main to its snapshot: the commit, without a newline.
    for path, revision in host.loop(sorted(plan.model_refs.items())):
        files.put(name="Hugging Face cache ref", src=StringIO(revision), dest=path, mode="644",
                  create_remote_dir=True)


@deploy("Images, before anything restarts")
def images(plan: HostRollout) -> None:
    for need in host.loop([n for n in plan.images if n.local_id]):
        local_image(name="Image built on the control machine", ref=need.ref, image_id=need.local_id)
    for need in host.loop([n for n in plan.images if not n.local_id]):
        docker.image(name="Image pulled by digest", image=need.ref, present=True)


@deploy("Secrets generated on the host")
def secrets(plan: HostRollout) -> None:
    for secret in host.loop([s for s in plan.secrets if not s.source_host]):
        secret_env(name="Secret file (generated here, 0600)", secret=secret)
    # What one host copies from another exists once every host has made its own.
    barrier(name="Every host has generated its secrets", label="secrets")
    for secret in host.loop([s for s in plan.secrets if s.source_host]):
        secret_from_host(name="Secret file (copied from another host, 0600)", secret=secret)
