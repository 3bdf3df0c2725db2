"""Calibrate llama.cpp GPU memory: pack the vendored tree here, build and measure on a GPU box.

Self-contained on purpose (stdlib only; gguf-py from the packed tree and numpy are used only
by models.py): the ``run`` step executes on a bare GPU machine under its system ``python3``,
with no network and none of aistack's dependencies.

    python3 runner.py pack  --out DIR                  # here: DIR/llama.cpp.tar.xz + *.py
    python3 runner.py run   --pack DIR --out OUTDIR [--points default|quick|all] [--only a,b]
    python3 runner.py table OUTDIR/calibration.json    # anywhere

``run`` builds llama-server/llama-quantize with CUDA, writes random-weight GGUFs with the real
architectures (models.py), measures a bare CUDA context, then starts llama-server once per
measurement point and records: every ``... buffer size = X MiB`` line of its log, the memory
breakdown tables, n_ctx per slot, the per-process GPU memory that nvidia-smi reports after
load, during (peak) and after a prompt filling most of one slot, and errors. Output:
OUTDIR/calibration.json (rewritten after each point), OUTDIR/logs.tar.xz, OUTDIR/progress.log.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
BUILD_NUMBER = 11312
BUILD_COMMIT = "0c1e57098"
SDIST = Path.home() / ".cache" / "aistack" / "sdist" / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
TREE_NAME = "llama.cpp"
PACK_TARBALL = "llama.cpp.tar.xz"

# Paths (relative to vendor/llama.cpp) left out of the pack: none is needed to build
# llama-server, llama-quantize or mtmd. tools/ui keeps only what its CMakeLists needs.
PACK_EXCLUDE_DIRS = ("models", "docs", ".github", "benches", "tests", "media", "pocs/vdot",
                     "tools/server/tests", "tools/server/bench", "tools/ui/src", "tools/ui/static",
                     "tools/ui/tests", "tools/ui/scripts", ".devops", "ci")
PACK_UI_KEEP = ("CMakeLists.txt", "sources.cmake", "ui.cpp.in", "ui.h.in", "README.md")

CMAKE_FLAGS = [
    "-DGGML_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=90", "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    f"-DLLAMA_BUILD_NUMBER={BUILD_NUMBER}", f"-DLLAMA_BUILD_COMMIT={BUILD_COMMIT[:7]}",
]

# ----------------------------------------------------------------------------------------
# measurement points

EDGE = ["-c", "32768", "-np", "4"]
Q4 = ["-ctk", "q4_0", "-ctv", "q4_0"]
F16 = ["-ctk", "f16", "-ctv", "f16"]
Q8 = ["-ctk", "q8_0", "-ctv", "q8_0"]
FA_ON = ["-fa", "on"]


def _pt(name: str, args: list[str], model: str = "gemma", mmproj: bool = True,
        requests: tuple[str, ...] = ("fill",), note: str = "") -> dict:
    return {"name": name, "model": model, "mmproj": mmproj and model == "gemma",
            "args": list(args), "requests": list(requests), "note": note}


POINTS_DEFAULT = [
    _pt("edge-32kx4-q4", EDGE + Q4 + FA_ON, note="the edge lane as rendered"),
    _pt("edge-32kx4-f16", EDGE + F16 + FA_ON),
    _pt("c131k-x1-f16", ["-c", "131072", "-np", "1"] + F16 + FA_ON),
    _pt("c131k-x1-q4", ["-c", "131072", "-np", "1"] + Q4 + FA_ON),
    _pt("c8k-x8-q4+overflow", ["-c", "8192", "-np", "8"] + Q4 + FA_ON,
        requests=("fill", "overflow"), note="per-slot 1024; second request is longer than a slot"),
    _pt("orin-64kx8-q4", ["-c", "65536", "-np", "8"] + Q4 + FA_ON, note="the Orin lane"),
    _pt("edge-32kx4-q8", EDGE + Q8 + FA_ON),
    _pt("edge-32kx4-f16-fa-off", EDGE + F16 + ["-fa", "off"]),
    _pt("edge-32kx4-q4-ub2048", EDGE + Q4 + FA_ON + ["-ub", "2048", "-b", "2048"]),
    _pt("edge-32kx4-q4-no-mmproj", EDGE + Q4 + FA_ON, mmproj=False),
    _pt("edge-32kx4-q4-kvu", EDGE + Q4 + FA_ON + ["--kv-unified"]),
    _pt("bge-base-embed", ["--embedding", "-c", "4096", "-np", "4"], model="bge", requests=("embed",)),
    _pt("bge-reranker-rerank", ["--rerank", "-c", "4096", "-np", "4"], model="reranker",
        requests=("rerank",)),
]
POINTS_QUICK = [POINTS_DEFAULT[0], POINTS_DEFAULT[4], POINTS_DEFAULT[11]]
POINT_SETS = {"default": POINTS_DEFAULT, "quick": POINTS_QUICK}

# Model files the run writes (key -> file name); "src" ones are quantised into the others.
MODEL_FILES = {
    "gemma_f16": "gemma4-e2b-F16.gguf",
    "gemma": "gemma4-e2b-Q4_K_M.gguf",
    "mmproj": "mmproj-gemma4-e2b-F16.gguf",
    "bge": "bge-base-en-v1.5-F16.gguf",
    "reranker_src": "bge-reranker-v2-m3-F16.gguf",
    "reranker": "bge-reranker-v2-m3-Q8_0.gguf",
}

# Which catalogue model and file each measured file stands for: the planner reads the table by these.
CATALOGUE_FILES = {
    "gemma": ("gemma-4-e2b-it", "Q4_K_M"),
    "mmproj": ("gemma-4-e2b-it", "mmproj-F16"),
    "bge": ("bge-base-en-v1.5", "F16"),
    "reranker": ("bge-reranker-v2-m3", "Q8_0"),
}

SETTLE_S = 1.0      # after /health, before the first memory reading
AFTER_REQUEST_S = 0.5
FILL_FRACTION = 0.8
FILL_MAX_TOKENS = 110_000
OVERFLOW_EXTRA = 600
BASE_TEXT = ("The quick brown fox jumps over the lazy dog while the engineers measure how much "
             "memory each buffer of the inference server takes on the accelerator. ")

# ----------------------------------------------------------------------------------------
# log parsing

_LINE_PREFIX = re.compile(r"^\s*\d+\.\d+\.\d+\.\d+\s+[A-Z]\s+")
_BUF = re.compile(r"(?P<func>[A-Za-z_][\w]*):\s+(?P<dev>\S+)\s+(?P<what>(?:[A-Za-z0-9_]+ )?"
                  r"(?:model|KV|RS|compute|output|LoRA|state))\s+buffer size\s*=\s*(?P<mib>[\d.]+)\s*MiB")
_CLIP_MODEL = re.compile(r"(?P<func>\w+):\s+model size:\s+(?P<mib>[\d.]+)\s*MiB")
_CLIP_BACKEND = re.compile(r"CLIP using (?P<dev>\S+) backend")
_BREAKDOWN_HEAD = re.compile(r"memory breakdown \[MiB\]")
_BREAKDOWN_GPU = re.compile(r"\|\s+-\s+(?P<name>\S+)\s+\((?P<desc>[^)]*)\)\s+\|\s+(?P<total>\d+)\s+=\s+"
                            r"(?P<free>\d+)\s+\+\s+\(\s*(?P<self>\d+)\s+=\s+(?P<model>\d+)\s+\+\s+"
                            r"(?P<context>\d+)\s+\+\s+(?P<compute>\d+)\s*\)\s+\+\s+(?P<unaccounted>-?\d+)\s*\|")
_BREAKDOWN_OTHER = re.compile(r"\|\s+-\s+(?P<name>\S+)\s+\|\s+(?P<self>\d+)\s+=\s+(?P<model>\d+)\s+\+\s+"
                              r"(?P<context>\d+)\s+\+\s+(?P<compute>\d+)\s*\|")
_KV_SIZE = re.compile(r"llama_kv_cache: size =\s*([\d.]+) MiB \(\s*(\d+) cells,\s*(\d+) layers,\s*(\d+)/(\d+) seqs\)"
                      r"(?:, K \((\w+)\):\s*([\d.]+) MiB, V \((\w+)\):\s*([\d.]+) MiB)?")
_NUM_FIELDS = {
    "n_ctx": re.compile(r"llama_context: n_ctx\s+=\s+(\d+)"),
    "n_ctx_seq": re.compile(r"llama_context: n_ctx_seq\s+=\s+(\d+)"),
    "n_batch": re.compile(r"llama_context: n_batch\s+=\s+(\d+)"),
    "n_ubatch": re.compile(r"llama_context: n_ubatch\s+=\s+(\d+)"),
    "n_seq_max": re.compile(r"llama_context: n_seq_max\s+=\s+(\d+)"),
    "n_slots": re.compile(r"n_slots = (\d+), n_ctx_slot = \d+"),
    "n_ctx_slot": re.compile(r"n_slots = \d+, n_ctx_slot = (\d+)"),
    "n_ctx_train": re.compile(r"print_info: n_ctx_train\s+=\s+(\d+)"),
    "build": re.compile(r"build (\d+) \("),
}
_STR_FIELDS = {
    "flash_attn": re.compile(r"llama_context: flash_attn\s+=\s+(\S+)"),
    "kv_unified": re.compile(r"llama_context: kv_unified\s+=\s+(\S+)"),
    "file_type": re.compile(r"print_info: file type\s+=\s+(.+?)\s*$"),
    "file_size": re.compile(r"print_info: file size\s+=\s+(.+?)\s*$"),
    "arch": re.compile(r"print_info: arch\s+=\s+(\S+)"),
}
_FIT = re.compile(r"projected to use (\d+) MiB of (device|host) memory")
_ERR = re.compile(r"(error|failed|exception|out of memory|abort|GGML_ASSERT)", re.I)
# Functions whose buffer lines belong to the text model's llama_context / llama_model.
_LLM_FUNCS = {"load_tensors", "llama_context", "llama_kv_cache", "llama_kv_cache_iswa",
              "sched_reserve", "graph_reserve", "llama_memory_recurrent", "llama_init_from_model",
              "llama_model_load", "llama_adapter_lora_init_impl"}


def _strip(line: str) -> str:
    return _LINE_PREFIX.sub("", line.rstrip("\n"))


def parse_log(text: str) -> dict:
    """Everything a llama-server log says about memory.

    ``buffers``: each ``<func>: <dev> <kind> buffer size = X MiB`` line in order, tagged with
    the scope ``text`` (llama model/context) or ``mmproj`` (clip, after a clip line).
    ``totals``: MiB summed by ``"<scope> <dev> <kind>"`` (gemma's iSWA has two KV lines).
    ``breakdowns``: every memory-breakdown table (the first is the --fit probe, the last the
    one printed at exit); ``breakdown_exit`` is the last one when it followed "cleaning up".
    """
    buffers: list[dict] = []
    totals: dict[str, float] = {}
    breakdowns: list[dict] = []
    kv: list[dict] = []
    fit: list[dict] = []
    errors: list[str] = []
    fields: dict = {}
    mmproj: dict = {}
    in_clip = False
    cur_bd: dict | None = None
    exit_seen = False
    bd_after_exit = None
    for raw in text.splitlines():
        line = _strip(raw)
        if "clip_" in line or "mtmd_" in line or "CLIP using" in line:
            in_clip = True
        m = _BREAKDOWN_HEAD.search(line)
        if m:
            cur_bd = {"devices": [], "other": []}
            breakdowns.append(cur_bd)
            if exit_seen:
                bd_after_exit = cur_bd
            continue
        if cur_bd is not None:
            g = _BREAKDOWN_GPU.search(line)
            o = _BREAKDOWN_OTHER.search(line) if not g else None
            if g:
                d = {k: (v if k in ("name", "desc") else int(v)) for k, v in g.groupdict().items()}
                cur_bd["devices"].append(d)
                continue
            if o:
                cur_bd["other"].append({k: (v if k == "name" else int(v)) for k, v in o.groupdict().items()})
                continue
            cur_bd = None
        if "cleaning up before exit" in line:
            exit_seen = True
        m = _BUF.search(line)
        if m:
            func = m["func"]
            scope = "text" if func in _LLM_FUNCS else ("mmproj" if in_clip else "other")
            if func in _LLM_FUNCS:
                in_clip = False
            rec = {"func": func, "scope": scope, "device": m["dev"], "kind": m["what"],
                   "mib": float(m["mib"])}
            buffers.append(rec)
            key = f"{scope} {m['dev']} {m['what']}"
            totals[key] = round(totals.get(key, 0.0) + rec["mib"], 2)
            continue
        m = _CLIP_MODEL.search(line)
        if m and in_clip:
            mmproj["model_mib"] = float(m["mib"])
        m = _CLIP_BACKEND.search(line)
        if m:
            mmproj["backend"] = m["dev"]
        m = _KV_SIZE.search(line)
        if m:
            kv.append({"mib": float(m[1]), "cells": int(m[2]), "layers": int(m[3]),
                       "seqs": f"{m[4]}/{m[5]}", "k_type": m[6], "k_mib": float(m[7]) if m[7] else None,
                       "v_type": m[8], "v_mib": float(m[9]) if m[9] else None})
        m = _FIT.search(line)
        if m:
            fit.append({"what": m[2], "mib": int(m[1])})
        for k, rx in _NUM_FIELDS.items():
            if k not in fields:
                mm = rx.search(line)
                if mm:
                    fields[k] = int(mm[1])
        for k, rx in _STR_FIELDS.items():
            if k not in fields:
                mm = rx.search(line)
                if mm:
                    fields[k] = mm[1]
        if _ERR.search(line) and "no API key" not in line and "for bugs during this step" not in line \
                and len(errors) < 40:
            errors.append(line.strip()[:400])
    if "model_mib" in mmproj and "backend" in mmproj:
        key = f"mmproj {mmproj['backend']} weights"
        totals[key] = round(totals.get(key, 0.0) + mmproj["model_mib"], 2)
    return {"buffers": buffers, "totals": totals, "breakdowns": breakdowns,
            "breakdown_exit": bd_after_exit, "kv_cache": kv, "fit_projection": fit,
            "fields": fields, "mmproj": mmproj, "log_errors": errors}


# ----------------------------------------------------------------------------------------
# GPU memory readers

def _run_out(cmd: list[str], timeout: float = 15, stderr: bool = False) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return r.stdout + (r.stderr if stderr else "")
    except (OSError, subprocess.SubprocessError):
        return ""


class NvidiaSmi:
    """Per-process and whole-device used memory (MiB) from nvidia-smi."""

    def apps(self) -> dict[int, int]:
        out = _run_out(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                        "--format=csv,noheader,nounits"])
        res: dict[int, int] = {}
        for ln in out.splitlines():
            parts = [p.strip() for p in ln.split(",")]
            if len(parts) >= 2 and parts[0].isdigit():
                try:
                    res[int(parts[0])] = res.get(int(parts[0]), 0) + int(float(parts[1]))
                except ValueError:
                    pass
        return res

    def used(self) -> int | None:
        out = _run_out(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        try:
            return int(float(out.splitlines()[0]))
        except (IndexError, ValueError):
            return None


class NoGpu:
    """Stands in for nvidia-smi where there is no GPU (local tests)."""

    def apps(self) -> dict[int, int]:
        return {}

    def used(self) -> int | None:
        return None


def snapshot(mem, pid: int | None, base_apps: dict[int, int], base_used: int | None) -> dict:
    apps = mem.apps()
    used = mem.used()
    proc = apps.get(pid) if pid is not None else None
    new = {p: v for p, v in apps.items() if p not in base_apps}
    if proc is None and len(new) == 1:  # pid namespaces differ (containers): the one new process
        proc = next(iter(new.values()))
    return {"proc_mib": proc, "new_apps_mib": sum(new.values()) if new else None,
            "gpu_used_mib": used,
            "gpu_used_delta_mib": (used - base_used) if used is not None and base_used is not None else None,
            "apps": {str(k): v for k, v in apps.items()}}


class PeakPoller:
    """Polls the process' GPU memory in a thread while a request runs."""

    def __init__(self, mem, pid, base_apps, base_used, period: float = 0.25):
        self.mem, self.pid, self.base_apps, self.base_used, self.period = mem, pid, base_apps, base_used, period
        self.peak_proc = None
        self.peak_used_delta = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            s = snapshot(self.mem, self.pid, self.base_apps, self.base_used)
            for attr, key in (("peak_proc", "proc_mib"), ("peak_used_delta", "gpu_used_delta_mib")):
                v = s[key]
                if v is not None and (getattr(self, attr) is None or v > getattr(self, attr)):
                    setattr(self, attr, v)
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=20)


# ----------------------------------------------------------------------------------------
# HTTP

def http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode("utf-8", "replace")
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read().decode("utf-8", "replace")
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def _err_text(body) -> str:
    if isinstance(body, dict):
        e = body.get("error")
        if isinstance(e, dict):
            return str(e.get("message", e))[:600]
        if e:
            return str(e)[:600]
    return str(body)[:600]


# ----------------------------------------------------------------------------------------
# one point

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def point_args(point: dict, models: dict[str, str], port: int, verbosity: str = "4") -> list[str]:
    args = ["-m", models[point["model"]], "--host", "127.0.0.1", "--port", str(port)]
    if point["model"] == "gemma":
        args += ["-ngl", "999"]
        if point.get("mmproj") and models.get("mmproj"):
            args += ["--mmproj", models["mmproj"]]
    else:
        args += ["-ngl", "999"]
    args += list(point["args"]) + ["-lv", verbosity]
    return args


def _token_ids(base: str, n: int, tokens: list[int]) -> list[int]:
    if not tokens:
        return []
    reps = n // len(tokens) + 1
    return (tokens * reps)[:n]


def _do_request(kind: str, base_url: str, n_ctx_slot: int | None, n_ubatch: int | None,
                timeout: float) -> dict:
    res: dict = {"kind": kind}
    st, tok = http("POST", base_url + "/tokenize", {"content": BASE_TEXT}, timeout=30)
    base_tokens = tok.get("tokens", []) if isinstance(tok, dict) else []
    base_tokens = [t if isinstance(t, int) else t.get("id") for t in base_tokens]
    if not base_tokens:  # tokenizer said nothing useful: plain ids well inside any vocab
        base_tokens = list(range(1000, 1100))
    slot = n_ctx_slot or 2048
    t0 = time.time()
    if kind == "fill":
        n = min(int(slot * FILL_FRACTION), FILL_MAX_TOKENS)
        ids = _token_ids(BASE_TEXT, n, base_tokens)
        st, body = http("POST", base_url + "/completion",
                        {"prompt": ids, "n_predict": 4, "cache_prompt": False, "temperature": 0},
                        timeout=timeout)
        res.update(sent_tokens=len(ids), status=st)
        if isinstance(body, dict):
            tm = body.get("timings") or {}
            res.update(prompt_n=tm.get("prompt_n"), prompt_per_second=tm.get("prompt_per_second"),
                       tokens_evaluated=body.get("tokens_evaluated"))
        if st != 200:
            res["error"] = _err_text(body)
    elif kind == "overflow":
        n = slot + OVERFLOW_EXTRA
        ids = _token_ids(BASE_TEXT, n, base_tokens)
        st, body = http("POST", base_url + "/completion",
                        {"prompt": ids, "n_predict": 4, "cache_prompt": False}, timeout=timeout)
        res.update(sent_tokens=len(ids), status=st, refusal=_err_text(body) if st != 200 else None,
                   body=body if isinstance(body, dict) and st != 200 else None)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            e = body["error"]
            res.update(n_prompt_tokens=e.get("n_prompt_tokens"), n_ctx=e.get("n_ctx"))
    elif kind == "embed":
        n = min(int(slot * FILL_FRACTION), (n_ubatch or 512) - 16, 480)
        ids = _token_ids(BASE_TEXT, n, base_tokens)
        st, body = http("POST", base_url + "/v1/embeddings", {"input": [ids]}, timeout=timeout)
        res.update(sent_tokens=len(ids), status=st)
        if st == 200 and isinstance(body, dict):
            try:
                res["dim"] = len(body["data"][0]["embedding"])
            except (KeyError, IndexError, TypeError):
                pass
        else:
            res["error"] = _err_text(body)
    elif kind == "rerank":
        reps = max(1, min(int(slot * 0.5), 400) // max(1, len(base_tokens)))
        doc = BASE_TEXT * reps
        st, body = http("POST", base_url + "/v1/rerank",
                        {"query": "how much memory does the server take?",
                         "documents": [doc, "an unrelated sentence about cooking pasta."]},
                        timeout=timeout)
        res.update(sent_tokens=reps * len(base_tokens), status=st)
        if st == 200 and isinstance(body, dict):
            res["scores"] = [r.get("relevance_score") for r in body.get("results", [])]
        else:
            res["error"] = _err_text(body)
    res["seconds"] = round(time.time() - t0, 2)
    return res


def measure_point(point: dict, models: dict[str, str], log_dir: Path, server_cmd, mem,
                  progress=print, health_timeout: float = 150, request_timeout: float = 120,
                  port: int | None = None) -> dict:
    """Start one server for ``point``, measure it, stop it; never raises."""
    port = port or _free_port()
    base_url = f"http://127.0.0.1:{port}"
    rec: dict = {"name": point["name"], "model": point["model"], "mmproj": point.get("mmproj", False),
                 "flags": list(point["args"]), "note": point.get("note", ""), "errors": [],
                 "requests": []}
    log_path = log_dir / f"{point['name']}.log"
    rec["log"] = log_path.name
    t0 = time.time()
    proc = None
    try:
        if point["model"] not in models or not models[point["model"]]:
            raise RuntimeError(f"model {point['model']!r} is not available")
        args = point_args(point, models, port)
        argv = server_cmd(args)
        rec["argv"] = argv
        base_apps, base_used = mem.apps(), mem.used()
        rec["gpu_used_before_mib"] = base_used
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        rec["pid"] = proc.pid
        ok = False
        while time.time() - t0 < health_timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode} before /health was ok")
            try:
                st, _ = http("GET", base_url + "/health", timeout=2)
                if st == 200:
                    ok = True
                    break
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        if not ok:
            raise RuntimeError(f"/health not ok after {health_timeout:.0f}s")
        rec["load_seconds"] = round(time.time() - t0, 2)
        time.sleep(SETTLE_S)
        rec["after_load"] = snapshot(mem, proc.pid, base_apps, base_used)
        n_ctx_slot = None
        try:
            st, props = http("GET", base_url + "/props", timeout=10)
            if isinstance(props, dict):
                dgs = props.get("default_generation_settings") or {}
                n_ctx_slot = dgs.get("n_ctx")
                rec["props"] = {"n_ctx": n_ctx_slot, "total_slots": props.get("total_slots"),
                                "build_info": props.get("build_info"),
                                "modalities": props.get("modalities")}
        except (OSError, urllib.error.URLError) as e:
            rec["errors"].append(f"/props: {e}")
        n_ubatch = parse_log(log_path.read_text("utf-8", "replace"))["fields"].get("n_ubatch")
        for kind in point["requests"]:
            try:
                with PeakPoller(mem, proc.pid, base_apps, base_used) as pp:
                    r = _do_request(kind, base_url, n_ctx_slot, n_ubatch, request_timeout)
                r["peak_proc_mib"] = pp.peak_proc
                r["peak_gpu_used_delta_mib"] = pp.peak_used_delta
                time.sleep(AFTER_REQUEST_S)
                r["after"] = snapshot(mem, proc.pid, base_apps, base_used)
            except Exception as e:  # noqa: BLE001 - a failing request is data
                r = {"kind": kind, "error": f"{type(e).__name__}: {e}"}
            rec["requests"].append(r)
            if r.get("error") and kind != "overflow":
                rec["errors"].append(f"{kind}: {r['error']}")
            if proc.poll() is not None:
                rec["errors"].append(f"llama-server died during {kind} (rc {proc.returncode})")
                break
        fills = [r for r in rec["requests"] if r["kind"] != "overflow" and "after" in r]
        if fills:
            rec["after_prompt"] = fills[0]["after"]
            rec["peak_proc_mib"] = fills[0].get("peak_proc_mib")
    except Exception as e:  # noqa: BLE001
        rec["errors"].append(f"{type(e).__name__}: {e}")
    finally:
        if proc is not None:
            rec["exit_code"] = stop_server(proc)
    try:
        parsed = parse_log(log_path.read_text("utf-8", "replace")) if log_path.exists() else {}
    except Exception as e:  # noqa: BLE001
        parsed = {}
        rec["errors"].append(f"parse: {e}")
    rec.update(parsed)
    rec["seconds"] = round(time.time() - t0, 2)
    return rec


def stop_server(proc: subprocess.Popen, grace: float = 25) -> int | None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
        except OSError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    return proc.returncode


def run_points(points: list[dict], models: dict[str, str], out_dir: Path, server_cmd, mem,
               meta: dict | None = None, progress=None, **kw) -> dict:
    """The point loop: measure each point, rewrite calibration.json after each, print a row."""
    out_dir = Path(out_dir)
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or (lambda msg: print(msg, flush=True))
    doc = {"meta": meta or {}, "points": []}
    progress(table_header())
    for pt in points:
        progress(f"[point] {pt['name']} {' '.join(pt['args'])}")
        rec = measure_point(pt, models, log_dir, server_cmd, mem, progress=progress, **kw)
        doc["points"].append(rec)
        write_json(out_dir / "calibration.json", doc)
        progress(table_row(rec))
    return doc


def write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    tmp.replace(path)


# ----------------------------------------------------------------------------------------
# table

_COLS = [("point", 26), ("ok", 3), ("model", 8), ("KV", 8), ("comp", 7), ("hostc", 6), ("mmproj", 7),
         ("mmcomp", 7), ("proc@load", 9), ("proc@fill", 9), ("peak", 7), ("slot", 6), ("note", 0)]


def table_header() -> str:
    return " ".join(f"{n:<{w}}" if w else n for n, w in _COLS)


def _sum(totals: dict, scope: str, kind: str, host: bool | None) -> float | None:
    vals = []
    for k, v in totals.items():
        sc, dev, kd = k.split(" ", 2)
        is_host = dev.startswith("CPU") or dev.endswith("_Host") or dev == "Host"
        if sc == scope and kd == kind and (host is None or is_host == host):
            vals.append(v)
    return round(sum(vals), 1) if vals else None


def table_row(rec: dict) -> str:
    t = rec.get("totals") or {}
    dev_model = _sum(t, "text", "model", False)
    if dev_model is None:
        dev_model = _sum(t, "text", "model", True)
    kv = _sum(t, "text", "KV", None)
    comp = _sum(t, "text", "compute", False)
    if comp is None:
        comp = _sum(t, "text", "compute", True)
        hostc = None
    else:
        hostc = _sum(t, "text", "compute", True)
    mm = _sum(t, "mmproj", "weights", None)
    mmc = _sum(t, "mmproj", "compute", None)
    load = (rec.get("after_load") or {}).get("proc_mib")
    fill = (rec.get("after_prompt") or {}).get("proc_mib")
    peak = rec.get("peak_proc_mib")
    slot = (rec.get("fields") or {}).get("n_ctx_slot")
    note = "; ".join(rec.get("errors") or [])[:160]
    for r in rec.get("requests") or []:
        if r.get("kind") == "overflow":
            note = (f"overflow {r.get('status')}: {r.get('refusal')}"[:160] + ("; " + note if note else ""))
    vals = [rec.get("name"), "y" if not rec.get("errors") else "N", dev_model, kv, comp, hostc, mm, mmc,
            load, fill, peak, slot, note]
    out = []
    for (n, w), v in zip(_COLS, vals):
        s = "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
        out.append(f"{s:<{w}}" if w else s)
    return " ".join(out)


def format_table(doc: dict) -> str:
    lines = []
    meta = doc.get("meta") or {}
    if meta:
        lines.append("  ".join(f"{k}={meta[k]}" for k in ("gpu", "driver", "cuda", "build", "commit", "date")
                               if k in meta))
        cc = meta.get("cuda_context")
        if cc:
            lines.append(f"bare CUDA context: proc {cc.get('proc_mib')} MiB, device delta "
                         f"{cc.get('gpu_used_delta_mib')} MiB")
    lines.append("MiB; model/KV/comp = text model on device (host if no device), hostc = host compute, "
                 "mmproj = clip weights, proc@ = nvidia-smi per-process")
    lines.append(table_header())
    for rec in doc.get("points", []):
        lines.append(table_row(rec))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# pack (here)

def _excluded(rel: str) -> bool:
    parts = rel.split("/")
    for ex in PACK_EXCLUDE_DIRS:
        exp = ex.split("/")
        if parts[:len(exp)] == exp:
            return True
    if parts[:2] == ["tools", "ui"] and len(parts) == 3 and parts[2] not in PACK_UI_KEEP:
        return True
    if any(p in (".git", "__pycache__", "node_modules") for p in parts):
        return True
    return False


def pack(out: Path, sdist: Path = SDIST) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    dest = out / PACK_TARBALL
    tmp = dest.with_name(dest.name + ".tmp")
    n = 0
    import copy
    with tarfile.open(sdist, "r:gz") as src, tarfile.open(tmp, "w:xz", preset=6) as dst:
        for m in src:
            if not m.name.startswith(prefix):
                continue
            rel = m.name[len(prefix):]
            if not rel or _excluded(rel):
                continue
            if not (m.isfile() or m.isdir() or m.issym()):
                continue
            m2 = copy.copy(m)
            m2.name = f"{TREE_NAME}/{rel}"
            m2.pax_headers = {}  # the sdist's pax "path" header would override the new name
            m2.uid = m2.gid = 0
            m2.uname = m2.gname = "root"
            dst.addfile(m2, src.extractfile(m) if m.isfile() else None)
            n += 1
    tmp.replace(dest)
    here = Path(__file__).resolve().parent
    for py in here.glob("*.py"):
        shutil.copy2(py, out / py.name)
    info = {"llama_cpp_python": LLAMA_CPP_PYTHON_VERSION, "build": BUILD_NUMBER, "commit": BUILD_COMMIT,
            "files": n, "tarball_bytes": dest.stat().st_size,
            "packed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    (out / "pack.json").write_text(json.dumps(info, indent=1))
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"packed {n} entries -> {dest} ({dest.stat().st_size / 1e6:.1f} MB); dir total {total / 1e6:.1f} MB")
    return dest


# ----------------------------------------------------------------------------------------
# run (there)

class Progress:
    def __init__(self, path: Path):
        self.path = path
        self.t0 = time.time()

    def __call__(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def _sh(cmd: list[str], log: Path, cwd: Path | None = None, timeout: float = 1800, env=None) -> int:
    with open(log, "ab") as f:
        f.write(("\n$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        try:
            return subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=env).returncode
        except subprocess.TimeoutExpired:
            f.write(b"\n[timeout]\n")
            return 124


def _cuda_env() -> dict:
    env = dict(os.environ)
    for d in ("/usr/local/cuda/bin", "/usr/local/cuda-12/bin", "/usr/local/cuda-13/bin"):
        if Path(d, "nvcc").exists() and d not in env.get("PATH", ""):
            env["PATH"] = d + ":" + env.get("PATH", "")
    return env


def build(tree: Path, log: Path, progress, jobs: int) -> Path:
    bindir = tree / "build" / "bin"
    if (bindir / "llama-server").exists() and (bindir / "llama-quantize").exists():
        progress("build: reusing existing binaries")
        return bindir
    env = _cuda_env()
    gen = ["-G", "Ninja"] if shutil.which("ninja", path=env["PATH"]) else ["-G", "Unix Makefiles"]
    t0 = time.time()
    progress(f"build: configure ({gen[1]})")
    rc = _sh(["cmake", "-S", ".", "-B", "build", *gen, *CMAKE_FLAGS], log, cwd=tree, env=env, timeout=600)
    if rc != 0:
        raise RuntimeError(f"cmake configure failed (rc {rc}); see build.log")
    progress(f"build: compiling llama-server llama-quantize -j{jobs}")
    rc = _sh(["cmake", "--build", "build", f"-j{jobs}", "--target", "llama-server", "llama-quantize"],
             log, cwd=tree, env=env, timeout=1800)
    if rc != 0:
        raise RuntimeError(f"build failed (rc {rc}); see build.log")
    progress(f"build: done in {time.time() - t0:.0f}s")
    return bindir


def load_models_module(pack_dir: Path, tree: Path):
    gp = str(tree / "gguf-py")
    if gp not in sys.path:
        sys.path.insert(0, gp)
    cand = Path(pack_dir) / "models.py"
    if not cand.exists():
        cand = Path(__file__).resolve().parent / "models.py"
    spec = importlib.util.spec_from_file_location("aistack_calibrate_models", cand)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def make_models(pack_dir: Path, tree: Path, mdir: Path, bindir: Path, log: Path, progress,
                wanted: set[str]) -> tuple[dict[str, str], dict]:
    """Write (and quantise) the models the points need; returns (paths, errors)."""
    mdir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    errors: dict[str, str] = {}
    try:
        mod = load_models_module(pack_dir, tree)
    except Exception as e:  # noqa: BLE001
        errors["models.py"] = f"{type(e).__name__}: {e}"
        progress(f"models: cannot import models.py: {e}")
        return paths, errors
    quant = str(bindir / "llama-quantize")
    jobs = str(os.cpu_count() or 8)

    def write(key: str, fn_name: str) -> Path | None:
        p = mdir / MODEL_FILES[key]
        if p.exists() and p.stat().st_size > 0:
            return p
        t0 = time.time()
        tmp = p.with_name(p.name + ".part")  # a killed run leaves no half file to reuse
        try:
            getattr(mod, fn_name)(str(tmp))
            os.replace(tmp, p)
            progress(f"models: wrote {p.name} ({p.stat().st_size / 2**20:.0f} MiB) in {time.time() - t0:.0f}s")
            return p
        except Exception as e:  # noqa: BLE001
            errors[key] = f"{fn_name}: {type(e).__name__}: {e}"
            progress(f"models: {fn_name} failed: {e}")
            with open(log, "a") as f:
                traceback.print_exc(file=f)
            for f in (p, tmp):
                if f.exists():
                    f.unlink()
            return None

    def quantise(src_key: str, dst_key: str, qtype: str, extra: list[str] = ()) -> Path | None:
        src = mdir / MODEL_FILES[src_key]
        dst = mdir / MODEL_FILES[dst_key]
        if dst.exists() and dst.stat().st_size > 0:
            return dst
        t0 = time.time()
        part = dst.with_name(dst.name + ".part")
        rc = _sh([quant, *extra, str(src), str(part), qtype, jobs], log, timeout=900)
        if rc == 0:
            os.replace(part, dst)
        else:
            if part.exists():
                part.unlink()
            errors[dst_key] = f"llama-quantize {qtype} rc {rc}"
            progress(f"models: quantise {src.name} -> {qtype} failed (rc {rc})")
            if dst.exists():
                dst.unlink()
            return None
        progress(f"models: quantised {dst.name} ({dst.stat().st_size / 2**20:.0f} MiB) in {time.time() - t0:.0f}s")
        return dst

    if "gemma" in wanted:
        if write("gemma_f16", "write_gemma4_e2b"):
            # the published file's tensor-type overrides (models.py), so the sizes match it
            q = quantise("gemma_f16", "gemma", "Q4_K_M", mod.quantize_args("gemma-4-e2b-it"))
            if q:
                paths["gemma"] = str(q)
        if write("mmproj", "write_gemma4_e2b_mmproj"):
            paths["mmproj"] = str(mdir / MODEL_FILES["mmproj"])
    if "bge" in wanted and write("bge", "write_bge_base"):
        paths["bge"] = str(mdir / MODEL_FILES["bge"])
    if "reranker" in wanted and write("reranker_src", "write_bge_reranker"):
        q = quantise("reranker_src", "reranker", "Q8_0")
        if q:
            paths["reranker"] = str(q)
    try:
        errors["_models_dict"] = json.loads(json.dumps(getattr(mod, "MODELS", None), default=str))
    except Exception:  # noqa: BLE001
        pass
    return paths, errors


# A bare context at the default per-thread stack and at a larger one: the driver reserves local
# memory = stack x resident threads per SM x SMs, so the difference splits the context into a
# part that scales with the GPU's size and a fixed part the planner carries to other GPUs.
CUDA_CTX_SRC = r"""
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <cuda_runtime.h>
__global__ void touch(int *p) { if (p) p[threadIdx.x] = 1; }
int main(int argc, char **argv) {
    cudaError_t e = cudaFree(0);
    if (e != cudaSuccess) { printf("error %s\n", cudaGetErrorString(e)); fflush(stdout); return 1; }
    if (argc > 1) cudaDeviceSetLimit(cudaLimitStackSize, strtoull(argv[1], 0, 10));
    touch<<<1, 32>>>(nullptr); cudaDeviceSynchronize();
    int sms = 0, tpsm = 0; size_t stack = 0, fr = 0, tot = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaDeviceGetAttribute(&tpsm, cudaDevAttrMaxThreadsPerMultiProcessor, 0);
    cudaDeviceGetLimit(&stack, cudaLimitStackSize); cudaMemGetInfo(&fr, &tot);
    printf("ready free=%zu total=%zu sms=%d threads_per_sm=%d stack=%zu\n", fr, tot, sms, tpsm, stack); fflush(stdout);
    sleep(30);
    return 0;
}
"""
CTX_LARGE_STACK = 4096


def _ctx_fields(line: str) -> dict:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def cuda_context(work: Path, mem, log: Path, progress) -> dict:
    res: dict = {}
    try:
        src = work / "cuda_ctx.cu"
        exe = work / "cuda_ctx"
        src.write_text(CUDA_CTX_SRC)
        env = _cuda_env()
        nvcc = shutil.which("nvcc", path=env["PATH"])
        if not nvcc:
            return {"error": "nvcc not found"}
        rc = _sh([nvcc, "-O2", "-arch=sm_90", "-o", str(exe), str(src)], log, timeout=300, env=env)
        if rc != 0:
            return {"error": f"nvcc rc {rc}"}
        for stack in (None, CTX_LARGE_STACK):
            base_apps, base_used = mem.apps(), mem.used()
            p = subprocess.Popen([str(exe)] + ([str(stack)] if stack else []), stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline().strip()
            if not line.startswith("ready"):
                res["error"] = line or f"no output (rc {p.poll()})"
            time.sleep(1.5)
            shot = {"program": line, **_ctx_fields(line), **snapshot(mem, p.pid, base_apps, base_used)}
            p.kill()
            p.wait()
            if stack is None:
                res.update(shot)
            else:
                res["large_stack"] = shot
        progress(f"cuda context: proc {res.get('proc_mib')} MiB, device delta {res.get('gpu_used_delta_mib')} MiB")
    except Exception as e:  # noqa: BLE001
        res["error"] = f"{type(e).__name__}: {e}"
    return res


def gpu_meta() -> dict:
    meta: dict = {}
    q = _run_out(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used",
                  "--format=csv,noheader,nounits"])
    if q.strip():
        parts = [p.strip() for p in q.splitlines()[0].split(",")]
        if len(parts) >= 4:
            meta.update(gpu=parts[0], driver=parts[1], gpu_total_mib=int(float(parts[2])),
                        gpu_used_idle_mib=int(float(parts[3])))
        meta["gpu_count"] = len(q.strip().splitlines())
    m = re.search(r"CUDA Version:\s*([\d.]+)", _run_out(["nvidia-smi"]))
    if m:
        meta["cuda"] = m[1]
    m = re.search(r"release ([\d.]+)", _run_out([shutil.which("nvcc", path=_cuda_env()["PATH"]) or "nvcc",
                                                  "--version"]))
    if m:
        meta["nvcc"] = m[1]
    return meta


def run(pack_dir: Path, out: Path, points_name: str = "default", only: str | None = None,
        work: Path | None = None, jobs: int | None = None) -> int:
    pack_dir, out = Path(pack_dir).resolve(), Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work or "/tmp/aistack-calib").resolve()
    work.mkdir(parents=True, exist_ok=True)
    progress = Progress(out / "progress.log")
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    points = POINTS_DEFAULT if points_name == "all" else POINT_SETS[points_name]
    if only:
        names = set(only.split(","))
        points = [p for p in (POINTS_DEFAULT) if p["name"] in names]
    meta = {"build": BUILD_NUMBER, "commit": BUILD_COMMIT, "llama_cpp_python": LLAMA_CPP_PYTHON_VERSION,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": os.uname().nodename, "cpus": os.cpu_count(), "points_set": points_name,
            "python": sys.version.split()[0], "cmake_flags": CMAKE_FLAGS, "steps": {}}
    meta.update(gpu_meta())
    progress(f"start: {json.dumps({k: meta.get(k) for k in ('gpu', 'driver', 'cuda', 'nvcc')})}")
    doc = {"meta": meta, "points": []}
    write_json(out / "calibration.json", doc)
    rc = 0
    try:
        tree = work / TREE_NAME
        if not (tree / "CMakeLists.txt").exists():
            t0 = time.time()
            with tarfile.open(pack_dir / PACK_TARBALL) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(work, filter="fully_trusted")
                else:
                    tf.extractall(work)
            progress(f"untar: {time.time() - t0:.0f}s")
        t0 = time.time()
        bindir = build(tree, logs / "build.log", progress, jobs or os.cpu_count() or 16)
        meta["steps"]["build_s"] = round(time.time() - t0)
        server = bindir / "llama-server"
        meta["server_version"] = _run_out([str(server), "--version"], stderr=True).strip()[-400:]
        t0 = time.time()
        wanted = {p["model"] for p in points}
        models, merr = make_models(pack_dir, tree, work / "models", bindir, logs / "models.log", progress,
                                   wanted)
        meta["models"] = {k: {"path": v, "mib": round(Path(v).stat().st_size / 2**20, 1),
                              "catalogue": CATALOGUE_FILES[k][0], "file_key": CATALOGUE_FILES[k][1]}
                          for k, v in models.items()}
        meta["model_errors"] = {k: v for k, v in merr.items() if not k.startswith("_")}
        if "_models_dict" in merr:
            meta["models_py"] = merr["_models_dict"]
        meta["steps"]["models_s"] = round(time.time() - t0)
        mem = NvidiaSmi()
        meta["cuda_context"] = cuda_context(work, mem, logs / "cuda_ctx.log", progress)
        write_json(out / "calibration.json", doc)

        def server_cmd(args: list[str]) -> list[str]:
            return [str(server), *args]

        t0 = time.time()
        res = run_points(points, models, out, server_cmd, mem, meta=meta, progress=progress)
        doc["points"] = res["points"]
        meta["steps"]["points_s"] = round(time.time() - t0)
    except Exception as e:  # noqa: BLE001
        meta["fatal"] = f"{type(e).__name__}: {e}"
        progress(f"FATAL: {meta['fatal']}")
        traceback.print_exc()
        rc = 1
    finally:
        doc["meta"] = meta
        # run_points rewrote calibration.json with the same meta object; keep what it measured
        try:
            prev = json.loads((out / "calibration.json").read_text())
            if len(prev.get("points", [])) > len(doc["points"]):
                doc["points"] = prev["points"]
        except (OSError, ValueError):
            pass
        write_json(out / "calibration.json", doc)
        try:
            with tarfile.open(out / "logs.tar.xz", "w:xz") as tf:
                tf.add(logs, arcname="logs")
        except Exception as e:  # noqa: BLE001
            progress(f"logs.tar.xz failed: {e}")
        progress("table:\n" + format_table(doc))
        progress(f"DONE rc={rc}")
    return rc


# ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="aistack.calibrate", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack the vendored llama.cpp tree + these scripts (here)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--sdist", type=Path, default=SDIST)
    p = sub.add_parser("run", help="build, write models and measure (on the GPU machine)")
    p.add_argument("--pack", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--points", default="default", choices=["default", "quick", "all"])
    p.add_argument("--only", help="comma-separated point names (from the default set)")
    p.add_argument("--work", type=Path, default=None, help="build/model dir (default /tmp/aistack-calib)")
    p.add_argument("--jobs", type=int, default=None)
    p = sub.add_parser("table", help="print calibration.json as a table")
    p.add_argument("file", type=Path)
    p = sub.add_parser("points", help="list the measurement points")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        pack(a.out, a.sdist)
        return 0
    if a.cmd == "run":
        return run(a.pack, a.out, a.points, a.only, a.work, a.jobs)
    if a.cmd == "table":
        print(format_table(json.loads(Path(a.file).read_text())))
        return 0
    if a.cmd == "points":
        for name, pts in POINT_SETS.items():
            for pt in pts:
                print(f"{name:8} {pt['name']:28} {pt['model']:9} mmproj={pt['mmproj']!s:5} {' '.join(pt['args'])}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
