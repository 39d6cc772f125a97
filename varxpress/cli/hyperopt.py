"""``varxpress hyperopt``: the options, and the call into :func:`varxpress.learning.tuning.search`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from varxpress.cli.learning_options import add_dataset, add_kmax, add_seed, add_standardize_labels, \
    add_training_memory
from varxpress.cli.types import existing_path, non_negative_int, positive_float, positive_int
from varxpress.errors import ModelError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress hyperopt``."""
    add_dataset(parser)
    parser.add_argument("--out-dir", "-o", required=True, type=Path,
                        help="folder for trials.json/trials.tsv (resumed when present), best_hparams.json and "
                             "the final model; trials.json is plain JSON, never code: a legacy trials.pkl "
                             "(pickle) there is refused, not loaded")
    parser.add_argument("--space", type=existing_path, default=None,
                        help="search space file (YAML/JSON; default: the Xpresso space, see docs/training.md)")
    parser.add_argument("--algo", choices=("tpe", "anneal", "random"), default="tpe", help="search algorithm")
    parser.add_argument("--max-evals", type=positive_int, default=50, help="total trials, earlier runs' included")
    parser.add_argument("--timeout", type=positive_float, default=None, help="seconds for the search in this run")
    parser.add_argument("--trial-epochs", type=positive_int, default=5, help="epochs per trial (early stopping inside)")
    add_seed(parser, "seed of the proposals")
    parser.add_argument("--spark", metavar="MASTER", default=None,
                        help="run trials on Spark via hyperopt's SparkTrials, e.g. local[2] or spark://host:7077")
    parser.add_argument("--parallelism", type=positive_int, default=2, help="concurrent Spark trials")
    parser.add_argument("--no-final", dest="final", action="store_false",
                        help="do not retrain the best trial at the end")
    parser.add_argument("--final-epochs", type=positive_int, default=None,
                        help="epochs of the final retraining (default: the space's epochs)")
    parser.add_argument("--model-out", type=Path, default=None, help="final model (default OUT_DIR/best.vxm.h5)")
    add_standardize_labels(parser, "train on the labels as they are")
    add_training_memory(parser, "stream splits larger than this")
    add_kmax(parser, "longest k-mer of the final model's ridge baseline")
    parser.add_argument("--ensemble-top-k", type=non_negative_int, default=0, metavar="K",
                        help="also retrain the K best trials (validation loss; those reading the best trial's "
                             "window) with the final epochs and export them as an ensemble for `score --ensemble`")
    parser.add_argument("--ensemble-out", type=Path, default=None, metavar="DIR",
                        help="folder of the --ensemble-top-k ensemble (default OUT_DIR/ensemble)")


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress hyperopt``."""
    if args.ensemble_top_k < 0 or (args.ensemble_out is not None and not args.ensemble_top_k):
        raise ModelError("--ensemble-out is the folder of a top-k ensemble: add --ensemble-top-k K (K >= 1, "
                         "e.g. 5)")
    from varxpress.learning.tuning import read_space, search  # hyperopt takes seconds to import: not for --help

    space = read_space(args.space) if args.space else None
    result = search(args.dataset, args.out_dir, space, algo=args.algo, max_evals=args.max_evals, timeout=args.timeout,
                    trial_epochs=args.trial_epochs, seed=args.seed, spark=args.spark, parallelism=args.parallelism,
                    standardize_labels=args.standardize_labels, final=args.final, final_epochs=args.final_epochs,
                    model_out=args.model_out, max_memory_gb=args.max_memory_gb, kmax=args.kmax,
                    ensemble_top_k=args.ensemble_top_k, ensemble_out=args.ensemble_out)
    if result.best is None:
        log.error("no trial succeeded (see %s)", Path(args.out_dir) / "trials.tsv")
        return 1
    return 0
