"""Prometheus exporter for tegrastats, run on the Jetsons (rendered by aistack).

DCGM does not run on Jetsons, so the GPU boxes' dcgm-exporter has no counterpart there: this
reads `tegrastats --interval <ms>` line by line and serves the latest reading.
RAM is the number to watch: CPU and GPU share it, and the seeds' Orin froze when unified
memory ran out (000), long before any GPU counter looked alarming.

GET /metrics -> Prometheus text format 0.0.4 (503 until the first reading)
GET /health  -> 200 once a reading has arrived (503 before)

Environment: JETSON_EXPORTER_TEGRASTATS (default `tegrastats`), JETSON_EXPORTER_INTERVAL_MS
(1000), JETSON_EXPORTER_HOST (127.0.0.1), JETSON_EXPORTER_PORT (9102).

Python 3.8+ and the standard library only: JetPack 5 images ship Python 3.8. Fields of a
line that do not parse are skipped; a line with nothing usable keeps the previous reading.
If tegrastats exits, so does the exporter (non-zero), and the container's restart policy
starts both again.
"""

# Python 3.8 on JetPack 5: typing's Optional/Dict/List/Tuple, not `X | None` or `dict[...]`.
# ruff: noqa: UP006, UP035, UP045

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

MIB = 1024 * 1024  # tegrastats' "MB" is /proc/meminfo's kB divided by 1024
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# "RAM 3168/6851MB (lfb 2x4MB)", "SWAP 161/3426MB (cached 0MB)"
RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)MB")
SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)MB")
# "CPU [23%@1397,17%@1192,off,off]"; old releases: "CPU [17%,13%,29%,5%]@408"
CPU_RE = re.compile(r"\bCPU \[([^\]]*)\]")
CORE_RE = re.compile(r"(\d+(?:\.\d+)?)%")
# "GR3D_FREQ 0%", "GR3D_FREQ 0%@1109", "GR3D_FREQ 0%@[114]", "GR3D_FREQ 0%@[305,305]" (MHz per GPC)
GPU_RE = re.compile(r"\bGR3D_FREQ (\d+(?:\.\d+)?)%(?:@\[?(\d+(?:,\d+)*)\]?)?")
EMC_RE = re.compile(r"\bEMC_FREQ (\d+(?:\.\d+)?)%")
# "cpu@45.5C", "CPU@38.5C", "iwlwifi@37C", "BCPU@-45C"; only the first number of "cpu@50C/50C"
TEMP_RE = re.compile(r"(?<![\w%])([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C(?![\w])")
ABSENT_SENSOR_C = -256.0  # tegrastats prints e.g. "CV0@-256C" for a sensor that is not there
# "VDD_IN 5012mW/5012mW" (JetPack 5 and 6), "POM_5V_IN 3542/3542" or "VDD_IN 6140/5510"
# (JetPack 4): current/average. The lookahead keeps "RAM 3168/6851MB" and "IRAM 0/252kB" out.
RAIL_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w])")


@dataclass
class Reading:
    """One tegrastats line. Sizes in bytes, utilizations as ratios 0..1, power in mW."""

    ram_used_bytes: Optional[int] = None
    ram_total_bytes: Optional[int] = None
    swap_used_bytes: Optional[int] = None
    swap_total_bytes: Optional[int] = None
    gpu_utilization_ratio: Optional[float] = None
    gpu_frequency_hz: Optional[int] = None
    emc_utilization_ratio: Optional[float] = None
    cpu_utilization_ratio: Dict[str, float] = field(default_factory=dict)  # core index -> ratio
    temperature_celsius: Dict[str, float] = field(default_factory=dict)  # lower-case sensor -> C
    power_milliwatts: Dict[str, int] = field(default_factory=dict)  # rail -> current mW


def parse(line: str) -> Optional[Reading]:
    """The reading in one tegrastats line, or None if nothing in it parses."""
    reading = Reading()
    found = False
    match = RAM_RE.search(line)
    if match:
        reading.ram_used_bytes, reading.ram_total_bytes = int(match[1]) * MIB, int(match[2]) * MIB
        found = True
    match = SWAP_RE.search(line)
    if match:
        reading.swap_used_bytes, reading.swap_total_bytes = int(match[1]) * MIB, int(match[2]) * MIB
        found = True
    match = CPU_RE.search(line)
    if match:
        for index, core in enumerate(match[1].split(",")):
            load = CORE_RE.match(core.strip())  # "off" and anything odd: skipped, index kept
            if load:
                reading.cpu_utilization_ratio[str(index)] = float(load[1]) / 100
                found = True
    match = GPU_RE.search(line)
    if match:
        reading.gpu_utilization_ratio = float(match[1]) / 100
        if match[2]:
            reading.gpu_frequency_hz = max(int(mhz) for mhz in match[2].split(",")) * 1_000_000
        found = True
    match = EMC_RE.search(line)
    if match:
        reading.emc_utilization_ratio = float(match[1]) / 100
        found = True
    for name, value in TEMP_RE.findall(line):
        celsius = float(value)
        if celsius > ABSENT_SENSOR_C:
            reading.temperature_celsius.setdefault(name.lower(), celsius)
            found = True
    for rail, current, _average in RAIL_RE.findall(line):
        reading.power_milliwatts.setdefault(rail, int(current))
        found = True
    return reading if found else None


# name, help, the reading's attribute, label name for dict-valued attributes
METRICS: List[Tuple[str, str, str, Optional[str]]] = [
    ("jetson_ram_used_bytes", "RAM in use (CPU and GPU share it: unified memory).", "ram_used_bytes", None),
    ("jetson_ram_total_bytes", "RAM available to applications.", "ram_total_bytes", None),
    ("jetson_swap_used_bytes", "Swap in use.", "swap_used_bytes", None),
    ("jetson_swap_total_bytes", "Swap available.", "swap_total_bytes", None),
    ("jetson_gpu_utilization_ratio", "GPU (GR3D) load at its current frequency, 0..1.", "gpu_utilization_ratio", None),
    ("jetson_gpu_frequency_hz", "GPU (GR3D) frequency; the highest GPC's when there are several.", "gpu_frequency_hz", None),
    ("jetson_cpu_utilization_ratio", "Load of each online CPU core, 0..1.", "cpu_utilization_ratio", "core"),
    ("jetson_temperature_celsius", "Temperature of each thermal sensor tegrastats reports.", "temperature_celsius", "sensor"),
    ("jetson_power_milliwatts", "Current power of each rail tegrastats reports.", "power_milliwatts", "rail"),
    ("jetson_emc_utilization_ratio", "External memory controller load, 0..1.", "emc_utilization_ratio", None),
]


def _value(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(reading: Reading, timestamp: Optional[float] = None) -> str:
    """Prometheus text format 0.0.4; metrics the reading does not have are left out."""
    lines = []
    for name, help_text, attribute, label in METRICS:
        value = getattr(reading, attribute)
        if label is None:
            samples = [] if value is None else [(name, value)]
        else:
            samples = [(name + "{" + label + '="' + _label(key) + '"}', value[key]) for key in value]
        if samples:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{sample} {_value(number)}" for sample, number in samples]
    if timestamp is not None:
        name = "jetson_exporter_last_reading_timestamp_seconds"
        lines += [f"# HELP {name} Unix time the latest reading arrived.", f"# TYPE {name} gauge"]
        lines.append(f"{name} {timestamp!r}")
    return "\n".join(lines) + "\n"


# Plumbing: tegrastats in a child process, the latest reading behind a lock, HTTP in threads.

latest: Optional[Tuple[Reading, float]] = None
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def reply(self, code: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            current = latest
        path = self.path.split("?", 1)[0]
        if path not in ("/health", "/metrics"):
            self.reply(404, "not found\n")
        elif current is None:
            self.reply(503, "no tegrastats reading yet\n")
        elif path == "/health":
            self.reply(200, "ok\n")
        else:
            self.reply(200, exposition(*current), CONTENT_TYPE)

    def log_message(self, format, *args):  # a scrape every few seconds is not news
        pass


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"{name} must be an integer, got {raw!r}")
    if value <= 0:
        sys.exit(f"{name} must be positive, got {value}")
    return value


def main() -> int:
    global latest
    tegrastats = os.environ.get("JETSON_EXPORTER_TEGRASTATS", "tegrastats")
    interval_ms = env_int("JETSON_EXPORTER_INTERVAL_MS", 1000)
    host = os.environ.get("JETSON_EXPORTER_HOST", "127.0.0.1")
    port = env_int("JETSON_EXPORTER_PORT", 9102)

    # docker stop sends SIGTERM: leave through the finally below, which stops tegrastats too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        child = subprocess.Popen(
            [tegrastats, "--interval", str(interval_ms)],
            stdout=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as exc:
        sys.exit(f"cannot run {tegrastats}: {exc}")
    print(f"jetson exporter on http://{host}:{port}/metrics, reading {tegrastats} every {interval_ms} ms", file=sys.stderr, flush=True)
    try:
        for line in child.stdout:
            reading = parse(line)
            if reading is not None:
                with lock:
                    latest = (reading, time.time())
        code = child.wait()
        print(f"{tegrastats} exited with {code}: stopping", file=sys.stderr, flush=True)
        return 1
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
