"""The plan's per-path ceilings: seed 000's failure settings replayed, each named by the layer at fault."""

import io

import pytest
from rich.console import Console

from aistack.ceilings import ceilings
from aistack.capacity import plan
from aistack.errors import InventoryError
from aistack.inventory import load_cluster
from aistack.model.curves import builtin_curves
from aistack.plan_view import show
from aistack.preflight import Level, preflight
from tests.conftest import HOMELAB, aistack

DIRECT_TEXT = ("text-short", "text-medium", "text-long")
VOICE = ("voice-assistant", "voice-direct")
TIMEOUTS_120 = [f"timeouts.{t}=120" for t in ("nginx_s", "webui_client_s", "gateway_s", "backend_s")]


def paths(overrides=()):
    cluster = load_cluster(HOMELAB, list(overrides))
    return {r.name: r for r in ceilings(cluster, plan(cluster).lanes)}


def ceiling_findings(overrides=()):
    result = preflight(load_cluster(HOMELAB, list(overrides)))
    return [f for f in result.findings if f.check == "ceiling"]


def test_the_tuned_homelab_serves_direct_text_to_128_users_and_names_whisper_for_voice():
    found = paths()
    for name in DIRECT_TEXT:
        assert found[name].ceiling >= 128, (name, found[name].bottleneck)
        assert found[name].expected_pass == 1.0
    for name in VOICE:
        assert found[name].ceiling == 70
        assert found[name].bottleneck.name == "whisper"
    [warn] = ceiling_findings()
    assert warn.level is Level.WARN and warn.subject == "services.whisper.instances" and warn.host == "edge"
    assert "voice-assistant 70, voice-direct 70 of 128 users" in warn.message and "(000)" in warn.message


# Seed 000's failures, one setting each, set back on the tuned homelab: the finding names the
# field to change and carries the seed's own finding from the model's tuned default.
SEED_000_FAILURES = {
    "services.chat-main.max_running_requests=64": ("services.chat-main.max_running_requests", "queue behind 200 s text jobs"),
    "services.gateway.workers=1": ("services.gateway.workers", "one worker serialised"),
    "services.webui.workers=1": ("services.webui.workers", "1 worker queued everything"),
    "timeouts.http_pool=10": ("timeouts.http_pool", "pool exhaustion"),
    "services.whisper.instances=1": ("services.whisper.instances", "~10 -> ~70 concurrent"),
}


@pytest.mark.parametrize("setting", SEED_000_FAILURES)
def test_each_seed_failure_setting_is_named_with_its_layer_and_finding(setting):
    subject, finding = SEED_000_FAILURES[setting]
    named = [f for f in ceiling_findings([setting]) if f.subject == subject]
    assert named, [f.message for f in ceiling_findings([setting])]
    assert named[0].level is Level.WARN
    assert finding in named[0].message and "(000)" in named[0].message
    assert "of 128 users" in named[0].message


def test_120_second_timeouts_cut_long_answers_the_gpu_is_still_writing():
    [block] = [f for f in ceiling_findings(TIMEOUTS_120) if f.level is Level.BLOCK]
    assert block.subject == "timeouts"
    assert block.message.startswith("nginx proxy_read_timeout 120 s < 3,200 tokens at ")
    assert "text-long" in block.message and "(000)" in block.message
    seconds = int(block.message.split(" = ")[1].split(" s")[0].replace(",", ""))
    assert seconds > 120


def test_the_seed_ladder_at_32_workers_cuts_long_analysis_at_120_s_and_passes_it_at_300_s():
    # 000, round one: long analysis 14% at 120 s, 95% once every timeout was 300 s.
    short = paths(["load.users=32", *TIMEOUTS_120])["text-long"]
    assert short.cut and short.expected_pass == 0
    assert paths(["load.users=32"])["text-long"].expected_pass >= 0.95


def test_a_parked_route_moves_the_path():
    found = paths(["services.gemma-edge.active=false"])["image-direct"]
    assert found.path[-1].name == "gemma-orin"
    assert "gemma-edge" not in [layer.name for layer in found.path]


def test_a_type_the_cluster_cannot_carry_is_not_served_and_not_counted():
    found = paths(["services.whisper.active=false"])
    for name in VOICE:
        assert found[name].served_by == "no running route for alias stt"
        assert found[name].path == []
    assert found["text-long"].expected_pass == 1.0


def test_a_slot_too_small_for_the_request_serves_no_one():
    found = paths(["services.gemma-edge.ctx=8192", "services.gemma-edge.parallel=8"])["image-direct"]
    assert found.ceiling == 0 and found.bottleneck.name == "gemma-edge"
    assert "every request refused" in found.bottleneck.why


def test_the_sweep_curve_is_derived_from_the_seed_table():
    curve = builtin_curves()["sglang-000"]
    # c32: 32 / 3.6 req/s = 8.89 s a request, less 0.613 s TTFT p50, for 160 tokens.
    assert curve.at(32).tok_s == pytest.approx(160 / (32 / 3.6 - 0.613))
    # Past c1024 the engine's throughput stays flat, so each user gets a share of it.
    assert curve.at(2048).tok_s == pytest.approx(curve.at(1024).tok_s / 2)


def test_a_lane_names_its_curve_and_an_unknown_one_is_refused_by_field():
    found = paths(["services.chat-main.curve=vllm-003"])["text-long"]
    assert "curve vllm-003" in found.speed
    with pytest.raises(InventoryError) as exc:
        load_cluster(HOMELAB, ["services.chat-main.curve=sglang-00"])
    assert "services.chat-main.curve" in str(exc.value) and "did you mean 'sglang-000'" in str(exc.value)


def test_the_json_carries_every_path_with_each_layer_and_its_source():
    data = aistack("plan", "--inventory", str(HOMELAB), "--json").json
    voice = next(p for p in data["load"]["paths"] if p["name"] == "voice-direct")
    assert [layer["name"] for layer in voice["path"]] == ["client pool", "nginx", "LiteLLM", "whisper", "chat-main", "kokoro"]
    assert voice["bottleneck"]["capacity"] == 70 and "(000)" in voice["bottleneck"]["why"]
    assert voice["path"][-1]["capacity"] is None  # Kokoro: nothing measured, so nothing claimed


def test_plan_fits_80_columns_leads_with_the_decision_and_says_each_finding_once():
    cluster = load_cluster(HOMELAB, ["services.gateway.workers=1"])
    result = preflight(cluster)
    buffer = io.StringIO()
    show(Console(file=buffer, width=80, color_system=None), cluster, result)
    text = buffer.getvalue()
    assert text.startswith("decision: WARN (exit 10)")
    assert text.index("Users served") < text.index("Memory per accelerator")
    for finding in result.findings:
        if finding.level is not Level.PASS:
            assert text.count(finding.message) == 1, finding.message
    table_lines = [line for line in text.splitlines() if not line.startswith(("WARN", "BLOCK", "note:"))]
    assert max(len(line) for line in table_lines) <= 80
    for lane in result.plan.lanes:
        assert lane in text  # never cut to "gemma-…"


def test_one_field_of_a_default_request_type_can_be_set_and_the_rest_of_the_mix_stays():
    cluster = load_cluster(HOMELAB, ["load.mix.text-long.weight=5"])
    assert len(cluster.load.mix) == 11
    assert cluster.load.mix["text-long"].weight == 5 and cluster.load.mix["text-long"].output_tokens == 3200
    assert cluster.load.share("text-long") == pytest.approx(5 / 15)
