"""``varxpress score``: the options, and the one call into :func:`varxpress.scoring.pipeline.score_vcf`."""

from __future__ import annotations

import argparse
import json
import logging
import os

from varxpress.cli.types import existing_file, output_path, positive_int, region, regions_file
from varxpress.io.outputs import open_output
from varxpress.cli.types import model_argument
from varxpress.models.registry import DEFAULT, describe
from varxpress.scoring.pipeline import ScoreConfig, score_vcf

log = logging.getLogger("varxpress")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``varxpress score``."""
    p.add_argument("vcf", type=existing_file, help="input VCF, VCF.gz or BCF (- for standard input)")
    p.add_argument("--fasta", "-f", required=True, type=existing_file,
                   help="reference genome FASTA, plain or bgzip (.fai/.gzi made if missing and the folder is writable)")
    p.add_argument("--out", "-o", default="-", type=output_path,
                   help="annotated output: .vcf, .vcf.gz (bgzip + tabix index) or .bcf; - for stdout")
    p.add_argument("--tsv", type=output_path, help="also write one row per variant, allele and gene (.tsv or .tsv.gz)")
    p.add_argument("--tss", type=existing_file,
                   help="TSS annotation: BED6(+name), GTF, GFF3 or TSV (default: the bundled model's own TSS set; "
                        "for a model file, the default model's)")
    p.add_argument("--tss-offset", type=int,
                   help="TSS = BED start + OFFSET on both strands (10000 for the Xpresso TSS +- 10 kb BED); "
                        "default: BED convention, start on + and end-1 on - (a bundled TSS set: its own offset)")
    p.add_argument("--tss-format", default="auto", choices=["auto", "bed", "gtf", "gff3", "tsv"],
                   help="format of --tss; auto: from the file name and contents (BED, GTF, GFF3 or TSV)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", "-m", type=model_argument,
                       help=f"a bundled model by name, or a model file (.vxm.h5); default: {DEFAULT}. "
                            f"Bundled: {describe()}")
    which.add_argument("--ensemble", type=existing_file,
                       help="an ensemble (folder of .vxm.h5 or its ensemble.json): mean delta, its SD across "
                            "members and their sign agreement")
    p.add_argument("--background", type=existing_file,
                   help="background of |delta| for percentiles (default: <model>.background.h5 beside the model, "
                        "if present; percentiles are left out (.) without one)")
    p.add_argument("--contig-map", type=existing_file,
                   help="two-column TSV mapping VCF/annotation contig names to FASTA names")
    p.add_argument("--features", type=existing_file,
                   help="per-gene half-life features (TSV with header: gene id, then one column per model feature); "
                        "standardised with the training statistics when the model records them (models made by "
                        "`train`), else taken as on the model's input scale; genes absent use the model's defaults")
    p.add_argument("--region", "-r", action="append", type=region, default=[],
                   help="score only records whose POS lies in CHROM:START-END (1-based; repeatable; needs an index)")
    p.add_argument("--regions", type=regions_file, default=[],
                   help="file of regions (BED, or CHROM:START-END per line)")
    p.add_argument("--on-ref-mismatch", choices=["error", "warn", "skip"], default="warn",
                   help="REF disagrees with the genome: stop (error), leave unscored with a warning (warn, "
                        "default) or leave unscored silently (skip); counted either way")
    p.add_argument("--max-allele-len", type=positive_int, default=1000, help="longer REF/ALT alleles are not scored")
    p.add_argument("--threads", "-t", type=positive_int, default=1, help="CPU threads for prediction")
    p.add_argument("--batch-size", type=positive_int, default=128, help="windows per model call")
    p.add_argument("--chunk-size", type=positive_int, default=2000, help="records held in memory at once")
    p.add_argument("--no-fast-path", dest="fast", action="store_false",
                   help="recompute the whole network for every allele (slow; for checking the fast path)")
    p.add_argument("--stats", type=output_path, help="write the run's counts as JSON")


def run(args: argparse.Namespace) -> int:
    """``varxpress score``: one :class:`~varxpress.scoring.pipeline.ScoreConfig` from the options, scored."""
    regions = list(args.region) + list(args.regions)
    cfg = ScoreConfig(
        vcf=args.vcf, fasta=args.fasta, out=args.out, tsv=args.tsv, model=args.model, ensemble=args.ensemble,
        background=args.background, tss=args.tss,
        tss_offset=args.tss_offset, tss_format=args.tss_format, contig_map=args.contig_map, features=args.features,
        regions=regions or None, on_ref_mismatch=args.on_ref_mismatch, max_allele_len=args.max_allele_len,
        threads=args.threads, batch_size=args.batch_size, chunk_size=args.chunk_size, fast=args.fast,
        quiet=args.quiet, command_line=args.command_line,
    )
    configure_threads(args.threads)
    stats = score_vcf(cfg)
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(stats.skipped.items())) or "none"
    log.info("records in: %d, out: %d; alleles: %d, scored: %d; scores: %d (%d by the fast path); "
             "not scored: %s", stats.records_in, stats.records_out, stats.alleles, stats.alleles_scored,
             stats.scores, stats.scores_fast, skipped)
    if args.stats:
        with open_output(args.stats) as fh:
            json.dump(stats.as_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
    return 0


def configure_threads(n: int) -> None:
    """Limit BLAS and TensorFlow thread pools to ``n`` (must run before TensorFlow starts)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(n, 2))
