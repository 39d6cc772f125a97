"""``varxpress mutagenesis``: every substitution of a stretch of a gene's window, as a TSV, a heat map and a logo."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from varxpress.cli.options import (add_prediction_options, add_resource_options, configure_threads, refuse_combination,
                                   resource_spec)
from varxpress.cli.types import existing_file, output_path, region
from varxpress.interpret.figures import FIGURE_FORMATS, plot_heatmap, plot_logo
from varxpress.interpret.mutagenesis import DEFAULT_RANGE, saturation_mutagenesis, scan_positions, vcf_marks, write_tsv
from varxpress.scoring.resources import load_resources
from varxpress.scoring.scores import units_text

log = logging.getLogger("varxpress")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``varxpress mutagenesis``."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--gene", "-g", help="gene id or gene name of the TSS set")
    what.add_argument("--region", "-r", type=region,
                      help="CHROM:START-END (1-based, inclusive): every gene whose window holds it is scanned there")
    add_resource_options(p, background=False)
    add_prediction_options(p)
    p.add_argument("--start", type=int,
                   help="first offset from the TSS (transcription direction, negative = upstream) with --gene "
                        f"(default: {DEFAULT_RANGE[0]}, trimmed to the part of the window that is not N)")
    p.add_argument("--end", type=int, help="offset one past the last scanned position (half-open; default: "
                                          f"{DEFAULT_RANGE[1]}, trimmed like --start)")
    p.add_argument("--vcf", type=existing_file, help="mark this VCF's variants on the plots")
    p.add_argument("--out-prefix", "-o", required=True, type=prefix_path,
                   help="writes PREFIX.tsv, PREFIX.GENE.heatmap.{png,svg,pdf}, PREFIX.GENE.logo.{png,svg,pdf} "
                        "(PNG at 300 dpi)")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="write the TSV only")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _plot_name(tss, results) -> str:
    """A gene's part of its plots' names: its name, with its id where another scanned TSS has the same name (two
    TSSs of a gene, or genes named alike), so no plot replaces another."""
    shared = sum(scan.tss.gene_name == tss.gene_name for scan in results) > 1
    return _safe(f"{tss.gene_name}_{tss.gene_id}_{tss.pos0 + 1}" if shared else tss.gene_name)


def prefix_path(text: str) -> str:
    """argparse type of ``--out-prefix``: a path whose folder exists and that names files in it (``mut`` or
    ``out/mut``, not ``out/`` or an existing folder, which would give a hidden ``.tsv``)."""
    text = output_path(text)
    if text.endswith(("/", os.sep)) or Path(text).is_dir() or not Path(text).name.strip("."):
        raise argparse.ArgumentTypeError(f"--out-prefix {text} names a folder; give a prefix of file names in it, "
                                         f"e.g. {Path(text) / 'mutagenesis'}")
    return text


def run(args: argparse.Namespace) -> int:
    """``varxpress mutagenesis``: scan, write the TSV and the plots."""
    configure_threads(args.threads)
    res = load_resources(resource_spec(args), background=False)
    refuse_combination(res, "mutagenesis")
    genome, model = res.genome, res.model
    jobs = scan_positions(res.tss, res.tss_index(), genome, model.window_spec, gene=args.gene, region=args.region,
                          start=args.start, end=args.end)
    results = []
    with res.predictor(fast=args.fast, threads=args.threads) as predictor:
        for tss, positions in jobs:
            scan = saturation_mutagenesis(predictor, tss, positions)
            finite = np.isfinite(scan.deltas)
            log.info("%s (%s): %d positions, %d substitutions, max |delta| %.4g", tss.gene_name, tss.gene_id,
                     len(scan.offsets), int(finite.sum()),
                     float(np.nanmax(np.abs(scan.deltas))) if finite.any() else 0.0)
            results.append(scan)
    md = model.metadata
    provenance = [f"varxpress_command={args.command_line}",
                  f"model={Path(res.model_path).name} sha256={res.model_sha256} output_scale={md.output_scale}",
                  f"reference={Path(args.fasta).name} fai_md5={genome.fingerprint()}",
                  f"tss={Path(res.tss_path).name}",
                  "ref/alt: genome + strand; offset: from the TSS in transcription direction; delta = alt_pred - ref_pred"]
    write_tsv(results, f"{args.out_prefix}.tsv", provenance)
    if args.plots:
        units = units_text(md.output_scale, short=True)
        for scan in results:
            marks = vcf_marks(args.vcf, genome, scan.window.chrom, int(scan.positions.min()),
                              int(scan.positions.max()) + 1)
            stem = f"{args.out_prefix}.{_plot_name(scan.tss, results)}"
            plot_heatmap(scan, [f"{stem}.heatmap.{ext}" for ext in FIGURE_FORMATS], marks, units=units)
            plot_logo(scan, [f"{stem}.logo.{ext}" for ext in FIGURE_FORMATS], marks,
                      units=units.replace("change of ", "", 1))
    log.info("wrote %s.tsv%s", args.out_prefix, " and plots" if args.plots else "")
    return 0
