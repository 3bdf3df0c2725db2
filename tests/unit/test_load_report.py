"""The ladder's arguments, report files and evidence, on real data structures and files."""

import json

import pytest
import yaml
from PIL import Image

from aistack.inventory import load_cluster
from aistack.load import evidence as evidence_mod
from aistack.load.records import Record, StageResult, Step, StepResult
from aistack.load.report import served_up_to, write
from aistack.load.run import parse_ladder, parse_mix
from aistack.load.traffic import chat_body, speech_wav, targets
from tests.conftest import HOMELAB, PROJECT

SANDBOX = PROJECT / "inventory" / "sandbox.py"


def test_the_ladder_spec_reads_smoke_and_users_and_refuses_the_rest():
    assert parse_ladder("smoke,16,32", None, 11) == [("smoke", 11, 11), ("16", 16, 16), ("32", 32, 32)]
    assert parse_ladder("128", 1024, 11) == [("128", 128, 1024)]
    for bad in ("smoke,x", "0", "", "99999"):
        with pytest.raises(ValueError, match="--ladder"):
            parse_ladder(bad, None, 2)
    with pytest.raises(ValueError, match="--total"):
        parse_ladder("16", 8, 2)


def test_the_mix_picks_declared_types_and_reweights_them():
    cluster = load_cluster(HOMELAB)
    names, mix = parse_mix("text-short=3,image-direct", cluster)
    assert names == ["text-short", "image-direct"] and mix["text-short"].weight == 3
    with pytest.raises(ValueError, match="text-shrot"):
        parse_mix("text-shrot", cluster)


def test_the_homelab_ladder_sends_each_type_along_its_path():
    cluster = load_cluster(HOMELAB)
    found, skipped = targets(cluster)
    by_name = {t.name: t for t in found}
    # The assistant's types enter through Open WebUI, which needs its own key.
    assert "voice-assistant" in skipped and "Open WebUI" in skipped["voice-assistant"]
    voice = by_name["voice-direct"]
    assert [s.operation for s in voice.stages] == ["stt", "chat", "tts"]
    image = by_name["image-direct"]
    assert image.image_px == 1280 and set(image.answer.lanes.values()) == {"gemma-edge", "gemma-orin"}
    body = chat_body(image, "n1")
    assert body["stream"] and body["max_tokens"] == 200 and body["messages"][0]["content"][1]["type"] == "image_url"
    assert speech_wav()[:4] == b"RIFF"


def _record(step, users, name, ok, layer=None, lane="chat-main", ttft=0.2, rate=40.0):
    stage = StageResult("chat", "chat", 200 if ok else 504, lane if ok else None, 1.0, ttft if ok else None,
                        60, 100, rate if ok else None)
    return Record(step, users, "burst", name, 0.0, 1.0, ok, stages=[stage], layer=layer,
                  kind=None if ok else "upstream-timeout", reason=None if ok else "nginx 504")


def _result(label, users, records, running):
    counters = {"lanes": {"chat-main": {"engine": "llamacpp", "up": True,
                                        "highest": {"llamacpp:requests_processing": running}}}}
    return StepResult(Step(label, users, len(records), 60), "burst", 0.0, 5.0, records, counters)


def test_the_report_writes_results_summary_plots_and_a_page(tmp_path):
    cluster = load_cluster(SANDBOX)
    steps = [_result("2", 2, [_record("2", 2, "text-direct", True)] * 4, 2),
             _result("8", 8, [_record("8", 8, "text-direct", True)] * 6
                     + [_record("8", 8, "text-direct", False, layer="nginx")] * 2, 4)]
    report = write(tmp_path, cluster, steps, {"cluster": "sandbox", "started": "t", "mode": "burst", "ladder": "2,8",
                                              "types": ["text-direct"], "skipped": {}, "tightest_timeout_s": 300})
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 12 and json.loads(lines[-1])["layer"] == "nginx"
    summary = json.loads((tmp_path / "summary.json").read_text())
    step8 = summary["steps"][1]["types"]["text-direct"]
    assert (step8["attempts"], step8["pass_rate"], step8["failures"]) == (8, 0.75, {"nginx": 2})
    assert summary["served_up_to"]["text-direct"] == {"served_up_to": 2, "failed_at": 8, "layer": "nginx"}
    for png in ("pass_rate.png", "latency_p95.png", "failures.png"):
        with Image.open(tmp_path / png) as img:
            assert img.format == "PNG" and img.size[0] >= 600
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "text-direct" in page
    assert all(p.exists() for p in report.files)


def test_served_up_to_stops_at_the_first_step_below_the_bar():
    steps = [{"users": u, "types": {"t": {"pass_rate": p, "failures": f}}}
             for u, p, f in ((4, 1.0, {}), (8, 0.5, {"nginx": 4}), (16, 1.0, {}))]
    assert served_up_to(steps)["t"] == {"served_up_to": 4, "failed_at": 8, "layer": "nginx"}


def test_the_plan_reads_measured_curves_while_the_lane_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence_mod, "EVIDENCE_DIR", tmp_path)
    monkeypatch.setattr(evidence_mod, "evidence_file", lambda name, directory=tmp_path: directory / f"{name}.load.yaml")
    cluster = load_cluster(SANDBOX)
    steps = [_result("2", 2, [_record("2", 2, "text-direct", True, rate=50.0)] * 4, 2),
             _result("8", 8, [_record("8", 8, "text-direct", True, rate=20.0)] * 4, 4)]
    report = write(tmp_path / "r", cluster, steps, {"cluster": "sandbox", "started": "2026-12-07T00:00:00Z",
                                                     "mode": "burst", "ladder": "2,8", "types": ["text-direct"],
                                                     "skipped": {}})
    path = tmp_path / "sandbox.load.yaml"
    evidence_mod.write_evidence(path, cluster, report.summary, tmp_path / "r")
    data = yaml.safe_load(path.read_text())
    assert data["lanes"]["chat-main"]["curve"]["points"] == [
        {"concurrency": 2, "tok_s": 50.0, "ttft_p95_s": 0.2}, {"concurrency": 4, "tok_s": 20.0, "ttft_p95_s": 0.2}]

    measured = load_cluster(SANDBOX)
    assert measured.services["chat-main"].curve == "measured-chat-main"
    assert measured.measured["text-direct"]["served_up_to"] == 8
    assert any("read for chat-main" in n for n in measured.evidence_notes)
    # A lane configured differently since: its curve described something else and is not read.
    changed = load_cluster(SANDBOX, ["services.chat-main.parallel=2"])
    assert changed.services["chat-main"].curve is None
    assert any("chat-main changed since" in n for n in changed.evidence_notes)


def test_a_damaged_evidence_file_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence_mod, "evidence_file", lambda name, directory=tmp_path: directory / f"{name}.load.yaml")
    (tmp_path / "sandbox.load.yaml").write_text("lanes: [1, 2]\n")
    from aistack.errors import InventoryError

    with pytest.raises(InventoryError, match="sandbox.load.yaml"):
        load_cluster(SANDBOX)
