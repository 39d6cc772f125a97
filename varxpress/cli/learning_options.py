"""Options that several learning subcommands (prepare, train, hyperopt, evaluate, predict) share, declared once.

Each helper adds one option with its name, type and default; where the subcommands word its help differently, the
caller passes the help ``text``.
"""

from __future__ import annotations

import argparse

from varxpress.cli.types import (existing_path, kmer_length, model_path_argument, non_negative_int, positive_float,
                                 positive_int, single_models)


def add_dataset(parser: argparse.ArgumentParser) -> None:
    """``--dataset/-d``: the prepared set a subcommand reads (required)."""
    parser.add_argument("--dataset", "-d", required=True, type=existing_path,
                        help="prepared set (from `varxpress prepare`)")


def add_model(parser: argparse.ArgumentParser) -> None:
    """``--model/-m``: a model file or a bundled model's name (required)."""
    parser.add_argument("--model", "-m", required=True, type=model_path_argument,
                        help=f"model file (.vxm.h5) or a bundled model's name ({', '.join(single_models())})")


def add_batch_size(parser: argparse.ArgumentParser) -> None:
    """``--batch-size``: windows per prediction call."""
    parser.add_argument("--batch-size", type=positive_int, default=256, help="prediction batch size")


def add_seed(parser: argparse.ArgumentParser, text: str, default: int | None = 0) -> None:
    """``--seed``: a non-negative seed (``default`` None: the hyperparameters' own)."""
    parser.add_argument("--seed", type=non_negative_int, default=default, help=text)


def add_kmax(parser: argparse.ArgumentParser, text: str) -> None:
    """``--kmax``: the longest k-mer of the ridge baseline (``text`` says whose), which picks its k up to it."""
    parser.add_argument("--kmax", type=kmer_length, default=6,
                        help=f"{text}: it uses 1- to k-mers, k <= KMAX (1-8) chosen by its leave-one-out error on "
                             f"the training split (default 6)")


def add_training_memory(parser: argparse.ArgumentParser, text: str) -> None:
    """``--max-memory-gb``: splits larger than this are streamed from the prepared set."""
    parser.add_argument("--max-memory-gb", type=positive_float, default=8.0, help=text)


def add_standardize_labels(parser: argparse.ArgumentParser, text: str) -> None:
    """``--no-standardize-labels``: train on the labels as they are (``args.standardize_labels`` false)."""
    parser.add_argument("--no-standardize-labels", dest="standardize_labels", action="store_false", help=text)


def add_align(parser: argparse.ArgumentParser, text: str) -> None:
    """``--align``: how records of another length are padded or cropped to the window."""
    parser.add_argument("--align", choices=("center", "left", "right"), default="center", help=text)
