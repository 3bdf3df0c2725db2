"""Each DESIGN.md default reaches the file that makes it real on the host."""

import pytest
import yaml

from aistack.inventory import load_cluster
from aistack.render import render_cluster
from aistack.render.engine_args import llamacpp_args
from tests.conftest import HOMELAB


@pytest.fixture(scope="module")
def files():
    rendered = render_cluster(load_cluster(HOMELAB))
    return {f"{host}:{path}": f.content for host, r in rendered.items() for path, f in r.files.items()}


def get(files, host, stack, name="compose.yaml"):
    return files[f"{host}:/srv/aistack/stacks/{stack}/{name}"]


def command(files, host, stack, container="server"):
    return yaml.safe_load(get(files, host, stack))["services"][container]["command"]


def flag(args, name):
    return args[args.index(name) + 1]


def test_nginx_waits_300s_unbuffered_with_a_128_keepalive_pool(files):
    conf = get(files, "main", "proxy", "nginx.conf")
    assert "proxy_read_timeout 300s;" in conf and "proxy_send_timeout 300s;" in conf
    assert "proxy_buffering off;" in conf and "keepalive 128;" in conf


def test_sglang_runs_128_requests(files):
    assert flag(command(files, "main", "chat-main"), "--max-running-requests") == "128"


def test_litellm_8_workers_no_retries_300s_chain(files):
    args = command(files, "main", "gateway", "litellm")
    assert flag(args, "--num_workers") == "8"
    # uvicorn kills a worker that misses its health check; LiteLLM's import outlasts the 5 s default.
    assert int(flag(args, "--timeout_worker_healthcheck")) >= 120
    config = yaml.safe_load(get(files, "main", "gateway", "config.yaml"))
    assert config["router_settings"]["num_retries"] == 0 and config["litellm_settings"]["num_retries"] == 0
    assert config["router_settings"]["timeout"] == 300
    assert {d["litellm_params"]["timeout"] for d in config["model_list"]} == {300}


def test_vision_routes_weigh_edge_8_and_orin_1(files):
    config = yaml.safe_load(get(files, "main", "gateway", "config.yaml"))
    vision = {d["litellm_params"]["model"]: d["litellm_params"]["weight"] for d in config["model_list"] if d["model_name"] == "vision"}
    assert vision == {"openai/gemma-edge": 8, "openai/gemma-orin": 1}


def test_stt_round_robins_two_whisper_instances(files):
    config = yaml.safe_load(get(files, "main", "gateway", "config.yaml"))
    stt = [d["litellm_params"] for d in config["model_list"] if d["model_name"] == "stt"]
    assert sorted(d["api_base"] for d in stt) == ["http://192.0.2.11:8000/v1", "http://192.0.2.11:8001/v1"]
    assert len({d["weight"] for d in stt}) == 1


def test_open_webui_8_workers_on_postgres_with_redis_websockets(files):
    env = yaml.safe_load(get(files, "main", "webui"))["services"]["openwebui"]["environment"]
    assert env["UVICORN_WORKERS"] == "8" and env["WEBSOCKET_MANAGER"] == "redis"
    assert env["ENABLE_PERSISTENT_CONFIG"] == "False" and env["AIOHTTP_CLIENT_TIMEOUT"] == "300"
    assert env["VECTOR_DB"] == "qdrant" and env["QDRANT_URI"] == "http://192.0.2.13:6333"


def test_edge_gemma_32k_4_slots_q4_0_with_flash_attention(files):
    args = command(files, "edge", "gemma-edge")
    assert (flag(args, "-c"), flag(args, "-np"), flag(args, "-ctk"), flag(args, "-ctv")) == ("32768", "4", "q4_0", "q4_0")
    assert flag(args, "-fa") == "on" and "--metrics" in args and "--mmproj" in args


def test_orin_gemma_8_slots_at_the_same_per_slot_context(files):
    args = command(files, "orin", "gemma-orin")
    assert int(flag(args, "-c")) // int(flag(args, "-np")) == 8192 and flag(args, "-np") == "8"
    # The site-built b9093 takes a value; the published b5283 image (before b6327) a bare switch.
    assert flag(args, "-fa") == "on"
    old = llamacpp_args(load_cluster(HOMELAB).services["gemma-orin"], model="m", mmproj=None, bind="b", build=5283, alias="a")
    assert old[old.index("-fa") + 1].startswith("-")


def test_two_whisper_at_int8_float16(files):
    whisper = yaml.safe_load(get(files, "edge", "whisper"))["services"]
    assert [w["environment"]["WHISPER__COMPUTE_TYPE"] for w in whisper.values()] == ["int8_float16"] * 2


def test_detector_bounds_images_to_1280px(files):
    env = yaml.safe_load(get(files, "orin", "nanoowl"))["services"]["nanoowl"]["environment"]
    assert env["NANOOWL_MAX_IMAGE_PX"] == "1280"


def test_models_are_read_only_and_never_fetched_at_start(files):
    server = yaml.safe_load(get(files, "main", "chat-main"))["services"]["server"]
    assert "/srv/models:/models:ro" in server["volumes"] and server["environment"]["HF_HUB_OFFLINE"] == "1"


def test_rerank_alias_reaches_llama_server_at_v1_rerank(files):
    """LiteLLM 1.106.2 posts Cohere rerank to <api_base>/v2/rerank unless api_base ends in /v1/rerank."""
    config = yaml.safe_load(get(files, "main", "gateway", "config.yaml"))
    [rerank] = [d for d in config["model_list"] if d["model_name"] == "rerank"]
    assert rerank["litellm_params"]["model"].startswith("cohere/")
    assert rerank["litellm_params"]["api_base"].endswith("/v1/rerank")


def test_whisper_starts_offline_and_keeps_its_model(files):
    """speaches exits at start on PRELOAD_MODELS offline, and unloads an idle model after 300 s."""
    services = yaml.safe_load(get(files, "edge", "whisper"))["services"]
    assert len(services) == 2
    for service in services.values():
        env = service["environment"]
        assert "PRELOAD_MODELS" not in env and env["HF_HUB_OFFLINE"] == "1"
        assert env["WHISPER__TTL"] == env["STT_MODEL_TTL"] == "-1"
