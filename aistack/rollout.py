"""What one rollout does, decided on the control machine before any host is touched.

deploy.py asks for it once per run: the cluster validated from the very inventory pyinfra is
running, the preflight (any BLOCK refuses the whole run with the plan's message), the rendered
files, and per host the stacks to start or hold, the images to ensure and the model files to
fetch. Every refusal (unpinned image, unverified model, missing local artifact) is gathered
for all hosts first, so a bad entry stops the run whole instead of half-way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InventoryError, Problem
from .inventory import cluster_from_inventory
from .model import Cluster, Host
from .model.locks import PROJECT_DIR
from .models_lock import (LockedFile, ModelLock, companions, host_path, hf_ref_path, load_model_lock,
                          locked_companions, needed_files)
from .preflight import Level, Preflight, preflight
from .render import HostRender, render_cluster
from .render.containers import Secret, Stack

# Images built on this machine are locked by their local image id, which only this machine
# knows: `aistack sandbox up` writes them here (git-ignored), deploy checks each host has them.
LOCAL_IMAGE_IDS = PROJECT_DIR / ".sandbox" / "images.yaml"


class RolloutRefused(Exception):
    """The run must not start: every reason, each naming its host and field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class ImageNeed:
    ref: str  # what compose runs
    local_id: str | None = None  # built here: the id the host's engine must report


@dataclass(frozen=True)
class ModelNeed:
    dest: str  # on the host
    locked: LockedFile


@dataclass
class HostRollout:
    host: Host
    render: HostRender
    stacks: list[Stack]  # in start order: engines, then what routes to them
    images: list[ImageNeed] = field(default_factory=list)
    models: list[ModelNeed] = field(default_factory=list)
    model_refs: dict[str, str] = field(default_factory=dict)  # Hugging Face cache refs/main -> commit

    @property
    def secrets(self) -> list[Secret]:
        """Files others copy from come first (the gateway's key before Open WebUI's copy)."""
        found = [s for stack in self.stacks for s in stack.secrets]
        return sorted(found, key=lambda s: bool(s.copied))


@dataclass
class Rollout:
    cluster: Cluster
    preflight: Preflight
    hosts: dict[str, HostRollout]


# Start order on a host: what others route to comes up first; what watches them last.
START_ORDER = {"node-exporter": 0, "gpu-exporter": 0, "ray": 0, "qdrant": 1, "llamacpp": 1, "sglang": 1, "vllm": 1,
               "asr": 1, "tts": 1, "detector": 1, "litellm": 2, "openwebui": 3, "nginx": 4, "prometheus": 5, "grafana": 6}


def prepare(inventory: Any, overrides: list[str] = (), name: str = "homelab",
            model_lock: ModelLock | None = None, local_ids: dict[str, str] | None = None) -> Rollout:
    """Validate, preflight and render; raise RolloutRefused with every reason, or return the rollout."""
    try:
        cluster = cluster_from_inventory(inventory, overrides, name=name)
    except InventoryError as exc:
        raise RolloutRefused(exc.problems) from None
    result = preflight(cluster)
    if result.level is Level.BLOCK:
        raise RolloutRefused([
            Problem(f.host, f"{f.check} {f.subject}", f.message) for f in result.findings if f.level is Level.BLOCK
        ])
    model_lock = model_lock if model_lock is not None else load_model_lock()
    local_ids = local_ids if local_ids is not None else load_local_image_ids()
    rendered = render_cluster(cluster)
    problems: list[Problem] = []
    hosts = {}
    for host_name, render in rendered.items():
        stacks = sorted(render.stacks.values(), key=lambda s: (START_ORDER[cluster.services[s.service].kind], s.service))
        plan = HostRollout(cluster.hosts[host_name], render, stacks)
        for stack in stacks:
            if stack.not_started is None:
                problems += _images(cluster, stack, local_ids, plan)
                problems += _models(cluster, stack.service, model_lock, plan)
        hosts[host_name] = plan
    if problems:
        raise RolloutRefused(problems)
    return Rollout(cluster, result, hosts)


def _images(cluster: Cluster, stack: Stack, local_ids: dict[str, str], plan: HostRollout) -> list[Problem]:
    problems = []
    refs = {entry.pinned_ref: key for key, entry in cluster.image_lock.images.items()}
    for ref in dict.fromkeys(c.image for c in stack.containers):
        key = refs[ref]
        entry = cluster.locked_image(key)
        where = f"services.{stack.service}.image"
        if entry.local and key not in local_ids:
            problems.append(Problem(stack.host, where, f"{ref} is built on this machine and not locked yet: run `aistack sandbox up`"))
        elif not entry.local and entry.digest is None and key not in cluster.allow_unpinned:
            problems.append(Problem(stack.host, where, f"{ref} has no digest in locks/images.yaml: run "
                                    f"`aistack images lock`, or list {key!r} under allow_unpinned"))
        else:
            need = ImageNeed(ref, local_ids[key] if entry.local else None)
            if need not in plan.images:
                plan.images.append(need)
    return problems


def _models(cluster: Cluster, service: str, lock: ModelLock, plan: HostRollout) -> list[Problem]:
    """Every file the service's server opens, each locked, laid out where that server reads it."""
    model = getattr(cluster.services[service], "model", None)
    where = f"services.{service}.model"
    layout = cluster.locked_image(cluster.image_key(service)).model_layout
    wanted = [(f"{repo}/{part.file}", lock.get(repo, part.file)) for repo, part in needed_files(cluster, service)]
    problems = []
    if (group := companions(cluster, service)) is not None:
        found, missing = locked_companions(group, lock)
        wanted += [(f.key, f) for f in found]
        problems += [Problem(plan.host.name, where, f"{group.repo}: no locked file matches {glob!r}, which "
                             f"{cluster.image_key(service)} opens beside the weights: run `aistack models lock`")
                     for glob in missing if model not in cluster.allow_unverified_models]
    files = []
    for key, entry in wanted:
        if entry is None or not entry.verified:
            if model not in cluster.allow_unverified_models:
                problems.append(Problem(plan.host.name, where, f"{key} has no size and sha256 in "
                                        f"locks/models.yaml: run `aistack models lock`, or list {model!r} under "
                                        "allow_unverified_models"))
        elif entry.path and not Path(entry.source()).is_file():
            problems.append(Problem(plan.host.name, where, f"{entry.source()} does not exist on this machine"))
        else:
            files.append(entry)
    for entry in files:
        if layout == "hf-cache" and not entry.revision:
            problems.append(Problem(plan.host.name, where, f"{entry.key}: {cluster.image_key(service)} reads the "
                                    "Hugging Face cache, which names a snapshot by its commit: pin a revision"))
            continue
        need = ModelNeed(host_path(plan.host.storage.models, entry.repo, entry.file, layout, entry.revision), entry)
        if need not in plan.models:
            plan.models.append(need)
        if layout == "hf-cache":
            plan.model_refs[hf_ref_path(plan.host.storage.models, entry.repo)] = entry.revision
    return problems


def load_local_image_ids(path: Path = LOCAL_IMAGE_IDS) -> dict[str, str]:
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}
