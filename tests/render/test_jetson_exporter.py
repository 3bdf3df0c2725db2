"""The rendered Jetson exporter turns tegrastats lines into Prometheus gauges (DCGM does not run on Jetsons).

No Jetson here: the parser and the exposition run on real tegrastats lines published by others,
and the process end to end runs against a fake `tegrastats` that prints one of them.
"""

import importlib.util
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from aistack.render import TEMPLATES, environment

EXPORTER = TEMPLATES / "jetson_exporter" / "exporter.py"
MIB = 1024 * 1024

# Orin Nano 8 GB under JetPack 6 (r36: lower-case sensor names cpu/soc0-2/gpu/tj), run without
# root (no EMC_FREQ, no GR3D frequency). From github.com/cmu-argus-1/tegrastats-parser,
# README.md (commit d5bcb3f), where it is wrapped over three lines; joined here, verbatim
# otherwise, including its "598mW/598".
ORIN_JP6 = (
    "12-23-2024 22:54:11 RAM 3162/7620MB (lfb 4x2MB) SWAP 0/3810MB (cached 0MB) "
    "CPU [1%@729,0%@729,0%@729,0%@729,off,off] GR3D_FREQ 1% cpu@62.843C soc2@61.968C soc0@60.625C gpu@61.687C tj@62.843C soc1@61.687C "
    "VDD_IN 3913mW/3922mW VDD_CPU_GPU_CV 598mW/598 VDD_SOC 1238mW/1237mW"
)
# Xavier NX under JetPack 5.1.2 (r35), verbatim from github.com/waggle-sensor/jetson-exporter,
# pkg/tegrastats/tegrastats_test.go (commit 3e88270), TestParseTegraStatsXavierNXJetPack512.
XAVIER_NX_JP5 = (
    "07-09-2024 13:31:31 RAM 3168/6851MB (lfb 2x4MB) SWAP 161/3426MB (cached 0MB) "
    "CPU [23%@1397,17%@1192,16%@1190,13%@1190,23%@1190,10%@1190] EMC_FREQ 2%@204 GR3D_FREQ 0%@[114] "
    "VIC_FREQ 115 APE 150 AUX@45C CPU@46.5C thermal@45.6C AO@45C GPU@45.5C PMIC@50C "
    "VDD_IN 2763mW/2846mW VDD_CPU_GPU_CV 650mW/670mW VDD_SOC 650mW/711mW"
)
# Jetson Nano under JetPack 4.6.1 (r32): rails without units, POM_* names, IRAM. Same file,
# TestParseTegraStatsXavierNanoJetPack461. Older than anything this stack deploys, but the
# unit-less "current/average" shape is the one the exporter must not misread.
NANO_JP4 = (
    "RAM 1923/3964MB (lfb 2x2MB) SWAP 191/1982MB (cached 6MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [5%@1224,4%@1224,3%@1224,6%@1224] EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 APE 25 "
    "PLL@37C CPU@40C PMIC@50C GPU@40C AO@45C thermal@40C POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406"
)


def exporter_module():
    spec = importlib.util.spec_from_file_location("jetson_exporter", EXPORTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


exporter = exporter_module()


def test_orin_jetpack6_line():
    reading = exporter.parse(ORIN_JP6)
    assert reading.ram_used_bytes == 3162 * MIB and reading.ram_total_bytes == 7620 * MIB
    assert reading.swap_used_bytes == 0 and reading.swap_total_bytes == 3810 * MIB
    assert reading.gpu_utilization_ratio == pytest.approx(0.01)
    assert reading.gpu_frequency_hz is None  # not printed without root
    assert reading.emc_utilization_ratio is None
    assert reading.cpu_utilization_ratio == pytest.approx({"0": 0.01, "1": 0.0, "2": 0.0, "3": 0.0})  # 4, 5 off
    assert reading.temperature_celsius == {
        "cpu": 62.843, "soc2": 61.968, "soc0": 60.625, "gpu": 61.687, "tj": 62.843, "soc1": 61.687,
    }
    assert reading.power_milliwatts == {"VDD_IN": 3913, "VDD_CPU_GPU_CV": 598, "VDD_SOC": 1238}


def test_xavier_nx_jetpack5_line():
    reading = exporter.parse(XAVIER_NX_JP5)
    assert reading.ram_used_bytes == 3168 * MIB and reading.ram_total_bytes == 6851 * MIB
    assert reading.swap_used_bytes == 161 * MIB and reading.swap_total_bytes == 3426 * MIB
    assert reading.gpu_utilization_ratio == 0.0 and reading.gpu_frequency_hz == 114_000_000
    assert reading.emc_utilization_ratio == pytest.approx(0.02)
    assert reading.cpu_utilization_ratio == pytest.approx(
        {"0": 0.23, "1": 0.17, "2": 0.16, "3": 0.13, "4": 0.23, "5": 0.10}
    )
    assert reading.temperature_celsius == {"aux": 45, "cpu": 46.5, "thermal": 45.6, "ao": 45, "gpu": 45.5, "pmic": 50}
    assert reading.power_milliwatts == {"VDD_IN": 2763, "VDD_CPU_GPU_CV": 650, "VDD_SOC": 650}


def test_unitless_rails_are_read_and_ram_swap_iram_are_not_rails():
    reading = exporter.parse(NANO_JP4)
    assert reading.power_milliwatts == {"POM_5V_IN": 1750, "POM_5V_GPU": 0, "POM_5V_CPU": 366}
    assert reading.ram_used_bytes == 1923 * MIB and reading.gpu_frequency_hz == 76_000_000
    assert reading.temperature_celsius["cpu"] == 40 and reading.temperature_celsius["pll"] == 37


@pytest.mark.parametrize("line", ["", "\n", "tegrastats: command not found", "RAM lots/moreMB CPU [] GR3D_FREQ ?%"])
def test_a_line_with_nothing_usable_is_no_reading(line):
    assert exporter.parse(line) is None


def test_fields_that_do_not_parse_are_skipped_and_the_rest_kept():
    reading = exporter.parse("RAM 3162/7620MB CPU [oops,12%@729,off] GR3D_FREQ ?% tj@hotC VDD_IN 5012mW/5012mW")
    assert reading.ram_used_bytes == 3162 * MIB
    assert reading.swap_used_bytes is None and reading.gpu_utilization_ratio is None
    assert reading.cpu_utilization_ratio == pytest.approx({"1": 0.12})  # the core keeps its index
    assert reading.temperature_celsius == {}
    assert reading.power_milliwatts == {"VDD_IN": 5012}


def test_no_truncation_of_a_real_line_makes_the_parser_raise():
    for line in (ORIN_JP6, XAVIER_NX_JP5, NANO_JP4):
        for cut in range(len(line)):
            exporter.parse(line[:cut])
            exporter.parse(line[cut:])


def test_absent_sensors_several_gpcs_and_newer_min_max_fields():
    # Constructed, not captured: an absent sensor prints as -256C (CV0-2 on an Orin Nano),
    # Orin's GR3D frequency is one value per GPC, and newer tegrastats builds have been seen
    # printing "cpu@50C/50C" and three power figures per rail: the first is the current one.
    reading = exporter.parse(
        "RAM 100/7620MB GR3D_FREQ 40%@[305,612] CV0@-256C cpu@50C/51C VDD_IN 9761mW/9000mW/9900mW"
    )
    assert reading.temperature_celsius == {"cpu": 50}
    assert reading.gpu_frequency_hz == 612_000_000 and reading.gpu_utilization_ratio == pytest.approx(0.4)
    assert reading.power_milliwatts == {"VDD_IN": 9761}


SAMPLE_LINE = re.compile(r'^([a-z_]+)(\{[a-z]+="[^"\\]*"\})? (-?[0-9.e+]+)$')


def families(text: str) -> dict:
    """Structural check of the text format, no library needed: HELP, TYPE, then the samples."""
    assert text.endswith("\n")
    seen, current = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            assert current not in seen, f"{current} twice"
            seen[current] = {}
        elif line.startswith("# TYPE "):
            assert line.split()[2:] == [current, "gauge"]
        else:
            name, labels, value = SAMPLE_LINE.match(line).groups()
            assert name == current
            seen[current][labels or ""] = float(value)
    return seen


def test_exposition_has_help_type_and_the_readings_values():
    got = families(exporter.exposition(exporter.parse(XAVIER_NX_JP5), 1720531891.5))
    assert got["jetson_ram_used_bytes"] == {"": 3168 * MIB}
    assert got["jetson_ram_total_bytes"] == {"": 6851 * MIB}
    assert got["jetson_swap_used_bytes"] == {"": 161 * MIB}
    assert got["jetson_gpu_frequency_hz"] == {"": 114e6}
    assert got["jetson_emc_utilization_ratio"] == {"": 0.02}
    assert got["jetson_cpu_utilization_ratio"]['{core="0"}'] == 0.23 and len(got["jetson_cpu_utilization_ratio"]) == 6
    assert got["jetson_temperature_celsius"]['{sensor="gpu"}'] == 45.5
    assert got["jetson_power_milliwatts"]['{rail="VDD_IN"}'] == 2763
    assert got["jetson_exporter_last_reading_timestamp_seconds"] == {"": 1720531891.5}


def test_metrics_a_line_lacks_are_left_out():
    text = exporter.exposition(exporter.parse(ORIN_JP6), 1.0)
    assert "jetson_emc_utilization_ratio" not in text and "jetson_gpu_frequency_hz" not in text
    assert 'jetson_cpu_utilization_ratio{core="4"}' not in text  # off


def test_exposition_parses_with_prometheus_client():
    parser = pytest.importorskip(
        "prometheus_client.parser",
        reason="prometheus_client is not in the test dependencies; the structural check above still runs",
    )
    text = exporter.exposition(exporter.parse(ORIN_JP6), 1734994451.25)
    parsed = {family.name: family for family in parser.text_string_to_metric_families(text)}
    assert set(parsed) == set(families(text))
    for family in parsed.values():
        assert family.type == "gauge" and family.documentation
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in parsed.values() for s in f.samples}
    assert samples[("jetson_ram_used_bytes", ())] == 3162 * MIB
    assert samples[("jetson_power_milliwatts", (("rail", "VDD_CPU_GPU_CV"),))] == 598
    assert samples[("jetson_temperature_celsius", (("sensor", "tj"),))] == 62.843
    assert math.isclose(samples[("jetson_gpu_utilization_ratio", ())], 0.01)


def test_the_template_renders_to_itself():
    # It ships through the same Jinja environment as every template: no "{{" or "{%" in it.
    assert environment().get_template("jetson_exporter/exporter.py").render() == EXPORTER.read_text()


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode(), response.headers.get("Content-Type")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Content-Type")


def test_health_and_metrics_answer_503_until_the_first_reading(monkeypatch):
    monkeypatch.setattr(exporter, "latest", None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), exporter.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert get(f"{base}/health")[0] == 503 and get(f"{base}/metrics")[0] == 503
        monkeypatch.setattr(exporter, "latest", (exporter.parse(ORIN_JP6), 1.0))
        assert get(f"{base}/health")[0] == 200
        status, body, content_type = get(f"{base}/metrics")
        assert status == 200 and content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert f"jetson_ram_used_bytes {3162 * MIB}\n" in body
        assert get(f"{base}/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def fake_tegrastats(path, first: str, then: str | None = None):
    """A `tegrastats` that ignores its arguments, prints `first`, then `then` every 0.1 s (or exits)."""
    script = f"#!/bin/sh\necho $$ > '{path}.pid'\nprintf '%s\\n' '{first}'\n"
    if then is not None:
        script += f"while true; do\nsleep 0.1\nprintf '%s\\n' '{then}'\ndone\n"
    path.write_text(script)
    path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_exporter(tegrastats, port: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        JETSON_EXPORTER_TEGRASTATS=str(tegrastats),
        JETSON_EXPORTER_INTERVAL_MS="100",
        JETSON_EXPORTER_HOST="127.0.0.1",
        JETSON_EXPORTER_PORT=str(port),
    )
    # Its own process group, so the finally below can stop it and its tegrastats whatever happens.
    return subprocess.Popen([sys.executable, str(EXPORTER)], env=env, start_new_session=True)


def stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=5)


def wait_healthy(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, "the exporter exited"
        try:
            if get(f"http://127.0.0.1:{port}/health")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        assert time.monotonic() < deadline, "no reading within 15 s"
        time.sleep(0.1)


def test_end_to_end_with_a_fake_tegrastats(tmp_path):
    tegrastats = fake_tegrastats(tmp_path / "tegrastats", XAVIER_NX_JP5, then=XAVIER_NX_JP5)
    port = free_port()
    process = start_exporter(tegrastats, port)
    try:
        wait_healthy(process, port)
        status, body, _ = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert f"\njetson_ram_used_bytes {3168 * MIB}\n" in body  # 3321888768
        assert 'jetson_power_milliwatts{rail="VDD_IN"} 2763\n' in body

        # docker stop: SIGTERM to the exporter stops its tegrastats too.
        child = int((tmp_path / "tegrastats.pid").read_text())
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not os.path.exists(f"/proc/{child}"), "tegrastats outlived the exporter"
    finally:
        stop_group(process)


def test_lines_with_nothing_usable_keep_the_previous_reading(tmp_path):
    tegrastats = fake_tegrastats(tmp_path / "tegrastats", ORIN_JP6, then="tegrastats: unexpected output")
    port = free_port()
    process = start_exporter(tegrastats, port)
    try:
        wait_healthy(process, port)
        time.sleep(0.5)  # a few unusable lines later
        status, body, _ = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and f"\njetson_ram_used_bytes {3162 * MIB}\n" in body
    finally:
        stop_group(process)


def test_the_exporter_exits_when_tegrastats_does(tmp_path):
    tegrastats = fake_tegrastats(tmp_path / "tegrastats", ORIN_JP6)
    process = start_exporter(tegrastats, free_port())
    try:
        assert process.wait(timeout=15) == 1  # non-zero: the restart policy brings both back
    finally:
        stop_group(process)


def test_the_dashboards_and_alerts_query_what_the_exporter_exposes():
    """Every jetson_* name in aistack.render.monitoring comes out of a real Orin line."""
    from aistack.render.monitoring import JETSON

    module = exporter_module()
    exposed = set(re.findall(r"^(jetson_[a-z_]+)[{ ]", module.exposition(module.parse(ORIN_JP6)), re.MULTILINE))
    assert set(JETSON.values()) <= exposed, set(JETSON.values()) - exposed
