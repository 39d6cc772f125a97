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


def in_ci() -> bool:
    """True where the environment says this is a CI run (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def absent(reason: str) -> None:
    """Skip the calling test with ``reason``, or fail it under CI, where real data must be present."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}: real-data checks may not skip in CI", pytrace=False)
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
