"""Records that no model window holds: written through unannotated by default, marked with
``--mark-outside-windows``; and the REF checks against preloaded genome spans (:mod:`varxpress.io.refspans`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pysam
import pytest

from tests.test_pipeline import CHR1, inputs, run_score, toy_model  # noqa: F401 (fixtures)
from varxpress.io.genome import Genome
from varxpress.io.refspans import RefSpans
from varxpress.io.variants import check_ref


def _other(base: str) -> str:
    return {"A": "C", "C": "G", "G": "T", "T": "A"}[base]


def _body(path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]


def _info(row: list[str]) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in row[7].split(";")) if row[7] != "." else {}


def test_outside_records_are_unmarked_by_default_and_marked_on_request(inputs, toy_model, tmp_path):  # noqa: F811
    """Windows: G1 [39, 69) and G2 [109, 139) on chr1 (0-based). Outside them a record with nothing else wrong is
    written as read; one with another reason (REF mismatch, symbolic or ``*`` allele) keeps its VXP_SKIP; with the
    option every outside allele is marked ``no_gene_in_window`` as before. The counts are the same either way."""
    b = lambda pos: CHR1[pos - 1]  # noqa: E731
    rows = [
        ("chr1", 10, "plain", b(10), _other(b(10))),
        ("chr1", 12, "plain_multi", b(12), f"{_other(b(12))},{_other(_other(b(12)))}"),
        ("chr1", 14, "plain_del", CHR1[13:17], b(14)),
        ("chr1", 45, "inside", b(45), _other(b(45))),
        ("chr1", 80, "mismatch", _other(b(80)), b(80)),
        ("chr1", 85, "symbolic", b(85), "<DEL>"),
        ("chr1", 90, "star", b(90), f"{_other(b(90))},*"),
        ("chr1", 175, "plain_end", b(175), _other(b(175))),
    ]
    text = inputs["vcf"].read_text().splitlines()
    header = [line for line in text if line.startswith("#")]
    inputs["vcf"].write_text("\n".join(header + [f"{c}\t{p}\t{i}\t{r}\t{a}\t50\tPASS\tDP=3\tGT\t0/1\t1|1"
                                                 for c, p, i, r, a in rows]) + "\n")
    plain, marked = tmp_path / "plain.vcf", tmp_path / "marked.vcf"
    plain_stats, marked_stats = tmp_path / "p.json", tmp_path / "m.json"
    assert run_score(inputs, toy_model, plain, "--stats", plain_stats) == 0
    assert run_score(inputs, toy_model, marked, "--stats", marked_stats, "--mark-outside-windows") == 0
    got = {row[2]: _info(row) for row in _body(plain)}
    want = {row[2]: _info(row) for row in _body(marked)}
    assert list(got) == list(want) == [r[2] for r in rows]
    for vid in ("plain", "plain_multi", "plain_del", "plain_end"):
        assert got[vid] == {"DP": "3"}, vid
        n_alts = len(next(r for r in rows if r[2] == vid)[4].split(","))
        assert want[vid] == {"DP": "3", "VXP_SKIP": ",".join(["no_gene_in_window"] * n_alts)}, vid
    assert want["mismatch"]["VXP_SKIP"] == got["mismatch"]["VXP_SKIP"] == "ref_mismatch"
    assert want["symbolic"]["VXP_SKIP"] == got["symbolic"]["VXP_SKIP"] == "symbolic_allele"
    assert want["star"]["VXP_SKIP"] == got["star"]["VXP_SKIP"] == "no_gene_in_window,spanning_deletion"
    assert got["inside"] == want["inside"] and "VXP" in got["inside"]
    # apart from those VXP_SKIP values (and the command line in the header) the two files are the same
    strip = lambda r: r[:7] + r[8:]  # noqa: E731
    assert [strip(r) for r in _body(plain)] == [strip(r) for r in _body(marked)]
    heads = [[line for line in path.read_text().splitlines() if line.startswith("#")
              and not line.startswith("##varxpress_command=")] for path in (plain, marked)]
    skip_lines = [[line for line in head if line.startswith("##INFO=<ID=VXP_SKIP,")] for head in heads]
    assert "a record with neither VXP nor VXP_SKIP lies outside every gene window" in skip_lines[0][0]
    assert "neither" not in skip_lines[1][0]  # the option keeps the Description as it was
    assert [line for line in heads[0] if line not in skip_lines[0]] == [l for l in heads[1] if l not in skip_lines[1]]
    counts = json.loads(plain_stats.read_text())
    assert counts == json.loads(marked_stats.read_text())
    assert counts["skipped"]["no_gene_in_window"] == 1 + 2 + 1 + 1 + 1  # plain*, and the star record's first ALT
    assert counts["skipped"]["ref_mismatch"] == 1  # checked outside the windows too


LAYOUTS = ["one line", "60 per line", "7 per line, CRLF", "bgzip"]


def _fasta(tmp_path: Path, contigs: dict[str, str], layout: str) -> Genome:
    """The contigs as a FASTA laid out as named: plain FASTA is read as stored (line ends located from the .fai),
    bgzip through pysam."""
    width, end = {"one line": (10**9, "\n"), "60 per line": (60, "\n"), "7 per line, CRLF": (7, "\r\n"),
                  "bgzip": (60, "\n")}[layout]
    text = "".join(f">{name} some description{end}" + "".join(seq[i:i + width] + end for i in range(0, len(seq), width))
                   for name, seq in contigs.items())
    path = tmp_path / "g.fa"
    path.write_bytes(text.encode())
    if layout == "bgzip":
        pysam.tabix_compress(str(path), str(tmp_path / "g.fa.gz"))
        path = tmp_path / "g.fa.gz"
    genome = Genome(path)
    assert (genome.layout("c1") is None) == (layout == "bgzip")
    return genome


@pytest.mark.parametrize("layout", LAYOUTS)
def test_ref_checks_against_preloaded_spans_equal_those_against_the_genome(tmp_path, layout):
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGTNacgt"), 3000))
    genome = _fasta(tmp_path, {"c1": seq, "c2": "ACGTACGT"}, layout)
    starts = np.concatenate([rng.integers(-5, 400, 30), rng.integers(2500, 3010, 30)])  # two clusters
    ends = starts + rng.integers(0, 12, starts.size)
    spans = RefSpans(genome, gap=100)
    spans.load("c1", starts, ends)
    assert len(spans._spans["c1"][0]) == 2  # one fetch per cluster
    refs = [genome.fetch("c1", int(s), int(e)) if rng.random() < 0.7 else "".join(rng.choice(list("ACGTN"), e - s))
            for s, e in zip(starts, ends)]
    for s, e, ref in zip(starts.tolist(), ends.tolist(), refs):
        assert spans.fetch("c1", s, e) == genome.fetch("c1", s, e)
        assert check_ref(spans, "c1", s + 1, ref) == check_ref(genome, "c1", s + 1, ref)
        assert check_ref(spans, "c1", s + 1, ref.lower()) == check_ref(genome, "c1", s + 1, ref.lower())
    assert spans.fetch("c1", 1000, 1010) == genome.fetch("c1", 1000, 1010)  # not loaded: read from the genome
    assert spans.fetch("c2", 2, 5) == "GTA"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_vectorised_ref_comparison_equals_comparing_each_allele(tmp_path, layout):
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGTNacgt"), 3000))
    genome = _fasta(tmp_path, {"c1": seq}, layout)
    starts = np.concatenate([rng.integers(0, 400, 200), rng.integers(2500, 2990, 200)])
    ends = starts + rng.integers(1, 12, starts.size)
    spans = RefSpans(genome, gap=100)
    spans.load("c1", starts, ends)
    alleles = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        ref = genome.fetch("c1", s, e)
        kind = rng.integers(6)
        if kind == 1:
            ref = ref.lower()
        elif kind == 2:  # one base changed (to N, a base, or a character that is not ASCII)
            i = int(rng.integers(len(ref)))
            ref = ref[:i] + str(rng.choice(["N", "A", "C", "\u00e9"])) + ref[i + 1:]
        elif kind == 3:
            ref = ref + "A"  # one base longer
        elif kind == 4:
            ref = ""
        alleles.append(ref)
    starts = np.concatenate([starts, [1000, 2995]])  # not loaded; running past the contig end
    alleles += ["A", "ACGTACGTAC"]
    got = spans.matches("c1", starts, alleles)
    want = [bool(a) and s + len(a) <= 3000 and genome.fetch("c1", s, s + len(a)) == a.upper()
            and not (s == 1000)  # outside what was loaded: "not identical", asked one by one
            for s, a in zip(starts.tolist(), alleles)]
    assert got.tolist() == want
    assert 100 < sum(want) < len(want) - 100  # both outcomes are exercised
    assert spans.matches("c9", starts[:3], alleles[:3]).tolist() == [False] * 3



class _Windows:
    """The one thing triage asks of a TSS index: whether some window overlaps each REF span."""

    def __init__(self, windows: dict[str, list[tuple[int, int]]]) -> None:
        self.windows = windows

    def any_overlapping(self, chrom, starts, ends):
        return np.array([any(s < b and a < e for a, b in self.windows.get(chrom, []))
                         for s, e in zip(starts.tolist(), ends.tolist())], dtype=bool)


def test_triage_of_a_chunk_equals_judging_each_record(tmp_path):
    """A chunk with contigs in several runs (one of them unknown), REF alleles right and wrong, and ALT columns
    that are and are not plain: each record's count of plain alleles is what the rule gives for it alone."""
    from varxpress.io.variants import SkipReason, classify_allele
    from varxpress.scoring.triage import Columns, triage

    rng = np.random.default_rng(11)
    seqs = {"c1": "".join(rng.choice(list("ACGT"), 2000)), "c2": "".join(rng.choice(list("ACGT"), 1500))}
    genome = _fasta(tmp_path, seqs, "one line")
    index = _Windows({"c1": [(300, 500), (1200, 1300)], "c2": [(0, 100)]})
    alts = ["A", "C", "G", "T", "A,C", "G,T", "<DEL>", "A,*", ".", "ACG"]
    rows = []
    for chrom, n in (("c1", 120), ("c2", 80), ("chrU", 10), ("c1", 60), ("c2", 40)):
        for _ in range(n):
            start = int(rng.integers(0, len(seqs.get(chrom, "A" * 900)) - 5))
            ref = seqs.get(chrom, "A" * 900)[start:start + int(rng.integers(1, 4))]
            if rng.random() < 0.1:
                ref = _other(ref[0]) + ref[1:]
            rows.append((chrom, start, ref, str(rng.choice(alts))))
    cols = Columns([r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.int64), [r[2] for r in rows],
                   lambda k: rows[k][3], None)
    plain, _ = triage(genome, index, cols, 1000)

    def alone(chrom, start, ref, alt):
        if chrom not in seqs or index.any_overlapping(chrom, np.array([start]), np.array([start + len(ref)]))[0]:
            return 0
        if seqs[chrom][start:start + len(ref)] != ref or alt == ".":
            return 0
        kinds = [classify_allele(ref, a, 1000) for a in alt.split(",")]
        return 0 if any(isinstance(k, SkipReason) for k in kinds) else len(kinds)

    want = [alone(*r) for r in rows]
    assert list(plain) == want
    assert 0 < sum(w > 0 for w in want) < len(want) and max(want) == 2  # plain and not, one and two alleles
    plain, _ = triage(genome, index, cols, 1000, classify_all=True)
    assert not any(plain)
