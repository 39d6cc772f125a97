"""Shared test fixtures: tiny data written into ``tmp_path``, never into ``tests/data``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest


@pytest.fixture
def tiny_genome(tmp_path: Path) -> Path:
    """A plain FASTA (no index yet): ``chr1`` 200 bp and ``chr2`` 60 bp of seeded random ACGT, 60-base lines."""
    rng = random.Random(20240601)
    path = tmp_path / "tiny.fa"
    with open(path, "w") as handle:
        for name, length in (("chr1", 200), ("chr2", 60)):
            seq = "".join(rng.choice("ACGT") for _ in range(length))
            handle.write(f">{name}\n" + "".join(seq[i : i + 60] + "\n" for i in range(0, length, 60)))
    return path


# -- real-data checks: never silently skipped in CI, always accounted for ---------------------------------------------

_REALDATA: dict[str, tuple[str, str]] = {}  # nodeid -> (outcome, skip reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a real-data test that skips (whatever skipped it) is reported as failed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("realdata") is not None:
        from tests.realdata import in_ci

        if in_ci() and not hasattr(report, "wasxfail"):
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            report.outcome = "failed"
            report.longrepr = f"CI=true but this real-data check skipped ({reason}): real-data checks may not skip in CI"


def pytest_runtest_logreport(report):
    """Record what became of every real-data test (runs in the controller under pytest-xdist too)."""
    if "realdata" not in report.keywords:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _REALDATA[report.nodeid] = ("skipped", reason.removeprefix("Skipped: "))
    elif report.when == "call" or report.failed:
        _REALDATA.setdefault(report.nodeid, ("ran", ""))
        if report.failed:
            _REALDATA[report.nodeid] = ("ran", "")


def pytest_terminal_summary(terminalreporter):
    """One line saying how many real-data checks ran and which were skipped, and why."""
    if not _REALDATA:
        return
    ran = sorted(n for n, (o, _) in _REALDATA.items() if o == "ran")
    skipped = sorted((n, r) for n, (o, r) in _REALDATA.items() if o == "skipped")
    line = f"real-data checks: {len(ran)} ran, {len(skipped)} skipped"
    if skipped:
        line += ": " + "; ".join(f"{n} ({r})" for n, r in skipped)
    terminalreporter.write_sep("-", "real data")
    terminalreporter.write_line(line)
    if terminalreporter.config.getoption("verbose") > 0:
        for n in ran:
            terminalreporter.write_line(f"  ran: {n}")
