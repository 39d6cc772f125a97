"""Where the real data lives and what happens when it is absent: the one place tests decide that.

Real data is read from ``../shared/data`` beside the repository (read-only). Where a file is missing a real-data
test is skipped with the reason, except under ``CI=true``: CI always has ``../shared`` beside its clone, so there a
missing file is a broken setup and the test fails instead of skipping into green. ``tests/conftest.py`` reports at
the end of every run which real-data checks ran.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
_IN_CI = "real-data checks may not skip in CI"


def in_ci() -> bool:
    """True where the environment says this is a CI run (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def absent(reason: str) -> None:
    """Skip the calling test with ``reason``, or fail it under CI, where real data must be present."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}: {_IN_CI}", pytrace=False)
    pytest.skip(reason)


def need(*paths: Path) -> Path:
    """Return the first of ``paths`` after checking that every one exists (else :func:`absent`)."""
    for path in paths:
        if not path.exists():
            try:
                shown = f"../shared/data/{path.relative_to(DATA)}"
            except ValueError:
                shown = str(path)
            absent(f"{shown} absent: real-data check not run")
    return paths[0]


def _reason(report) -> str:
    text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return text.removeprefix("Skipped: ")


class RealDataReport:
    """pytest plugin: no real-data test skips under CI; the end of the run says which real-data checks ran.

    Works under pytest-xdist too: the reports of the workers reach the controller's ``pytest_runtest_logreport``.
    """

    def __init__(self, config) -> None:
        self.config = config
        self.outcomes: dict[str, tuple[str, str]] = {}  # nodeid -> (ran | skipped | missing, reason)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.skipped and item.get_closest_marker("realdata") is not None and in_ci():
            if not hasattr(report, "wasxfail"):
                report.outcome = "failed"
                report.longrepr = (f"CI=true but this real-data check skipped ({_reason(report)}): "
                                   f"{_IN_CI}")

    def pytest_runtest_logreport(self, report) -> None:
        if "realdata" not in report.keywords:
            return
        if report.skipped:
            self.outcomes[report.nodeid] = ("skipped", _reason(report))
        elif report.failed and _IN_CI in str(report.longrepr):
            self.outcomes[report.nodeid] = ("missing", "")
        elif report.when == "call":
            self.outcomes[report.nodeid] = ("ran", "")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.outcomes:
            return
        by = {kind: sorted((n, r) for n, (k, r) in self.outcomes.items() if k == kind)
              for kind in ("ran", "skipped", "missing")}
        line = f"real-data checks: {len(by['ran'])} ran, {len(by['skipped'])} skipped"
        if by["missing"]:
            line += f", {len(by['missing'])} failed for missing data (CI=true)"
        if by["skipped"]:
            line += ": " + "; ".join(f"{n} ({r})" for n, r in by["skipped"])
        terminalreporter.write_sep("-", "real data")
        terminalreporter.write_line(line)
        if self.config.getoption("verbose") > 0:
            for n, _ in by["ran"]:
                terminalreporter.write_line(f"  ran: {n}")
