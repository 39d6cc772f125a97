"""``varxpress import-xpresso``: the options, and the call into :func:`varxpress.models.xpresso.import_xpresso`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from varxpress.cli.types import non_negative_int, positive_float
from varxpress.errors import ModelError
from varxpress.models.xpresso import import_xpresso

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress import-xpresso FILE.h5 --out OUT [--name] [--genome-build] ...``."""
    parser.add_argument("h5", type=Path, metavar="FILE.h5",
                        help="published Xpresso Keras 2 model, e.g. human_trainepoch.11-0.426.h5")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="OUT.vxm.h5",
                        help="varxpress model file to write")
    parser.add_argument("--name", default=None, help="model name (default: xpresso_<file name>)")
    parser.add_argument("--genome-build", default="hg38", help="genome build of the windows (default: %(default)s)")
    parser.add_argument("--upstream", type=non_negative_int, default=7000, help="bases upstream of the TSS (default: %(default)s)")
    parser.add_argument("--downstream", type=non_negative_int, default=3500,
                        help="bases from the TSS downstream, TSS included (default: %(default)s)")
    parser.add_argument("--label-mean", type=float, default=None,
                        help="output -> log10 map: log10 = out*sd + mean (default: known value for the human model)")
    parser.add_argument("--label-sd", type=positive_float, default=None, help="see --label-mean")


def run(args: argparse.Namespace) -> int:
    """Run ``import-xpresso``; returns 0. Errors propagate as ModelError/OutputError for :func:`varxpress.cli.main`
    to report."""
    if args.h5.resolve() == args.out.resolve():
        raise ModelError(f"--out {args.out} is the input file; choose another output path")
    model = import_xpresso(args.h5, args.out, name=args.name, genome_build=args.genome_build,
                           upstream=args.upstream, downstream=args.downstream,
                           label_mean=args.label_mean, label_sd=args.label_sd)
    log.info("wrote %s (%s, window %d+%d, %d half-life features, sha256 %s)", args.out, model.metadata.name,
             model.metadata.upstream, model.metadata.downstream, model.n_features, model.sha256)
    return 0
