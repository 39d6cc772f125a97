"""A VCF called on another genome build than the FASTA is made visible (varxpress.scoring.build_check): header
contig lengths that differ from the FASTA's are warned about at the start, per-record REF mismatches are shown up to
a limit and counted beyond it, and a run where most records disagree ends saying the build is probably wrong. The
run itself goes on: every record is still written, the mismatching ones with their skip reason."""

from __future__ import annotations

import json
import logging

import pytest

from tests.corpus import reference, toy_model  # noqa: F401 (fixtures)
from varxpress.cli import main
from varxpress.scoring.build_check import SHOWN

HEADER = "##fileformat=VCFv4.2\n{contigs}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
COMPLEMENT = {"A": "C", "C": "G", "G": "T", "T": "A"}


def genome_bases(reference) -> str:
    lines = reference["fasta"].read_text().split(">")[1].splitlines()
    return "".join(lines[1:])  # chr1, 300 bases


def run(reference, toy_model, tmp_path, vcf_text: str, caplog) -> tuple[int, list[str], dict]:
    vcf = tmp_path / "in.vcf"
    vcf.write_text(vcf_text)
    caplog.set_level(logging.WARNING, logger="varxpress")
    status = main(["score", str(vcf), "--fasta", str(reference["fasta"]), "--tss", str(reference["tss"]),
                   "--model", str(toy_model), "--out", str(tmp_path / "out.vcf"), "--stats",
                   str(tmp_path / "stats.json")])
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    stats = json.loads((tmp_path / "stats.json").read_text()) if status == 0 else {}
    return status, warned, stats


def records(bases: str, positions, wrong: bool) -> str:
    rows = []
    for pos in positions:
        ref = bases[pos - 1]
        ref = COMPLEMENT[ref] if wrong else ref
        rows.append(f"chr1\t{pos}\t.\t{ref}\t{COMPLEMENT[ref]}\t.\t.\t.\n")
    return "".join(rows)


def test_contig_lengths_of_another_build_are_warned_about_and_the_run_goes_on(reference, toy_model, tmp_path,
                                                                               caplog):
    bases = genome_bases(reference)
    contigs = "##contig=<ID=chr1,length=249250621>\n##contig=<ID=chr2,length=60>\n##contig=<ID=chrX>\n"
    status, warned, stats = run(reference, toy_model, tmp_path, HEADER.format(contigs=contigs)
                                + records(bases, [50, 55], wrong=False), caplog)
    assert status == 0 and stats["records_out"] == 2
    build = [w for w in warned if "contig lengths that differ" in w]
    assert len(build) == 1 and "chr1 249,250,621 bp (FASTA 300)" in build[0] and "chr2" not in build[0]
    assert "another genome build" in build[0]


def test_matching_contig_lengths_say_nothing(reference, toy_model, tmp_path, caplog):
    bases = genome_bases(reference)
    contigs = "##contig=<ID=chr1,length=300>\n##contig=<ID=chr2,length=60>\n"
    status, warned, _ = run(reference, toy_model, tmp_path, HEADER.format(contigs=contigs)
                            + records(bases, [50, 55], wrong=False), caplog)
    assert status == 0 and not [w for w in warned if "differ" in w or "genome build" in w]


def test_a_plain_vcf_without_contig_lines_runs_without_htslib_noise(reference, toy_model, tmp_path, caplog, capfd):
    """Without ##contig lines cyvcf2 would look for an index to list the contigs, and htslib would print
    "[E::idx_find_and_load] Could not retrieve index file" for a run that succeeds."""
    bases = genome_bases(reference)
    status, _, stats = run(reference, toy_model, tmp_path, HEADER.format(contigs="") + records(bases, [50], False),
                           caplog)
    assert status == 0 and stats["records_out"] == 1
    assert "[E::" not in capfd.readouterr().err


def test_a_vcf_whose_contigs_the_fasta_lacks_is_warned_about(reference, toy_model, tmp_path, caplog):
    """All records on RefSeq names against a chr1 FASTA: nothing is scored, and the run said so only in the
    summary's counts (nothing at all with -q)."""
    bases = genome_bases(reference)
    text = HEADER.format(contigs="") + records(bases, [50, 55, 60], wrong=False).replace("chr1\t", "NC_000001.11\t")
    status, warned, stats = run(reference, toy_model, tmp_path, text, caplog)
    assert status == 0 and stats["skipped"]["unknown_contig"] == 3
    assert any("3 of 3 records lie on contigs the FASTA does not have under any alias (NC_000001.11)" in w
               and "--contig-map" in w for w in warned)
    caplog.clear()  # a few such records among many on known contigs: each is skipped with its reason, no warning
    text = HEADER.format(contigs="") + records(bases, [50, 55, 60], wrong=False) + "chrQ\t5\t.\tA\tG\t.\t.\t.\n"
    status, warned, _ = run(reference, toy_model, tmp_path, text, caplog)
    assert status == 0 and not [w for w in warned if "under any alias" in w]


def test_many_ref_mismatches_are_counted_beyond_the_shown_ones_and_point_to_the_build(reference, toy_model, tmp_path,
                                                                                        caplog):
    bases = genome_bases(reference)
    n = SHOWN + 5
    positions = list(range(40, 40 + n)) + [100, 101]  # two records that match
    text = HEADER.format(contigs="") + records(bases, positions[:n], wrong=True) + records(bases, positions[n:],
                                                                                            wrong=False)
    status, warned, stats = run(reference, toy_model, tmp_path, text, caplog)
    assert status == 0 and stats["records_out"] == n + 2 and stats["skipped"]["ref_mismatch"] == n
    one_by_one = [w for w in warned if "is the FASTA the build the VCF" in w]
    assert len(one_by_one) == SHOWN and "in.vcf: line 3:" in one_by_one[0]  # file and line named
    assert sum("further REF mismatches are counted" in w for w in warned) == 1
    assert any(f"{n} records in all have a REF that disagrees" in w for w in warned)
    assert any(f"{n} of {n + 2} records" in w and "another genome build" in w for w in warned)


def test_a_few_ref_mismatches_are_each_shown_without_a_build_verdict(reference, toy_model, tmp_path, caplog):
    bases = genome_bases(reference)
    text = HEADER.format(contigs="") + records(bases, [40, 41, 42], wrong=True) + records(bases, [60], wrong=False)
    status, warned, stats = run(reference, toy_model, tmp_path, text, caplog)
    assert status == 0 and stats["skipped"]["ref_mismatch"] == 3
    assert len([w for w in warned if "is the FASTA the build the VCF" in w]) == 3
    assert not [w for w in warned if "counted, not shown" in w or "another genome build" in w]


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_other_mismatch_policies_warn_nothing_per_record(reference, toy_model, tmp_path, caplog, policy):
    vcf = tmp_path / "in.vcf"
    vcf.write_text(HEADER.format(contigs="") + records(genome_bases(reference), [40, 41], wrong=True))
    caplog.set_level(logging.WARNING, logger="varxpress")
    status = main(["score", str(vcf), "--fasta", str(reference["fasta"]), "--tss", str(reference["tss"]),
                   "--model", str(toy_model), "--out", str(tmp_path / "out.vcf"), "--on-ref-mismatch", policy])
    assert status == (0 if policy == "skip" else 1)
    assert not [r for r in caplog.records if "is the FASTA the build the VCF" in r.getMessage()
                and r.levelname == "WARNING"]
