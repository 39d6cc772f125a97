"""``varxpress explain``: self-contained HTML pages of variants' predicted effects, with an index for several."""

from __future__ import annotations

import argparse
import logging

from varxpress.cli.options import (add_prediction_options, add_resource_options, configure_threads, refuse_combination,
                                   resource_spec)
from varxpress.cli.types import existing_file, non_negative_int, output_path
from varxpress.errors import VcfError
from varxpress.interpret.pages import write_pages
from varxpress.interpret.report import wanted_variants
from varxpress.scoring.resources import load_resources

log = logging.getLogger("varxpress")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``varxpress explain``."""
    p.add_argument("variants", nargs="*", metavar="VARIANT",
                   help="CHROM:POS:REF:ALT (1-based POS), e.g. chr5:1295113:G:A")
    p.add_argument("--vcf", type=existing_file, help="also explain every ALT allele of this (small) VCF")
    add_resource_options(p)
    add_prediction_options(p)
    p.add_argument("--flank", type=non_negative_int, default=50,
                   help="local mutagenesis map: +- this many bases (0: none)")
    p.add_argument("--out", "-o", required=True, type=output_path,
                   help="a name ending in .html (or -, a FIFO): one page, for one variant; any other name: a "
                        "folder (created, or added to) with one page per variant and index.html")


def run(args: argparse.Namespace) -> int:
    """``varxpress explain``: one HTML page per variant (and an index for several)."""
    wanted = wanted_variants(args.variants, args.vcf)
    if not wanted:
        raise VcfError("give at least one VARIANT (CHROM:POS:REF:ALT) or --vcf")
    configure_threads(args.threads)
    res = load_resources(resource_spec(args))
    refuse_combination(res, "explain")
    with res.predictor(fast=args.fast, threads=args.threads) as predictor:
        pages = write_pages(res, predictor, wanted, args.out, args.flank, args.command_line)
    log.info("wrote %d page(s) for %d variant(s) to %s", pages, len(wanted), args.out)
    return 0
