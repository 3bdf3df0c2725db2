"""What the services report: engine settings the model asked for, nginx's effective timeouts,
every gateway alias answering through the front door, retrieval ready. Queried from each
service's own host, so loopback binds are reachable and the gateway key never leaves its host."""

from __future__ import annotations

import json
import re
import shlex

import pytest

TIMEOUT = re.compile(r"^\s*proxy_(read|send)_timeout\s+(\d+)s;", re.MULTILINE)
# One second of silence: the smallest valid upload for a transcription route.
SILENT_WAV = ("python3 -c \"import wave,sys; w=wave.open(sys.argv[1],'wb'); w.setnchannels(1); w.setsampwidth(2); "
              "w.setframerate(16000); w.writeframes(bytes(32000)); w.close()\" {path}")


def test_engine_runs_with_the_models_settings(engine, on, compare):
    host = on(engine.host)
    expected = dict(engine.settings)
    if engine.engine == "llamacpp":
        props = json.loads(host.check_output("curl -fsS --max-time 10 %s", f"{engine.url}/props"))
        found = {"total_slots": props.get("total_slots"), "n_ctx": props.get("default_generation_settings", {}).get("n_ctx")}
    elif engine.engine == "sglang":  # /server_info; /get_server_info before SGLang renamed it
        info = host.check_output("curl -fsS --max-time 10 %s || curl -fsS --max-time 10 %s",
                                 f"{engine.url}/server_info", f"{engine.url}/get_server_info")
        found = {"max_running_requests": json.loads(info).get("max_running_requests")}
    else:  # vLLM reports no max_num_seqs over HTTP: read what the running engine was started with
        args = json.loads(host.check_output("docker inspect -f '{{json .Args}}' %s", engine.container))
        found = {"max_num_seqs": int(args[args.index("--max-num-seqs") + 1]) if "--max-num-seqs" in args else None}
    compare({k: found.get(k) for k in expected}, expected)


def test_nginx_effective_timeouts(nginx, on, compare):
    dump = on(nginx.host).check_output("docker exec %s nginx -T 2>/dev/null", nginx.container)
    found = {kind: int(seconds) for kind, seconds in TIMEOUT.findall(dump)}
    compare(found, {"read": nginx.read_s, "send": nginx.send_s})


def test_alias_answers_through_nginx(alias, on, compare):
    if alias.held:
        pytest.skip(f"held, not started: {alias.held}")
    result = on(alias.host).run(_request_command(alias))
    body, _, code = result.stdout.rpartition("\n")
    compare(code.strip() or f"curl exit {result.rc}: {result.stderr.strip()[:200]}", "200",
            ok=code.strip() == "200")
    assert body, "empty answer"


def test_service_ready(ready, on, compare):
    if ready.held:
        pytest.skip(f"held, not started: {ready.held}")
    result = on(ready.host).run("curl -sS -o /dev/null -w '%%{http_code}' --max-time 10 %s", ready.url)
    compare(result.stdout.strip() or result.stderr.strip()[:200], "200")


def _request_command(alias) -> str:
    """curl on the gateway's host: the key is read there from its 0600 file and never printed."""
    auth = f'-H "Authorization: Bearer ${alias.key_var}"'
    base = f"curl -sS --max-time 120 -w '\\n%{{http_code}}' {auth}"
    body = {
        "chat": ("/v1/chat/completions", {"model": alias.alias, "max_tokens": 1,
                                          "messages": [{"role": "user", "content": "hi"}]}),
        "embeddings": ("/v1/embeddings", {"model": alias.alias, "input": "hi"}),
        "rerank": ("/v1/rerank", {"model": alias.alias, "query": "hi", "documents": ["hi", "bye"]}),
        "speech": ("/v1/audio/speech", {"model": alias.alias, "input": "ok", "voice": "af_heart"}),
    }
    load = f"set -a; . {shlex.quote(alias.key_file)}; set +a"
    if alias.request == "transcription":
        return (f"{load}; f=$(mktemp --suffix .wav); {SILENT_WAV.format(path='$f')}; "
                f"{base} -F model={shlex.quote(alias.alias)} -F file=@$f {alias.url}/v1/audio/transcriptions; rm -f $f")
    path, payload = body[alias.request]
    return (f"{load}; {base} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(payload))} {alias.url}{path}")
