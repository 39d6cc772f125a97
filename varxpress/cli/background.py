"""``varxpress background``: sample random promoter SNVs, score them, save the |delta| distribution."""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
from pathlib import Path

from varxpress import __version__
from varxpress.cli.options import add_prediction_options, add_resource_options, configure_threads, resource_spec
from varxpress.cli.types import fraction, non_negative_int, output_path
from varxpress.errors import UsageError
from varxpress.interpret.background import DEFAULT_N_SNVS, build_background, default_path
from varxpress.models.metadata import sha256_file
from varxpress.models.registry import data_path, lookup
from varxpress.scoring.resources import load_resources

log = logging.getLogger("varxpress")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``varxpress background``."""
    add_resource_options(p, background=False, combination=True)
    add_prediction_options(p)
    p.add_argument("--n-snvs", "-n", type=non_negative_int, default=DEFAULT_N_SNVS,
                   help="SNVs to sample (uniformly over gene x position x alternative base); 0 = every possible SNV")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sample")
    p.add_argument("--max-n-fraction", type=fraction, default=0.05,
                   help="leave out genes whose reference window is more than this fraction N (1 keeps all)")
    p.add_argument("--out", "-o", type=output_path,
                   help="background file (default: <model file>.background.h5 beside a model file or an ensemble's "
                        "or combination's manifest, which `score` finds by itself; required for a bundled model, "
                        "whose background ships with varxpress)")


def run(args: argparse.Namespace) -> int:
    """``varxpress background``: sample, score, save."""
    bundled = args.ensemble is None and args.combination is None and lookup(args.model)
    if bundled and not args.out:  # checked before any work: the file beside a bundled model ships with varxpress
        raise UsageError(f"the background beside the bundled model {bundled.name!r} ships with varxpress and is not "
                         f"replaced by default: give --out FILE, and pass it to `score`/`explain` as --background FILE")
    configure_threads(args.threads)
    res = load_resources(resource_spec(args), background=False)
    out = args.out or default_path(res.model_path)
    if not args.out and Path(out).resolve().parent == Path(data_path("")).resolve():  # a bundled model named by path
        raise UsageError(f"the background beside {res.model_path} ships with varxpress and is not replaced by "
                         f"default: give --out FILE, and pass it to `score`/`explain` as --background FILE")
    with res.predictor(fast=args.fast, threads=args.threads) as predictor:
        bg, _ = build_background(predictor, res.tss, n_snvs=args.n_snvs, seed=args.seed, progress=not args.quiet,
                                 max_n_fraction=args.max_n_fraction)
    bg.provenance.update({
        "model_sha256": res.model_sha256, "model_file": Path(res.model_path).name,
        "tss_file": Path(res.tss_path).name, "tss_sha256": sha256_file(res.tss_path), "tss_offset": args.tss_offset,
        "features_file": Path(args.features).name if args.features else None,
        "varxpress_command": args.command_line, "varxpress_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    })
    bg.save(out)
    p = bg.provenance
    log.info("background: %d SNVs (%s) over %d genes; |delta| median %.4g, 99th percentile %.4g -> %s", len(bg),
             "all" if p["exhaustive"] else f"sample of {p['snv_space']}", p["n_genes"],
             p["abs_delta_quantiles"]["0.5"], p["abs_delta_quantiles"]["0.99"], out)
    return 0
