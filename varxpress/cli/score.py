"""``varxpress score``: the options, and the one call into :func:`varxpress.scoring.pipeline.score_vcf`."""

from __future__ import annotations

import argparse
import json
import logging

from varxpress.cli.options import (add_prediction_options, add_resource_options, add_score_options, configure_threads,
                                   resource_spec)
from varxpress.cli.types import existing_file, output_path, positive_int, region, regions_file
from varxpress.errors import ReaderGone
from varxpress.io.outputs import open_output
from varxpress.scoring.pipeline import ScoreConfig, ScoreStats, score_vcf

log = logging.getLogger("varxpress")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``varxpress score``."""
    p.add_argument("vcf", type=existing_file, help="input VCF, VCF.gz or BCF (- for standard input)")
    p.add_argument("--out", "-o", default="-", type=output_path,
                   help="annotated output: .vcf, .vcf.gz (bgzip + tabix index) or .bcf; - for stdout")
    p.add_argument("--tsv", type=output_path, help="also write one row per variant, allele and gene (.tsv or .tsv.gz)")
    add_resource_options(p, combination=True)
    p.add_argument("--region", "-r", action="append", type=region, default=[],
                   help="score only records whose POS lies in CHROM:START-END (1-based; repeatable; needs an index)")
    p.add_argument("--regions", type=regions_file, default=[],
                   help="file of regions (BED, or CHROM:START-END per line)")
    add_score_options(p)
    p.add_argument("--mark-outside-windows", action="store_true",
                   help="also give records that no model window holds their VXP_SKIP reasons (no_gene_in_window, "
                        "or what else keeps them from being scored), checking their REF as the others'; by default "
                        "they are written through unchanged (faster on whole genomes) and only counted")
    add_prediction_options(p, batch_size=True)
    p.add_argument("--compression-level", "-l", type=int, choices=range(10), metavar="0-9",
                   help="BGZF compression level of a .vcf.gz or .bcf output, as bcftools -l: 0 none (still BGZF, "
                        "indexable) to 9 smallest; default htslib's (6). Level 1 writes about 3x faster and about "
                        "a third larger, e.g. for shards that are recompressed when gathered")
    p.add_argument("--chunk-size", type=positive_int, default=ScoreConfig.chunk_size,
                   help="records held in memory at once")
    p.add_argument("--stats", type=output_path, help="write the run's counts as JSON")


def run(args: argparse.Namespace) -> int:
    """``varxpress score``: one :class:`~varxpress.scoring.pipeline.ScoreConfig` from the options, scored."""
    regions = list(args.region) + list(args.regions)
    cfg = ScoreConfig(
        vcf=args.vcf, resources=resource_spec(args), out=args.out, tsv=args.tsv, regions=regions or None,
        on_ref_mismatch=args.on_ref_mismatch, max_allele_len=args.max_allele_len, threads=args.threads,
        batch_size=args.batch_size, chunk_size=args.chunk_size, fast=args.fast,
        mark_outside_windows=args.mark_outside_windows, compression_level=args.compression_level, quiet=args.quiet,
        command_line=args.command_line,
    )
    configure_threads(args.threads)
    try:
        stats = score_vcf(cfg)
    except ReaderGone as exc:  # a pipe's reader went away: the other outputs are complete, the stats among them
        if args.stats and exc.stats is not None:
            _write_stats(args.stats, exc.stats)
        raise
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(stats.skipped.items())) or "none"
    log.info("records in: %d, out: %d; alleles: %d, scored: %d; scores: %d (%d by the fast path); "
             "not scored: %s", stats.records_in, stats.records_out, stats.alleles, stats.alleles_scored,
             stats.scores, stats.scores_fast, skipped)
    if args.stats:
        _write_stats(args.stats, stats)
    return 0


def _write_stats(path: str, stats: ScoreStats) -> None:
    with open_output(path) as fh:
        json.dump(stats.as_dict(), fh, indent=2, sort_keys=True)
        fh.write("\n")
