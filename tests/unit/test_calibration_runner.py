"""The GPU calibration runner: its llama-server log parser, point loop and pack filter.

The fixture ``llama_server_cpu_b11312.log`` is a real log, captured from the CPU
``llama-server`` of the same build (b11312, docker image ``aistack-llamacpp``) serving the
tiny llama of ``aistack.sandbox.tiny_gguf`` with ``-c 4096 -np 2 -ctk q4_0 -ctv q4_0 -fa on
-lv 4``, one prompt filling a slot and one longer than a slot, then SIGINT. The CUDA lines
further down are not captured (no GPU here): they are written from the format strings of
b11312's sources (llama-model.cpp, llama-kv-cache.cpp, llama-context.cpp, clip.cpp,
common/fit.cpp) so the GPU-side regexes are pinned too.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

from aistack.calibrate import runner

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "llama_server_cpu_b11312.log"

# Lines as b11312 prints them on a CUDA build (gemma's iSWA cache logs two KV buffers).
CUDA_SNIPPET = textwrap.dedent("""\
    0.00.021.696 I common_params_fit_impl: getting device memory data for initial parameters:
    0.00.028.441 I common_memory_breakdown_print: | memory breakdown [MiB] | total    free    self   model   context   compute    unaccounted |
    0.00.028.442 I common_memory_breakdown_print: |   - CUDA0 (H200)       | 143167 = 139900 + (  2905 =  2200 +     405 +     300) +          362 |
    0.00.028.464 I common_memory_breakdown_print: |   - Host               |                    520 =   500 +       0 +      20                |
    0.00.031.149 I common_params_fit_impl: projected to use 2905 MiB of device memory vs. 139900 MiB of free device memory
    0.00.064.106 I load_tensors:        CUDA0 model buffer size =  2200.50 MiB
    0.00.064.107 I load_tensors:   CPU_Mapped model buffer size =   500.25 MiB
    0.00.074.071 I llama_context:  CUDA_Host  output buffer size =     1.00 MiB
    0.00.074.164 I llama_kv_cache:      CUDA0 KV buffer size =   400.00 MiB
    0.00.075.243 I llama_kv_cache: size =  400.00 MiB ( 32768 cells,   3 layers,  4/4 seqs), K (q4_0):  200.00 MiB, V (q4_0):  200.00 MiB
    0.00.075.300 I llama_kv_cache:      CUDA0 KV buffer size =     5.00 MiB
    0.00.086.697 I sched_reserve:      CUDA0 compute buffer size =   300.00 MiB
    0.00.086.698 I sched_reserve:  CUDA_Host compute buffer size =    20.00 MiB
    0.00.090.000 I clip_init: CLIP using CUDA0 backend
    0.00.091.000 I clip_model_loader: model size:         800.00 MiB
    0.00.092.000 I alloc_compute_meta:      CUDA0 compute buffer size =   150.00 MiB
    0.00.092.001 I alloc_compute_meta:        CPU compute buffer size =     3.00 MiB
    0.00.918.713 I srv    operator(): operator(): cleaning up before exit...
    0.00.925.722 I common_memory_breakdown_print: | memory breakdown [MiB] | total    free    self   model   context   compute    unaccounted |
    0.00.925.723 I common_memory_breakdown_print: |   - CUDA0 (H200)       | 143167 = 139000 + (  2905 =  2200 +     405 +     300) +         1262 |
    0.00.925.808 I common_memory_breakdown_print: |   - Host               |                    521 =   500 +       1 +      20                |
    """)


def test_parses_the_captured_cpu_log():
    p = runner.parse_log(FIXTURE.read_text())
    t = p["totals"]
    assert t["text CPU_Mapped model"] == 1.59
    assert t["text CPU KV"] == 0.56
    assert t["text CPU compute"] == 4.01
    assert [(b["func"], b["device"], b["kind"]) for b in p["buffers"]] == [
        ("load_tensors", "CPU_Mapped", "model"), ("llama_context", "CPU", "output"),
        ("llama_kv_cache", "CPU", "KV"), ("sched_reserve", "CPU", "compute")]
    f = p["fields"]
    assert (f["n_ctx"], f["n_ctx_seq"], f["n_ctx_slot"], f["n_slots"], f["n_ubatch"]) == (4096, 2048, 2048, 2, 512)
    assert f["build"] == 11312 and f["flash_attn"] == "enabled" and f["kv_unified"] == "false"
    assert p["kv_cache"] == [{"mib": 0.56, "cells": 2048, "layers": 2, "seqs": "2/2", "k_type": "q4_0",
                              "k_mib": 0.28, "v_type": "q4_0", "v_mib": 0.28}]
    # the --fit probe prints one breakdown, the exit another
    assert len(p["breakdowns"]) == 2
    assert p["breakdown_exit"] == {"devices": [], "other": [
        {"name": "Host", "self": 6, "model": 1, "context": 0, "compute": 4}]}
    assert p["fit_projection"] == [{"what": "host", "mib": 6}]
    assert any("exceeds the available context size" in e for e in p["log_errors"])


def test_parses_cuda_and_clip_lines():
    p = runner.parse_log(CUDA_SNIPPET)
    t = p["totals"]
    assert t["text CUDA0 model"] == 2200.5
    assert t["text CPU_Mapped model"] == 500.25
    assert t["text CUDA0 KV"] == 405.0          # both iSWA caches
    assert t["text CUDA0 compute"] == 300.0
    assert t["text CUDA_Host compute"] == 20.0
    assert t["text CUDA_Host output"] == 1.0
    assert t["mmproj CUDA0 compute"] == 150.0
    assert t["mmproj CPU compute"] == 3.0
    assert t["mmproj CUDA0 weights"] == 800.0
    dev = p["breakdown_exit"]["devices"][0]
    assert dev == {"name": "CUDA0", "desc": "H200", "total": 143167, "free": 139000, "self": 2905,
                   "model": 2200, "context": 405, "compute": 300, "unaccounted": 1262}
    assert p["breakdowns"][0]["devices"][0]["free"] == 139900
    assert p["fit_projection"] == [{"what": "device", "mib": 2905}]
    row = runner.table_row({"name": "x", "totals": t, "errors": [], "fields": {"n_ctx_slot": 8192},
                            "after_load": {"proc_mib": 3500}, "after_prompt": {"proc_mib": 3600},
                            "peak_proc_mib": 3700})
    assert row.split()[:12] == ["x", "y", "2200.5", "405.0", "300.0", "20.0", "800.0", "153.0",
                                "3500", "3600", "3700", "8192"]


# A stand-in llama-server: replays the captured log, answers the endpoints the loop uses,
# refuses prompts longer than a slot like b11312 does, prints the exit breakdown on SIGINT.
FAKE_SERVER = r'''
import json, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
log = open(sys.argv[1]).read().split("\n")
cut = next(i for i, l in enumerate(log) if "cleaning up before exit" in l)
port = int(sys.argv[sys.argv.index("--port") + 1])
SLOT = 2048
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, code, obj):
        b = json.dumps(obj).encode(); self.send_response(code)
        self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        if self.path == "/health": self.send(200, {"status": "ok"})
        elif self.path == "/props": self.send(200, {"default_generation_settings": {"n_ctx": SLOT}, "total_slots": 2})
        else: self.send(404, {})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/tokenize": self.send(200, {"tokens": list(range(20))})
        elif self.path == "/completion":
            n = len(body["prompt"])
            if n > SLOT:
                self.send(400, {"error": {"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": n, "n_ctx": SLOT,
                    "message": f"request ({n} tokens) exceeds the available context size ({SLOT} tokens), try increasing it"}})
            else: self.send(200, {"content": "x", "tokens_evaluated": n, "timings": {"prompt_n": n}})
        else: self.send(404, {})
srv = ThreadingHTTPServer(("127.0.0.1", port), H)
def stop(*a):
    print("\n".join(log[cut:]), flush=True)
    threading.Thread(target=srv.shutdown).start()
signal.signal(signal.SIGINT, stop)
print("\n".join(log[:cut]), flush=True)
srv.serve_forever()
'''


class FakeMem:
    """nvidia-smi stand-in: idle before the start; then one process under a pid of another
    namespace (as in a container) using 3000 MiB, 3100 once a prompt ran."""

    def __init__(self):
        self.calls = 0
        self.grown = False

    def apps(self):
        self.calls += 1
        if self.calls == 1:
            return {}
        return {424242: 3100 if self.grown else 3000}

    def used(self):
        return 5000 + (100 if self.grown else 0) if self.calls > 1 else 2000


def test_point_loop_against_a_stand_in_server(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SETTLE_S", 0.05)
    monkeypatch.setattr(runner, "AFTER_REQUEST_S", 0.05)
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    seen = []

    def server_cmd(args):
        seen.append(args)
        return [sys.executable, str(script), str(FIXTURE), *args]

    points = [runner._pt("p1", ["-c", "4096", "-np", "2", "-ctk", "q4_0", "-ctv", "q4_0", "-fa", "on"],
                         requests=("fill", "overflow")),
              runner._pt("absent", ["-c", "1024"], model="bge")]
    mem = FakeMem()
    real_request = runner._do_request

    def request(*a, **kw):  # the prompt "grows" the process
        res = real_request(*a, **kw)
        mem.grown = True
        return res

    monkeypatch.setattr(runner, "_do_request", request)
    lines = []
    t0 = time.time()
    doc = runner.run_points(points, {"gemma": "/m/tiny.gguf", "mmproj": "/m/mm.gguf"}, tmp_path / "out",
                            server_cmd, mem, meta={"gpu": "test"}, progress=lines.append)
    assert time.time() - t0 < 4
    assert seen[0][:2] == ["-m", "/m/tiny.gguf"] and "--mmproj" in seen[0] and seen[0][-2:] == ["-lv", "4"]
    p1, absent = doc["points"]
    assert p1["errors"] == [] and p1["exit_code"] == 0
    assert p1["totals"]["text CPU KV"] == 0.56
    assert p1["breakdown_exit"]["other"][0]["name"] == "Host"
    fill, over = p1["requests"]
    assert fill["status"] == 200 and fill["sent_tokens"] == int(2048 * runner.FILL_FRACTION)
    assert over["status"] == 400 and over["n_ctx"] == 2048 and over["sent_tokens"] == 2048 + runner.OVERFLOW_EXTRA
    assert "exceeds the available context size" in over["refusal"]
    assert p1["after_load"]["proc_mib"] == 3000 and p1["after_prompt"]["proc_mib"] == 3100
    assert p1["after_load"]["gpu_used_delta_mib"] == 3000 and p1["peak_proc_mib"] >= 3000
    assert absent["errors"] and "not available" in absent["errors"][0]
    saved = json.loads((tmp_path / "out" / "calibration.json").read_text())
    assert [p["name"] for p in saved["points"]] == ["p1", "absent"] and saved["meta"] == {"gpu": "test"}
    assert (tmp_path / "out" / "logs" / "p1.log").exists()
    table = runner.format_table(saved)
    assert "p1" in table and "overflow 400" in table


def test_pack_filter():
    ex = runner._excluded
    assert ex("models/ggml-vocab-llama-bpe.gguf") and ex("docs/build.md") and ex(".github/workflows/x.yml")
    assert ex("tests/test-backend-ops.cpp") and ex("benches/x") and ex("tools/ui/src/app.ts")
    assert ex("tools/ui/package-lock.json") and ex("tools/server/tests/unit/test_basic.py")
    assert not ex("src/models/gemma4.cpp") and not ex("src/llama.cpp") and not ex("ggml/src/ggml-cuda/fattn.cu")
    assert not ex("tools/ui/CMakeLists.txt") and not ex("tools/ui/ui.cpp.in") and not ex("tools/server/server.cpp")
    assert not ex("tools/mtmd/clip.cpp") and not ex("gguf-py/gguf/gguf_writer.py") and not ex("CMakeLists.txt")
    assert not ex("scripts/ui-assets.cmake")
