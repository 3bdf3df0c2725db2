"""`aistack models lock` against a stand-in hub on loopback: the real huggingface_hub client
(pinned 2.4) makes its real HTTP calls (HF_ENDPOINT), answered in the JSON shapes that client's
own parser reads (RepoFile, BlobLfsInfo, ModelInfo), and files served at their resolve URLs.
The hub itself cannot be reached here."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from aistack.inventory import load_cluster
from aistack.models_lock import companions, load_model_lock, needed_files
from tests.conftest import HOMELAB, PROJECT

NOT_LFS = "model.bin"  # a weights file the stand-in reports without an LFS record (no sha256 on the hub)
# What every stand-in repo holds beside its weights: git files (no LFS), some that no server opens.
BESIDE = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocabulary.txt", "README.md",
          "preprocessor_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
          "onnx/decoder.onnx", "original/model.safetensors"]


@functools.cache
def homelab_weights() -> frozenset[tuple[str, str, str | None]]:
    cluster = load_cluster(HOMELAB)
    return frozenset((r, p.file, p.revision) for name in cluster.services for r, p in needed_files(cluster, name))


def commit(repo: str) -> str:
    """The stand-in's main branch; a repo the catalogue pins resolves to its pinned commit."""
    pinned = {rev for r, _, rev in homelab_weights() if r == repo and rev}
    return pinned.pop() if pinned else hashlib.sha1(repo.encode()).hexdigest()


def blob(repo: str, path: str) -> tuple[int, str]:
    digest = hashlib.sha256(f"{repo}/{path}".encode()).hexdigest()
    return 1_000_000 + int(digest[:6], 16), digest


def content(repo: str, path: str) -> bytes:
    """What the stand-in serves for a git file: hashed by the lock command itself."""
    return f"{repo}/{path}\n".encode()


class StandInHub(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = unquote(urlparse(self.path).path).split("/")
        if parts[1] != "api":  # a download: /{owner}/{name}/resolve/{rev}/{path}
            repo, path = "/".join(parts[1:3]), "/".join(parts[5:])
            assert parts[3] == "resolve" and parts[4] == commit(repo), "files are fetched at the resolved revision"
            return self._send(content(repo, path), "application/octet-stream")
        repo = "/".join(parts[3:5])
        if len(parts) > 5 and parts[5] == "tree":  # list_repo_files: /api/models/{repo}/tree/{rev}
            assert parts[6] == commit(repo), "the listing must be read at the weights' revision"
            weights = {f for r, f, _ in homelab_weights() if r == repo}
            return self._json([{"type": "file", "path": f, "size": 1, "oid": "0" * 40} for f in sorted(weights) + BESIDE])
        self._json({"id": repo, "sha": commit(repo), "siblings": []})  # model_info

    def do_POST(self):  # get_paths_info: /api/models/{owner}/{name}/paths-info/{rev}
        parts = unquote(urlparse(self.path).path).split("/")
        repo = "/".join(parts[3:5])
        assert parts[6] == commit(repo), "paths-info must be asked at the resolved revision"
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        entries = []
        for path in form["paths"]:
            size, digest = blob(repo, path)
            entry = {"type": "file", "path": path, "size": size, "oid": digest[:40]}
            if not path.endswith(NOT_LFS) and path not in BESIDE:
                entry["lfs"] = {"oid": digest, "size": size, "pointerSize": 134}
            entries.append(entry)
        self._json(entries)

    def _json(self, data) -> None:
        self._send(json.dumps(data).encode(), "application/json")

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_models_lock_takes_revision_size_and_sha256_from_the_hub(hub, tmp_path):
    lock_path = tmp_path / "models.yaml"
    env = {**os.environ, "HF_ENDPOINT": hub, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0"}
    run = subprocess.run([str(Path(sys.executable).parent / "aistack"), "models", "lock", "--inventory", str(HOMELAB),
                          "--lock", str(lock_path)], cwd=PROJECT, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    cluster = load_cluster(HOMELAB)
    weights = {(repo, part.file) for name in cluster.services for repo, part in needed_files(cluster, name)}
    groups = {g for name in cluster.services if (g := companions(cluster, name))}
    beside = {(g.repo, f) for g in groups for f in BESIDE if g.matches(f)}
    lock = load_model_lock(lock_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert {(e.repo, e.file) for e in lock.files.values() if e.verified} == weights | beside
    # Checkpoint servers get their config and tokenizer; GGUF repos nothing; unread files never.
    assert {g.repo for g in groups} == {"openai/gpt-oss-20b", "Systran/faster-whisper-base", "google/owlvit-base-patch32"}
    assert ("Systran/faster-whisper-base", "README.md") in beside and not any("onnx/" in f for _, f in beside)
    for repo, file in weights | beside:
        entry = lock.get(repo, file)
        in_git = file.endswith(NOT_LFS) or (repo, file) in beside
        want = (len(content(repo, file)), hashlib.sha256(content(repo, file)).hexdigest()) if in_git else blob(repo, file)
        assert (entry.size, entry.sha256) == want, f"{repo}/{file}"
        assert entry.revision == commit(repo)
        assert entry.url == f"{hub}/{repo}/resolve/{commit(repo)}/{file}"


def test_a_lock_path_in_no_directory_is_a_usage_error(tmp_path):
    run = subprocess.run([str(Path(sys.executable).parent / "aistack"), "models", "lock", "--inventory", str(HOMELAB),
                          "--lock", str(tmp_path / "missing" / "models.yaml")], cwd=PROJECT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 2 and "its directory does not exist" in run.stderr
