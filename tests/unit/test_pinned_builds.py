"""Nothing the project installs is resolved at install time: the venv and every locally built
image install from committed, hashed locks, and a lock is part of its image's identity."""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from aistack.sandbox import images
from aistack.sandbox.images import IMAGES, IMAGES_DIR, LOCK_FILE, context_hash, unpinned_requirements
from aistack.sandbox.pylocks import LOCKS

PROJECT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", re.M)


def _names(text: str) -> set[str]:
    """Package names of requirement lines (comments, options and hash lines skipped)."""
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and (m := NAME.match(line)):
            names.add(re.sub(r"[-_.]+", "-", m.group(1)).lower())
    return names


@pytest.mark.parametrize("lock", LOCKS.values(), ids=list(LOCKS))
def test_every_committed_lock_is_exact_and_hashed(lock):
    assert lock.output.exists(), f"{lock.output} missing: `make lock`"
    assert unpinned_requirements(lock.output.read_text()) == []


@pytest.mark.parametrize("text, why", [
    ("uvicorn>=0.33.0\n", "not one exact version"),
    ("litellm[proxy]\n", "not one exact version"),
    ("uvicorn==0.55.0\n", "no sha256 hash"),
    ("uvicorn==0.55.0 \\\n    --hash=md5:abc\n", "no sha256 hash"),
    ("-e .\n", "not one exact version"),
    ("--extra-index-url http://example.invalid/simple\n", "not one exact version"),
    ("https://example.invalid/x.whl\n", "not one exact version"),
])
def test_an_unpinned_requirement_is_named(text, why):
    problems = unpinned_requirements(text)
    assert len(problems) == 1 and why in problems[0], problems


def test_a_build_refuses_an_unpinned_lock(tmp_path):
    """The image builder checks the lock before it downloads anything from it."""
    (tmp_path / LOCK_FILE).write_text("uvicorn>=0.33.0\n")
    with pytest.raises(RuntimeError, match="uvicorn>=0.33.0"):
        images.stage_locked_wheels(tmp_path)


def test_each_image_lock_holds_its_inputs_at_their_versions():
    for lock in (lk for lk in LOCKS.values() if lk.name != "dev"):
        pins = dict(re.findall(r"^([a-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)", lock.inputs[0].read_text(), re.M))
        locked = dict(re.findall(r"^([a-z0-9._-]+)==(\S+)", lock.output.read_text(), re.M))
        assert pins and all(locked.get(name) == version for name, version in pins.items()), (lock.name, pins)


def test_the_dev_lock_covers_the_projects_dependencies():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["sandbox"],
              *(d for d in project["optional-dependencies"]["test"] if not d.startswith("aistack"))]
    locked = _names(LOCKS["dev"].output.read_text())
    assert {"pip", "setuptools", "uv"} <= locked
    assert not (missing := _names("\n".join(wanted)) - locked), missing


def test_make_installs_the_venv_from_the_lock_only():
    recipe = (PROJECT / "Makefile").read_text()
    assert f"--require-hashes --no-deps -r $(LOCK)" in recipe and "LOCK := locks/python/dev.txt" in recipe
    # The project itself: no dependency resolution, no build-isolation download of setuptools.
    assert "pip install --quiet --no-deps --no-build-isolation -e ." in recipe
    installs = [line for line in recipe.splitlines() if "pip install" in line]
    assert all("--no-deps" in line for line in installs), installs


@pytest.mark.parametrize("dockerfile", sorted(IMAGES_DIR.glob("*/Dockerfile")), ids=lambda p: p.parent.name)
def test_dockerfiles_install_python_packages_from_their_lock_only(dockerfile):
    text = re.sub(r"\\\n", " ", re.sub(r"(?m)^#.*\n", "", dockerfile.read_text()))
    for line in (ln for ln in text.splitlines() if "pip install" in ln):
        assert "--require-hashes" in line and "--no-deps" in line and "--no-index" in line, line
        assert f"-r /tmp/{LOCK_FILE}" in line and not re.search(r"\s\"?[A-Za-z][\w.-]*(\[|==|>=)", line), line
    if "pip install" in text:
        assert (dockerfile.parent / LOCK_FILE).exists() and (dockerfile.parent / "requirements.in").exists()


def test_a_changed_lock_changes_the_image_identity(tmp_path, monkeypatch):
    """What decides a rebuild (the context hash label) includes the lock's bytes."""
    spec = IMAGES["aistack-litellm"]
    ctx = tmp_path / "litellm"
    shutil.copytree(spec.context_dir, ctx)
    monkeypatch.setattr(images, "IMAGES_DIR", tmp_path)
    copy = replace(spec)
    before = context_hash(copy, "sha256:base")
    lock = ctx / LOCK_FILE
    lock.write_text(lock.read_text().replace("uvicorn==", "uvicorn==0", 1))
    assert context_hash(copy, "sha256:base") != before
