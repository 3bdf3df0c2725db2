"""What deploy decides on the control machine, before any host is touched."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from aistack.inventory import read_inventory
from aistack.models_lock import (
    LockedFile,
    ModelLock,
    load_model_lock,
    lock_local,
    write_model_lock,
)
from aistack.operations import secret_script
from aistack.render.containers import Secret
from aistack.rollout import RolloutRefused, prepare
from tests.conftest import HOMELAB, HOMELAB_ALLOW_ALL, PROJECT, aistack

SANDBOX = PROJECT / "inventory" / "sandbox.py"


def test_homelab_is_refused_until_its_images_and_models_are_locked():
    with pytest.raises(RolloutRefused) as refused:
        prepare(read_inventory(HOMELAB), model_lock=ModelLock(), local_ids={})
    text = str(refused.value)
    assert "host main: services.chat-main.image: lmsysorg/sglang:v0.5.19-cu129 has no digest" in text
    assert ("host edge: services.gemma-edge.model: unsloth/gemma-4-E2B-it-GGUF/mmproj-F16.gguf has no size and sha256"
            in text)
    # Every host with a started service is named, not just the first one found.
    assert {p.host for p in refused.value.problems} == {"main", "edge", "orin", "nx"}


def test_explicit_allowances_let_the_homelab_through():
    rollout = prepare(read_inventory(HOMELAB), HOMELAB_ALLOW_ALL, model_lock=ModelLock(), local_ids={})
    # Exporters first, engines, what routes to them, and last what watches them all.
    assert [s.service for s in rollout.hosts["main"].stacks] == [
        "gpu-exporter-main", "node-exporter-main", "chat-main", "gateway", "webui", "proxy", "prometheus", "grafana"]
    assert "lmsysorg/sglang:v0.5.19-cu129" in [i.ref for i in rollout.hosts["main"].images]


def test_a_block_refuses_the_run_with_the_plans_reason():
    with pytest.raises(RolloutRefused) as refused:
        prepare(read_inventory(SANDBOX), ["services.gemma-edge.ctx=256"], local_ids={
            "llamacpp-cpu": "sha256:" + "a" * 64, "sandbox-litellm": "sha256:" + "b" * 64, "sandbox-nginx": "sha256:" + "c" * 64})
    (problem,) = refused.value.problems
    assert problem.host == "edge" and problem.field == "slot-context gemma-edge"


def test_force_checks_turns_that_block_into_a_warning_that_says_so():
    run = aistack("plan", "--inventory", str(SANDBOX), "--set", "services.gemma-edge.ctx=256",
                  "--set", 'force_checks=["slot-context"]')
    assert run.code == 10
    assert "forced by force_checks" in run.stdout


def test_locally_built_images_need_their_local_ids():
    with pytest.raises(RolloutRefused) as refused:
        prepare(read_inventory(SANDBOX), local_ids={})
    assert "aistack-llamacpp:latest is built on this machine and not locked yet" in str(refused.value)


def test_secret_script_generates_values_once_on_the_target(tmp_path):
    gateway = Secret(str(tmp_path / "s" / "gateway.env"), {"LITELLM_MASTER_KEY": "sk-"})
    webui = Secret(str(tmp_path / "s" / "webui.env"), {"WEBUI_SECRET_KEY": "", "POSTGRES_PASSWORD": ""},
                   {"DATABASE_URL": "postgresql://u:{POSTGRES_PASSWORD}@127.0.0.1:5432/db"},
                   {"OPENAI_API_KEYS": (gateway.path, "LITELLM_MASTER_KEY")})
    for secret in (gateway, webui):
        run = subprocess.run(["sh", "-c", secret_script(secret)], capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout == "" and run.stderr == ""  # nothing printed
    env = dict(line.split("=", 1) for line in open(webui.path).read().splitlines())
    key = open(gateway.path).read().strip().split("=", 1)[1]
    assert key.startswith("sk-") and len(key) == 3 + 64
    assert env["OPENAI_API_KEYS"] == key
    assert env["DATABASE_URL"] == f"postgresql://u:{env['POSTGRES_PASSWORD']}@127.0.0.1:5432/db"
    assert env["WEBUI_SECRET_KEY"] != env["POSTGRES_PASSWORD"]
    assert oct(os.stat(webui.path).st_mode & 0o777) == "0o600"
    assert secret_script(gateway).count(key) == 0  # values exist only on the target


def test_the_model_lock_records_a_local_file_by_its_real_checksum(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"gguf" * 1000)
    entry = lock_local("some/repo", model)
    assert entry.size == 4000
    assert entry.sha256 == hashlib.sha256(b"gguf" * 1000).hexdigest()
    write_model_lock(ModelLock(files={entry.key: entry}), tmp_path / "models.yaml")
    assert load_model_lock(tmp_path / "models.yaml").get("some/repo", "m.gguf") == entry


def test_an_entry_without_a_checksum_is_not_verified():
    assert not LockedFile(repo="r", file="f", size=10).verified
