"""The planner's llama.cpp memory against what llama-server allocated on a real GPU, and the seed's edge card."""

import pytest

from aistack.capacity import MIB, kv_cache_bytes, llamacpp_memory, plan
from aistack.inventory import load_cluster
from aistack.model.calibration import llamacpp_table
from aistack.model.catalogue import builtin
from aistack.model.hosts import Accelerator
from tests.conftest import HOMELAB, aistack

TABLE = llamacpp_table()
H100 = Accelerator(model=TABLE.gpu, memory_mib=81559, compute_capability="9.0")
EDGE = "services.gemma-edge"
ONE_WHISPER = "services.whisper.instances=1"  # the seed's VRAM table predates the second instance (000)
SEED_FP16 = [ONE_WHISPER, f"{EDGE}.ctx=131072", f"{EDGE}.parallel=1", f"{EDGE}.cache_type_k=f16", f"{EDGE}.cache_type_v=f16"]


def predicted(point):
    items, unknown = llamacpp_memory(
        "lane", point.model, builtin()[point.model], quant=point.file_key, mmproj=point.mmproj, ctx=point.ctx,
        parallel=point.parallel, cache_type_k=point.cache_type_k, cache_type_v=point.cache_type_v,
        flash_attn=point.flash_attn, unified_kv=point.unified, ubatch=point.ubatch, acc=H100, unified_memory=False,
        runtime_mib=None,
    )
    assert not unknown
    return {i.what.split(" x ")[0] if i.what.startswith("KV") else i.what: i.mib for i in items}


@pytest.mark.parametrize("point", TABLE.points, ids=lambda p: p.name)
def test_every_item_and_the_process_land_within_10_percent_of_the_measured_point(point):
    items = predicted(point)
    measured = {
        "weights on the GPU": point.on_device("text", "model"),
        "compute buffers": point.on_device("text", "compute"),
    }
    if point.mmproj:
        measured["mmproj weights"] = point.on_device("mmproj", "weights")
        measured["vision compute buffers"] = point.on_device("mmproj", "compute")
    kv = point.on_device("text", "KV")
    if kv:
        measured[f"KV {point.cache_type_k}/{point.cache_type_v}"] = kv
    for what, mib in measured.items():
        assert items[what] == pytest.approx(mib, rel=0.10), what
    assert sum(items.values()) == pytest.approx(point.proc_mib, rel=0.10)


@pytest.mark.parametrize("point", [p for p in TABLE.points if p.on_device("text", "KV")], ids=lambda p: p.name)
def test_the_kv_formula_is_what_llama_cpp_allocates(point):
    # Not read from the table: layers that own a cache, the sliding window per stream, padding.
    arch = builtin()[point.model].arch
    kv = kv_cache_bytes(arch, point.ctx, point.cache_type_k, point.cache_type_v, point.parallel,
                        unified=point.unified, ubatch=point.ubatch, flash_attn=point.flash_attn)
    assert kv / MIB == pytest.approx(point.on_device("text", "KV"), rel=0.01)


def test_a_server_holds_the_same_beyond_its_buffers_at_every_point():
    # One runtime constant for every configuration only holds if the residue really is constant.
    context = TABLE.context_mib
    for point in TABLE.points:
        buffers = sum(point.on_device(scope, kind) for scope in ("text", "mmproj") for kind in ("model", "weights", "KV", "compute"))
        assert point.proc_mib - buffers - context == pytest.approx(TABLE.runtime_mib, abs=0.25 * TABLE.runtime_mib), point.name


def edge_gpu(overrides):
    return next(b for b in plan(load_cluster(HOMELAB, overrides)).budgets if b.host == "edge")


def test_seed_edge_fp16_at_131k_with_whisper_and_kokoro_comes_out_within_10_percent():
    # 000: "fp16 -c 131,072: 5,283 MB / 6,144 MB, 857 MB free, 1 slot".
    budget = edge_gpu(SEED_FP16)
    assert budget.used_mib == pytest.approx(5283, rel=0.10)
    assert budget.free_mib == pytest.approx(857, rel=0.10)


def test_seed_edge_q4_0_at_32k_with_4_slots_comes_out_within_10_percent():
    # 000: "q4_0 -c 32,768 np=4: 4,301 MB / 6,144 MB, 1,439 MB free".
    assert edge_gpu([ONE_WHISPER]).used_mib == pytest.approx(4301, rel=0.10)


def test_the_plan_says_which_edge_items_are_carried_over_from_the_measured_gpu():
    items = {i.what: i for i in edge_gpu([]).items if i.service == "gemma-edge"}
    context = items["CUDA context"]
    assert context.source.startswith(f"carried over from {TABLE.gpu}")
    assert "30 SMs x 1024 threads" in context.source  # the RTX 2060's own size, its stack scaled
    assert context.mib < TABLE.context_mib
    assert TABLE.source in items["compute buffers"].source
    assert "b11312" in items["weights on the GPU"].source


def test_the_printed_plan_names_the_measured_gpu_and_where_its_context_is_carried():
    run = aistack("plan", "--inventory", str(HOMELAB))
    text = " ".join(run.stdout.split())
    assert f"llama.cpp items: llama.cpp b11312 on {TABLE.gpu}" in text
    assert "CUDA context carried over to edge gpu0, orin unified, nx unified" in text


def test_compute_buffers_between_two_measured_points_lie_between_them_and_name_both():
    points = {p.name: p for p in TABLE.points}
    low, high = points["edge-32kx4-q4"], points["orin-64kx8-q4"]
    between = TABLE.compute("gemma-4-e2b-it", flash_attn=True, quantised_kv=True, unified=False, ubatch=512, ctx=49152)
    assert low.on_device("text", "compute") < between.device_mib < high.on_device("text", "compute")
    # q4_0 and q8_0 at 32,768 are one kind (quantised KV): either may be the lower point.
    assert between.how.startswith("interpolated between edge-32kx4-q") and between.how.endswith("and orin-64kx8-q4")
