"""Property tests: random VCF records on a random genome through ``varxpress score``.

For every generated input: nothing but the project's own documented errors (exit status 1 with a message) may
happen; a valid file gives exit status 0 and exactly one output record per input record, in order; scoring the
same file twice gives byte-identical output; a file with one malformed line stops with an error naming that line
and leaves no output. The same generators drive the longer fuzzing run, ``benchmarks/fuzz_vcf.py``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varxpress.cli import main
from varxpress.io.variants import scan_vcf_text
from varxpress.errors import VcfError

UP, DOWN = 20, 10
EXAMPLES = int(os.environ.get("VARXPRESS_PROPERTY_EXAMPLES", "30"))
SETTINGS = dict(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CONTIG_NAMES = ["chr1", "chr2", "3", "MT", "chrX"]
ALIASES = {"chr1": "1", "chr2": "2", "3": "chr3", "MT": "chrM", "chrX": "X"}
SPECIAL_ALTS = ["*", "<DEL>", "<INS:ME>", "<*>", "A[chr2:5[", "]chr1:3]C", ".A", "T.", "N"]
MUTATIONS = ["blank_line", "comment_line", "drop_column", "extra_column", "spaces", "bad_pos", "bad_qual",
             "bad_info"]


@dataclass
class Case:
    """A generated input: FASTA, TSS table and VCF text, and the line (1-based) a mutation broke, if any."""

    genome: dict[str, str]
    genes: list[tuple[str, str, str, int, str]]
    vcf_lines: list[str]
    records: int
    broken_line: int | None
    mutation: str | None
    crlf: bool
    gzip: bool


@st.composite
def cases(draw, allow_mutation: bool = True) -> Case:
    names = draw(st.lists(st.sampled_from(CONTIG_NAMES), min_size=1, max_size=3, unique=True))
    genome = {n: draw(st.text("ACGTNacgtnRYk", min_size=1, max_size=70)) for n in names}
    genes = []
    for i in range(draw(st.integers(1, 4))):  # an empty TSS file is an AnnotationError of its own
        chrom = draw(st.sampled_from(names))
        genes.append((f"G{i}", draw(st.sampled_from([f"S{i}", f"S{i}"])), chrom,
                      draw(st.integers(1, len(genome[chrom]))), draw(st.sampled_from("+-"))))
    declare_contigs = draw(st.booleans())
    header = ["##fileformat=VCFv4.2"]
    if declare_contigs:
        header += [f"##contig=<ID={n},length={len(s)}>" for n, s in genome.items()]
    header += ['##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">',
               '##INFO=<ID=AF,Number=A,Type=Float,Description="frequency">',
               '##FORMAT=<ID=GT,Number=1,Type=String,Description="genotype">',
               "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1"]
    body = []
    for k in range(draw(st.integers(0, 12))):
        name = draw(st.sampled_from(names + ["chrZ"]))
        seq = genome.get(name, "ACGT")
        chrom = draw(st.sampled_from([name, ALIASES.get(name, name)])) if name in genome else name
        pos = draw(st.integers(0, len(seq) + 2))
        if draw(st.booleans()):
            ref = seq[max(pos - 1, 0):max(pos - 1, 0) + draw(st.integers(1, 4))] or "A"
        else:
            ref = draw(st.text("ACGTNacgtRY", min_size=1, max_size=4))
        alts = draw(st.lists(st.one_of(st.text("ACGTNacgt", min_size=1, max_size=6), st.sampled_from(SPECIAL_ALTS)),
                             max_size=3, unique=True))
        vid = draw(st.sampled_from([".", f"rs{k}", f"id{k};x"]))
        qual = draw(st.sampled_from([".", "0", "50", "3.5", "1e3"]))
        filt = draw(st.sampled_from([".", "PASS", "q10"]))
        info = draw(st.sampled_from([".", "DP=3", "DP=3;AF=0.5", "FOO=bar", "SOMATIC;DP=1"]))
        gt = draw(st.sampled_from(["0/1", "1|1", "./.", "0"]))
        body.append("\t".join([chrom, str(pos), vid, ref, ",".join(alts) or ".", qual, filt, info, "GT", gt]))
    broken, mutation = None, None
    if allow_mutation and body and draw(st.integers(0, 3)) == 0:
        mutation = draw(st.sampled_from(MUTATIONS))
        i = draw(st.integers(0, len(body) - 1))
        cols = body[i].split("\t")
        if mutation == "blank_line":
            body.insert(i, "")
        elif mutation == "comment_line":
            body.insert(i, "#" + body[i])
        elif mutation == "drop_column":
            body[i] = "\t".join(cols[:-1])
        elif mutation == "extra_column":
            body[i] += "\t0/1"
        elif mutation == "spaces":
            body[i] = " ".join(cols)
        elif mutation == "bad_pos":
            body[i] = "\t".join([cols[0], cols[1] + "x", *cols[2:]])
        elif mutation == "bad_qual":
            body[i] = "\t".join([*cols[:5], "q" + cols[5], *cols[6:]])
        else:
            body[i] = "\t".join([*cols[:7], "DP=z", *cols[8:]])
        broken = len(header) + i + 1
    records = len(body) - (mutation in ("blank_line", "comment_line"))
    return Case(genome, genes, header + body, records, broken, mutation, draw(st.booleans()), draw(st.booleans()))


def write_inputs(case: Case, folder: Path) -> dict[str, Path]:
    fasta = folder / "g.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in case.genome.items()))
    tss = folder / "genes.tsv"
    tss.write_text("".join("\t".join(map(str, g)) + "\n" for g in case.genes))
    eol = "\r\n" if case.crlf else "\n"
    data = "".join(line + eol for line in case.vcf_lines).encode()
    vcf = folder / ("in.vcf.gz" if case.gzip else "in.vcf")
    vcf.write_bytes(gzip.compress(data, mtime=0) if case.gzip else data)
    return {"fasta": fasta, "tss": tss, "vcf": vcf}


def run(paths: dict[str, Path], model: Path, out: Path) -> int:
    return main(["score", str(paths["vcf"]), "--fasta", str(paths["fasta"]), "--tss", str(paths["tss"]),
                 "--model", str(model), "--out", str(out), "--quiet", "--on-ref-mismatch", "skip"])


def qual(text: str) -> float:
    return float("nan") if text == "." else float(text)


def output_records(out: Path) -> list[list[str]]:
    return [line.split("\t") for line in out.read_text().splitlines() if not line.startswith("#")]


def check_case(case: Case, model: Path, caplog=None) -> None:
    """The properties, for one generated input (raises AssertionError on a violation)."""
    folder = Path(tempfile.mkdtemp(prefix="vxp-prop-"))
    try:
        paths = write_inputs(case, folder)
        outdir = folder / "out"
        outdir.mkdir()
        out = outdir / "out.vcf"
        if caplog is not None:
            caplog.clear()
        status = run(paths, model, out)  # any exception but the project's own (exit 1) fails the test
        if case.broken_line is not None:
            assert status == 1
            if caplog is not None:
                assert f"{paths['vcf']}:{case.broken_line}: " in caplog.text, (case.mutation, caplog.text)
            assert os.listdir(outdir) == []
            return
        assert status == 0
        rows = output_records(out)
        lines_in = [line.split("\t") for line in case.vcf_lines if not line.startswith("#")]
        assert len(rows) == case.records == len(lines_in)
        # in order, own fields kept (QUAL compared as a number: htslib re-prints 1e3 as 1000)
        assert [r[:5] + r[6:7] for r in rows] == [r[:5] + r[6:7] for r in lines_in]
        assert [qual(r[5]) for r in rows] == pytest.approx([qual(r[5]) for r in lines_in], nan_ok=True)
        assert [r[8:] for r in rows] == [r[8:] for r in lines_in]
        first = out.read_bytes()
        assert run(paths, model, out) == 0
        assert out.read_bytes() == first
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    from tests.toy import toy_model_file

    return toy_model_file(tmp_path_factory.mktemp("model"), UP, DOWN)


@settings(**SETTINGS)
@given(case=cases())
def test_random_vcf_scores_every_record_or_fails_cleanly(case, toy_model, caplog):
    check_case(case, toy_model, caplog)


@settings(**SETTINGS)
@given(case=cases(allow_mutation=False))
def test_valid_random_vcf_count_in_equals_count_out(case, toy_model):
    assert case.broken_line is None
    check_case(case, toy_model)


@settings(max_examples=EXAMPLES * 10, deadline=None, derandomize=True)
@given(data=st.binary(max_size=400), prefix=st.booleans())
def test_scan_of_arbitrary_bytes_returns_or_raises_vcf_error(data, prefix, tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "x.vcf"
    head = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" if prefix else b""
    path.write_bytes(head + data)
    try:
        scan = scan_vcf_text(str(path))
    except VcfError as exc:
        assert str(exc).startswith(str(path))
        return
    if scan is None:  # taken for BCF: htslib checks binary files
        assert (head + data).startswith(b"BCF")
        return
    assert scan.records == sum(1 for line in (head + data).split(b"\n")[scan.header_lines:]
                                                    if line.rstrip(b"\r"))
