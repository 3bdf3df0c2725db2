"""What stacks need before they start: model files, images and secrets, each checked first."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import docker, files

from aistack.host_state import HostState, StateQuery
from aistack.operations import barrier, local_image, model_file, model_marker, secret_env, secret_from_host
from aistack.rollout import HostRollout, Rollout


def reads(rollout: Rollout, name: str) -> StateQuery:
    """Model files by size and marker, refs and images, secret files, and the digests of every
    secret value copied to or from this host (another host's copy compares against them)."""
    plan = rollout.hosts[name]
    exported = tuple(pair for other in rollout.hosts.values() for secret in other.secrets
                     if secret.source_host == name for pair in secret.copied.values())
    imported = tuple((secret.path, var) for secret in plan.secrets if secret.source_host for var in secret.copied)
    return StateQuery(stat=tuple(need.dest for need in plan.models) + tuple(s.path for s in plan.secrets),
                      text=tuple(model_marker(need.dest) for need in plan.models),
                      hashed=tuple(plan.model_refs), images=tuple(need.ref for need in plan.images),
                      secret_vars=imported + exported)


@deploy("Model files from the lock")
def models(plan: HostRollout, seen: HostState) -> None:
    for need in host.loop(plan.models):
        model_file(name="Model file (verified by sha256)", dest=need.dest, locked=need.locked, seen=seen)
    # A hub id resolves through refs/main to its snapshot: the commit, without a newline.
    for path, revision in host.loop([(p, r) for p, r in sorted(plan.model_refs.items()) if not seen.file_is(p, r, 0o644)]):
        files.put(name="Hugging Face cache ref", src=StringIO(revision), dest=path, mode="644",
                  create_remote_dir=True)


@deploy("Images, before anything restarts")
def images(plan: HostRollout, seen: HostState) -> None:
    for need in host.loop([n for n in plan.images if n.local_id]):
        local_image(name="Image built on the control machine", ref=need.ref, image_id=need.local_id, seen=seen)
    for need in host.loop([n for n in plan.images if not n.local_id and n.ref not in seen.images]):
        docker.image(name="Image pulled by digest", image=need.ref, present=True)


@deploy("Secrets generated on the host")
def secrets(plan: HostRollout, seen: HostState, seen_on: Callable[[str], HostState]) -> None:
    """``seen_on(name)``: another host's state read (a copied secret compares digests with it)."""
    for secret in host.loop([s for s in plan.secrets if not s.source_host]):
        secret_env(name="Secret file (generated here, 0600)", secret=secret, seen=seen)
    # What one host copies from another exists once every host has made its own.
    barrier(name="Every host has generated its secrets", label="secrets")
    for secret in host.loop([s for s in plan.secrets if s.source_host]):
        secret_from_host(name="Secret file (copied from another host, 0600)", secret=secret, seen=seen,
                         source=seen_on(secret.source_host))
