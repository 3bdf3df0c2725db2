"""The committed Python locks, and the one command that updates them (`make lock`).

Nothing the project installs is resolved when it is installed: the project's venv comes from
``locks/python/dev.txt`` (``make deps``), and each locally built image's environment from the
``requirements.lock`` in its folder (LiteLLM, Ray). Each lock names every package, transitive
ones included, at one exact version with its hashes, and pip installs it with
``--require-hashes``. Updating one is a deliberate act: this module resolves the inputs
(``pyproject.toml``, ``locks/python/venv-tools.in``, each image's ``requirements.in``) with
uv for the interpreter and platform that install them, and rewrites the locks; review the diff.

    python -m aistack.sandbox.pylocks [dev] [litellm] [ray]      # default: all
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..model.locks import PROJECT_DIR
from .images import IMAGES_DIR, LOCK_FILE, TARGET_PYTHON

# The control machine's interpreter (Debian bookworm + the project's CPython 3.11) and the test
# hosts' images (Debian trixie: CPython 3.13, glibc 2.41, so manylinux_2_28 wheels).
DEV_PYTHON = "3.11"
PLATFORM = "x86_64-manylinux_2_28"


@dataclass(frozen=True)
class Lock:
    name: str
    inputs: tuple[Path, ...]
    output: Path
    python: str
    extra_args: tuple[str, ...] = ()


LOCKS = {
    lock.name: lock
    for lock in (
        Lock("dev", (PROJECT_DIR / "pyproject.toml", PROJECT_DIR / "locks/python/venv-tools.in"),
             PROJECT_DIR / "locks/python/dev.txt", DEV_PYTHON,
             ("--extra", "test", "--no-emit-package", "aistack")),
        *(Lock(image, (IMAGES_DIR / image / "requirements.in",), IMAGES_DIR / image / LOCK_FILE, TARGET_PYTHON,
               ("--only-binary", ":all:"))  # the image build downloads wheels only
          for image in ("litellm", "ray")),
    )
}


def uv() -> str:
    """uv from the venv (locks/python/dev.txt pins it), else on PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise SystemExit("uv not found: `make deps` installs it into .venv")
    return found


def update(lock: Lock) -> None:
    """Resolve ``lock.inputs`` afresh and rewrite ``lock.output`` (every version and hash)."""
    cmd = [uv(), "pip", "compile", *(str(p.relative_to(PROJECT_DIR)) for p in lock.inputs),
           "--python-version", lock.python, "--python-platform", PLATFORM, "--generate-hashes",
           "--upgrade", *lock.extra_args, "-o", str(lock.output.relative_to(PROJECT_DIR))]
    print(f"{lock.name}: {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, cwd=PROJECT_DIR, check=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Re-resolve the committed Python locks (then review the diff).")
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"locks to update: {', '.join(LOCKS)} (default: all)")
    args = ap.parse_args(argv)
    if unknown := sorted(set(args.names) - set(LOCKS)):
        ap.error(f"no such lock: {', '.join(unknown)} (known: {', '.join(LOCKS)})")
    for name in args.names or list(LOCKS):
        update(LOCKS[name])


if __name__ == "__main__":
    main()
