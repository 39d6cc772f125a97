"""argparse types: each turns one option's text into a checked value, or a usage error that says why.

The library never sees these; it takes the values they return (paths, numbers, regions).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from varxpress.errors import ModelError
from varxpress.io.regions import Region, RegionError, parse_region, read_regions
from varxpress.models.registry import BUNDLED, lookup, model_file

__all__ = ["existing_file", "existing_path", "positive_int", "non_negative_int", "positive_float", "fraction",
           "output_path", "region", "regions_file", "model_argument", "model_path_argument", "single_models",
           "count_or_fraction", "name_list", "fold_count"]


def existing_file(text: str) -> str:
    """argparse type: a path that exists (``-`` allowed for standard input)."""
    if text != "-" and not Path(text).exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def existing_path(text: str) -> Path:
    """argparse type: an existing file, as a Path."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _number(kind, least, text: str, strict: bool):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if value < least or (strict and value == least):
        raise argparse.ArgumentTypeError(f"{text}: must be {'>' if strict else '>='} {least}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (sizes, counts, threads)."""
    return _number(int, 1, text, strict=False)


def kmer_length(text: str) -> int:
    """argparse type: the longest k-mer of a ridge baseline, 1 to 8 (its 4 + 16 + ... + 4^k columns: k = 8 is
    87,380 per gene already; 10 asked for 18 GB)."""
    value = _number(int, 1, text, strict=False)
    if value > 8:
        raise argparse.ArgumentTypeError(f"{text}: at most 8 (4^k columns per k: longer k-mers need more memory "
                                         f"than the baseline is worth)")
    return value


def at_least(least: int):
    """argparse type: an integer >= ``least`` (its name says the least, for messages)."""
    def parse(text: str) -> int:
        return _number(int, least, text, strict=False)
    parse.__name__ = f"integer >= {least}"
    return parse


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, optional counts)."""
    return _number(int, 0, text, strict=False)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, gigabytes)."""
    return _number(float, 0.0, text, strict=True)


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = _number(float, 0.0, text, strict=False)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value


def output_path(text: str) -> str:
    """argparse type: ``-`` or a path whose folder exists."""
    if text != "-":
        folder = Path(text).parent
        if str(folder) and not folder.is_dir():
            raise argparse.ArgumentTypeError(f"folder {folder} of output {text} does not exist")
    return text


def region(text: str) -> Region:
    """argparse type: ``CHROM:START-END`` (1-based, inclusive) or ``CHROM``
    (:func:`varxpress.io.regions.parse_region`)."""
    try:
        return parse_region(text)
    except RegionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class RegionsFile(list):
    """The regions of a file, as a list, with the file's ``path`` (an input: no output may replace it)."""

    def __init__(self, regions: list[tuple[str, int, int]], path: str) -> None:
        super().__init__(regions)
        self.path = path


def regions_file(text: str) -> RegionsFile:
    """argparse type: a regions file (see :func:`read_regions`), read while parsing so a bad line is a usage
    error naming the file and line."""
    try:
        return RegionsFile(read_regions(existing_path(text)), text)
    except RegionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(f"{text}: not a text file of regions (binary data?)") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot read ({exc.strerror or exc})") from None


def model_argument(text: str) -> str:
    """argparse type of ``--model``: a bundled model's name or an existing file."""
    if text in BUNDLED or Path(text).exists():
        return text
    try:
        lookup(text)  # a staged name: says why it is not bundled
    except ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    raise argparse.ArgumentTypeError(f"no such file: {text} (nor a bundled model: {', '.join(BUNDLED)})")


def model_path_argument(text: str) -> Path:
    """argparse type of a required ``--model`` that must be one network (evaluate, predict): the file of a bundled
    model's name, or an existing file, as a Path. A bundled ensemble or combination is refused, naming why."""
    entry = BUNDLED.get(text) if not Path(text).exists() else None
    if entry is not None and entry.kind != "model":
        raise argparse.ArgumentTypeError(f"{text} is a bundled {entry.kind} of several models; this subcommand takes "
                                         f"one model: {', '.join(single_models())}, or a .vxm.h5 file")
    return Path(model_file(model_argument(text)))


def single_models() -> list[str]:
    """The bundled names that are one network (not an ensemble or a combination)."""
    return [name for name, entry in BUNDLED.items() if entry.kind == "model"]


def count_or_fraction(text: str) -> float:
    """argparse type of a split size: a count (an integer >= 0) or a fraction between 0 and 1."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a count nor a fraction") from exc
    if value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: give a count (integer) or a fraction between 0 and 1")
    return value


def name_list(text: str) -> list[str]:
    """argparse type: names separated by commas or white space (``chr8,chr9``), empty ones dropped."""
    return [c for c in re.split(r"[,\s]+", text) if c]


def fold_count(text: str) -> int:
    """argparse type of ``--cv-folds``: a whole number >= 2."""
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if k < 2:
        raise argparse.ArgumentTypeError(f"--cv-folds {k}: a cross-validation needs at least 2 folds")
    return k
