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


def pytest_configure(config):
    """Real-data tests: skip with the reason where ../shared/data is absent, fail under CI=true; a summary line."""
    from tests.realdata import RealDataReport

    config.pluginmanager.register(RealDataReport(config), "varxpress-realdata")
