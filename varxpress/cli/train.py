"""``varxpress train``: the options, and the calls into :func:`varxpress.learning.training.train` (and
:func:`varxpress.learning.crossval.train_cv` for ``--cv-folds``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from varxpress.cli.learning_options import add_dataset, add_kmax, add_seed, add_standardize_labels, \
    add_training_memory
from varxpress.cli.types import existing_file, existing_path, fold_count, positive_int
from varxpress.errors import ModelError
from varxpress.learning.baselines import MIN_TEST_GENES
from varxpress.learning.collapse import SPREAD_FRACTION
from varxpress.learning.crossval import train_cv
from varxpress.learning.training import ON_COLLAPSE, read_hparams, train
from varxpress.models.network import model_stem

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress train``."""
    add_dataset(parser)
    parser.add_argument("--hparams", "-p", required=True, type=existing_path,
                        help="hyperparameter file (JSON or YAML; see docs/training.md)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="model file to write (.vxm.h5)")
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="folder for metrics.json, history.tsv, predictions.tsv and the PNG plots "
                             "(default: OUT without .vxm.h5 + .report)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the hyperparameters' epochs")
    add_seed(parser, "override the hyperparameters' seed", default=None)
    parser.add_argument("--name", default=None, help="model name in the metadata (default: file stem)")
    add_standardize_labels(parser, "train on the labels as they are (default: z-scored with training-split mean/sd)")
    add_kmax(parser, "longest k-mer of the ridge baseline")
    add_training_memory(parser, "splits larger than this (uint8 windows) are streamed from the HDF5 file")
    parser.add_argument("--on-collapse", choices=ON_COLLAPSE, default="warn",
                        help="when, at the end of an epoch, the validation predictions' sd falls below "
                             f"{100 * SPREAD_FRACTION:g}%% of the labels' sd or every unit of the final ReLU layer "
                             "is dead: warn loudly and go on (warn, default) or stop training (stop); recorded in "
                             "metrics.json and the model's metadata either way")
    parser.add_argument("--init-from", type=existing_file, default=None, metavar="MODEL",
                        help="start from this model's weights (a .vxm.h5 of the same architecture, e.g. trained on "
                             "a related set) instead of random ones: fine-tuning; recorded in the new model's "
                             "metadata (source.started_from). Default: random weights")
    parser.add_argument("--nondeterministic", dest="deterministic", action="store_false",
                        help="allow non-deterministic (faster on GPU) TensorFlow ops")
    parser.add_argument("--require-beats-baselines", action="store_true",
                        help="exit with status 3 when the model (and, with --cv-folds, any ensemble member) does "
                             "not beat the mean and k-mer ridge baselines on the test split: it needs a positive "
                             "Pearson r, non-constant predictions and an r2 gain over each baseline whose paired "
                             f"bootstrap 95%% interval is above 0, on at least {MIN_TEST_GENES} test genes (fewer: "
                             "'too few test genes to tell', also status 3)")
    ens = parser.add_argument_group("cross-validation ensemble")
    ens.add_argument("--cv-folds", type=fold_count, default=None, metavar="K",
                     help="also train K members, one per fold of the train + valid genes (fold i validates member "
                          "i, seed + i - 1), tested on the untouched test split, and export them as an ensemble "
                          "for `score --ensemble`; -o is still the model trained on the recorded split")
    ens.add_argument("--ensemble-out", type=Path, default=None, metavar="DIR",
                     help="folder of the --cv-folds ensemble (default: OUT without .vxm.h5 + .ensemble)")


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress train``; 0 on success, 3 when ``--require-beats-baselines`` fails."""
    if args.ensemble_out is not None and args.cv_folds is None:
        raise ModelError("--ensemble-out is the folder of a --cv-folds ensemble: add --cv-folds K (e.g. 5)")
    hparams = read_hparams(args.hparams)
    source = getattr(args, "command_line", None) or "varxpress train"
    settings = dict(standardize_labels=args.standardize_labels, epochs=args.epochs, seed=args.seed, name=args.name,
                    kmax=args.kmax, max_memory_gb=args.max_memory_gb, deterministic=args.deterministic, verbose=0,
                    source=source, on_collapse=args.on_collapse)
    result = train(args.dataset, hparams, args.out, args.report_dir, init_from=args.init_from, **settings)
    failed = []
    if not result.metrics.get("beats_baselines", False):
        failed.append(f"the model: {result.metrics.get('verdict')} (see {result.report_dir}/metrics.json)")
    if args.cv_folds:
        folder = args.ensemble_out or args.out.with_name(model_stem(args.out) + ".ensemble")
        ens = train_cv(args.dataset, hparams, folder, args.cv_folds, init_from=args.init_from, **settings)
        failed += [f"ensemble member {m['file']}" for m in ens.metrics["members"] if not m["beats_baselines"]]
    if failed and args.require_beats_baselines:
        log.error("not beating the baselines: %s; failing as --require-beats-baselines asks", "; ".join(failed))
        return 3
    return 0
