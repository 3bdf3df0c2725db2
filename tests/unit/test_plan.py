"""`aistack plan` on the shipped homelab inventory and the seed's what-if questions."""

import pytest

from aistack.capacity import plan
from aistack.inventory import load_cluster
from tests.conftest import HOMELAB, aistack

EDGE = "services.gemma-edge"
# The seed's VRAM table was measured before the second Whisper instance arrived (000).
ONE_WHISPER = "services.whisper.instances=1"


def edge_gpu(overrides):
    cluster = load_cluster(HOMELAB, overrides)
    return next(b for b in plan(cluster).budgets if b.host == "edge")


def test_homelab_plans_pass_or_warn_with_reasons():
    run = aistack("plan", "--inventory", str(HOMELAB), "--json")
    assert run.code in (0, 10), run.stdout + run.stderr
    data = run.json
    assert data["decision"] in ("PASS", "WARN")
    assert not [f for f in data["findings"] if f["level"] == "BLOCK"]
    for finding in data["findings"]:
        assert finding["message"]
    if run.code == 10:
        assert [f for f in data["findings"] if f["level"] == "WARN"]


def test_plan_prints_tables_and_the_decision():
    run = aistack("plan", "--inventory", str(HOMELAB))
    for heading in ("Memory per accelerator", "Generation lanes", "Timeout chain", "Checks", "decision:"):
        assert heading in run.stdout


def test_seed_edge_q4_0_at_32k_with_4_slots_frees_memory():
    # The figures themselves: test_calibrated_memory.py.
    fp16 = edge_gpu([ONE_WHISPER, f"{EDGE}.ctx=131072", f"{EDGE}.parallel=1", f"{EDGE}.cache_type_k=f16", f"{EDGE}.cache_type_v=f16"])
    q4 = edge_gpu([ONE_WHISPER])
    assert q4.free_mib > fp16.free_mib + 500
    cluster = load_cluster(HOMELAB, [ONE_WHISPER])
    lane = plan(cluster).lanes["gemma-edge"]
    assert (lane.slots, lane.slot_context) == (4, 8192)
    assert lane.fits_request


def test_shipped_edge_fits_with_both_whisper_instances():
    assert edge_gpu([]).free_mib > 0


def test_8192_ctx_with_8_slots_blocks_on_a_1024_token_slot():
    run = aistack("plan", "--inventory", str(HOMELAB), "--set", f"{EDGE}.ctx=8192", "--set", f"{EDGE}.parallel=8", "--json")
    assert run.code == 20
    blocks = [f for f in run.json["findings"] if f["level"] == "BLOCK"]
    assert len(blocks) == 1
    (block,) = blocks
    assert block["check"] == "slot-context" and block["host"] == "edge" and block["subject"] == "gemma-edge"
    assert "per-slot context 1,024" in block["message"]
    assert "image" in block["message"]


def test_unified_kv_shares_one_pool():
    run = aistack("plan", "--inventory", str(HOMELAB), "--set", f"{EDGE}.ctx=8192", "--set", f"{EDGE}.parallel=8", "--set", f"{EDGE}.kv_unified=true", "--json")
    lane = run.json["lanes"]["gemma-edge"]
    assert lane["slot_context"] == 8192 and lane["unified_kv"]
    assert lane["concurrent"] == 8192 // lane["request_tokens"]


def test_orin_overcommitted_once_every_layer_is_counted_blocks():
    # fp16 KV at full context leaves under 5% of the shared memory (a WARN); a 1.5 GB OS reserve on
    # top and the OS, the CPU side, NanoOWL's engine and the image buffers run it out (000).
    fp16 = ["--set", "services.gemma-orin.cache_type_k=f16", "--set", "services.gemma-orin.cache_type_v=f16",
            "--set", "services.gemma-orin.ctx=131072"]
    tight = aistack("plan", "--inventory", str(HOMELAB), *fp16, "--json")
    assert [f["subject"] for f in tight.json["findings"] if f["check"] == "memory" and f["level"] == "WARN"] == ["orin/unified"]
    run = aistack("plan", "--inventory", str(HOMELAB), *fp16, "--set", "hosts.orin.os_reserve_mib=1536", "--json")
    assert run.code == 20
    (block,) = [f for f in run.json["findings"] if f["level"] == "BLOCK"]
    assert block["check"] == "memory" and block["subject"] == "orin/unified"
    assert "unified memory (OS, CPU side, GPU, KV, engines) overcommitted" in block["message"]
    orin = next(b for b in run.json["budgets"] if b["host"] == "orin")
    whats = {i["what"] for i in orin["items"]}
    assert {"kernel and system reserve", "TensorRT engine", "CPU side (process RAM)"} <= whats


def test_nx_orin_swap_is_a_small_data_edit():
    # The seed's earlier layout: Gemma on the NX, retrieval on the Orin. Only `host:` lines change;
    # each stack picks the image for its new host's L4T release by itself.
    swapped = [f"services.{s}.host=nx" for s in ("gemma-orin",)] + [
        f"services.{s}.host=orin" for s in ("qdrant", "embed", "rerank")
    ]
    cluster = load_cluster(HOMELAB, swapped)
    assert cluster.services["gemma-orin"].host == "nx"
    assert cluster.image_key("gemma-orin") == "llamacpp-jetson-r35-site"
    assert cluster.image_key("embed") == "llamacpp-jetson-r36-site"


def _engine_blocks(overrides):
    run = aistack("plan", "--inventory", str(HOMELAB), "--json", *(a for o in overrides for a in ("--set", o)))
    return run.code, [f for f in run.json["findings"] if f["check"] == "engine-build" and f["level"] == "BLOCK"]


def test_the_published_jetson_images_cannot_run_their_lanes():
    """dustynv/llama_cpp b5283 predates gemma4 and server --mmproj; the r35.4.1 image predates --rerank."""
    code, blocks = _engine_blocks(["services.gemma-orin.image=llamacpp-jetson-r36", "services.rerank.image=llamacpp-jetson-r35"])
    assert code == 20
    messages = {(f["host"], f["subject"], f["message"]) for f in blocks}
    assert ("orin", "gemma-orin", "image llamacpp-jetson-r36 carries llama.cpp b5283; gemma-4-e2b-it (architecture gemma4) "
            "loads from b8637") in messages
    assert ("orin", "gemma-orin", "image llamacpp-jetson-r36 carries llama.cpp b5283; it renders --mmproj, "
            "which llama-server accepts from b5331") in messages
    assert any(h == "nx" and s == "rerank" and "b3650" in m and "--rerank" in m for h, s, m in messages)
    # The embedding lane needs neither: the old NX image still serves it.
    assert not [f for f in blocks if f["subject"] == "embed"]


def test_the_site_built_jetson_images_plan_clean():
    code, blocks = _engine_blocks([])
    assert code in (0, 10) and blocks == []


def test_an_image_without_a_recorded_build_blocks_its_lane():
    code, blocks = _engine_blocks(["services.embed.image=speaches-jetson-r36", "services.embed.host=orin"])
    assert code == 20 and any("records no llama.cpp build" in f["message"] for f in blocks), blocks


def test_json_and_tables_share_one_decision():
    as_json = aistack("plan", "--inventory", str(HOMELAB), "--json")
    as_text = aistack("plan", "--inventory", str(HOMELAB))
    assert as_json.code == as_text.code
    assert f"decision: {as_json.json['decision']}" in as_text.stdout


@pytest.mark.parametrize("layer", ["webui_client_s", "gateway_s", "backend_s"])
def test_raising_an_inner_timeout_above_its_outer_layer_blocks(layer):
    run = aistack("plan", "--inventory", str(HOMELAB), "--set", f"timeouts.{layer}=301", "--json")
    assert run.code == 20
    assert any(f["check"] == "timeout-chain" and f["level"] == "BLOCK" for f in run.json["findings"])
