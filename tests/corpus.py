"""The edge-case corpus (tests/data/edge_cases) and the fixtures its tests share: a toy model of the window the
corpus genes were laid out for, and the corpus genome and TSS file copied out (nothing is written into tests/data).

Import the fixtures into a test module with ``from tests.corpus import reference, toy_model  # noqa: F401``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "data" / "edge_cases"
UP, DOWN = 20, 10  # the toy model's window, which the corpus genes were laid out for


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    from tests.toy import toy_model_file

    return toy_model_file(tmp_path_factory.mktemp("model"), UP, DOWN)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    """The corpus genome (with its shipped .fai) and TSS file, copied so nothing is ever written into tests/data."""
    folder = tmp_path_factory.mktemp("reference")
    for name in ("genome.fa", "genome.fa.fai", "genes.tsv"):
        shutil.copy(CORPUS / name, folder / name)
    return {"fasta": folder / "genome.fa", "tss": folder / "genes.tsv"}
