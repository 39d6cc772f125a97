"""Which items of a training set train, validate and test the model: random, by chromosome, or by leak group.

A split is a uint8 array with one code per item: 0 = train, 1 = valid, 2 = test (:data:`SPLITS` names them).
Sizes are counts, or fractions of the items when strictly between 0 and 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from varxpress.errors import DatasetError

__all__ = ["SPLITS", "make_split", "group_split"]

SPLITS = ("train", "valid", "test")


def _size(size: float, n: int, what: str) -> int:
    if size < 0:
        raise DatasetError(f"{what} size {size} is negative")
    return int(round(size * n)) if 0 < size < 1 else int(size)


def make_split(
    n: int,
    method: str = "random",
    test_size: float = 1000,
    valid_size: float = 1000,
    seed: int = 0,
    chroms: Sequence[str] | None = None,
    test_chroms: Iterable[str] = (),
    valid_chroms: Iterable[str] = (),
) -> np.ndarray:
    """Assign each of ``n`` items to train (0), valid (1) or test (2).

    Args:
        n: number of items.
        method: ``random`` (``test_size`` and ``valid_size`` items drawn at random) or ``chrom`` (items on
            ``test_chroms`` are test, on ``valid_chroms`` valid; with no ``valid_chroms``, ``valid_size`` items
            drawn at random from the rest).
        test_size, valid_size: counts, or fractions of ``n`` when strictly between 0 and 1.
        seed: seed of the draw.
        chroms: the contig of each item (``method="chrom"``).

    Returns:
        uint8 array, shape ``(n,)``.

    Raises:
        DatasetError: the sizes leave no training items, an unknown method, a chrom split without ``chroms``, a
            held-out contig no item lies on (a misspelt name), or one named for both test and validation.
    """
    rng = np.random.default_rng(seed)
    split = np.zeros(n, dtype=np.uint8)
    if method == "random":
        n_test, n_valid = _size(test_size, n, "test"), _size(valid_size, n, "validation")
        if n_test + n_valid >= n:
            raise DatasetError(f"test ({n_test}) + validation ({n_valid}) sizes leave no training items of {n}; "
                               "lower --test-size/--valid-size (fractions like 0.1 are accepted)")
        order = rng.permutation(n)
        split[order[:n_test]] = 2
        split[order[n_test:n_test + n_valid]] = 1
        return split
    if method != "chrom":
        raise DatasetError(f"split method {method!r} is not one of random, chrom")
    if chroms is None:
        raise DatasetError("a chromosome split needs contigs: use it with genomic windows, not --sequences")
    test_set, valid_set = set(test_chroms), set(valid_chroms)
    if not test_set:
        raise DatasetError("--split chrom needs --test-chroms")
    both = sorted(test_set & valid_set)
    if both:
        raise DatasetError(f"{', '.join(both)} named both in --test-chroms and --valid-chroms: a contig is held out "
                           f"for one purpose")
    chroms = np.asarray(chroms)
    present = set(chroms.tolist())
    absent = sorted((test_set | valid_set) - present)
    if absent:  # a misspelt name would quietly leave its contig in the training split
        raise DatasetError(f"no item lies on the held-out contig(s) {', '.join(absent)}; the items' contigs are "
                           f"{', '.join(sorted(present)[:30])}{' ...' if len(present) > 30 else ''}")
    split[np.isin(chroms, list(test_set))] = 2
    split[np.isin(chroms, list(valid_set))] = 1
    if not valid_set:
        rest = np.flatnonzero(split == 0)
        n_valid = _size(valid_size, len(rest), "validation")
        split[rng.permutation(rest)[:n_valid]] = 1
    if not (split == 2).any():
        raise DatasetError(f"no item lies on the test chromosomes {sorted(test_set)}")
    if not (split == 0).any():
        raise DatasetError("the chromosome split leaves no training items")
    return split


def group_split(groups: np.ndarray, test_size: float, valid_size: float, seed: int = 0) -> np.ndarray:
    """Assign whole groups to test (2), then validation (1), in a seeded random order, until each holds at least
    its size in rows (counts, or fractions of all rows when strictly between 0 and 1); the rest is train (0).

    Raises:
        DatasetError: nothing left for training.
    """
    n = len(groups)
    sizes = [_size(test_size, n, "test"), _size(valid_size, n, "validation")]
    order = np.random.default_rng(seed).permutation(int(groups.max()) + 1 if n else 0)
    rows_of = np.bincount(groups, minlength=len(order))
    assign = np.zeros(len(order), dtype=np.uint8)
    filled = {2: 0, 1: 0}
    targets = {2: sizes[0], 1: sizes[1]}
    for g in order:
        code = 2 if filled[2] < targets[2] else (1 if filled[1] < targets[1] else 0)
        if code == 0:
            break
        assign[g] = code
        filled[code] += int(rows_of[g])
    split = assign[groups] if n else np.zeros(0, dtype=np.uint8)
    if not (split == 0).any():
        raise DatasetError(f"test ({sizes[0]}) + validation ({sizes[1]}) sizes leave no training rows of {n}; "
                           "lower --test-size/--valid-size")
    return split
