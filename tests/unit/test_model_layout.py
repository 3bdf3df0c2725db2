"""Every file a server opens, locked and laid out where that server reads it (issue 14).

speaches and NanoOWL resolve a hub id in the Hugging Face cache; SGLang reads a folder. Both
open config and tokenizer files beside the weights, which the image facts list as globs.
"""

from __future__ import annotations

import hashlib

import pytest

from aistack.inventory import load_cluster, read_inventory
from aistack.model.catalogue import builtin
from aistack.models_lock import LockedFile, ModelLock, needed_files
from aistack.rollout import RolloutRefused, prepare
from tests.conftest import HOMELAB, HOMELAB_ALLOW_ALL

WHISPER = builtin()["faster-whisper-base"].files["model"]
# Everything but Whisper is let through unverified, so each test sees only the lane it is about.
ALLOW_BUT_WHISPER = [HOMELAB_ALLOW_ALL[0], HOMELAB_ALLOW_ALL[1].replace('"faster-whisper-base",', "")]


def locked(repo: str, file: str, revision: str | None) -> LockedFile:
    return LockedFile(repo=repo, file=file, revision=revision, size=len(file),
                      sha256=hashlib.sha256(file.encode()).hexdigest(), url=f"https://hub.test/{repo}/{file}")


def whisper_lock(*companions: str) -> ModelLock:
    files = [locked(WHISPER.repo, f, WHISPER.revision) for f in ("model.bin", *companions)]
    return ModelLock(files={f.key: f for f in files})


def test_speaches_gets_the_snapshot_it_resolves_the_hub_id_in():
    lock = whisper_lock("config.json", "tokenizer.json", "vocabulary.txt", "README.md", "onnx/encoder.onnx")
    edge = prepare(read_inventory(HOMELAB), ALLOW_BUT_WHISPER, model_lock=lock, local_ids={}).hosts["edge"]
    snapshot = f"/srv/models/hf/models--Systran--faster-whisper-base/snapshots/{WHISPER.revision}"
    assert sorted(m.dest for m in edge.models) == [
        f"{snapshot}/{f}" for f in ("README.md", "config.json", "model.bin", "tokenizer.json", "vocabulary.txt")]
    assert edge.model_refs == {"/srv/models/hf/models--Systran--faster-whisper-base/refs/main": WHISPER.revision}
    whisper = edge.render.stacks["whisper"].containers[0]
    assert whisper.environment["HF_HUB_CACHE"] == "/models/hf"


def test_weights_alone_are_refused_naming_each_file_the_server_opens_beside_them():
    with pytest.raises(RolloutRefused) as refused:
        prepare(read_inventory(HOMELAB), ALLOW_BUT_WHISPER, model_lock=whisper_lock("config.json"), local_ids={})
    problems = {(p.host, p.field, p.message.split(":")[1].strip()) for p in refused.value.problems}
    assert problems == {("edge", "services.whisper.model", f"no locked file matches {glob!r}, which speaches-cuda "
                         "opens beside the weights") for glob in ("tokenizer.json", "vocabulary.*", "README.md")}


def test_companions_locked_at_another_revision_than_the_weights_do_not_count():
    lock = whisper_lock()
    for f in ("config.json", "tokenizer.json", "vocabulary.txt", "README.md"):
        entry = locked(WHISPER.repo, f, "0" * 40)
        lock.files[entry.key] = entry
    with pytest.raises(RolloutRefused) as refused:
        prepare(read_inventory(HOMELAB), ALLOW_BUT_WHISPER, model_lock=lock, local_ids={})
    assert len(refused.value.problems) == 4


def test_sglang_reads_config_and_tokenizer_from_the_folder_beside_its_shards():
    repo = "openai/gpt-oss-20b"
    shards = builtin()["gpt-oss-20b"].files["mxfp4"]
    files = [locked(repo, s.file, "f" * 40) for s in shards]
    files += [locked(repo, f, "f" * 40) for f in ("config.json", "tokenizer_config.json", "tokenizer.json",
                                                   "chat_template.jinja", "original/model.safetensors")]
    allow = [HOMELAB_ALLOW_ALL[0], HOMELAB_ALLOW_ALL[1].replace('"gpt-oss-20b",', "")]
    main = prepare(read_inventory(HOMELAB), allow, model_lock=ModelLock(files={f.key: f for f in files}),
                   local_ids={}).hosts["main"]
    dests = sorted(m.dest for m in main.models)
    assert dests == sorted(f"/srv/models/{repo}/{f}" for f in [s.file for s in shards] + [
        "config.json", "tokenizer_config.json", "tokenizer.json", "chat_template.jinja"])
    assert main.model_refs == {}


def test_a_model_baked_into_its_image_is_neither_locked_nor_fetched():
    # Kokoro-FastAPI downloads kokoro-v1_0.pth at image build; the container never mounts /srv/models.
    cluster = load_cluster(HOMELAB)
    assert cluster.locked_image(cluster.image_key("kokoro")).model_layout == "in-image"
    assert needed_files(cluster, "kokoro") == []
    assert needed_files(cluster, "whisper")  # a server that reads the models folder still gets its files
