"""Locally built container images for the sandbox.

Nothing can be pulled from a registry here, so every image the sandbox runs is built on
this machine:

- ``aistack-base:trixie``: ``debootstrap --variant=minbase trixie`` (debootstrap's built-in
  mirror) piped into ``docker import``. Built once; skipped while the image exists.
- ``aistack-llamacpp``, ``aistack-litellm``, ``aistack-nginx``, ``aistack-testhost``,
  ``aistack-ray``, ``aistack-prometheus``, ``aistack-node-exporter``: the Dockerfiles under
  ``images/<name>/``, each ``FROM aistack-base:trixie``.

Artifacts that come from PyPI (the llama.cpp source inside the llama-cpp-python sdist, pinned by
sha256; the LiteLLM and Ray wheels, exactly those their image's requirements.lock names, hashes
checked) are downloaded on the host with pip into a cache and staged into the build context, so
builds never need the network for anything but Debian packages, and resolve nothing.

Caching: each image carries a label with a hash of its build inputs (context files, the lock
among them, build args, pins and the base image id); it is rebuilt only when that hash changes.

    python -m aistack.sandbox.images [NAME ...] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import BuildError, ImageNotFound

from ..models_lock import sha256_of

log = logging.getLogger(__name__)

BASE_IMAGE = "aistack-base:trixie"
BASE_SUITE = "trixie"
IMAGES_DIR = Path(__file__).parent / "images"
CACHE_DIR = Path(os.environ.get("AISTACK_CACHE", Path.home() / ".cache" / "aistack"))
LABEL_HASH = "org.aistack.context-hash"

# llama-cpp-python's sdist vendors llama.cpp; 0.3.36 bundles llama.cpp b11312 (0c1e57098).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_BUILD_NUMBER = "11312"
LLAMA_BUILD_COMMIT = "0c1e570"
# Python environments (LiteLLM, Ray) install from the committed, hashed requirements.lock in
# their image's folder, resolved from its requirements.in by `make lock` (aistack.sandbox.pylocks):
# nothing is resolved at build time, and the lock is part of the image's context hash.
LOCK_FILE = "requirements.lock"
# Wheels for the base image's interpreter (Debian trixie: CPython 3.13, glibc 2.41).
TARGET_PYTHON = "3.13"
TARGET_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                    "manylinux2014_x86_64", "linux_x86_64")
# What stage_locked_wheels picks wheels for: part of the identity of every image it stages.
WHEEL_TARGET = {"python": TARGET_PYTHON, "platforms": " ".join(TARGET_PLATFORMS)}


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")


def fetch_llama_cpp_source(ctx: Path) -> None:
    """Stage the llama-cpp-python sdist (llama.cpp source inside) into the build context."""
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    cached = CACHE_DIR / "sdist" / name
    if not cached.exists():
        _pip("download", "--no-deps", "--no-binary", ":all:",
             f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(cached.parent))
    digest = sha256_of(cached)
    if digest != LLAMA_CPP_PYTHON_SHA256:
        raise RuntimeError(f"{cached}: sha256 {digest} != pinned {LLAMA_CPP_PYTHON_SHA256}")
    shutil.copy2(cached, ctx / name)


PINNED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+( *;[^\\]+)?\Z")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\Z")


def unpinned_requirements(text: str) -> list[str]:
    """What in a requirements lock is not one exact version with its sha256 hashes: each such
    entry, quoted. An empty list is a lock pip can install with --require-hashes, resolving nothing."""
    problems = []
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        entry = entry.split("#", 1)[0].strip()  # a hash holds no '#'; uv's "# via" notes go
        if not entry:
            continue
        spec, *options = re.split(r" +(?=--)", entry)
        if not PINNED.match(spec.strip()):
            problems.append(f"{spec.strip()!r}: not one exact version (name==version)")
        elif not options or not all(HASH.match(o.strip()) for o in options):
            problems.append(f"{spec.strip()!r}: no sha256 hash, or an option other than --hash")
    return problems


def stage_locked_wheels(ctx: Path) -> None:
    """Download the wheels ``ctx/requirements.lock`` names, hashes checked, for the base image's
    interpreter (cp313, manylinux), once into a cache keyed by the lock, then copy them into
    ctx/wheels. The Dockerfile installs them with ``--require-hashes --no-deps --no-index``."""
    lock = ctx / LOCK_FILE
    if problems := unpinned_requirements(lock.read_text()):
        raise RuntimeError(f"{lock.name}: " + "; ".join(problems) + " (`make lock` writes a full lock)")
    cached = CACHE_DIR / "wheels" / f"lock-{sha256_of(lock)[:16]}-cp{TARGET_PYTHON.replace('.', '')}"
    done = cached / ".complete"
    if not done.exists():
        platforms = [a for p in TARGET_PLATFORMS for a in ("--platform", p)]
        _pip("download", "--require-hashes", "--no-deps", "-r", str(lock), "-d", str(cached),
             "--only-binary=:all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
             *platforms)
        done.touch()
    shutil.copytree(cached, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))


@dataclass(frozen=True)
class ImageSpec:
    name: str
    build_args: dict[str, str] = field(default_factory=dict)
    # Stages downloaded artifacts into the context; what it fetches must be pinned in
    # build_args, pins or a context file such as a lock (all part of the cache hash).
    fetch: Callable[[Path], None] | None = None
    pins: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"{self.name}:latest"

    @property
    def context_dir(self) -> Path:
        return IMAGES_DIR / self.name.removeprefix("aistack-")


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("aistack-llamacpp", {
            "LLAMA_CPP_PYTHON_VERSION": LLAMA_CPP_PYTHON_VERSION,
            "LLAMA_BUILD_NUMBER": LLAMA_BUILD_NUMBER,
            "LLAMA_BUILD_COMMIT": LLAMA_BUILD_COMMIT,
        }, fetch_llama_cpp_source, {"sdist_sha256": LLAMA_CPP_PYTHON_SHA256}),
        ImageSpec("aistack-litellm", fetch=stage_locked_wheels, pins=WHEEL_TARGET),
        ImageSpec("aistack-nginx"),
        ImageSpec("aistack-testhost"),
        ImageSpec("aistack-ray", fetch=stage_locked_wheels, pins=WHEEL_TARGET),
        ImageSpec("aistack-prometheus"),
        ImageSpec("aistack-node-exporter"),
    )
}


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    return client or docker.from_env(timeout=600)


def _image(client: docker.DockerClient, ref: str):
    try:
        return client.images.get(ref)
    except ImageNotFound:
        return None


# apt settings for images (as in Debian's official images): no .deb or pkgcache left in
# layers, no translations.
APT_DOCKER_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
}


def _prepare_rootfs(rootfs: Path) -> None:
    """Make a debootstrapped rootfs image-friendly: apt config, no caches."""
    conf = rootfs / "etc/apt/apt.conf.d"
    for name, text in APT_DOCKER_CONF.items():
        (conf / name).write_text(text)
    for d in ("var/cache/apt", "var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (rootfs / d).glob("*"):
            if p.is_file():
                p.unlink()


# --- base image -------------------------------------------------------------------------


def ensure_base_image(client: docker.DockerClient | None = None, tag: str = BASE_IMAGE,
                      suite: str = BASE_SUITE, force: bool = False):
    """debootstrap a minbase rootfs and ``docker import`` it, unless ``tag`` exists."""
    client = _client(client)
    existing = _image(client, tag)
    if existing is not None and not force:
        return existing
    if os.geteuid() != 0:
        raise PermissionError("building the base image runs debootstrap: run as root")
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap not found: run scripts/bootstrap.sh")
    repo, _, version = tag.partition(":")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aistack-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        log.info("debootstrap --variant=minbase %s %s", suite, rootfs)
        subprocess.run(["debootstrap", "--variant=minbase", suite, str(rootfs)], check=True,
                       stdout=subprocess.DEVNULL)
        _prepare_rootfs(rootfs)
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."],
                       check=True)
        log.info("docker import -> %s", tag)
        client.api.import_image_from_file(
            str(tarball), repository=repo, tag=version or "latest",
            changes=['CMD ["/bin/bash"]', "ENV LANG=C.UTF-8"])
    log.info("base image %s built in %.0fs", tag, time.monotonic() - started)
    return client.images.get(tag)


# --- derived images ---------------------------------------------------------------------


def context_hash(spec: ImageSpec, base_id: str) -> str:
    """Hash of everything that goes into a build except fetched artifacts (pinned in args)."""
    h = hashlib.sha256()
    h.update(f"base={base_id}\n".encode())
    for key in sorted(spec.build_args):
        h.update(f"arg {key}={spec.build_args[key]}\n".encode())
    for key in sorted(spec.pins):
        h.update(f"pin {key}={spec.pins[key]}\n".encode())
    for path in sorted(p for p in spec.context_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(spec.context_dir).as_posix()
        if "__pycache__" in rel:
            continue
        h.update(f"file {rel} {path.stat().st_mode & 0o111:o}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def ensure_image(name: str, client: docker.DockerClient | None = None, force: bool = False):
    """Return image ``name`` (e.g. ``aistack-llamacpp``), building it if its inputs changed."""
    client = _client(client)
    spec = IMAGES[name]
    base = ensure_base_image(client)
    want = context_hash(spec, base.id)
    existing = _image(client, spec.tag)
    if existing is not None and not force and existing.labels.get(LABEL_HASH) == want:
        log.info("%s is up to date", spec.tag)
        return existing
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"{name}-ctx-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(spec.context_dir, ctx, ignore=shutil.ignore_patterns("__pycache__"))
        if spec.fetch is not None:
            spec.fetch(ctx)
        log.info("building %s", spec.tag)
        _build(client, ctx, spec.tag, spec.build_args, {LABEL_HASH: want})
    log.info("%s built in %.0fs", spec.tag, time.monotonic() - started)
    return client.images.get(spec.tag)


HEARTBEAT_S = 30  # a long step (llama.cpp's compile) still says where it is this often


def _build(client: docker.DockerClient, ctx: Path, tag: str, build_args: dict[str, str],
           labels: dict[str, str]) -> None:
    """Build with the engine's builder. Each "Step N/M" line is logged at INFO, and every
    HEARTBEAT_S seconds inside a step its elapsed time and latest output line, so a build of
    many minutes is never silent; the rest goes to DEBUG (-v)."""
    output: list[str] = []
    started = last_said = time.monotonic()
    step = "starting"
    for chunk in client.api.build(path=str(ctx), tag=tag, buildargs=build_args, labels=labels,
                                  rm=True, forcerm=True, pull=False, decode=True):
        if "stream" in chunk:
            line = chunk["stream"].rstrip()
            if not line:
                continue
            output.append(line)
            now = time.monotonic()
            if line.startswith("Step "):
                step, last_said = line.split(" :", 1)[0].removeprefix("Step "), now
                log.info("%s: step %s (%s)%s", tag, step, _elapsed(now - started), line.partition(":")[2][:90])
            elif now - last_said >= HEARTBEAT_S:
                last_said = now
                log.info("%s: step %s, %s: %s", tag, step, _elapsed(now - started), line.strip()[:100])
            else:
                log.debug("%s", line)
        if "error" in chunk:
            tail = "\n".join(output[-30:])
            raise BuildError(f"{tag}: {chunk['error']}\n{tail}", output)


def _elapsed(seconds: float) -> str:
    return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


def ensure_images(names: list[str] | None = None, client: docker.DockerClient | None = None,
                  force: bool = False) -> dict[str, object]:
    client = _client(client)
    return {n: ensure_image(n, client, force=force) for n in (names or list(IMAGES))}


def load_image_into(container: str, image: str) -> None:
    """``docker save IMAGE | docker exec -i CONTAINER docker load`` (into a test host's engine)."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    try:
        subprocess.run(["docker", "exec", "-i", container, "docker", "load", "-q"],
                       stdin=save.stdout, check=True, stdout=subprocess.DEVNULL)
    finally:
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0:
            raise subprocess.CalledProcessError(save.returncode, ["docker", "save", image])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the sandbox images (cached).")
    ap.add_argument("names", nargs="*", help=f"images to build (default: all of {', '.join(IMAGES)})")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("-v", "--verbose", action="store_true", help="stream build output")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    client = _client(None)
    for name in args.names or list(IMAGES):
        started = time.monotonic()
        image = ensure_image(name, client, force=args.force)
        size = image.attrs.get("Size", 0) / 1e6
        print(f"{name}: {image.short_id} {size:.0f} MB ({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
