"""The scatter-gather workflow: shard planning (pure), gather/report, and Snakemake runs on the example data."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.realdata import in_ci
from varxpress.workflow import runner, sharding
from varxpress.cli import build_parser, main
from varxpress.errors import VcfError
from varxpress.workflow.sharding import CONTIG_END, Shard, ShardPlanError, plan_shards, read_region_list
from varxpress.errors import UsageError
from varxpress.workflow.runner import (WorkflowError, build_config, build_warnings, known_cause, plan_error,
                                       snakemake_command)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_data"
HAVE_TOOLS = all(shutil.which(t) for t in ("bcftools", "tabix", "bgzip"))
# the project installs both (make test); under CI=true a missing one is a broken setup, so the tests run and fail
needs_tools = pytest.mark.skipif(not HAVE_TOOLS and not in_ci(),
                                 reason="bcftools/tabix/bgzip absent: run scripts/install-system-deps")
try:
    import snakemake  # noqa: F401

    HAVE_SNAKEMAKE = True
except ImportError:
    HAVE_SNAKEMAKE = False
needs_snakemake = pytest.mark.skipif(not HAVE_SNAKEMAKE and not in_ci(),
                                     reason="snakemake absent: pip install '.[workflow]'")
SCORE_ARGS = ["--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"), "--tss", str(EXAMPLE / "tss.bed"),
              "--tss-offset", "10000"]
SHARD_SIZE = "50000"  # 4 shards of the example: bases of promoter window per shard


def owner(shards: list[Shard], chrom: str, pos: int) -> list[str]:
    """Names of the shards whose regions hold 1-based ``pos`` (what `varxpress score --regions` selects)."""
    return [s.name for s in shards for c, a, b in s.regions if c == chrom and a <= pos - 1 < b]


# -- planning ----------------------------------------------------------------------------------------------------


def test_plan_cuts_between_windows_and_keeps_windowless_contigs():
    contigs = ["chr1", "chrUn", "chr2", "chrNoFasta"]
    windows = {"chr1": [(100, 200), (150, 300), (1000, 1100), (5000, 5300)], "chr2": [(50, 250)]}
    shards = plan_shards(contigs, windows, shard_size=300)
    assert [s.regions for s in shards] == [
        (("chr1", 0, 5000),),  # windows [100, 300) and [1000, 1100): 300 bases; [5000, 5300) would pass 300
        (("chr1", 5000, CONTIG_END), ("chrUn", 0, CONTIG_END), ("chr2", 0, 50)),  # chrUn: no window, rides along
        (("chr2", 50, CONTIG_END), ("chrNoFasta", 0, CONTIG_END)),
    ]
    assert [s.span for s in shards] == [300, 300, 200]
    assert [s.name for s in shards] == ["shard0001", "shard0002", "shard0003"]
    assert shards[1].label() == "chr1:5001-end,chrUn,chr2:1-50"
    assert shards[0].bed() == "chr1\t0\t5000\n"


def test_plan_of_contigs_without_any_window_is_one_shard():
    shards = plan_shards(["chr21", "chrQ"], {}, shard_size=10)
    assert [s.regions for s in shards] == [(("chr21", 0, CONTIG_END), ("chrQ", 0, CONTIG_END))]
    assert plan_shards([], {}, 10) == [Shard("shard0001", (), 0)]  # empty VCF: one shard that reads everything


def test_plan_rejects_bad_input():
    with pytest.raises(ShardPlanError, match="at least 1"):
        plan_shards(["chr1"], {}, 0)
    with pytest.raises(ShardPlanError, match="twice"):
        plan_shards(["chr1", "chr1"], {}, 10)


windows_st = st.lists(st.tuples(st.integers(-50, 5000), st.integers(1, 400)).map(lambda t: (t[0], t[0] + t[1])),
                      max_size=12)


@settings(max_examples=150, deadline=None)
@given(per_contig=st.lists(windows_st, min_size=1, max_size=4), size=st.integers(1, 2000),
       positions=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 6000)), max_size=30))
def test_plan_tiles_every_contig_exactly_once(per_contig, size, positions):
    contigs = [f"c{i}" for i in range(len(per_contig))]
    windows = dict(zip(contigs, per_contig))
    shards = plan_shards(contigs, windows, size)
    flat = [r for s in shards for r in s.regions]
    for contig in contigs:  # the regions of a contig are consecutive, in order, and tile [0, CONTIG_END)
        mine = [(a, b) for c, a, b in flat if c == contig]
        assert mine[0][0] == 0 and mine[-1][1] == CONTIG_END
        assert all(b == a2 for (_, b), (a2, _) in zip(mine, mine[1:]))
        assert all(a < b for a, b in mine)
    assert [c for c, _, _ in flat] == sorted((c for c, _, _ in flat), key=contigs.index)  # output order kept
    for i, pos in positions:
        contig = contigs[i % len(contigs)]
        assert len(owner(shards, contig, pos)) == 1
    merged = {c: sharding.merge_intervals(w) for c, w in windows.items()}
    assert sum(s.span for s in shards) == sum(b - a for w in merged.values() for a, b in w)
    for s in shards:  # over the size only when one merged window stretch alone is larger
        stretches = [(c, a) for c, w in merged.items() for a, _ in w if owner([s], c, a + 1)]
        assert s.span <= size or len(stretches) == 1


def test_region_list_orders_groups_and_rejects_overlaps(tmp_path):
    path = tmp_path / "regions.bed"
    path.write_text("chr2\t0\t100\tb\nchr1:201-300\nchr1\t0\t100\ta\nchr1\t100\t150\ta\n")
    shards = read_region_list(path, ["chr1", "chr2"])
    assert [s.regions for s in shards] == [(("chr1", 0, 100), ("chr1", 100, 150)), (("chr1", 200, 300),),
                                           (("chr2", 0, 100),)]
    path.write_text("chr1\t0\t100\nchr1\t50\t150\n")
    with pytest.raises(ShardPlanError, match="overlaps"):
        read_region_list(path, ["chr1"])
    path.write_text("chr1\t0\t100\ta\nchr1\t200\t300\ta\nchr1\t100\t200\tb\n")
    with pytest.raises(ShardPlanError, match="interleaves"):
        read_region_list(path, ["chr1"])
    path.write_text("chr1:x-y\n")
    with pytest.raises(ShardPlanError, match=":1: not a BED line"):
        read_region_list(path, ["chr1"])


@needs_tools
def test_vcf_contigs_follow_the_index_and_include_contigs_missing_from_the_header(tmp_path):
    text = (EXAMPLE / "demo.vcf").read_text() + "chrQ\t50\t.\tA\tG\t.\tPASS\t.\n"
    (tmp_path / "x.vcf").write_text(text)
    assert "##contig=<ID=chrQ" not in text
    subprocess.run(["bgzip", str(tmp_path / "x.vcf")], check=True)
    with pytest.raises(VcfError, match="tabix -p vcf"):
        sharding.vcf_contigs(tmp_path / "x.vcf.gz")
    subprocess.run(["tabix", "-p", "vcf", str(tmp_path / "x.vcf.gz")], check=True)
    contigs = sharding.vcf_contigs(tmp_path / "x.vcf.gz")
    assert contigs == ["chr1", "chr5", "chr10", "chr11", "chr16", "chr19", "chr20", "chrX", "chr21", "chrQ"]
    shards = sharding.make_plan(str(tmp_path / "x.vcf.gz"), str(EXAMPLE / "hg38_promoters.fa.gz"),
                                tss=str(EXAMPLE / "tss.bed"), tss_offset=10000, shard_size=int(SHARD_SIZE))
    assert len(shards) == 4
    assert shards[-1].regions[-2:] == (("chr21", 0, CONTIG_END), ("chrQ", 0, CONTIG_END))
    assert sharding.count_records(tmp_path / "x.vcf.gz") == 20


@needs_tools
def test_a_bcf_whose_records_are_not_in_header_order_is_planned_in_file_order(tmp_path):
    """A BCF's .csi lists contigs in header order; the shards must follow the file, or the gathered output would
    reorder the input's records."""
    lines = (EXAMPLE / "demo.vcf").read_text().splitlines(keepends=True)
    header = [x for x in lines if x.startswith("#")]
    records = [x for x in lines if not x.startswith("#")]
    moved = [x for x in records if x.startswith("chr11\t")]
    assert moved and records[0].split("\t")[0] != "chr11"
    (tmp_path / "x.vcf").write_text("".join(header + moved + [x for x in records if x not in moved]))
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(tmp_path / "x.bcf"), str(tmp_path / "x.vcf")], check=True)
    subprocess.run(["bcftools", "index", str(tmp_path / "x.bcf")], check=True)
    in_file = list(dict.fromkeys(x.split("\t")[0] for x in moved + [x for x in records if x not in moved]))
    assert sharding.vcf_contigs(tmp_path / "x.bcf") == in_file and in_file[0] == "chr11"
    shards = sharding.make_plan(str(tmp_path / "x.bcf"), str(EXAMPLE / "hg38_promoters.fa.gz"),
                                tss=str(EXAMPLE / "tss.bed"), tss_offset=10000, shard_size=int(SHARD_SIZE))
    planned = list(dict.fromkeys(chrom for shard in shards for chrom, _, _ in shard.regions))
    assert planned == in_file


# -- gather and report --------------------------------------------------------------------------------------------


def _vcf(path: Path, records: list[tuple[str, int]], command: str) -> Path:
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=1000>", "##contig=<ID=chr2,length=1000>",
             f"##varxpress_command={command}", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{c}\t{p}\t.\tA\tG\t.\tPASS\t." for c, p in records]
    path.with_suffix("").write_text("\n".join(lines) + "\n")
    subprocess.run(["bgzip", "-f", str(path.with_suffix(""))], check=True)
    return path


@needs_tools
def test_gather_concatenates_in_order_indexes_and_names_the_shard_command(tmp_path):
    a = _vcf(tmp_path / "shard0001.vcf.gz", [("chr1", 5), ("chr1", 900)], "varxpress score --regions shard0001.bed")
    b = _vcf(tmp_path / "shard0002.vcf.gz", [("chr2", 7)], "varxpress score --regions shard0002.bed")
    out = tmp_path / "all.vcf.gz"
    sharding.gather([str(a), str(b)], str(out))
    with gzip.open(out, "rt") as fh:
        lines = fh.read().splitlines()
    assert [tuple(x.split("\t")[:2]) for x in lines if not x.startswith("#")] == [("chr1", "5"), ("chr1", "900"),
                                                                                 ("chr2", "7")]
    assert "##varxpress_command=varxpress score --regions {shard}.bed" in lines
    assert not any(x.startswith("##bcftools") for x in lines)
    assert out.read_bytes()[:4] == b"\x1f\x8b\x08\x04" and (tmp_path / "all.vcf.gz.tbi").exists()  # BGZF + index
    assert sharding.count_records(out) == 3
    assert not list(tmp_path.glob(".gather.*"))
    with pytest.raises(sharding.GatherError, match="no shards"):
        sharding.gather([], str(out))


@needs_tools
def test_a_gathered_file_that_fails_its_counts_is_removed(tmp_path):
    """The gather wrote OUT and OUT.tbi, then the report's record counts failed and the workflow exited 1 with
    the incomplete file in place, looking finished."""
    source = _vcf(tmp_path / "in.vcf.gz", [("chr1", 5), ("chr1", 900), ("chr2", 7)], "x")
    subprocess.run(["tabix", "-p", "vcf", str(source)], check=True)  # the input's count comes from its index
    shard = _vcf(tmp_path / "shard0001.vcf.gz", [("chr1", 5), ("chr2", 7)], "varxpress score --regions a.bed")
    out = tmp_path / "all.vcf.gz"
    sharding.gather([str(shard)], str(out))
    sharding.write_plan([sharding.Shard("shard0001", (("chr1", 0, CONTIG_END), ("chr2", 0, CONTIG_END)), 0)],
                        tmp_path / "plan", "tiled")
    stats = tmp_path / "shard0001.stats.json"
    stats.write_text(json.dumps({"records_in": 2, "records_out": 2, "alleles": 2}))
    report = tmp_path / "all.report.json"
    with pytest.raises(sharding.GatherError, match=r"the shards read 2 records but .*in.vcf.gz has 3.*damaged"):
        sharding.write_report(tmp_path / "plan", [str(stats)], str(source), str(out), str(report))
    assert not out.exists() and not Path(f"{out}.tbi").exists() and not report.exists()
    shard = _vcf(tmp_path / "shard0001.vcf.gz", [("chr1", 5), ("chr1", 900), ("chr2", 7)], "varxpress score")
    sharding.gather([str(shard)], str(out))
    stats.write_text(json.dumps({"records_in": 3, "records_out": 3, "alleles": 3}))
    sharding.write_report(tmp_path / "plan", [str(stats)], str(source), str(out), str(report))
    assert json.loads(report.read_text())["output_records"] == 3 and out.exists()


def test_aggregate_stats_sums_counts_and_reasons():
    total = sharding.aggregate_stats([
        {"records_in": 2, "records_out": 2, "alleles": 3, "alleles_scored": 1, "scores": 2, "scores_fast": 1,
         "genes_predicted": 1, "skipped": {"unknown_contig": 2}, "flags": {}},
        {"records_in": 1, "records_out": 1, "alleles": 1, "alleles_scored": 0, "scores": 0, "scores_fast": 0,
         "genes_predicted": 0, "skipped": {"unknown_contig": 1, "no_gene_in_window": 1}, "flags": {"off_contig": 1}},
    ])
    assert total["records_in"] == 3 and total["alleles"] == 4 and total["scores"] == 2
    assert total["skipped"] == {"no_gene_in_window": 1, "unknown_contig": 3}
    assert total["flags"] == {"off_contig": 1}


# -- the subcommand ---------------------------------------------------------------------------------------------


def _args(argv: list[str]):
    from varxpress.cli.workflow import workflow_run

    return workflow_run(build_parser().parse_args(["workflow", *argv]))


def test_build_config_makes_paths_absolute_and_overrides_the_configfile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.vcf").write_text("")
    (tmp_path / "g.fa").write_text("")
    (tmp_path / "cfg.yaml").write_text("vcf: in.vcf\nfasta: g.fa\nout: r/x.vcf.gz\nshard_size: 5\n"
                                       "resources: {score: {mem_mb: 100}}\n")
    cfg = build_config(_args(["--configfile", "cfg.yaml", "--shard-size", "7", "--threads-per-shard", "3"]),
                       tmp_path)
    assert cfg["vcf"] == str(tmp_path / "in.vcf") and cfg["out"] == str(tmp_path / "r" / "x.vcf.gz")
    assert cfg["shard_size"] == 7 and cfg["resources"]["score"] == {"mem_mb": 100, "threads": 3}
    assert "tss" not in cfg  # not given: the Snakefile's default (bundled set) applies
    with pytest.raises(UsageError, match="missing fasta, out"):  # usage errors: exit 2, as for `score`
        build_config(_args(["in.vcf"]), tmp_path)
    for out in ("x.bcf", "-", "folder/"):
        with pytest.raises(UsageError, match=r"\*\.vcf\.gz"):
            build_config(_args(["in.vcf", "--fasta", "g.fa", "--out", out]), tmp_path)
    (tmp_path / "zero.yaml").write_text("vcf: in.vcf\nfasta: g.fa\nout: x.vcf.gz\nshard_size: 0\n")
    with pytest.raises(UsageError, match="need at least 1"):  # the option's type refuses 0; a config file here
        build_config(_args(["--configfile", "zero.yaml"]), tmp_path)


def test_the_shards_warnings_of_another_build_reach_the_workflows_own_log(tmp_path):
    logs = tmp_path / "logs"
    assert build_warnings(logs) == []
    (logs / "score").mkdir(parents=True)
    (logs / "score" / "shard0001.log").write_text("varxpress INFO: fine\n")
    (logs / "score" / "shard0002.log").write_text(
        "varxpress WARNING: in.vcf: the header declares contig lengths that differ from the FASTA's: chr5 1 bp "
        "(FASTA 2); was the VCF called on another genome build? Its scores would be for the wrong bases\n")
    assert build_warnings(logs) == ["shard0002: in.vcf: the header declares contig lengths that differ from the "
                                    "FASTA's: chr5 1 bp (FASTA 2); was the VCF called on another genome build? Its "
                                    "scores would be for the wrong bases"]


def test_a_failure_whose_cause_the_logs_name_says_what_to_do_instead_of_run_again(tmp_path):
    logs = tmp_path / "logs"
    assert known_cause(logs) is None  # no logs yet
    (logs / "score").mkdir(parents=True)
    (logs / "score" / "shard0001.log").write_text("all fine\n")
    assert known_cause(logs) is None
    (logs / "index_input.log").write_text("[E::hts_idx_push] Chromosome blocks not continuous\n")
    cause = known_cause(logs)
    assert "not sorted" in cause and "bcftools" in cause and "sort" in cause and "index_input.log" in cause
    # tabix's words for positions out of order, capital U and all
    (logs / "index_input.log").write_text("[E::hts_idx_push] Unsorted positions on sequence #1: 9 followed by 3\n")
    assert "not sorted (bcftools: unsorted positions)" in known_cause(logs)


@pytest.mark.slow
@needs_snakemake
def test_a_plan_that_fails_ends_the_run_with_its_cause(reference, tmp_path, caplog):
    """Overlapping regions fail the plan job: its cause was buried in Snakemake's traceback under a last line that
    said no job had run."""
    vcf, _ = reference
    regions = tmp_path / "ov.bed"
    regions.write_text("chr5\t0\t2000000\nchr5\t1000000\t3000000\n")
    out = tmp_path / "res" / "cohort.vcf.gz"
    assert main(["workflow", str(vcf), *SCORE_ARGS, "--regions", str(regions), "--out", str(out), "--cores", "1",
                 "--quiet"]) == 1
    last = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"][-1]
    assert last.startswith("the workflow failed (exit status 1) while planning the shards: ")
    assert "overlaps or interleaves" in last and not out.exists()
    assert plan_error(tmp_path / "res" / "cohort.work" / "logs") in last
    # the next run fails before any plan (an unsorted input): the earlier plan's error is not reported as its cause
    lines = (EXAMPLE / "demo.vcf").read_text().splitlines(keepends=True)
    body = [x for x in lines if not x.startswith("#")]
    (tmp_path / "unsorted.vcf").write_text("".join([x for x in lines if x.startswith("#")] + body[::-1]))
    regions.write_text("chr5\t0\t2000000\n")
    caplog.clear()
    assert main(["workflow", str(tmp_path / "unsorted.vcf"), *SCORE_ARGS, "--regions", str(regions), "--out",
                 str(out), "--cores", "1", "--quiet"]) == 1
    last = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"][-1]
    assert "while planning" not in last and "not sorted" in last


def test_snakemake_command_reruns_incomplete_jobs_and_passes_cluster_options(tmp_path):
    args = _args(["--profile", "workflow/profiles/slurm", "--jobs", "50", "--snakemake-arg=--keep-going", "-q"])
    cmd = snakemake_command(Path("S"), tmp_path, tmp_path / "c.yaml", args)
    assert cmd[1:3] == ["-m", "snakemake"] and "--rerun-incomplete" in cmd
    assert cmd[cmd.index("--profile") + 1] == "workflow/profiles/slurm" and cmd[cmd.index("--jobs") + 1] == "50"
    assert cmd[-1] == "--keep-going" and "--quiet" in cmd
    local = snakemake_command(Path("S"), tmp_path, tmp_path / "c.yaml", _args(["--cores", "2"]))
    assert local[local.index("--cores") + 1] == "2" and "--profile" not in local


def test_slurm_profile_declares_the_executor_and_per_rule_resources():
    import yaml

    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert {"mem_mb", "runtime"} <= set(profile["set-resources"]["score"])
    config = yaml.safe_load((ROOT / "workflow" / "config.yaml").read_text())
    assert {"threads", "mem_mb", "runtime"} <= set(config["resources"]["score"])


# -- Snakemake runs on the example data ---------------------------------------------------------------------------


def _split(path: Path) -> tuple[list[str], list[str]]:
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    header = [x for x in lines if x.startswith("#") and not x.startswith("##varxpress_command=")]
    return header, [x for x in lines if not x.startswith("#")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The example VCF bgzipped and indexed, and one unsharded `varxpress score` of it."""
    if not HAVE_TOOLS:
        pytest.skip("bcftools/tabix/bgzip absent: run scripts/install-system-deps")
    folder = tmp_path_factory.mktemp("reference")
    vcf = folder / "demo.vcf.gz"
    with open(vcf, "wb") as fh:
        subprocess.run(["bgzip", "-c", str(EXAMPLE / "demo.vcf")], stdout=fh, check=True)
    subprocess.run(["tabix", "-p", "vcf", str(vcf)], check=True)
    out = folder / "unsharded.vcf.gz"
    assert main(["score", str(vcf), *SCORE_ARGS, "--out", str(out), "--quiet"]) == 0
    return vcf, out


@pytest.mark.slow
@needs_snakemake
def test_workflow_output_equals_one_unsharded_run(reference, tmp_path):
    vcf, unsharded = reference
    out = tmp_path / "res" / "cohort.vcf.gz"
    rc = main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(out), "--shard-size", SHARD_SIZE, "--cores", "2",
               "--threads-per-shard", "1", "--quiet"])
    assert rc == 0
    work = tmp_path / "res" / "cohort.work"
    plan = json.loads((work / "plan" / "shards.json").read_text())
    assert len(plan["shards"]) == 4 and len(list((work / "shards").glob("*.vcf.gz"))) == 4
    header, records = _split(out)
    ref_header, ref_records = _split(unsharded)
    assert records == ref_records and len(records) == 19  # record for record, in input order
    assert header == ref_header
    assert out.read_bytes()[:4] == b"\x1f\x8b\x08\x04"  # BGZF
    assert Path(f"{out}.tbi").exists()
    tabix = subprocess.run(["tabix", str(out), "chr11:5227099-5227099"], capture_output=True, text=True, check=True)
    assert tabix.stdout.split("\t")[2] == "HBB_-28"
    report = json.loads((tmp_path / "res" / "cohort.report.json").read_text())
    assert report["records_in"] == report["records_out"] == report["input_records"] == report["output_records"] == 19
    assert report["n_shards"] == 4 and report["alleles"] == 21
    assert report["skipped"]["unknown_contig"] == 1 and report["skipped"]["no_gene_in_window"] == 1
    assert sum(s["records_in"] for s in report["shards"]) == 19


@pytest.mark.slow
@needs_snakemake
def test_workflow_takes_a_bundled_model_by_name(reference, tmp_path):
    """--model NAME is passed to every shard as a name: it is not an input file of the workflow's rules (Snakemake
    stopped with MissingInputException on the name)."""
    vcf, _ = reference
    unsharded = tmp_path / "one.vcf.gz"
    assert main(["score", str(vcf), *SCORE_ARGS, "--model", "human-mouse", "--out", str(unsharded), "--quiet"]) == 0
    out = tmp_path / "res" / "cohort.vcf.gz"
    assert main(["workflow", str(vcf), *SCORE_ARGS, "--model", "human-mouse", "--out", str(out), "--shard-size",
                 SHARD_SIZE, "--cores", "2", "--threads-per-shard", "1", "--quiet"]) == 0
    header, records = _split(out)
    assert (header, records) == _split(unsharded) and len(records) == 19
    assert any(line.startswith("##varxpress_model=<Name=human-mouse,") for line in header)


@needs_tools
def test_the_workflow_refuses_what_score_refuses_before_any_shard_runs(tmp_path, caplog):
    """Shards read regions of the input, which htslib takes without `score`'s checks of a whole file (a malformed
    INFO value was silently dropped in the gathered output): the workflow checks the input first."""
    lines = (EXAMPLE / "demo.vcf").read_text().splitlines(keepends=True)
    header = [x for x in lines if x.startswith("#")]
    records = [x for x in lines if not x.startswith("#")]
    at = len(records) // 2
    fields = records[at].split("\t")
    records[at] = "\t".join(fields[:7] + ["DP=12x"] + fields[8:]) + ("" if fields[8:] else "\n")
    header.insert(-1, '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n')
    (tmp_path / "bad.vcf").write_text("".join(header + records))
    subprocess.run(["bgzip", str(tmp_path / "bad.vcf")], check=True)
    subprocess.run(["tabix", "-p", "vcf", str(tmp_path / "bad.vcf.gz")], check=True)
    out = tmp_path / "res" / "cohort.vcf.gz"
    assert main(["workflow", str(tmp_path / "bad.vcf.gz"), *SCORE_ARGS, "--out", str(out), "--quiet"]) == 1
    line = len(header) + at + 1
    assert f"bad.vcf.gz:{line}: INFO/DP value '12x' is not an integer" in caplog.text
    assert f"(record {fields[0]}:{fields[1]})" in caplog.text
    assert not (tmp_path / "res").exists()  # nothing made: no folders, no work


def _score_jobs(log: str) -> tuple[dict[str, str], set[str]]:
    """Snakemake's log -> (jobid -> shard of each `score` job started, shards whose job finished)."""
    started, current, rule = {}, None, None
    for line in log.splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):", line)
        if m:
            rule, current = m.group(1), None
        m = re.match(r"\s+output: shards/(shard\d+)\.vcf\.gz", line)
        if m and rule == "score":
            current = m.group(1)
        m = re.match(r"\s+jobid: (\d+)", line)
        if m and current:
            started[m.group(1)] = current
    finished = {started[j] for j in re.findall(r"Finished jobid: (\d+) \(Rule: score\)", log) if j in started}
    return started, finished


@pytest.mark.slow
@needs_snakemake
def test_killed_run_resumes_redoing_only_the_missing_shards(reference, tmp_path):
    _, unsharded = reference
    plain = tmp_path / "cohort.vcf"  # not bgzipped: the workflow indexes a copy first
    shutil.copy(EXAMPLE / "demo.vcf", plain)
    out = tmp_path / "cohort.scored.vcf.gz"
    argv = ["workflow", str(plain), *SCORE_ARGS, "--out", str(out), "--shard-size", SHARD_SIZE, "--cores", "1",
            "--threads-per-shard", "1"]
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "varxpress", *argv], stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 240
            while not _score_jobs(log_path.read_text())[1]:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no shard finished in time"
                time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    work = tmp_path / "cohort.scored.work"
    with open(work / ".varxpress-workflow.lock") as lock:  # the killed processes are gone once their lock is free
        fcntl.flock(lock, fcntl.LOCK_EX)
    first_log = log_path.read_text()
    started, finished = _score_jobs(first_log)
    assert 1 <= len(finished) < 4 and not out.exists(), first_log[-3000:]
    assert any((work / ".snakemake" / "locks").iterdir())  # the killed Snakemake left its lock behind
    kept = {name: (work / "shards" / f"{name}.vcf.gz").stat().st_mtime_ns for name in finished}

    assert main([*argv, "--quiet"]) == 0  # the same command again: unlocks, reruns only what is missing
    assert {name: (work / "shards" / f"{name}.vcf.gz").stat().st_mtime_ns for name in finished} == kept, \
        f"finished before the kill: {sorted(finished)}; first run's log:\n{first_log[-3000:]}"
    assert len(list((work / "shards").glob("*.stats.json"))) == 4
    header, records = _split(out)
    ref_header, ref_records = _split(unsharded)
    assert records == ref_records
    assert Path(f"{out}.tbi").exists()
    report = json.loads((tmp_path / "cohort.scored.report.json").read_text())
    assert report["records_in"] == report["input_records"] == 19


def test_missing_tools_say_how_to_install_them_outside_a_checkout(monkeypatch):
    """A wheel installed outside the source tree has no scripts/ folder: the message names package managers too."""
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: object())  # Snakemake "installed"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(WorkflowError, match=r"bcftools and tabix not found on PATH: .*apt-get install bcftools tabix"):
        runner._check_tools()
    with pytest.raises(sharding.GatherError, match=r"conda install -c bioconda bcftools htslib"):
        sharding.gather(["a.vcf.gz"], "out.vcf.gz")
