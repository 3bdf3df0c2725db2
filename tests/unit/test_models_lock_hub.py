"""`aistack models lock` against a stand-in hub on loopback: the real huggingface_hub client
(pinned 2.4) makes its real HTTP calls (HF_ENDPOINT), answered in the JSON shapes that client's
own parser reads (RepoFile, BlobLfsInfo, ModelInfo). The hub itself cannot be reached here."""

from __future__ import annotations

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
from aistack.models_lock import load_model_lock, needed_files
from tests.conftest import HOMELAB, PROJECT

NOT_LFS = "model.bin"  # a file the stand-in reports without an LFS record (no sha256 on the hub)


def commit(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


def blob(repo: str, path: str) -> tuple[int, str]:
    digest = hashlib.sha256(f"{repo}/{path}".encode()).hexdigest()
    return 1_000_000 + int(digest[:6], 16), digest


class StandInHub(BaseHTTPRequestHandler):
    def do_GET(self):  # model_info: /api/models/{owner}/{name}[/revision/{rev}]
        parts = unquote(urlparse(self.path).path).split("/")
        repo = "/".join(parts[3:5])
        self._json({"id": repo, "sha": commit(repo), "siblings": []})

    def do_POST(self):  # get_paths_info: /api/models/{owner}/{name}/paths-info/{rev}
        parts = unquote(urlparse(self.path).path).split("/")
        repo = "/".join(parts[3:5])
        assert parts[6] == commit(repo), "paths-info must be asked at the resolved revision"
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        entries = []
        for path in form["paths"]:
            size, digest = blob(repo, path)
            entry = {"type": "file", "path": path, "size": size, "oid": digest[:40]}
            if not path.endswith(NOT_LFS):
                entry["lfs"] = {"oid": digest, "size": size, "pointerSize": 134}
            entries.append(entry)
        self._json(entries)

    def _json(self, data) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
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
    wanted = {(repo, part.file) for name in cluster.services for repo, part in needed_files(cluster, name)}
    lock = load_model_lock(lock_path)
    locked = {(e.repo, e.file) for e in lock.files.values() if e.verified}
    refused = {w for w in wanted if w[1].endswith(NOT_LFS)}
    assert refused, "the homelab should need a file the stand-in reports without LFS"
    assert locked == wanted - refused, run.stdout + run.stderr
    for repo, file in locked:
        entry = lock.get(repo, file)
        assert (entry.size, entry.sha256) == blob(repo, file)
        assert entry.revision == commit(repo)
        assert entry.url == f"{hub}/{repo}/resolve/{commit(repo)}/{file}"
    # A file the hub has no sha256 for stays unlocked, and says why; the command fails.
    assert run.returncode == 1
    for repo, file in refused:
        assert f"{repo}/{file}  not locked (ValueError: {repo}/{file}: not an LFS file" in run.stdout


def test_a_lock_path_in_no_directory_is_a_usage_error(tmp_path):
    run = subprocess.run([str(Path(sys.executable).parent / "aistack"), "models", "lock", "--inventory", str(HOMELAB),
                          "--lock", str(tmp_path / "missing" / "models.yaml")], cwd=PROJECT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 2 and "its directory does not exist" in run.stderr
