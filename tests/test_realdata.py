"""The real-data rule itself: absent data skips with a reason, fails under CI=true, and the run says what ran."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import pytest
from pathlib import Path
from tests.realdata import need

@pytest.mark.realdata
def test_present(tmp_path):
    need(tmp_path)

@pytest.mark.realdata
def test_absent(tmp_path):
    need(tmp_path / "kipoi_missing.tsv.gz")

@pytest.mark.realdata
def test_other_skip():
    pytest.skip("no GPU here")

def test_plain():
    pass
'''


@pytest.fixture
def inner(pytester: pytest.Pytester):
    pytester.makeconftest("from tests.conftest import pytest_configure\n")
    pytester.makepyfile(test_inner=INNER)
    return pytester


@pytest.mark.parametrize("ci", ["", "false"])
def test_outside_ci_absent_data_skips_with_its_reason(inner: pytest.Pytester, monkeypatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    result = inner.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["real-data checks: 1 ran, 2 skipped: *test_absent*kipoi_missing*test_other_skip*"])
    result.stdout.fnmatch_lines(["SKIPPED*kipoi_missing.tsv.gz absent: real-data check not run"])


def test_under_ci_no_real_data_test_may_skip(inner: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = inner.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*CI=true but*kipoi_missing.tsv.gz absent*may not skip in CI*",
                                 "*CI=true but this real-data check skipped (no GPU here)*"])
    result.stdout.fnmatch_lines(["real-data checks: 1 ran, 0 skipped, 2 failed for missing data (CI=true)"])
