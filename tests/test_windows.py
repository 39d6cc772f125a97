"""Reference/alternate windows: literal expectations on a 20 bp contig and properties on a random one."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from varxpress.sequence.encode import reverse_complement
from varxpress.io.genome import Genome
from varxpress.io.tss import TSS
from varxpress.io.variants import Allele, classify_allele
from varxpress.sequence.windows import Window, WindowSpec, alt_tss, alt_window, distance_to_tss, ref_window

#         0         1
#         01234567890123456789
CHR1 = "ACGTACCGGTTAGCATGTCA"
SPEC = WindowSpec(upstream=5, downstream=3)


@pytest.fixture
def genome(tmp_path):
    path = tmp_path / "lit.fa"
    path.write_text(f">chr1\n{CHR1}\n")
    with Genome(path) as g:
        yield g


def plus(t: int) -> TSS:
    return TSS("GP", "GENEP", "1", t, "+")  # "1" in the annotation, "chr1" in the FASTA


def minus(t: int) -> TSS:
    return TSS("GM", "GENEM", "chr1", t, "-")


def allele(pos: int, ref: str, alt: str) -> Allele:
    assert CHR1[pos - 1 : pos - 1 + len(ref)] == ref  # the literal cases use true REF alleles
    return Allele("chr1", pos, ref, alt, 0, classify_allele(ref, alt))


def test_spec():
    assert SPEC.length == 8
    assert SPEC.sides("+") == (5, 3) and SPEC.sides("-") == (3, 5)
    with pytest.raises(ValueError, match=r"WindowSpec\(upstream=-1, downstream=3\)"):
        WindowSpec(-1, 3)
    with pytest.raises(ValueError, match=r"WindowSpec\(upstream=0, downstream=0\)"):
        WindowSpec(0, 0)
    with pytest.raises(ValueError, match="strand '.' is not"):
        SPEC.sides(".")


def test_ref_window_plus(genome):
    w = ref_window(genome, plus(10), SPEC)
    assert w == Window("CCGGTTAG", "chr1", 5, 13, "+", False)
    assert w.seq[SPEC.upstream] == CHR1[10]  # TSS base at index U


def test_ref_window_minus(genome):
    w = ref_window(genome, minus(10), SPEC)
    assert w == Window("TGCTAACC", "chr1", 7, 15, "-", False)  # rc(GGTTAGCA)


@pytest.mark.parametrize(
    ("t", "strand", "seq", "start", "end"),
    [
        (2, "+", "NNNACGTA", -3, 5),  # left contig end
        (18, "+", "CATGTCAN", 13, 21),  # right contig end
        (1, "-", "GTACGTNN", -2, 6),  # rc(NNACGTAC)
        (17, "-", "NNTGACAT", 14, 22),  # rc(ATGTCANN)
    ],
)
def test_ref_window_contig_edges(genome, t, strand, seq, start, end):
    tss = plus(t) if strand == "+" else minus(t)
    assert ref_window(genome, tss, SPEC) == Window(seq, "chr1", start, end, strand, True)


@pytest.mark.parametrize(
    ("case", "pos", "ref", "alt", "expected"),
    [
        ("snv upstream", 9, "G", "A", "CCGATTAG"),
        ("insertion upstream", 8, "G", "GAAA", "AAAGTTAG"),
        ("deletion upstream", 7, "CGG", "C", "TACCTTAG"),
        ("insertion downstream", 12, "A", "ACC", "CCGGTTAC"),
        ("deletion downstream", 12, "AGC", "A", "CCGGTTAA"),
        ("snv at tss", 11, "T", "C", "CCGGTCAG"),
        ("deletion over tss", 10, "TTA", "T", "ACCGGTGC"),
        ("insertion anchored at tss", 11, "T", "TCC", "CCGGTTCC"),
        ("complex over tss", 9, "GTT", "CCCCA", "CCGCCCCA"),
        ("snv outside window", 2, "C", "G", "CCGGTTAG"),
        ("deletion left of window", 2, "CGT", "C", "CCGGTTAG"),
    ],
)
def test_alt_window_plus(genome, case, pos, ref, alt, expected):
    w = alt_window(genome, plus(10), SPEC, allele(pos, ref, alt))
    assert w == Window(expected, "chr1", 5, 13, "+", False), case


@pytest.mark.parametrize(
    ("case", "pos", "ref", "alt", "expected"),
    [
        ("snv upstream", 14, "C", "G", "TCCTAACC"),  # rc(GGTTAGGA)
        ("insertion upstream", 13, "G", "GTTT", "AACTAACC"),  # rc(GGTTAGTT)
        ("deletion downstream", 6, "CCG", "C", "TGCTAACG"),  # rc(CGTTAGCA)
        ("snv at tss", 11, "T", "G", "TGCTCACC"),  # rc(GGTGAGCA)
    ],
)
def test_alt_window_minus(genome, case, pos, ref, alt, expected):
    w = alt_window(genome, minus(10), SPEC, allele(pos, ref, alt))
    assert w == Window(expected, "chr1", 7, 15, "-", False), case


def test_alt_window_off_contig(genome):
    # ref window [1, 9) fits; deleting GTA pulls the window one base past the contig start
    tss = plus(6)
    assert ref_window(genome, tss, SPEC).off_contig is False
    w = alt_window(genome, tss, SPEC, allele(3, "GTA", "G"))
    assert w == Window("NACGCCGG", "chr1", 1, 9, "+", True)
    # ref window [11, 19) fits; deleting CA at the contig end leaves the haplotype one base short
    w = alt_window(genome, plus(16), SPEC, allele(18, "TCA", "T"))
    assert w == Window("AGCATGTN", "chr1", 11, 19, "+", True)
    assert alt_window(genome, plus(16), SPEC, allele(18, "TC", "T")).off_contig is False


def test_alt_window_rejects_other_contig(genome):
    other = Allele("chr2", 5, "A", "G", 0, classify_allele("A", "G"))
    with pytest.raises(ValueError, match="cannot change gene"):
        alt_window(genome, plus(10), SPEC, other)


def test_alt_tss_rule():
    assert alt_tss(10, 7, 8, 4) == 13  # insertion left of t
    assert alt_tss(10, 6, 9, 1) == 8  # deletion left of t
    assert alt_tss(10, 9, 10, 3) == 12  # REF ends exactly at t: entirely left
    assert alt_tss(10, 11, 12, 5) == 10  # right of t
    assert alt_tss(10, 9, 12, 1) == 9  # deletion over t: last ALT base
    assert alt_tss(10, 8, 11, 5) == 10  # complex over t: same offset into the allele


def test_distance_to_tss():
    snv = Allele("chr1", 9, "G", "A", 0, classify_allele("G", "A"))  # start 8
    assert distance_to_tss(snv, plus(10)) == -2  # upstream on +
    assert distance_to_tss(snv, minus(10)) == 2  # downstream on -
    dele = Allele("chr1", 12, "AGC", "A", 0, classify_allele("AGC", "A"))  # [11, 14)
    assert distance_to_tss(dele, plus(10)) == 1
    assert distance_to_tss(dele, minus(10)) == -3
    at = Allele("chr1", 11, "T", "C", 0, classify_allele("T", "C"))
    assert distance_to_tss(at, plus(10)) == distance_to_tss(at, minus(10)) == 0


# -- properties on a random contig -------------------------------------------------------------------------------

RAND = "".join(random.Random(7).choice("ACGT") for _ in range(120))


@pytest.fixture(scope="module")
def rand_genome(tmp_path_factory):
    path = tmp_path_factory.mktemp("win") / "rand.fa"
    path.write_text(f">chr1\n{RAND}\n")
    with Genome(path) as g:
        yield g


def padded(seq: str, start: int, end: int) -> str:
    return "".join(seq[i] if 0 <= i < len(seq) else "N" for i in range(start, end))


def brute_alt(tss: TSS, spec: WindowSpec, a: Allele) -> str:
    """The spec's rule, written out on the whole haplotype, for the allele with its shared bases trimmed."""
    a = a.minimal()
    hap = RAND[: a.start] + a.alt + RAND[a.end :]
    t = tss.pos0
    if a.end <= t:
        t2 = t + len(a.alt) - len(a.ref)
    elif a.start > t:
        t2 = t
    else:
        t2 = a.start + min(t - a.start, len(a.alt) - 1)
    left, right = spec.sides(tss.strand)
    seq = padded(hap, t2 - left, t2 + right)
    return reverse_complement(seq) if tss.strand == "-" else seq


specs = st.builds(WindowSpec, upstream=st.integers(0, 30), downstream=st.integers(1, 30))
tsss = st.builds(TSS, gene_id=st.just("G"), gene_name=st.just("G"), chrom=st.just("chr1"),
                 pos0=st.integers(0, len(RAND) - 1), strand=st.sampled_from("+-"))


@st.composite
def alleles(draw, max_len: int = 12):
    start = draw(st.integers(0, len(RAND) - 1))
    ref = RAND[start : start + draw(st.integers(1, max_len))]
    alt = draw(st.text("ACGT", min_size=1, max_size=max_len).filter(lambda x: x != ref))
    return Allele("chr1", start + 1, ref, alt, 0, classify_allele(ref, alt))


@given(tss=tsss, spec=specs)
def test_ref_window_is_fasta_slice(rand_genome, tss, spec):
    w = ref_window(rand_genome, tss, spec)
    left, right = spec.sides(tss.strand)
    assert (w.start, w.end) == (tss.pos0 - left, tss.pos0 + right)
    assert len(w.seq) == spec.length
    expected = padded(RAND, w.start, w.end)
    assert w.seq == (expected if tss.strand == "+" else reverse_complement(expected))
    assert w.off_contig == (w.start < 0 or w.end > len(RAND))


@given(tss=tsss, spec=specs, pos0=st.integers(0, len(RAND) - 1), base=st.sampled_from("ACGT"))
def test_snv_changes_one_position(rand_genome, tss, spec, pos0, base):
    if base == RAND[pos0]:
        base = {"A": "C", "C": "G", "G": "T", "T": "A"}[base]
    snv = Allele("chr1", pos0 + 1, RAND[pos0], base, 0, classify_allele(RAND[pos0], base))
    ref = ref_window(rand_genome, tss, spec)
    alt = alt_window(rand_genome, tss, spec, snv)
    diff = [i for i, (x, y) in enumerate(zip(ref.seq, alt.seq)) if x != y]
    inside = ref.start <= pos0 < ref.end
    assert len(diff) == (1 if inside else 0)
    if inside:
        index = pos0 - ref.start if tss.strand == "+" else ref.end - 1 - pos0
        assert diff == [index]
    assert alt.off_contig == ref.off_contig


@given(tss=tsss, spec=specs, a=alleles())
def test_alt_window_matches_rule(rand_genome, tss, spec, a):
    w = alt_window(rand_genome, tss, spec, a)
    assert len(w.seq) == spec.length  # any indel keeps the length
    assert w.seq == brute_alt(tss, spec, a)
    assert w.off_contig == ("N" in w.seq)  # RAND has no N, so padding is exactly the N
    ref = ref_window(rand_genome, tss, spec)
    assert (w.start, w.end) == (ref.start, ref.end)
    if a.end <= ref.start or a.start >= ref.end:  # allele outside the window: nothing changes
        assert w.seq == ref.seq


@given(tss=tsss, spec=specs, a=alleles(max_len=6), before=st.integers(0, 4), after=st.integers(0, 4))
def test_a_change_padded_with_shared_bases_scores_as_the_change(rand_genome, tss, spec, a, before, after):
    """Joint callers pad alleles to a shared REF (CGTCA>CTCA for CG>C): the padding is reference on both
    haplotypes, so the window, the distance and the minimal form are those of the change as written bare."""
    a = a.minimal()
    lo, hi = max(a.start - before, 0), min(a.end + after, len(RAND))
    ref = RAND[lo:hi]
    alt = RAND[lo:a.start] + a.alt + RAND[a.end:hi]
    wide = Allele("chr1", lo + 1, ref, alt, 0, classify_allele(ref, alt))
    short = wide.minimal()
    if (short.pos, short.ref, short.alt) != (a.pos, a.ref, a.alt):
        return  # in a repeat the padding can move where the change is written: the same haplotype, spelt elsewhere
    assert alt_window(rand_genome, tss, spec, wide).seq == alt_window(rand_genome, tss, spec, a).seq
    assert distance_to_tss(wide, tss) == distance_to_tss(a, tss)


def test_minimal_trims_the_end_first_and_keeps_an_anchor():
    def m(pos, ref, alt):
        x = Allele("chr1", pos, ref, alt, 0, classify_allele(ref, alt)).minimal()
        return x.pos, x.ref, x.alt

    assert m(10, "CGTCA", "CTCA") == (10, "CG", "C")
    assert m(10, "AGT", "CGT") == (10, "A", "C")
    assert m(10, "AGT", "AGC") == (12, "T", "C")
    assert m(10, "CG", "C") == (10, "CG", "C")  # already minimal: the anchor base stays
    assert m(10, "A", "AGA") == (10, "A", "AGA")
    assert m(10, "TAC", "TC") == (10, "TA", "T")
