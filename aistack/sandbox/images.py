"""Locally built container images for the sandbox.

Nothing can be pulled from a registry here, so every image the sandbox runs is built on
this machine:

- ``aistack-base:trixie``: ``debootstrap --variant=minbase trixie`` (debootstrap's built-in
  mirror) piped into ``docker import``. Built once; skipped while the image exists.
- ``aistack-llamacpp``, ``aistack-litellm``, ``aistack-nginx``, ``aistack-testhost``,
  ``aistack-ray``, ``aistack-prometheus``, ``aistack-node-exporter``: the Dockerfiles under
  ``images/<name>/``, each ``FROM aistack-base:trixie``.

Artifacts that come from PyPI (the llama.cpp source inside the llama-cpp-python sdist, the
LiteLLM and Ray wheels) are downloaded on the host with pip into a cache and staged into the
build context, so builds never need the network for anything but Debian packages.

Caching: each image carries a label with a hash of its build inputs (context files, build
args, pinned artifact versions and the base image id); it is rebuilt only when that hash
changes.

    python -m aistack.sandbox.images [NAME ...] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
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
LITELLM_VERSION = "1.106.2"
# LiteLLM's error handler imports prisma even without a database: without it a request that
# lacks the master key turns into a 500 instead of a 401 (seen with 1.106.2 here).
PRISMA_VERSION = "0.15.0"
# LiteLLM's prometheus callback imports prometheus_client, which only its `proxy-runtime` extra
# brings: without it the proxy fails at start once monitoring is on (seen with 1.106.2 here).
PROMETHEUS_CLIENT_VERSION = "0.26.0"
# Newest Ray out before vLLM 0.11.0 (2025-10-04, needs ray>=2.48.0); has cp313 wheels.
RAY_VERSION = "2.49.2"
# Wheels for the base image's interpreter (Debian trixie: CPython 3.13, glibc 2.41).
TARGET_PYTHON = "3.13"
TARGET_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                    "manylinux2014_x86_64", "linux_x86_64")


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


def _stage_wheels(ctx: Path, cache_name: str, requirements: list[str]) -> None:
    """Download wheels for the base image's interpreter (cp313, manylinux) once into the cache,
    then copy them into ctx/wheels."""
    cached = CACHE_DIR / "wheels" / f"{cache_name}-cp{TARGET_PYTHON.replace('.', '')}"
    done = cached / ".complete"
    if not done.exists():
        platforms = [a for p in TARGET_PLATFORMS for a in ("--platform", p)]
        _pip("download", *requirements, "-d", str(cached),
             "--only-binary=:all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
             *platforms)
        done.touch()
    shutil.copytree(cached, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))


def fetch_litellm_wheels(ctx: Path) -> None:
    """Stage wheels for ``litellm[proxy]==LITELLM_VERSION`` and what its proxy imports."""
    _stage_wheels(ctx, f"litellm-{LITELLM_VERSION}-prisma-{PRISMA_VERSION}-prometheus-{PROMETHEUS_CLIENT_VERSION}",
                  [f"litellm[proxy]=={LITELLM_VERSION}", f"prisma=={PRISMA_VERSION}",
                   f"prometheus-client=={PROMETHEUS_CLIENT_VERSION}"])


def fetch_ray_wheels(ctx: Path) -> None:
    """Stage wheels for ``ray==RAY_VERSION`` (no extras)."""
    _stage_wheels(ctx, f"ray-{RAY_VERSION}", [f"ray=={RAY_VERSION}"])


@dataclass(frozen=True)
class ImageSpec:
    name: str
    build_args: dict[str, str] = field(default_factory=dict)
    # Stages downloaded artifacts into the context; what it fetches must be pinned in
    # build_args or pins (both are part of the cache hash).
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
        ImageSpec("aistack-litellm", {"LITELLM_VERSION": LITELLM_VERSION, "PRISMA_VERSION": PRISMA_VERSION,
                                      "PROMETHEUS_CLIENT_VERSION": PROMETHEUS_CLIENT_VERSION}, fetch_litellm_wheels,
                  {"python": TARGET_PYTHON, "platforms": " ".join(TARGET_PLATFORMS)}),
        ImageSpec("aistack-nginx"),
        ImageSpec("aistack-testhost"),
        ImageSpec("aistack-ray", {"RAY_VERSION": RAY_VERSION}, fetch_ray_wheels,
                  {"python": TARGET_PYTHON, "platforms": " ".join(TARGET_PLATFORMS)}),
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


def _build(client: docker.DockerClient, ctx: Path, tag: str, build_args: dict[str, str],
           labels: dict[str, str]) -> None:
    """Build with the engine's builder, streaming its output to the log."""
    output: list[str] = []
    for chunk in client.api.build(path=str(ctx), tag=tag, buildargs=build_args, labels=labels,
                                  rm=True, forcerm=True, pull=False, decode=True):
        if "stream" in chunk:
            line = chunk["stream"].rstrip()
            if line:
                output.append(line)
                # "Step N/M : ..." lines show progress; the rest only with -v.
                log.log(logging.INFO if line.startswith("Step ") else logging.DEBUG, "%s", line)
        if "error" in chunk:
            tail = "\n".join(output[-30:])
            raise BuildError(f"{tag}: {chunk['error']}\n{tail}", output)


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
