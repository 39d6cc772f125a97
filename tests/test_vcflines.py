"""Records as text lines (:mod:`varxpress.io.vcflines`): the columns read from a block of lines are those htslib
reads, the sample check vouches only for lines htslib reads, and ``score`` writes the records outside every window
as read while everything else equals the htslib path."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import random
import subprocess
import sys

import cyvcf2
import numpy as np
import pysam
import pytest

from tests.test_pipeline import CHR1, inputs, run_score, toy_model  # noqa: F401 (fixtures)
from varxpress.errors import UsageError
from varxpress.io.vcflines import LineWriter, SampleCheck, line_chunks
from varxpress.scoring import pipeline

HEADER = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=100000>", "##contig=<ID=chr2,length=100000>",
          '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">',
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="genotype">',
          '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="depths">',
          '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="depth">',
          '##FORMAT=<ID=GL,Number=G,Type=Float,Description="likelihoods">',
          '##FORMAT=<ID=FT,Number=1,Type=String,Description="filter">',
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2"]
TYPES = {"GT": "String", "AD": "Integer", "DP": "Integer", "GL": "Float", "FT": "String"}


def _records(rng: random.Random, n: int) -> list[str]:
    lines, pos = [], 0
    for k in range(n):
        chrom = "chr1" if k < n // 2 else "chr2"
        pos = 1 if k == n // 2 else pos + rng.randint(1, 50)
        ref = "".join(rng.choice("ACGTNacgt") for _ in range(rng.choice([1, 1, 1, 3])))
        alts = ",".join("".join(rng.choice("ACGT") for _ in range(rng.randint(1, 4)))
                        for _ in range(rng.choice([1, 1, 2])))
        alts = rng.choice([alts, alts, ".", "<DEL>", f"{alts},*"])
        gts = [rng.choice(["0/1", "1|1", "./.", "0"]) for _ in range(2)]
        lines.append(f"{chrom}\t{pos}\tid{k}\t{ref}\t{alts}\t50\tPASS\tDP={k}\tGT:DP\t{gts[0]}:{k}\t{gts[1]}:.")
    return lines


@pytest.mark.parametrize("form", ["plain", "gzip", "bgzf", "crlf", "no_last_newline"])
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_line_chunks_read_the_columns_htslib_reads(tmp_path, form, size):
    lines = _records(random.Random(size), 150)
    text = "\n".join(HEADER + lines) + ("" if form == "no_last_newline" else "\n")
    if form == "crlf":
        text = text.replace("\n", "\r\n")
    path = tmp_path / "in.vcf"
    path.write_bytes(text.encode())
    if form == "gzip":
        path = tmp_path / "in.vcf.gz"
        path.write_bytes(gzip.compress(text.encode()))
    elif form == "bgzf":
        path = tmp_path / "in.vcf.gz"
        pysam.tabix_compress(str(tmp_path / "in.vcf"), str(path))
    chunks = list(line_chunks(str(path), len(HEADER), 11, size, None))
    assert all(1 <= len(c) <= size for c in chunks)
    got = [(c.line(k).decode(), c.chroms[k], int(c.starts[k]), c.refs[k], c.alts[k])
           for c in chunks for k in range(len(c))]
    want = [(line, rec.CHROM, rec.start, rec.REF, ",".join(rec.ALT) or ".")
            for line, rec in zip(lines, cyvcf2.VCF(str(path)))]
    assert got == want
    assert b"".join(c.text for c in chunks).decode() == "".join(line + "\n" for line in lines)


def test_a_chunk_with_lines_replaced_keeps_the_others_as_read(tmp_path):
    lines = _records(random.Random(1), 20)
    path = tmp_path / "in.vcf"
    path.write_text("\n".join(HEADER + lines) + "\n")
    chunk = next(line_chunks(str(path), len(HEADER), 11, 100, None))
    for replaced in ({}, {0: b"first"}, {19: b"last"}, {3: b"x", 4: b"y", 10: b""}):
        want = [replaced.get(k, line.encode()) for k, line in enumerate(lines)]
        assert chunk.with_lines(replaced) == b"".join(w + b"\n" for w in want)


def _value(rng: random.Random, key: str, valid: bool) -> str:
    """A sample value for ``key``: one htslib reads as written, or (``valid`` False) anything at all."""
    if not valid:
        return "".join(rng.choice("0123456789./|,-+eE:xn ") for _ in range(rng.randint(0, 6)))
    if key == "GT":
        return rng.choice(["0", ".", "0/1", "1|0", "./.", "2/10", "0/1/2"])
    if key in ("AD", "DP"):
        return ",".join(rng.choice(["0", "17", "-3", "+4", ".", ""]) for _ in range(rng.randint(1, 3)))
    if key == "GL":
        return ",".join(rng.choice(["0", "-1.5", "2.", ".25", "1e-3", "-4E+2", "."]) for _ in range(3))
    return rng.choice(["PASS", "lowQ", ".", "a,b"])


def test_the_sample_check_vouches_only_for_lines_htslib_reads(tmp_path):
    """Random sample columns, half of them well formed, half anything at all: every line the check vouches for
    htslib parses, and every well-formed line is vouched for (so a normal file never goes the slow way)."""
    path = tmp_path / "h.vcf"
    path.write_text("\n".join(HEADER) + "\n")
    parser = cyvcf2.Writer("/dev/null", cyvcf2.VCF(str(path)), mode="w")
    check = SampleCheck(TYPES, 2)
    rng = random.Random(0)
    formats = ["GT", "GT:DP", "GT:AD:DP:GL:FT", "DP:GT", "GT:XX", "GT:AD:GL"]
    lines, valid = [], []
    for k in range(3000):
        fmt = rng.choice(formats)
        keys = fmt.split(":")
        good = k % 2 == 0 and "XX" not in keys
        samples = []
        for _ in range(2):
            used = keys[:rng.randint(1, len(keys))] if good else keys + ["extra"] * rng.randint(0, 1)
            samples.append(":".join(_value(rng, key, good) for key in used))
        lines.append(f"chr1\t{k + 1}\t.\tA\tC\t50\tPASS\t.\t{fmt}\t" + "\t".join(samples))
        valid.append(good)
    text = "".join(line + "\n" for line in lines).encode()
    ends = np.cumsum([len(line) + 1 for line in lines])
    vouched = check.vouch(text, [line.split("\t")[8].encode() for line in lines], ends)
    assert vouched[valid].all()
    refused = 0
    for line, ok in zip(lines, vouched):
        try:
            parser.variant_from_string(line)
        except Exception:  # noqa: BLE001 - cyvcf2 raises bare Exception
            refused += 1
            assert not ok, line
    assert refused > 200  # the random half does hold lines htslib refuses
    assert check.vouch(text, [line.split("\t")[8].encode() for line in lines], ends).tolist() == vouched.tolist()


def test_line_writer_writes_bgzf_that_tabix_indexes(tmp_path):
    lines = _records(random.Random(2), 50)
    out = tmp_path / "o.vcf.gz"
    writer = LineWriter(str(out), compressed=True, name="o.vcf.gz")
    writer.write("".join(line + "\n" for line in HEADER).encode())
    writer.write("".join(line + "\n" for line in lines).encode())
    writer.close()
    writer.close()  # idempotent
    pysam.tabix_index(str(out), preset="vcf", force=True)
    assert gzip.decompress(out.read_bytes()).decode().splitlines() == HEADER + lines
    assert len(list(cyvcf2.VCF(str(out))("chr2"))) == 25


def _as_htslib(monkeypatch):
    """Make ``score`` read every record with htslib (its path for inputs that are not plain ASCII text)."""
    real = pipeline.scan_vcf_text
    monkeypatch.setattr(pipeline, "scan_vcf_text", lambda *a, **k: dataclasses.replace(real(*a, **k), ascii=False))


@pytest.mark.parametrize("out_name,extra,sites_only", [("o.vcf", (), False), ("o.vcf.gz", (), False),
                                                       ("o.vcf", ("--chunk-size", 3), False),
                                                       ("o.vcf", ("--threads", 2, "--chunk-size", 2), False),
                                                       ("o.vcf.gz", ("--chunk-size", 4), True)])
def test_records_as_lines_give_the_htslib_path_output(inputs, toy_model, tmp_path, monkeypatch, out_name, extra,  # noqa: F811
                                                      sites_only):
    """The pipeline's VCF of every kind of record (in windows, outside, mismatches, unknown contig, symbolic,
    CRLF line ends; with samples or sites only), and its TSV, are the same whether records are read as lines or by
    htslib."""
    text = inputs["vcf"].read_text()
    if sites_only:
        text = "".join("\t".join(line.split("\t")[:8]) + "\n" for line in text.splitlines())
    text = text.replace("\n", "\r\n")
    inputs["vcf"].write_text(text.replace("chr1\t175\t", "chr1\t176\t"))  # a second record outside the windows
    outs = {}
    for how in ("lines", "htslib"):
        if how == "htslib":
            _as_htslib(monkeypatch)
        out = tmp_path / how / out_name
        out.parent.mkdir()
        assert run_score(inputs, toy_model, out, "--tsv", out.parent / "o.tsv", "--stats", out.parent / "s.json",
                         *extra) == 0
        body = gzip.decompress(out.read_bytes()) if out_name.endswith(".gz") else out.read_bytes()
        outs[how] = [line for line in body.decode().splitlines() if not line.startswith("##varxpress_command")]
        outs[how + "_tsv"] = [line for line in (out.parent / "o.tsv").read_text().splitlines()
                              if "varxpress_command" not in line]
        outs[how + "_stats"] = (out.parent / "s.json").read_text()
    assert outs["lines"] == outs["htslib"]
    assert outs["lines_tsv"] == outs["htslib_tsv"] and outs["lines_stats"] == outs["htslib_stats"]
    assert not any("\r" in line for line in outs["lines"])
    assert sum(1 for line in outs["lines"] if not line.startswith("#")) == len(inputs["rows"])


def test_a_header_naming_a_non_ascii_file_is_written_as_the_htslib_path_writes_it(inputs, toy_model, tmp_path,  # noqa: F811
                                                                                   monkeypatch):
    """The input is ASCII, but the provenance lines varxpress adds name the FASTA (here ``génome.fa``) and the
    command line: the header goes out as UTF-8, as htslib writes it."""
    fasta = inputs["fasta"].with_name("génome.fa")
    inputs["fasta"].rename(fasta)
    inputs["fasta"] = fasta
    got = {}
    for how in ("lines", "htslib"):
        if how == "htslib":
            _as_htslib(monkeypatch)
        out = tmp_path / f"{how}.vcf"
        assert run_score(inputs, toy_model, out) == 0
        got[how] = [line for line in out.read_bytes().split(b"\n") if not line.startswith(b"##varxpress_command")]
    assert got["lines"] == got["htslib"]
    assert any(line.startswith("##varxpress_reference=<File=génome.fa,".encode()) for line in got["lines"])


def test_records_outside_every_window_are_written_as_read(inputs, toy_model, tmp_path, monkeypatch):  # noqa: F811
    """A record outside every window keeps its text byte for byte (here a QUAL, an INFO number and a missing
    sample that htslib would write another way); the same text in a window is parsed and written by htslib."""
    b = lambda pos: CHR1[pos - 1]  # noqa: E731
    header = [line for line in inputs["vcf"].read_text().splitlines() if line.startswith("#")]
    header.insert(-1, '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="depth">')
    odd = "50.0\tPASS\tDP=007\tGT:DP\t.\t1|1:+3"
    rows = [f"chr1\t10\tout\t{b(10)}\tG\t{odd}", f"chr1\t45\tin\t{b(45)}\tG\t{odd}"]
    inputs["vcf"].write_text("\n".join(header + rows) + "\n")
    out = tmp_path / "o.vcf"
    assert run_score(inputs, toy_model, out) == 0
    body = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert body[0] == rows[0]
    fields = body[1].split("\t")
    assert fields[5] == "50" and fields[7].startswith("DP=7;VXP=") and fields[9:] == [".:.", "1|1:3"]
    _as_htslib(monkeypatch)  # the htslib path writes both the htslib way
    assert run_score(inputs, toy_model, out) == 0
    assert [line for line in out.read_text().splitlines() if not line.startswith("#")][0].split("\t")[5] == "50"


def test_a_sample_value_htslib_refuses_is_refused_outside_the_windows_too(inputs, toy_model, tmp_path, caplog):  # noqa: F811
    header = [line for line in inputs["vcf"].read_text().splitlines() if line.startswith("#")]
    rows = [f"chr1\t{p}\t.\t{CHR1[p - 1]}\tG\t50\tPASS\t.\tGT\t0/1\t1|1" for p in (10, 12, 14)]
    rows[1] = rows[1].replace("1|1", "1|x")
    inputs["vcf"].write_text("\n".join(header + rows) + "\n")
    out = tmp_path / "o.vcf"
    assert run_score(inputs, toy_model, out) == 1
    # the record is named by CHROM:POS, without cyvcf2's echo of the whole line (samples and all)
    assert f"in.vcf: line {len(header) + 2}: htslib cannot parse this record (chr1:12; vcf_parse returned" \
        in caplog.text
    assert "error parsing" not in caplog.text
    assert not out.exists()


def test_inputs_with_many_samples_are_read_by_htslib(inputs, toy_model, tmp_path):  # noqa: F811
    """Past ``MOST_SAMPLES_AS_LINES`` samples htslib's parser beats checking the samples as text: such a file takes
    the htslib path, so even a record outside every window is written the htslib way (QUAL ``50.0`` as ``50``)."""
    lines = inputs["vcf"].read_text().splitlines()
    for many in (pipeline.MOST_SAMPLES_AS_LINES, pipeline.MOST_SAMPLES_AS_LINES + 1):
        header = [line for line in lines if line.startswith("##")]
        header.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
                                + [f"s{i}" for i in range(many)]))
        row = "\t".join(["chr1", "10", "out", CHR1[9], "G", "50.0", "PASS", ".", "GT"] + ["0/1"] * many)
        inputs["vcf"].write_text("\n".join(header + [row]) + "\n")
        out = tmp_path / f"{many}.vcf"
        assert run_score(inputs, toy_model, out) == 0
        body = [line for line in out.read_text().splitlines() if not line.startswith("#")]
        assert body == [row if many <= pipeline.MOST_SAMPLES_AS_LINES else row.replace("\t50.0\t", "\t50\t")]


def test_standard_output_gets_the_same_vcf_as_a_file(inputs, toy_model, tmp_path, capfd, monkeypatch):  # noqa: F811
    """``-o -`` takes the text path too (a plain-text stream), and writes what the htslib path writes there."""
    got = {}
    for how in ("lines", "htslib"):
        if how == "htslib":
            _as_htslib(monkeypatch)
        assert run_score(inputs, toy_model, "-") == 0
        got[how] = [line for line in capfd.readouterr().out.splitlines() if not line.startswith("##varxpress_command")]
    assert got["lines"] == got["htslib"]
    assert sum(1 for line in got["lines"] if not line.startswith("#")) == len(inputs["rows"])


@pytest.mark.parametrize("extra", [[], ["--mark-outside-windows"]], ids=["lines", "htslib"])
def test_a_reader_of_standard_output_that_goes_away_is_exit_141(inputs, toy_model, tmp_path, extra):  # noqa: F811
    """``score -o - | head``: the text stops, the TSV file and the stats are still written in full, and the run ends
    with 141 and one message (not a traceback, not a full disk), whether records are written as read or all through
    htslib (whose writer does not see its failed writes: the pipe is asked)."""
    header = [line for line in inputs["vcf"].read_text().splitlines() if line.startswith("#")]
    rows = [f"chr1\t{1 + k % 170}\tr{k}\t{CHR1[k % 170]}\tG\t50\tPASS\tDP=3\tGT\t0/1\t1|1" for k in range(6000)]
    rows.sort(key=lambda r: int(r.split("\t")[1]))
    inputs["vcf"].write_text("\n".join(header + rows) + "\n")  # ~300 kB of output: more than a pipe holds
    tsv = tmp_path / "o.tsv"
    argv = [sys.executable, "-m", "varxpress", "score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]),
            "--tss", str(inputs["tss"]), "--model", str(toy_model), "-o", "-", "--tsv", str(tsv), "--quiet", *extra,
            "--stats", str(tmp_path / "o.json")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    assert proc.stdout.read(1000).startswith(b"##fileformat=VCF")
    proc.stdout.close()  # the reader goes away
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    assert "the reader of standard output went away" in err and "Traceback" not in err and "disk" not in err
    assert run_score(inputs, toy_model, tmp_path / "full.vcf", "--tsv", tmp_path / "full.tsv", "--stats",
                     tmp_path / "full.json") == 0
    rows_of = lambda path: [line for line in path.read_text().splitlines() if not line.startswith("##")]  # noqa: E731
    assert len(rows_of(tsv)) > 1000 and rows_of(tsv) == rows_of(tmp_path / "full.tsv")  # every row, in full
    got, full = (json.loads((tmp_path / name).read_text()) for name in ("o.json", "full.json"))
    assert got["records_in"] == full["records_in"] == 6000 and got["scores"] == full["scores"] > 0
    assert got["records_out"] < got["records_in"]  # the records handed to stdout before its reader went away


@pytest.mark.parametrize("name", ["o.vcf", "o.vcf.gz"], ids=["lines", "htslib"])
def test_a_reader_of_a_fifo_that_goes_away_is_exit_141(inputs, toy_model, tmp_path, name):  # noqa: F811
    """``-o FIFO``: a compressed one is written by htslib, whose writer does not see its failed writes, so the FIFO is
    asked after each chunk as standard output is; either way the run ends 141 with one message, and the stats are
    written. htslib complains at most about the blocks of the chunk it was writing when the reader left (before, it
    complained about every block to the end and the run exited 0)."""
    header = [line for line in inputs["vcf"].read_text().splitlines() if line.startswith("#")]
    rows = [f"chr1\t{1 + k % 170}\tr{k}\t{CHR1[k % 170]}\tG\t{k % 97}\tPASS\tDP={k}\tGT\t0/1\t1|1"
            for k in range(20000)]
    rows.sort(key=lambda r: int(r.split("\t")[1]))
    inputs["vcf"].write_text("\n".join(header + rows) + "\n")  # more than a pipe holds, compressed too
    fifo = tmp_path / name
    os.mkfifo(fifo)
    argv = [sys.executable, "-m", "varxpress", "score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]),
            "--tss", str(inputs["tss"]), "--model", str(toy_model), "-o", str(fifo), "--quiet",
            "--stats", str(tmp_path / "o.json")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    with open(fifo, "rb") as reader:  # waits for score to open it
        assert reader.read(1000)[:2] in (b"##", b"\x1f\x8b")
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    *htslib, last = err.strip().splitlines()
    assert last == (f"varxpress ERROR: the reader of {fifo} went away (e.g. `| head`) after part of the VCF: the VCF "
                    f"is incomplete; every other output was written in full")
    assert len(htslib) <= 3 and all(line.startswith("[E::bgzf_") for line in htslib), err
    stats = json.loads((tmp_path / "o.json").read_text())
    assert stats["records_in"] == 20000 and stats["records_out"] < 20000


@pytest.mark.parametrize("out_name,how", [("o.vcf.gz", "lines"), ("o.vcf.gz", "htslib"), ("o.bcf", "htslib")])
def test_a_compression_level_changes_the_bytes_not_the_records(inputs, toy_model, tmp_path, monkeypatch,  # noqa: F811
                                                               out_name, how):
    """``--compression-level`` reaches the BGZF writer of either path: level 0 (stored blocks) makes a file over twice
    the default's size; every level gives the default's records and an index."""
    if how == "htslib":
        _as_htslib(monkeypatch)
    sizes, records = {}, {}
    for level in (None, 0, 9):
        out = tmp_path / str(level) / out_name
        out.parent.mkdir()
        assert run_score(inputs, toy_model, out, *(() if level is None else ("--compression-level", level))) == 0
        assert any(out.parent.glob(out_name + ".[tc][bs]i"))
        sizes[level], records[level] = out.stat().st_size, [str(r) for r in cyvcf2.VCF(str(out))]
    assert len(records[None]) == len(inputs["rows"]) and records[0] == records[None] == records[9]
    assert sizes[0] > 2 * sizes[None]


def test_a_compression_level_for_a_plain_output_is_refused_before_loading(inputs, toy_model, tmp_path,  # noqa: F811
                                                                          capsys):
    out = tmp_path / "o.vcf"
    assert run_score(inputs, toy_model, out, "--compression-level", 1) == 2
    assert "a compression level applies to a compressed output (.vcf.gz, .bcf)" in capsys.readouterr().err
    assert not out.exists()
    cfg = pipeline.ScoreConfig(vcf=str(inputs["vcf"]), resources=None, out=str(tmp_path / "o.vcf.gz"),
                               compression_level=12)
    with pytest.raises(UsageError, match="compression level 12: give 0"):
        pipeline.score_vcf(cfg)  # resources None: refused before they would be loaded
