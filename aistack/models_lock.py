"""The model lock (locks/models.yaml): per model file its source, revision, size and sha256.

Deploy fetches each file a started service needs once, verifies size and sha256 against this
lock, and never re-fetches a good one (001: 20 GB of weights are not something to fetch at
start). A checksum is never typed in or guessed: `aistack models lock` reads it from the hub's
file metadata, or hashes a local file; an entry without one is refused by deploy unless the
inventory lists the model under allow_unverified_models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import yaml
from pydantic import Field

from .model import Cluster, RayNode
from .model.base import StrictModel
from .model.catalogue import ModelFile
from .model.locks import PROJECT_DIR
from .model.services import LanePlacement

MODEL_LOCK = PROJECT_DIR / "locks" / "models.yaml"
HF_URL = "https://huggingface.co/{repo}/resolve/{revision}/{file}"
HEADER = """\
# Model lock: every model file deploy fetches, with the size and sha256 it must have.
# Written by `aistack models lock` from the hub's file metadata or from a local file; never typed in.
# `path` (a file on the control machine, relative to the project) is uploaded; otherwise `url`.
"""


class LockedFile(StrictModel):
    repo: str  # the folder under the host's models path (the hub repo, or the catalogue name)
    file: str
    revision: str | None = None
    size: int | None = Field(None, gt=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
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


def load_model_lock(path: Path = MODEL_LOCK) -> ModelLock:
    if not path.exists():
        return ModelLock()
    return ModelLock.model_validate(yaml.safe_load(path.read_text()) or {})


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
    if model is None:
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


def host_path(models_dir: str, repo: str, file: str) -> str:
    return str(PurePosixPath(models_dir) / repo / file)


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
    if entry.lfs is None:
        raise ValueError(f"{repo}/{file}: not an LFS file, the hub reports no sha256 for it")
    return LockedFile(repo=repo, file=file, revision=info.sha, size=entry.size, sha256=entry.lfs.sha256,
                      url=hf_hub_url(repo, file, revision=info.sha))  # HF_ENDPOINT's host: a site's mirror too


def lock_files(cluster: Cluster, lock: ModelLock, local: list[tuple[str, Path]] = ()) -> list[tuple[str, str | None]]:
    """Lock each model file the cluster's services use; report (key, error or None) per file."""
    results: list[tuple[str, str | None]] = []
    for repo, path in local:
        entry = lock_local(repo, path)
        lock.files[entry.key] = entry
        results.append((entry.key, None))
    wanted = {(repo, part.file, part.revision) for name in cluster.services for repo, part in needed_files(cluster, name)}
    for repo, file, revision in sorted(wanted, key=lambda w: (w[0], w[1])):
        key = f"{repo}/{file}"
        if key in dict(results) or (lock.get(repo, file) and lock.get(repo, file).path):
            continue
        try:
            lock.files[key] = lock_from_hub(repo, file, revision)
            results.append((key, None))
        except Exception as exc:  # no route to the hub, unknown repo, no LFS record: reported, never guessed
            lock.files.setdefault(key, LockedFile(repo=repo, file=file, revision=revision))
            results.append((key, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"))
    return results
