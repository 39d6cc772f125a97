"""Allele classification, multi-allelic split, trimming and REF checks."""

from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st

from varxpress.errors import UnknownContigError
from varxpress.io.genome import Genome
from varxpress.io.variants import (
    Allele,
    AlleleKind,
    SkipReason,
    check_ref,
    classify_allele,
    iter_alleles,
    trim_allele,
)


@pytest.mark.parametrize(
    ("ref", "alt", "expected"),
    [
        ("A", "G", AlleleKind.SNV),
        ("a", "t", AlleleKind.SNV),
        ("AC", "GT", AlleleKind.MNV),
        ("AC", "AT", AlleleKind.MNV),  # nothing trimmed
        ("A", "ACGT", AlleleKind.INS),
        ("ACGT", "A", AlleleKind.DEL),
        ("ACG", "TT", AlleleKind.COMPLEX),
        ("AC", "TTTT", AlleleKind.COMPLEX),
        ("A", "N", AlleleKind.SNV),
        ("A", "<DEL>", SkipReason.SYMBOLIC),
        ("A", "<*>", SkipReason.SYMBOLIC),
        ("A", "A[chr2:100[", SkipReason.BREAKEND),
        ("A", "]chr2:100]A", SkipReason.BREAKEND),
        ("A", ".A", SkipReason.BREAKEND),
        ("A", "A.", SkipReason.BREAKEND),
        ("A", "*", SkipReason.SPANNING_DELETION),
        ("A", ".", SkipReason.MISSING_ALT),
        ("A", None, SkipReason.MISSING_ALT),
        ("A", "", SkipReason.MISSING_ALT),
        ("A", "R", SkipReason.INVALID_ALLELE),
        ("X", "A", SkipReason.INVALID_ALLELE),
        ("", "A", SkipReason.INVALID_ALLELE),
        ("A", "A", SkipReason.INVALID_ALLELE),
        ("A", "a", SkipReason.INVALID_ALLELE),
    ],
)
def test_classify_allele(ref, alt, expected):
    assert classify_allele(ref, alt) is expected


def test_classify_too_long():
    assert classify_allele("A", "A" + "C" * 10, max_allele_len=10) is SkipReason.TOO_LONG
    assert classify_allele("A" * 11, "A", max_allele_len=10) is SkipReason.TOO_LONG
    assert classify_allele("A", "A" + "C" * 9, max_allele_len=10) is AlleleKind.INS


def test_skip_reason_values():
    assert SkipReason.TOO_LONG.value == "allele_too_long"
    assert SkipReason.NO_GENE.value == "no_gene_in_window"
    assert SkipReason.REF_MISMATCH == "ref_mismatch"  # str enum
    assert AlleleKind.SNV == "SNV"


def test_iter_alleles_multiallelic():
    got = iter_alleles("chr1", 10, "AT", ["A", "ATT", "<DEL>", "*", "GC"], max_allele_len=50)
    assert got == [
        (0, "A", AlleleKind.DEL),
        (1, "ATT", AlleleKind.COMPLEX),
        (2, "<DEL>", SkipReason.SYMBOLIC),
        (3, "*", SkipReason.SPANNING_DELETION),
        (4, "GC", AlleleKind.MNV),
    ]
    assert iter_alleles("chr1", 10, "A", []) == [(0, ".", SkipReason.MISSING_ALT)]
    assert iter_alleles("chr1", 0, "A", ["G"]) == [(0, "G", SkipReason.INVALID_ALLELE)]
    assert iter_alleles("chr1", 5, "A", ["A" * 5], max_allele_len=4) == [(0, "AAAAA", SkipReason.TOO_LONG)]


def test_allele_coordinates():
    a = Allele("chr1", 10, "ACG", "A", 0, AlleleKind.DEL)
    assert (a.start, a.end) == (9, 12)
    snv = Allele("1", 1, "A", "G", 1, AlleleKind.SNV)
    assert (snv.start, snv.end) == (0, 1)
    with pytest.raises(AttributeError):
        a.pos = 3  # frozen


@pytest.mark.parametrize(
    ("pos", "ref", "alt", "expected"),
    [
        (10, "ACG", "ATG", (11, "C", "T")),
        (10, "AT", "ATT", (10, "A", "AT")),
        (10, "ACGT", "ACT", (11, "CG", "C")),
        (10, "A", "G", (10, "A", "G")),
        (10, "CAAA", "CA", (10, "CAA", "C")),
        (10, "acg", "ACT", (12, "g", "T")),
    ],
)
def test_trim_allele(pos, ref, alt, expected):
    assert trim_allele(pos, ref, alt) == expected


@given(ref=st.text("ACGT", min_size=1, max_size=8), alt=st.text("ACGT", min_size=1, max_size=8))
def test_trim_allele_keeps_a_base_and_the_change(ref, alt):
    pos, r, a = trim_allele(100, ref, alt)
    assert r and a
    start = pos - 100
    tail = len(ref) - start - len(r)
    assert ref[:start] == alt[:start]  # only a shared prefix was dropped ...
    assert ref[start : start + len(r)] == r and alt[start : start + len(a)] == a
    assert tail == len(alt) - start - len(a) >= 0
    assert ref[len(ref) - tail :] == alt[len(alt) - tail :]  # ... and a shared suffix
    if len(r) > 1 and len(a) > 1:  # nothing more to trim
        assert r[0] != a[0] and r[-1] != a[-1]


@pytest.fixture
def ref_genome(tmp_path) -> Genome:
    path = tmp_path / "g.fa"
    path.write_text(">chr1\nACGTNACGTA\n")
    with Genome(path) as g:
        yield g


def test_check_ref(ref_genome):
    g = ref_genome
    assert check_ref(g, "chr1", 1, "A")
    assert check_ref(g, "1", 1, "acg")  # alias, case-insensitive
    assert not check_ref(g, "chr1", 1, "C")
    assert check_ref(g, "chr1", 5, "G")  # N in the genome matches any base
    assert check_ref(g, "chr1", 2, "NG")  # N in REF matches any base
    assert not check_ref(g, "chr1", 2, "NA")
    assert check_ref(g, "chr1", 10, "A")
    assert not check_ref(g, "chr1", 10, "AN")  # runs past the contig end
    assert not check_ref(g, "chr1", 0, "A")
    with pytest.raises(UnknownContigError, match="'chr9' is not in"):
        check_ref(g, "chr9", 1, "A")
