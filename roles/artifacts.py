"""What stacks need before they start: model files, images and secrets, each checked first."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import docker

from aistack.operations import local_image, model_file, secret_env
from aistack.rollout import HostRollout


@deploy("Model files from the lock")
def models(plan: HostRollout) -> None:
    for need in host.loop(plan.models):
        model_file(name="Model file (verified by sha256)", dest=need.dest, locked=need.locked)


@deploy("Images, before anything restarts")
def images(plan: HostRollout) -> None:
    for need in host.loop([n for n in plan.images if n.local_id]):
        local_image(name="Image built on the control machine", ref=need.ref, image_id=need.local_id)
    for need in host.loop([n for n in plan.images if not n.local_id]):
        docker.image(name="Image pulled by digest", image=need.ref, present=True)


@deploy("Secrets generated on the host")
def secrets(plan: HostRollout) -> None:
    for secret in host.loop(plan.secrets):
        secret_env(name="Secret file (generated here, 0600)", secret=secret)
