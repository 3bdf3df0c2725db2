"""The model lock (locks/models.yaml): per model file its source, revision, size and sha256.

Deploy fetches each file a started service needs once, verifies size and sha256 against this
lock, and never re-fetches a good one (001: 20 GB of weights are not something to fetch at
start). A checksum is never typed in or guessed: `aistack models lock` reads it from the hub's
file metadata, or hashes a local file; an entry without one is refused by deploy unless the
inventory lists the model under allow_unverified_models.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from .errors import InventoryError, Problem

from .model import Cluster, RayNode
from .model.base import StrictModel, load_yaml
from .model.catalogue import REVISION, ModelFile
from .model.locks import PROJECT_DIR
from .model.services import LanePlacement
from .model.types import RelativePath, RepoId, under

MODEL_LOCK = PROJECT_DIR / "locks" / "models.yaml"
HF_CACHE = "hf"  # under the models path: the Hugging Face cache that hub-id servers resolve in
HF_URL = "https://huggingface.co/{repo}/resolve/{revision}/{file}"
HEADER = """\
# Model lock: every model file deploy fetches, with the size and sha256 it must have.
# Written by `aistack models lock` from the hub's file metadata or from a local file; never typed in.
# `path` (a file on the control machine, relative to the project) is uploaded; otherwise `url`.
"""


class LockedFile(StrictModel):
    repo: RepoId  # the folder under the host's models path (the hub repo, or the catalogue name)
    file: RelativePath
    revision: str | None = Field(None, pattern=REVISION)
    size: int | None = Field(None, gt=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}\Z")
    url: str | None = None
    path: str | None = None  # on the control machine (the sandbox's generated GGUF)

    @property
    def key(self) -> str:
        return f"{self.repo}/{self.file}"

    @property
    def verified(self) -> bool:
        return self.sha256 is not None and self.size is not None

    def source(self, project_dir: Path = PROJECT_DIR) -> str:
        if self.path:
            return str((project_dir / self.path).resolve())
        return self.url or HF_URL.format(repo=self.repo, revision=self.revision or "main", file=self.file)


class ModelLock(StrictModel):
    files: dict[str, LockedFile] = {}

    def get(self, repo: str, file: str) -> LockedFile | None:
        return self.files.get(f"{repo}/{file}")


def load_model_lock(path: Path = MODEL_LOCK, must_exist: bool = False) -> ModelLock:
    """The lock (empty where the project has none yet); a lock named on purpose must exist."""
    if not path.exists() and not must_exist:
        return ModelLock()
    try:
        return ModelLock.model_validate(load_yaml(path.read_text()) or {})
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        reason = str(exc).splitlines()[0][:200] if not isinstance(exc, ValidationError) else f"{exc.error_count()} invalid value(s)"
        raise InventoryError([Problem(None, str(path), f"cannot read the model lock: {type(exc).__name__}: {reason}")]) from None


def write_model_lock(lock: ModelLock, path: Path = MODEL_LOCK) -> None:
    data = {"files": {k: v.model_dump(exclude_none=True) for k, v in sorted(lock.files.items())}}
    path.write_text(HEADER + yaml.safe_dump(data, sort_keys=False))


# ---- what a service needs -----------------------------------------------------------------


def needed_files(cluster: Cluster, service: str) -> list[tuple[str, ModelFile]]:
    """(repo folder, catalogue file) for every model file the service opens."""
    svc = cluster.services[service]
    if isinstance(svc, RayNode):  # every node loads its ranks' shard of the lane's model
        svc = cluster.services[svc.lane]
    model = getattr(svc, "model", None)
    if model is None or cluster.locked_image(cluster.image_key(service)).model_layout == "in-image":
        return []
    spec = cluster.models[model]
    if isinstance(svc, LanePlacement):
        keys = [svc.quant, *([svc.mmproj] if getattr(svc, "mmproj", None) else [])]
    else:
        keys = list(spec.files)
    found = []
    for key in keys:
        entry = spec.files[key]
        for part in entry if isinstance(entry, list) else [entry]:
            if part.file is not None:
                found.append((part.repo or spec.hf_repo or model, part))
    return found


@dataclass(frozen=True)
class Companions:
    """What a server opens from a checkpoint beside its weights: globs from its image's facts,
    matched against the repo's files at the weights' revision."""

    repo: str
    revision: str | None
    required: tuple[str, ...]
    optional: tuple[str, ...]
    weights: frozenset[str]  # already locked as the catalogue's weights

    def matches(self, file: str) -> bool:
        return file not in self.weights and any(fnmatch.fnmatch(file, p) for p in self.required + self.optional)


def companions(cluster: Cluster, service: str) -> Companions | None:
    """The checkpoint files besides the weights, for a server that reads a checkpoint (not a GGUF)."""
    files = needed_files(cluster, service)
    if not files:
        return None
    image = cluster.locked_image(cluster.image_key(service))
    if not image.model_files:
        return None
    repo, first = files[0]
    return Companions(repo, first.revision, tuple(image.model_files), tuple(image.model_files_optional),
                      frozenset(p.file for r, p in files if r == repo))


def locked_companions(group: Companions, lock: ModelLock) -> tuple[list[LockedFile], list[str]]:
    """The lock's files for a checkpoint's companions, and each required glob that none matches."""
    revision = companion_revision(group, lock)
    found = [f for f in lock.files.values() if f.repo == group.repo and f.revision == revision and group.matches(f.file)]
    missing = [p for p in group.required if not any(fnmatch.fnmatch(f.file, p) for f in found)]
    return sorted(found, key=lambda f: f.file), missing


def host_path(models_dir: str, repo: str, file: str, layout: str = "dir", revision: str | None = None) -> str:
    """Where a model file lies on the host, in the layout its server reads."""
    if layout == "hf-cache":
        assert revision, "the Hugging Face cache names a snapshot by its commit (rollout refuses none)"
        return under(models_dir, HF_CACHE, hf_cache_folder(repo), "snapshots", revision, file)
    return under(models_dir, repo, file)


def hf_cache_folder(repo: str) -> str:
    """huggingface_hub's folder for a model repo: models--ORG--NAME."""
    return "models--" + repo.replace("/", "--")


def hf_ref_path(models_dir: str, repo: str) -> str:
    """refs/main names the snapshot a hub id resolves to (its content: the commit, no newline)."""
    return under(models_dir, HF_CACHE, hf_cache_folder(repo), "refs", "main")


# ---- filling the lock ---------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lock_local(repo: str, file: Path, project_dir: Path = PROJECT_DIR) -> LockedFile:
    """Lock a file on this machine by its real size and sha256 (uploaded by deploy)."""
    path = file.resolve()
    try:
        shown = str(path.relative_to(project_dir))
    except ValueError:
        shown = str(path)
    return LockedFile(repo=repo, file=path.name, size=path.stat().st_size, sha256=sha256_of(path), path=shown)


def lock_from_hub(repo: str, file: str, revision: str | None = None) -> LockedFile:
    """Size and sha256 from the hub's file metadata (LFS pointer), at a pinned revision."""
    from huggingface_hub import HfApi, hf_hub_url

    api = HfApi()
    info = api.model_info(repo, revision=revision)
    (entry,) = api.get_paths_info(repo, [file], revision=info.sha, expand=True)
    if entry.lfs is not None:
        size, sha256 = entry.size, entry.lfs.sha256
    else:  # a file kept in git (config, tokenizer): the hub reports no sha256, so hash what it serves
        size, sha256 = _hash_download(repo, file, info.sha)
    return LockedFile(repo=repo, file=file, revision=info.sha, size=size, sha256=sha256,
                      url=hf_hub_url(repo, file, revision=info.sha))  # HF_ENDPOINT's host: a site's mirror too


def _hash_download(repo: str, file: str, revision: str) -> tuple[int, str]:
    """Stream the file from the hub's resolve URL (the client's own session and token) and hash it."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    h, size = hashlib.sha256(), 0
    url = hf_hub_url(repo, file, revision=revision)
    with get_session().stream("GET", url, headers=build_hf_headers(), follow_redirects=True) as response:
        hf_raise_for_status(response)
        for chunk in response.iter_bytes():
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def hub_companions(group: Companions, revision: str | None) -> list[str]:
    """The repo's files at the revision that the server opens beside the weights."""
    from huggingface_hub import HfApi

    return sorted(f for f in HfApi().list_repo_files(group.repo, revision=revision) if group.matches(f))


def lock_files(cluster: Cluster, lock: ModelLock, local: list[tuple[str, Path]] = ()) -> list[tuple[str, str | None]]:
    """Lock each model file the cluster's services use; report (key, error or None) per file."""
    results: list[tuple[str, str | None]] = []
    for repo, path in local:
        entry = lock_local(repo, path)
        lock.files[entry.key] = entry
        results.append((entry.key, None))
    wanted = {(repo, part.file, part.revision) for name in cluster.services for repo, part in needed_files(cluster, name)}
    for repo, file, revision in sorted(wanted, key=lambda w: (w[0], w[1])):
        _lock_one(lock, repo, file, revision, results)
    # Companions after the weights: they are read at the revision the weights were locked at.
    groups = {g for name in cluster.services if (g := companions(cluster, name))}
    for group in sorted(groups, key=lambda g: g.repo):
        revision = companion_revision(group, lock)
        try:
            files = hub_companions(group, revision)
        except Exception as exc:  # no route to the hub: reported, never guessed
            results.append((f"{group.repo} (files beside the weights)", _reason(exc)))
            continue
        for file in files:
            _lock_one(lock, group.repo, file, revision, results)
    return results


def companion_revision(group: Companions, lock: ModelLock) -> str | None:
    """The catalogue's pinned revision, else the one the weights were locked at."""
    locked = [lock.get(group.repo, w) for w in sorted(group.weights)]
    return group.revision or next((e.revision for e in locked if e and e.revision), None)


def _lock_one(lock: ModelLock, repo: str, file: str, revision: str | None, results: list[tuple[str, str | None]]) -> None:
    key = f"{repo}/{file}"
    if key in dict(results) or (lock.get(repo, file) and lock.get(repo, file).path):
        return
    try:
        lock.files[key] = lock_from_hub(repo, file, revision)
        results.append((key, None))
    except Exception as exc:  # no route to the hub, unknown repo: reported, never guessed
        lock.files.setdefault(key, LockedFile(repo=repo, file=file, revision=revision))
        results.append((key, _reason(exc)))


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
