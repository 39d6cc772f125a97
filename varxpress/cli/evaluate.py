"""``varxpress evaluate``: the options, and the call into :func:`varxpress.learning.evaluation.evaluate`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from varxpress.cli.learning_options import add_batch_size, add_dataset, add_kmax, add_model
from varxpress.cli.types import at_least, non_negative_int, output_path
from varxpress.errors import UsageError
from varxpress.io.distinct import check_distinct
from varxpress.learning.baselines import MIN_TEST_GENES
from varxpress.learning.bootstrap import N_BOOT

MIN_BOOT = 50  #: fewer resamples make the ends of a 95% interval single resamples
from varxpress.learning.evaluation import evaluate, evaluation_metrics, write_evaluated_model
from varxpress.learning.held_out import HELD_OUT_SPLITS
from varxpress.learning.plots import with_interval
from varxpress.learning.prepared import PreparedSet
from varxpress.models.network import ExpressionModel

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress evaluate``."""
    add_model(parser)
    add_dataset(parser)
    parser.add_argument("--split", choices=("test", "valid", "train", "all"), default="test",
                        help="split to evaluate on; baselines are fitted on train. A verdict is given on test or "
                             "valid only, after checking that the model did not train on those genes (the same set, "
                             "or contigs it held out; refused when it did); train and all get metrics only")
    add_kmax(parser, "longest k-mer of the ridge baseline")
    add_batch_size(parser)
    parser.add_argument("--require-beats-baselines", action="store_true",
                        help="exit with status 3 unless the model beats both baselines: positive Pearson r and an "
                             "r2 gain over each baseline whose paired bootstrap 95%% interval is above 0, on at "
                             f"least {MIN_TEST_GENES} genes (fewer: 'too few test genes to tell', also status 3)")
    parser.add_argument("--bootstrap", type=at_least(MIN_BOOT), default=N_BOOT, metavar="B",
                        help=f"bootstrap resamples of the genes for the 95%% intervals and the verdict, at least "
                             f"{MIN_BOOT} (fewer make an interval's ends single resamples) (default %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the bootstrap (default %(default)s)")
    parser.add_argument("-o", "--out-dir", required=True, type=Path,
                        help="folder for evaluation.tsv/.json/.png and predictions.tsv")
    parser.add_argument("--write-model", type=output_path, default=None, metavar="OUT.vxm.h5",
                        help="also write a copy of the model whose metadata records this evaluation as its metrics "
                             "(verdict, intervals, the set's fingerprint): for a network merged from seeds or "
                             "imported, which has no test metrics of its own; weights unchanged, never the model's "
                             "own file (default: none)")


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress evaluate``."""
    if args.write_model:  # refused before the evaluation's minutes, not after
        check_distinct({"--model": [str(args.model)], "--dataset": [str(args.dataset)]},
                       {"--write-model": [args.write_model]})
        if args.split not in HELD_OUT_SPLITS:
            raise UsageError(f"--write-model records a held-out verdict; --split {args.split} has none (it holds "
                             f"training genes): use --split test")
    model = ExpressionModel.load(args.model)
    with PreparedSet(args.dataset) as pset:
        result = evaluate(model, pset, args.split, args.out_dir, args.kmax, args.batch_size, args.bootstrap,
                          args.seed)
        metrics = evaluation_metrics(result, pset, args.split) if args.write_model else None
    for row in result.table.to_dict("records"):
        log.info("%-10s r2 %s  pearson %s  spearman %s  mse %.4g  (n=%d; 95%% bootstrap intervals)",
                 row["predictor"], *(with_interval(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"])
                                     for m in ("r2", "pearson", "spearman")), row["mse"], row["n"])
    guard = result.guard
    log.info("verdict: %s (held-out genes: %s, %s)", guard["verdict"], guard["held_out"]["status"],
             guard["held_out"]["reason"])
    if metrics is not None:
        write_evaluated_model(model, metrics, args.write_model)
    if args.require_beats_baselines and not guard["beats_baselines"]:
        log.error("--require-beats-baselines: %s", "; ".join(guard["reasons"]))
        return 3
    return 0
