"""Inputs that once went wrong silently or hung: positions past 2^31, standard input and pipes (read once, pre-scanned
like a file), region queries on unindexed files, and bad option values or side files (one-line errors)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.corpus import CORPUS, reference, toy_model  # noqa: F401 (fixtures)
from tests.test_faults import stdin_from  # noqa: F401 (fixture)
from varxpress.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=300>\n##contig=<ID=chr2,length=60>\n"
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
WRAPS_TO_45 = 2**32 + 45  # a 32-bit reading of this POS is 45, inside gene G1's window on chr1


def _genome_base(pos: int) -> str:
    seq = "".join(line.strip() for line in (CORPUS / "genome.fa").read_text().split(">chr2")[0].splitlines()[1:])
    return seq[pos - 1]


def _score(vcf: str, reference: dict, model: Path, *extra: str) -> int:
    return main(["score", vcf, "--fasta", str(reference["fasta"]), "--tss", str(reference["tss"]),
                 "--model", str(model), "--quiet", *extra])


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]


# -- positions past 2^31 -----------------------------------------------------------------------------------------------

def test_positions_past_2_31_never_wrap_and_are_skipped_past_the_contig_end(reference, toy_model, tmp_path,
                                                                             caplog):
    base = _genome_base(45)
    vcf = tmp_path / "huge.vcf"
    vcf.write_text(HEADER + f"chr1\t45\tnear_tss\t{base}\tG\t.\tPASS\t.\n"
                   f"chr1\t{WRAPS_TO_45}\twraps_onto_tss\t{base}\tG\t.\tPASS\t.\n"
                   f"chr1\t3000000000\tnegative_if_32_bit\t{base}\tG\t.\tPASS\t.\n")
    out, tsv = tmp_path / "out.vcf", tmp_path / "out.tsv"
    assert _score(str(vcf), reference, toy_model, "--out", str(out), "--tsv", str(tsv)) == 0
    rows = _rows(out)
    assert [r[1] for r in rows] == ["45", str(WRAPS_TO_45), "3000000000"]  # the VCF keeps the true POS
    assert "VXP=" in rows[0][7]
    assert [r[7] for r in rows[1:]] == ["VXP_SKIP=beyond_contig_end"] * 2
    assert [(r[1], r[2]) for r in _rows(tsv) if r[0] != "chrom"] == [("45", "near_tss")]  # none for a wrapped POS
    warned = [r.getMessage() for r in caplog.records if "beyond_contig_end" in r.getMessage()]
    assert len(warned) == 2
    assert f"chr1:{WRAPS_TO_45}" in warned[0] and "chr1:3000000000" in warned[1]
    assert "-1294967296" not in caplog.text


# -- standard input and pipes: read once, checked like a file ---------------------------------------------------------

@pytest.mark.parametrize("case, cause", [("extra_column.vcf", "11 tab-separated columns"),
                                         ("non_numeric_qual.vcf", "QUAL 'high' is not a number")])
def test_standard_input_is_pre_scanned_like_a_file(case, cause, reference, toy_model, tmp_path, stdin_from,
                                                   caplog):
    assert _score(str(CORPUS / case), reference, toy_model, "--out", str(tmp_path / "a.vcf")) == 1
    from_file = caplog.text
    caplog.clear()
    stdin_from(CORPUS / case)
    assert _score("-", reference, toy_model, "--out", str(tmp_path / "b.vcf")) == 1
    assert cause in from_file and "<stdin>:11: " + cause in caplog.text
    assert not (tmp_path / "b.vcf").exists()


def test_standard_input_scores_like_the_file(reference, toy_model, tmp_path, stdin_from):
    vcf = CORPUS / "contig_absent_from_fasta.vcf"
    assert _score(str(vcf), reference, toy_model, "--out", str(tmp_path / "file.vcf")) == 0
    stdin_from(vcf)
    assert _score("-", reference, toy_model, "--out", str(tmp_path / "stdin.vcf")) == 0
    assert _rows(tmp_path / "stdin.vcf") == _rows(tmp_path / "file.vcf")


def test_a_process_substitution_pipe_is_read_once(reference, toy_model, tmp_path):
    """``score <(cat x.vcf)``: a /dev/fd pipe, which cannot be reopened or seeked."""
    vcf = CORPUS / "contig_absent_from_fasta.vcf"
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_fd, vcf.read_bytes()), os.close(write_fd)), daemon=True)
    writer.start()
    try:
        assert _score(f"/dev/fd/{read_fd}", reference, toy_model, "--out", str(tmp_path / "o.vcf")) == 0
    finally:
        os.close(read_fd)
    assert len(_rows(tmp_path / "o.vcf")) == len(_rows(vcf))


def test_a_named_pipe_is_read_once_instead_of_hanging(reference, toy_model, tmp_path):
    fifo = tmp_path / "in.vcf"
    os.mkfifo(fifo)
    vcf = CORPUS / "contig_absent_from_fasta.vcf"

    def feed():
        with open(fifo, "wb") as fh:  # blocks until the reader opens the pipe; a second open would wait forever
            fh.write(vcf.read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    cmd = [sys.executable, "-m", "varxpress", "score", str(fifo), "--fasta", str(reference["fasta"]), "--tss",
           str(reference["tss"]), "--model", str(toy_model), "--out", str(tmp_path / "o.vcf"), "--quiet"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("scoring a named pipe hung (the pipe was opened more than once)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r[2] for r in _rows(tmp_path / "o.vcf")] == [r[2] for r in _rows(vcf)]


# -- region queries -----------------------------------------------------------------------------------------------------

def test_region_on_a_plain_vcf_says_bgzip_then_tabix_and_writes_nothing(reference, toy_model, tmp_path, caplog,
                                                                         capfd):
    vcf = tmp_path / "plain.vcf"
    vcf.write_bytes((CORPUS / "contig_absent_from_fasta.vcf").read_bytes())
    capfd.readouterr()
    assert _score(str(vcf), reference, toy_model, "--region", "chr1:1-100", "--out", "-") == 1
    assert capfd.readouterr().out == ""  # no header on stdout before the error
    assert f"`bgzip {vcf}` then `tabix -p vcf {vcf}.gz`" in caplog.text
    caplog.clear()
    gz = tmp_path / "gzip.vcf.gz"
    gz.write_bytes(gzip.compress(vcf.read_bytes()))
    assert _score(str(gz), reference, toy_model, "--region", "chr1:1-100", "--out", str(tmp_path / "o.vcf")) == 1
    # a gzip (not bgzip) file: tabix would fail on it, so the message says to recompress, not to run tabix on it
    fixed = tmp_path / "gzip.bgz.vcf.gz"
    assert "is gzip, not bgzip" in caplog.text and f"`zcat {gz} | bgzip > {fixed}` then `tabix -p vcf {fixed}`" \
        in caplog.text and f"tabix -p vcf {gz}`" not in caplog.text
    subprocess.run(f"zcat {gz} | bgzip > {fixed} && tabix -p vcf {fixed}", shell=True, check=True)  # it works
    caplog.clear()
    assert _score(str(fixed), reference, toy_model, "--region", "chr1:1-100", "--out", str(tmp_path / "o.vcf")) == 0
    caplog.clear()
    bcf = tmp_path / "unindexed.bcf"  # tabix cannot index BCF: the advice is bcftools index, and it works
    bcf.write_bytes((CORPUS / "bcf_input.bcf").read_bytes())
    caplog.clear()
    assert _score(str(bcf), reference, toy_model, "--region", "chr1", "--out", str(tmp_path / "o.vcf")) == 1
    assert f"run `bcftools index {bcf}`" in caplog.text and "tabix -p" not in caplog.text
    subprocess.run(["bcftools", "index", str(bcf)], check=True)
    assert _score(str(bcf), reference, toy_model, "--region", "chr1", "--out", str(tmp_path / "o.vcf")) == 0
    caplog.clear()
    plain_bgzf = tmp_path / "unindexed.vcf.gz"
    subprocess.run(f"bgzip -c {vcf} > {plain_bgzf}", shell=True, check=True)
    assert _score(str(plain_bgzf), reference, toy_model, "--region", "chr1", "--out", str(tmp_path / "o.vcf")) == 1
    assert f"run `tabix -p vcf {plain_bgzf}`" in caplog.text


@pytest.mark.parametrize("kind, csi", [("vcf.gz", False), ("vcf.gz", True), ("bcf", True)])
def test_a_region_of_a_damaged_or_truncated_file_is_refused_not_cut_short(reference, toy_model, tmp_path, caplog,
                                                                          kind, csi):
    """cyvcf2's region iterator stops quietly at a damaged block (htslib only prints an error), and an index
    beside a file cut short answers from what is left: both once gave exit 0 with records missing. A VCF.gz with
    a .csi (bcftools index's default) is read the same way as one with a .tbi."""
    import random

    rng = random.Random(3)
    body = "".join(f"chr1\t{1 + i // 40}\t{''.join(rng.choices('ACGT', k=60))}\tA\tG\t.\tPASS\t.\n"
                   for i in range(8000))  # random IDs: several compressed blocks
    text = tmp_path / "in.vcf"
    text.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=300>\n"
                    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + body)
    good = tmp_path / f"good.{kind}"
    subprocess.run(["bcftools", "view", "--no-version", "-O", "z" if kind == "vcf.gz" else "b", "-o", str(good),
                    str(text)], check=True)
    subprocess.run(["bcftools", "index", "-c" if csi else "-t", str(good)], check=True)
    index = good.name + (".csi" if csi else ".tbi")
    out = tmp_path / "out.vcf"
    assert _score(str(good), reference, toy_model, "--region", "chr1", "--out", str(out)) == 0
    assert sum(1 for line in out.read_text().splitlines() if not line.startswith("#")) == 8000
    data = good.read_bytes()
    damaged, truncated = tmp_path / f"damaged.{kind}", tmp_path / f"truncated.{kind}"
    damaged.write_bytes(data[:len(data) // 2] + bytes(16) + data[len(data) // 2 + 16:])
    truncated.write_bytes(data[:len(data) // 2])
    for bad in (damaged, truncated):
        (tmp_path / (bad.name + index[len(good.name):])).write_bytes((tmp_path / index).read_bytes())
        caplog.clear()
        out.unlink(missing_ok=True)
        assert _score(str(bad), reference, toy_model, "--region", "chr1", "--out", str(out)) == 1
        assert not out.exists()
        assert ("the file is damaged" if bad is damaged else "end-of-file marker is missing") in caplog.text


# -- option values and side files: one-line errors ---------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["score", "F", "--fasta", "F", "--batch-size", "0"],
    ["score", "F", "--fasta", "F", "--batch-size", "-4"],
    ["score", "F", "--fasta", "F", "--chunk-size", "0"],
    ["score", "F", "--fasta", "F", "--threads", "0"],
    ["score", "F", "--fasta", "F", "--max-allele-len", "-1"],
    ["workflow", "F", "--batch-size", "0"],
    ["workflow", "F", "--cores", "0"],
    ["hyperopt", "-d", "F", "-o", "y", "--max-evals", "0"],
    ["hyperopt", "-d", "F", "-o", "y", "--timeout", "nan"],
    ["train", "-d", "F", "--max-memory-gb", "-1"],
    ["background", "--max-n-fraction", "1.5"],
    ["predict", "-m", "F", "--batch-size", "0"],
    ["mutagenesis", "G1", "--threads", "-2"],
    ["evaluate", "-m", "F", "-d", "F", "-o", "y", "--bootstrap", "-5"],  # was a traceback
    ["evaluate", "-m", "F", "-d", "F", "-o", "y", "--bootstrap", "1"],  # a "95% interval" of one resample
    ["evaluate", "-m", "F", "-d", "F", "-o", "y", "--seed", "-1"],  # was a traceback
    ["evaluate", "-m", "F", "-d", "F", "-o", "y", "--kmax", "10"],  # 18 GB of k-mer counts
    ["train", "-d", "F", "-p", "F", "-o", "y", "--kmax", "9"],
])
def test_bad_numeric_options_are_usage_errors(argv, capsys):
    """Checked while parsing, whatever else is wrong later (``F``: any existing file)."""
    argv = [str(CORPUS / "mnvs.vcf") if a == "F" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        build_parser(only=argv[0]).parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}" in err and argv[-1] in err and "Traceback" not in err


def test_a_regions_line_with_non_numeric_coordinates_names_file_and_line(tmp_path, capsys):
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t0\t100\nchr1\tten\ttwenty\n")
    with pytest.raises(SystemExit) as exc:
        main(["score", str(CORPUS / "mnvs.vcf"), "--fasta", str(CORPUS / "genome.fa"), "--regions", str(bed)])
    assert exc.value.code == 2
    assert f"{bed}:2: not a BED line" in capsys.readouterr().err


def test_a_binary_contig_map_is_a_one_line_error(reference, toy_model, tmp_path, caplog):
    binary = tmp_path / "map.tsv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert _score(str(CORPUS / "mnvs.vcf"), reference, toy_model, "--contig-map", str(binary),
                  "--out", str(tmp_path / "o.vcf")) == 1
    assert f"{binary}:1: not a text file" in caplog.text


def test_predict_on_a_binary_fasta_is_a_one_line_error(toy_model, tmp_path, caplog):
    binary = tmp_path / "seqs.fa"
    binary.write_bytes(b">x\nACGT\n" + bytes(range(256)) * 4)
    assert main(["predict", "-m", str(toy_model), "--fasta", str(binary), "-o", str(tmp_path / "p.tsv")]) == 1
    assert f"FASTA {binary}:3: not a text FASTA" in caplog.text
