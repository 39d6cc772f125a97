"""Scores from predictions: pure functions of ``(ref_pred, alt_pred)`` and the model's output scale.

``delta = alt - ref`` on the model's output scale. Where the model's metadata says how the output maps to log10
expression (``output_scale`` ``"log10"``, or ``"standardized_log10"`` with ``label_sd``), the fold change follows:
``log2fc = delta_log10 * log2(10)``. Otherwise the fold change is undefined and reported as missing.

Ensembles: each member's delta is on its own output scale; for standardised members that is the member's own
label-SD units, so the mean delta averages "how many of its own label SDs each member moves". The ensemble's fold
change is the mean of the members' own fold changes (each with its own ``label_sd``), not the mean delta times
one member's ``label_sd``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

LOG2_10 = math.log2(10.0)


class GeneScore(NamedTuple):
    """The score of one ALT allele of one record on one gene."""

    record: int  #: 0-based ordinal of the record in the input
    alt_index: int  #: 0-based index of the allele among the record's ALTs
    alt: str
    gene_id: str
    gene_name: str
    strand: str
    tss_pos: int  #: 1-based TSS position on the contig as named in the FASTA
    distance: int  #: signed distance of the variant to the TSS, positive = downstream (transcription direction)
    ref_pred: float
    alt_pred: float
    delta: float
    log2fc: float | None
    flags: tuple[str, ...]
    percentile: float | None = None  #: percentile of |delta| in the model's background; None without one
    delta_sd: float | None = None  #: standard deviation of delta across ensemble members; None for one model
    sign_agreement: float | None = None  #: fraction of ensemble members agreeing with the sign of the mean delta


def delta(ref_pred: np.ndarray | float, alt_pred: np.ndarray | float) -> np.ndarray | float:
    """``alt - ref`` on the model's output scale (same shape as the inputs)."""
    return np.subtract(alt_pred, ref_pred)


def log10_scale(output_scale: str, label_sd: float | None) -> float | None:
    """Factor that turns a difference of model outputs into a difference of log10 expression, or None if unknown."""
    if output_scale == "log10":
        return 1.0
    if output_scale == "standardized_log10" and label_sd:
        return float(label_sd)
    return None


def log2_fold_change(delta_out: np.ndarray | float, output_scale: str, label_sd: float | None):
    """log2 fold change of expression implied by ``delta_out``; None where the output scale does not allow it."""
    factor = log10_scale(output_scale, label_sd)
    if factor is None:
        return None
    return np.multiply(delta_out, factor * LOG2_10)


def mean_log2_fold_change(deltas: np.ndarray, scales: list[tuple[str, float | None]]):
    """log2 fold change of an ensemble: the mean over members of each member's own log2 fold change.

    Args:
        deltas: shape (n, k), member ``j``'s ``alt - ref`` on its own output scale in column ``j``.
        scales: ``k`` pairs ``(output_scale, label_sd)``, one per member.

    Returns:
        shape (n,), or None when any member's output scale does not say how it maps to log10 expression.
        Members standardised with different label sds (e.g. networks trained on different species' labels) are
        each converted with their own ``label_sd`` before averaging.
    """
    deltas = np.asarray(deltas, dtype=np.float64)
    factors = [log10_scale(scale, sd) for scale, sd in scales]
    if not factors or any(f is None for f in factors):
        return None
    return (deltas * np.asarray(factors, dtype=np.float64)).mean(axis=1) * LOG2_10


def strongest(scores: list[GeneScore]) -> GeneScore | None:
    """The score with the largest ``|delta|`` (ties: first in input order), or None for an empty list."""
    best = None
    for score in scores:
        if best is None or abs(score.delta) > abs(best.delta):
            best = score
    return best
