"""Tests of varxpress.learning.seqtable: sequence tables (MPRA libraries), adapters, leak groups and the group split."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest

from varxpress.cli import main
from varxpress.learning.prepared import PreparedSet
from varxpress.sequence.encode import decode
from varxpress.errors import DatasetError
from varxpress.learning.seqtable import (canonical, element_of, group_split, leak_groups, read_sequence_table,
                                strip_adapters)

LEFT, RIGHT = "AGGACCGGATCAACT", "CATTGCGTGAACCGA"  # the lentiMPRA library's constant flanks
_COMP = str.maketrans("ACGT", "TGCA")


def rc(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def _random_seq(rng: random.Random, n: int = 40) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


def _hepg2_like(path: Path, n_elements: int = 60, seed: int = 0) -> dict[str, str]:
    """``seq_id seq mean_value`` with each element in both orientations; returns id -> insert."""
    rng = random.Random(seed)
    inserts, lines = {}, ["seq_id\tseq\tmean_value"]
    for i in range(n_elements):
        fwd = _random_seq(rng)
        suffix = "_Reversed:" if i % 2 else "_R"
        for rid, ins in ((f"ENSG{i:011d}", fwd), (f"ENSG{i:011d}{suffix}", rc(fwd))):
            inserts[rid] = ins
            lines.append(f"{rid}\t{LEFT}{ins}{RIGHT}\t{rng.gauss(0, 1):.3f}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return inserts


def test_reads_both_library_formats(tmp_path: Path) -> None:
    hep = tmp_path / "HepG2_test.tsv.gz"
    inserts = _hepg2_like(hep, 3)
    table = read_sequence_table(hep)
    assert table.ids == list(inserts) and table.seqs[0] == LEFT + inserts[table.ids[0]] + RIGHT
    assert table.source[0]["id_column"] == "seq_id" and table.source[0]["value_column"] == "mean_value"
    wtc = tmp_path / "WTC11_valid.tsv"
    wtc.write_text(f"seq\tmean_value\n{LEFT}ACGTAC{RIGHT}\t0.5\n{LEFT}acgtaa{RIGHT}\tNA\n{LEFT}TTTTTT{RIGHT}\t-1\n")
    table = read_sequence_table(wtc)
    # rows without ids are named by file stem and line; the NA row is dropped and counted
    assert table.ids == ["WTC11_valid:2", "WTC11_valid:4"]
    assert table.values.tolist() == [0.5, -1.0] and table.source[0]["rows_without_value"] == 1


@pytest.mark.parametrize("body, match", [
    ("seq\tv\nACGTXA\t1\n", r"line 2: sequence holds letters"),
    ("seq\tv\nACGT\t1\nACGA\tlots\n", r"line 3: value 'lots' is not a number"),
    ("id\tv\nx\t1\n", r"no column holds a DNA sequence"),
    ("id\tseq\tv\na\tACGT\t1\na\tACGA\t2\n", r"id 'a' appears twice"),
])
def test_bad_tables_are_named(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "t.tsv"
    path.write_text(body)
    with pytest.raises(DatasetError, match=match):
        read_sequence_table(path)


def test_strip_adapters_auto_and_explicit() -> None:
    seqs = [LEFT + "ACGTTT" + RIGHT, LEFT + "GGG" + RIGHT]
    assert strip_adapters(seqs, "auto") == (["ACGTTT", "GGG"], LEFT, RIGHT)
    assert strip_adapters(seqs, f"{LEFT},{RIGHT}")[0] == ["ACGTTT", "GGG"]
    assert strip_adapters(seqs, "none")[0] == seqs
    with pytest.raises(DatasetError, match="sequence 2 does not carry"):
        strip_adapters([seqs[0], "GGG" + RIGHT], f"{LEFT},{RIGHT}")


def test_leak_groups_join_orientations_and_identical_sequences() -> None:
    ids = ["E1", "E1_Reversed:", "E2", "E2_R", "E3", "E4", "E5"]
    seqs = ["AAAC", "GTTT", "CCCA", "TGGG", "AATT", "GGTA", "TACC"]
    # E1/E2 by id; E3 alone (its own revcomp); E4 and E5 are reverse complements of each other (no shared id)
    groups = leak_groups(ids, seqs)
    assert groups.tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert element_of("DNasePeakNoPromoter7_Reversed:") == "DNasePeakNoPromoter7"
    assert canonical("GGTA") == canonical("TACC") == "GGTA"


def test_group_split_keeps_groups_whole_and_reaches_sizes() -> None:
    groups = np.repeat(np.arange(50), 2)
    split = group_split(groups, 0.2, 0.1, seed=3)
    for g in range(50):
        assert len(set(split[groups == g])) == 1
    assert (split == 2).sum() == 20 and (split == 1).sum() == 10
    with pytest.raises(DatasetError, match="leave no training rows"):
        group_split(groups, 60, 40)


def test_prepare_pools_tables_and_nothing_leaks(tmp_path: Path) -> None:
    a, b = tmp_path / "HepG2_test.tsv.gz", tmp_path / "HepG2_valid.tsv.gz"
    inserts = {**_hepg2_like(a, 40, seed=1), **{k.replace("ENSG", "ENSH"): v for k, v in
                                                _hepg2_like(b, 40, seed=2).items()}}
    # b's ids are renamed so the pool has distinct ids; put one of a's sequences into b under another name
    text = gzip.open(b, "rt").read().replace("ENSG", "ENSH")
    dup_id, dup_seq = next(iter(inserts.items()))
    text += f"DUPLICATE1\t{LEFT}{rc(dup_seq)}{RIGHT}\t0.0\n"
    with gzip.open(b, "wt") as fh:
        fh.write(text)
    out = tmp_path / "lib.vxd.h5"
    assert main(["prepare", "--sequence-table", str(a), "--sequence-table", str(b), "--adapters", "auto",
                 "--tss-index", "30", "--test-size", "0.2", "--valid-size", "0.2", "--value-log-base", "2",
                 "-o", str(out)]) == 0
    raw = dict(zip(read_sequence_table(a).ids, read_sequence_table(a).values))
    with PreparedSet(out) as pset:
        assert pset.n == 161 and (pset.upstream, pset.downstream) == (30, 10)
        assert pset.attr("split_method") == "group"
        assert pset.attr("sequence_source")["stripped_prefix"] == LEFT
        X = pset.load("all").X
        seqs = {i: decode(x) for i, x in zip(pset.ids, X)}
        assert seqs[dup_id] == dup_seq and seqs["DUPLICATE1"] == rc(dup_seq)
        labels = dict(zip(pset.ids, pset.labels))
        assert labels[dup_id] == pytest.approx(raw[dup_id] * np.log10(2), abs=1e-6)  # log2 stored as log10
        side = dict(zip(pset.ids, pset.split))
        assert side["DUPLICATE1"] == side[dup_id]  # reverse-complement-identical rows stay together
        for rid in pset.ids:
            assert side[rid] == side[element_of(rid)]  # an element and its other orientation stay together
        assert set(np.unique(pset.split)) == {0, 1, 2}
