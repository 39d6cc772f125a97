"""The edge-case corpus (tests/data/edge_cases): every file has a written-down expected outcome, checked exactly.

A valid file must come out with every record, in input order, its own fields unchanged (compared column by column
with the input text) and the documented ``VXP_SKIP`` reason where it was not scored; a bad file must stop with
exit status 1, a message naming the file, the line and the cause, and no output file (complete or partial) left.
The table of docs/bad-input.md lists the same cases.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.corpus import CORPUS, reference, toy_model  # noqa: F401 (fixtures)
from varxpress.cli import main
from varxpress.io.writers import INFO_IDS, VXP_FIELDS

CASES = yaml.safe_load((CORPUS / "expected.yaml").read_text())
OURS = set(INFO_IDS)


def case_id(case: dict) -> str:
    return case["file"] + ("[" + " ".join(case["args"]) + "]" if case.get("args") else "")


def score(vcf: Path, reference: dict, model: Path, out: Path, *extra: str) -> int:
    return main(["score", str(vcf), "--fasta", str(reference["fasta"]), "--tss", str(reference["tss"]),
                 "--model", str(model), "--out", str(out), "--quiet", *extra])


def text_lines(path: Path) -> list[str]:
    """Lines of a VCF/VCF.gz/BCF as text, line endings removed (BCF through ``bcftools view``)."""
    if path.suffix == ".bcf":
        text = subprocess.run(["bcftools", "view", str(path)], capture_output=True, text=True, check=True).stdout
    else:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    return [line.rstrip("\r") for line in text.split("\n") if line.rstrip("\r")]


def data_rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in text_lines(path) if not line.startswith("#")]


def info_items(info: str) -> list[str]:
    return [] if info == "." else info.split(";")


def info_dict(info: str) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in info_items(info))


def test_corpus_is_complete():
    """At least 30 files, each with an expected outcome, and every file of the folder in the manifest."""
    files = {c["file"] for c in CASES}
    on_disk = {p.name for p in CORPUS.iterdir()} - {"genome.fa", "genome.fa.fai", "genes.tsv", "expected.yaml",
                                                     "make_corpus.py"}
    assert files == on_disk
    assert len(files) >= 30
    for c in CASES:
        assert c["exit"] in (0, 1)
        assert ("records" in c) == (c["exit"] == 0) and ("error" in c) == (c["exit"] == 1)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_corpus_case(case, toy_model, reference, tmp_path, caplog, recwarn):
    src = tmp_path / "in" / case["file"]
    src.parent.mkdir()
    shutil.copy(CORPUS / case["file"], src)
    folder = tmp_path / "run"
    folder.mkdir()
    out = folder / case.get("out", "out.vcf.gz")
    stats = folder / "stats.json"
    status = score(src, reference, toy_model, out, *case.get("args", []), "--stats", str(stats))
    messages = caplog.text + "\n".join(str(w.message) for w in recwarn)
    assert status == case["exit"], messages
    if case["exit"] == 1:
        assert re.search(case["error"], messages), messages
        assert os.listdir(folder) == []  # no output, no partial file, no stray index
        return
    if "log" in case:
        assert re.search(case["log"], messages), messages
    check_output(case, src, out, json.loads(stats.read_text()))


def outside_only(expect: str) -> bool:
    """Whether an expected ``VXP_SKIP`` says only that the record lies in no window (every allele
    ``no_gene_in_window``): such a record is written unannotated unless ``--mark-outside-windows`` is given."""
    return set(expect.split(",")) == {"no_gene_in_window"}


def check_output(case: dict, src: Path, out: Path, stats: dict, marked: bool = False) -> None:
    """The output of a valid case as expected.yaml says; ``marked``: scored with ``--mark-outside-windows``."""
    expected = case["records"]
    rows_in, rows_out = data_rows(src), data_rows(out)
    assert stats["records_in"] == stats["records_out"] == len(expected) == len(rows_in) == len(rows_out)
    indexed = case.get("indexed", True)
    assert (Path(str(out) + ".tbi")).exists() == indexed
    for (vid, expect), row_in, row_out in zip(expected, rows_in, rows_out):
        # the record's own fields, column by column: CHROM POS ID REF ALT QUAL FILTER, FORMAT and samples
        assert row_out[:7] == row_in[:7]
        assert row_out[2] == vid
        assert row_out[8:] == row_in[8:]
        theirs = [item for item in info_items(row_in[7]) if item.partition("=")[0] not in OURS]
        kept = [item for item in info_items(row_out[7]) if item.partition("=")[0] not in OURS]
        assert kept == theirs
        info = info_dict(row_out[7])
        if expect == "scored":
            assert "VXP" in info and "VXP_SKIP" not in info, row_out
        elif outside_only(expect) and not marked:
            assert "VXP" not in info and "VXP_SKIP" not in info, row_out
        else:
            assert info.get("VXP_SKIP") == expect, row_out
            assert ("VXP" in info) == ("." in expect.split(",")), row_out
        if "VXP" in info:
            n_alts = len(row_in[4].split(","))
            assert len(info["VXP_MAX_DELTA"].split(",")) == n_alts
            flags = [entry.split("|")[VXP_FIELDS.index("Flags")] for entry in info["VXP"].split(",")]
            want = case.get("flags", {}).get(vid, ".")  # one flag for every entry, or a list in VXP order
            assert flags == (want if isinstance(want, list) else [want] * len(flags)), row_out
    if shutil.which("bcftools"):
        res = subprocess.run(["bcftools", "view", "-H", str(out)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert len(res.stdout.splitlines()) == len(expected)


def test_bcf_output_of_records_on_undeclared_contigs(toy_model, reference, tmp_path, caplog):
    """BCF needs every contig declared: the missing ##contig lines are added, so BCF output works too."""
    out = tmp_path / "out.bcf"
    assert score(CORPUS / "missing_contig_header_lines.vcf", reference, toy_model, out) == 0
    assert [row[2] for row in data_rows(out)] == ["a", "b"]
    assert "##contig=<ID=chr1>" in text_lines(out)
    assert "contigs chr1, chr2 used by records but not declared in the header" in caplog.text


def test_stats_count_every_record_of_the_corpus(toy_model, reference, tmp_path):
    """records_in == records_out for every valid file, and the skip counts add up to the VXP_SKIP values.

    With ``--mark-outside-windows`` every record carries the reasons expected.yaml gives (as before that option's
    default changed); without it the counts are the same and the files differ only by the ``VXP_SKIP`` of the
    records that lie in no window and have nothing else wrong."""
    for n, case in enumerate(CASES):
        if case["exit"] != 0:
            continue
        args = case.get("args", [])
        folder = tmp_path / str(n)
        folder.mkdir()
        marked, plain = folder / case.get("out", "out.vcf.gz"), folder / "plain.vcf"
        stats, plain_stats = folder / "s.json", folder / "p.json"
        assert score(CORPUS / case["file"], reference, toy_model, marked, *args, "--stats", str(stats),
                     "--mark-outside-windows") == 0
        assert score(CORPUS / case["file"], reference, toy_model, plain, *args, "--stats", str(plain_stats)) == 0
        counts = json.loads(stats.read_text())
        reasons = [r for _, expect in case["records"] if expect != "scored" for r in expect.split(",") if r != "."]
        assert sum(counts["skipped"].values()) == len(reasons), case["file"]
        assert json.loads(plain_stats.read_text()) == counts, case["file"]
        check_output(case, CORPUS / case["file"], marked, counts, marked=True)
        for row, row_marked, (_, expect) in zip(data_rows(plain), data_rows(marked), case["records"]):
            drop = "VXP_SKIP" if outside_only(expect) else None
            assert row[:7] + row[8:] == row_marked[:7] + row_marked[8:]
            assert info_items(row[7]) == [i for i in info_items(row_marked[7]) if i.partition("=")[0] != drop]
