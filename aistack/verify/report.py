"""`aistack verify`: run the live suite (tests/live) in-process and collect one row per check.

The suite is plain pytest-testinfra, so `pytest tests/live --inventory ...` runs the same
checks; this module only turns pytest's reports into rows (host, check, expected, found).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ..model.locks import PROJECT_DIR

LIVE_SUITE = PROJECT_DIR / "tests" / "live"


@dataclass
class Row:
    host: str
    check: str
    result: str  # PASS | FAIL | SKIP | ERROR
    expected: str = ""
    found: str = ""


class Collector:
    """A pytest plugin: each test's report, with the properties the suite records, becomes a row."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.usage_error: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.rows.append(self._row(report, props))

    @staticmethod
    def _row(report: pytest.TestReport, props: dict) -> Row:
        host, check = props.get("host", "?"), props.get("check", report.nodeid)
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            return Row(host, check, "SKIP", found=reason.removeprefix("Skipped: "))
        if report.passed:
            return Row(host, check, "PASS", props.get("expected", ""), props.get("found", ""))
        result = "FAIL" if report.when == "call" else "ERROR"
        found = props.get("found") or _last_line(report)
        return Row(host, check, result, props.get("expected", ""), found)


def _last_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    last = text.strip().splitlines()[-1] if text.strip() else "failed"
    return last.removeprefix("Failed: ")


def run(inventory: Path, hosts: list[str], overrides: list[str], verbose: bool = False) -> tuple[int, list[Row]]:
    """pytest's exit code and the rows, by host (in the suite's order within a host)."""
    args = [str(LIVE_SUITE), "--inventory", str(inventory), "-p", "no:cacheprovider", "-o", "addopts="]
    # The report is ours: pytest's terminal output only when asked for.
    args += ["--tb=short", "-v"] if verbose else ["-p", "no:terminal"]
    args += [a for h in hosts for a in ("--verify-host", h)]
    args += [a for s in overrides for a in ("--verify-set", s)]
    collector = Collector()
    code = pytest.main(args, plugins=[collector])
    return int(code), sorted(collector.rows, key=lambda row: row.host)
