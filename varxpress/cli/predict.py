"""``varxpress predict``: the options, and the calls into :func:`varxpress.learning.prediction.predict_fasta` or
:func:`~varxpress.learning.prediction.predict_dataset`; the predictions are written as a TSV."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from varxpress.cli.learning_options import add_align, add_batch_size, add_model
from varxpress.cli.types import existing_path, non_negative_int
from varxpress.errors import DatasetError
from varxpress.io.outputs import open_output
from varxpress.learning.prediction import predict_dataset, predict_fasta

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress predict``."""
    add_model(parser)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--fasta", type=existing_path, help="FASTA of sequences (transcription direction)")
    src.add_argument("--dataset", type=existing_path, help="prepared set: predict its genes")
    parser.add_argument("--labels", type=existing_path,
                        help="--fasta: label table (id, value) to add an observed column")
    parser.add_argument("--id-column", default=None,
                        help="--labels: id column (name or 1-based number; default: the first), as for prepare")
    parser.add_argument("--label-column", default=None,
                        help="--labels: value column (name or 1-based number; default: the second), as for prepare")
    parser.add_argument("--tss-index", type=non_negative_int, default=None,
                        help="--fasta: 0-based TSS position in each record (default: fit the record to the window)")
    add_align(parser, "--fasta without --tss-index: pad/crop records of another length")
    parser.add_argument("--split", choices=("all", "train", "valid", "test"), default="all",
                        help="--dataset: which genes")
    add_batch_size(parser)
    parser.add_argument("-o", "--out", required=True, type=Path, help="output TSV (id, prediction[, observed][, split])")


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress predict``: writes ``id  prediction  [observed]  [split]`` (TSV)."""
    if args.fasta:
        result = predict_fasta(args.model, args.fasta, args.labels, args.tss_index, args.align, args.batch_size,
                               args.id_column, args.label_column)
    else:
        if args.labels or args.id_column or args.label_column:
            raise DatasetError("--labels (and its --id-column, --label-column) go with --fasta; a prepared set "
                               "carries its own labels")
        result = predict_dataset(args.model, args.dataset, args.split, args.batch_size)
    frame = pd.DataFrame({"id": result.ids, "prediction": result.prediction})
    if result.observed is not None:
        frame["observed"] = result.observed
    if result.split is not None:  # which genes a model trained on this set has seen: only test/valid are held out
        frame["split"] = result.split
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
    with open_output(args.out) as fh:
        frame.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    log.info("wrote %d predictions to %s", len(frame), args.out)
    return 0
