"""``varxpress workflow``: the options of a scatter-gather run, overlaid on a config file, and the run."""

from __future__ import annotations

import argparse
import os

from varxpress.cli.options import add_prediction_options, add_resource_options, add_score_options
from varxpress.cli.types import existing_file, positive_int
from varxpress.workflow.runner import CONFIG_KEYS, WorkflowRun, run_workflow


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``varxpress workflow``; those of ``score`` are declared by :mod:`varxpress.cli.options`."""
    p.add_argument("vcf", nargs="?", type=existing_file,
                   help="input VCF/BCF (indexed VCF.gz/BCF is read in place; a plain VCF is bgzipped and indexed "
                        "first); may come from --configfile instead")
    p.add_argument("--configfile", type=existing_file,
                   help="workflow config (YAML, like the bundled workflow/config.yaml); options given here override it")
    inputs = p.add_argument_group("inputs and scoring (as in `varxpress score`)")
    inputs.add_argument("--out", "-o", help="gathered output, .vcf.gz (bgzip + tabix index; folders are made)")
    add_resource_options(inputs, fasta_required=False, ensemble=False, background=False, overlay=True)
    add_score_options(inputs, overlay=True)
    add_prediction_options(inputs, threads=False, batch_size=True, fast_dest="fast_path", overlay=True)
    shards = p.add_argument_group("sharding")
    shards.add_argument("--shard-size", type=positive_int,
                        help="bases of promoter-window span per shard (default 2000000); window-less stretches "
                             "and contigs ride along with a neighbour")
    shards.add_argument("--regions", type=existing_file,
                        help="explicit shards instead: BED (4th column = shard name) or CHROM:START-END per line; "
                             "only records in these regions are written")
    run = p.add_argument_group("running")
    run.add_argument("--report", help="final report JSON (default: OUT with .report.json)")
    run.add_argument("--workdir", help="folder for shards, logs and Snakemake's bookkeeping "
                                       "(default: OUT without .vcf.gz, plus .work)")
    run.add_argument("--cores", "-c", type=positive_int, default=os.cpu_count() or 1,
                     help="cores for local execution (jobs run side by side within them)")
    run.add_argument("--threads-per-shard", type=positive_int, help="threads of each `varxpress score` job (default 2)")
    run.add_argument("--mem-mb", type=positive_int, help="memory requested per `varxpress score` job, MB (default 4000)")
    run.add_argument("--profile", help="Snakemake profile folder, or the name of a bundled profile (slurm)")
    run.add_argument("--executor", help="Snakemake executor plugin, e.g. slurm (default: local)")
    run.add_argument("--jobs", "-j", type=positive_int, help="jobs submitted at once (cluster executors)")
    run.add_argument("--dry-run", "-n", action="store_true", help="show what would run")
    run.add_argument("--snakemake-arg", action="append", default=[], metavar="ARG",
                     help="extra Snakemake argument, repeatable; write it with = (--snakemake-arg=--keep-going)")
    run.add_argument("--snakefile", help="Snakefile to run (default: the bundled workflow/Snakefile)")


def workflow_run(args: argparse.Namespace) -> WorkflowRun:
    """The :class:`WorkflowRun` of the parsed options."""
    return WorkflowRun(overlay={key: getattr(args, key) for key in CONFIG_KEYS}, configfile=args.configfile,
                       threads_per_shard=args.threads_per_shard, mem_mb=args.mem_mb, workdir=args.workdir,
                       snakefile=args.snakefile, profile=args.profile, executor=args.executor, jobs=args.jobs,
                       cores=args.cores, dry_run=args.dry_run, quiet=args.quiet,
                       snakemake_args=tuple(args.snakemake_arg))


def run(args: argparse.Namespace) -> int:
    """``varxpress workflow``: run Snakemake; returns its exit status."""
    return run_workflow(workflow_run(args))
