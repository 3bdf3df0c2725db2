"""Each failure is put on the layer its evidence names. The answers are the real ones, captured from
the sandbox's nginx, LiteLLM 1.106.2 and llama.cpp b11312 (tests/fixtures/load)."""

import json
from pathlib import Path

import pytest

from aistack.load.attribution import Answer, StepEvidence, attribute

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "load"
LITELLM = json.loads((FIXTURES / "litellm_errors_1.106.2.json").read_text())
NGINX_504 = json.loads((FIXTURES / "nginx_504.json").read_text())
TIMEOUTS = {"nginx": 1, "gateway": 300, "backend": 300, "client": 330}
SLOTS = {"chat-main": 512, "gemma-edge": 512, "gemma-orin": 1024}


def captured(entry: dict, **kw) -> Answer:
    return Answer(entry["status"], body=entry["body"], server=entry["server"], **kw)


def test_a_call_that_answered_in_full_has_no_layer():
    assert attribute(Answer(200), ["chat-main"], StepEvidence()) is None


def test_the_slot_refusal_names_the_lane_whose_slot_size_llama_server_quotes():
    answer = captured(LITELLM["slot-context"])
    verdict = attribute(answer, ["gemma-edge", "gemma-orin"], StepEvidence(slot_context=SLOTS))
    assert (verdict.layer, verdict.kind) == ("gemma-edge", "slot-context")
    assert "one slot holds 512" in verdict.reason
    # Two lanes of that slot size: both are named, neither guessed.
    both = attribute(answer, ["chat-main", "gemma-edge"], StepEvidence(slot_context=SLOTS))
    assert both.layer == "chat-main or gemma-edge"


def test_nginx_own_504_page_is_nginx_whatever_was_asked():
    verdict = attribute(captured(NGINX_504, elapsed_s=1.0), ["chat-main"], StepEvidence(timeouts=TIMEOUTS))
    assert (verdict.layer, verdict.kind) == ("nginx", "upstream-timeout")
    assert "(1 s)" in verdict.reason


@pytest.mark.parametrize("key", ["stream=False", "stream=True"])
def test_a_connection_error_is_the_lane_when_its_own_endpoint_is_down_too(key):
    answer = captured(LITELLM[key])
    down = attribute(answer, ["chat-main"], StepEvidence(down=frozenset({"chat-main"})))
    assert (down.layer, down.kind) == ("chat-main", "lane-down")
    # The same answer with every lane's metrics answering: LiteLLM failed to reach it, not proven down.
    up = attribute(answer, ["chat-main"], StepEvidence())
    assert (up.layer, up.kind) == ("gateway", "lane-unreachable")


def test_an_error_event_inside_a_stream_is_judged_by_its_message():
    body = "data: " + LITELLM["slot-context"]["body"]
    verdict = attribute(Answer(200, body=body, complete=False), ["chat-main"], StepEvidence(slot_context=SLOTS))
    assert verdict.kind == "slot-context"


def test_a_client_deadline_before_any_token_is_the_queue_of_the_lane_that_deferred():
    waiting = Answer(None, error="timeout", elapsed_s=5.0)
    queued = attribute(waiting, ["gemma-edge", "gemma-orin"], StepEvidence(deferred={"gemma-orin": 3}, timeouts=TIMEOUTS))
    assert (queued.layer, queued.kind) == ("gemma-orin", "queued")
    assert "deferred up to 3" in queued.reason
    # Nothing deferred, or tokens already flowing: the client's own deadline.
    assert attribute(waiting, ["gemma-edge"], StepEvidence()).layer == "client"
    streaming = Answer(200, error="timeout", elapsed_s=5.0, first_token_s=0.2)
    assert attribute(streaming, ["gemma-orin"], StepEvidence(deferred={"gemma-orin": 3})).kind == "client-timeout"


def test_a_stream_that_stops_without_done_is_the_layer_whose_timeout_matches_the_silence():
    cut = Answer(200, complete=False, elapsed_s=300.2)
    verdict = attribute(cut, ["chat-main"], StepEvidence(timeouts={**TIMEOUTS, "nginx": 600}))
    assert (verdict.layer, verdict.kind) == ("gateway", "stream-cut")
    at_nginx = attribute(Answer(200, complete=False, elapsed_s=1.0), ["chat-main"], StepEvidence(timeouts=TIMEOUTS))
    assert at_nginx.layer == "nginx"
    broke = attribute(cut, ["chat-main"], StepEvidence(down=frozenset({"chat-main"})))
    assert (broke.layer, broke.kind) == ("chat-main", "lane-down")


def test_a_refused_front_door_is_nginx():
    assert attribute(Answer(None, error="connect"), ["chat-main"], StepEvidence()).kind == "front-door"


def test_open_webui_detail_is_webui_and_nginx_502_is_the_gateway_behind_it():
    assert attribute(Answer(401, body='{"detail":"Not authenticated"}', server="nginx"), [], StepEvidence()).layer == "webui"
    page = NGINX_504["body"].replace("504 Gateway Time-out", "502 Bad Gateway")
    assert attribute(Answer(502, body=page, server="nginx"), [], StepEvidence()).kind == "gateway-down"
