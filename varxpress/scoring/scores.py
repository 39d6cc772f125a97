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

from varxpress.sequence.windows import N_RICH_FRACTION

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
    ref_pred: float | None  #: None for a combination of models (it has deltas, not predictions)
    alt_pred: float | None
    delta: float
    log2fc: float | None
    flags: tuple[str, ...]
    percentile: float | None = None  #: percentile of |delta| in the model's background; None without one
    delta_sd: float | None = None  #: standard deviation of delta across ensemble members; None for one model
    sign_agreement: float | None = None  #: fraction of ensemble (or combination) members agreeing with its sign
    n_fraction: float | None = None  #: fraction of ``N`` in the gene's reference window (Window.n_fraction)
    #: each member's delta, an ensemble's or a combination's (None: a combination member that did not reach it)
    member_deltas: tuple[float | None, ...] | None = None


def allele_flags(genome, allele, tss) -> tuple[str, ...]:
    """Flags of a score from its allele and gene (see docs/output.md, *Flags*).

    ``ref_n``: the genome has ``N`` or another ambiguity code under the REF allele (a REF is accepted where the
    genome does not know the base, so the reference the model compares with is not the allele the VCF names).
    ``alt_n``: the ALT allele has ``N`` (an unknown base: the model reads it as an all-zero one-hot row, not as any
    real base, so the score describes no real allele). ``spans_tss``: an allele that changes the length of the
    sequence (an indel, or a complex allele) removes or rewrites the TSS base (past the bases REF and ALT share at
    their start): the alternate window keeps the annotated TSS, which that allele no longer has as annotated, and
    the distance is the allele's start, not the TSS's fate. A substitution (SNV, MNV) at the TSS leaves the
    coordinates in place and is not flagged.
    """
    flags = []
    allele = allele.minimal()  # the bases the change touches, however the VCF pads it
    if set(genome.fetch(allele.chrom, allele.start, allele.end).upper()) - set("ACGT"):  # N or an ambiguity code
        flags.append("ref_n")
    if "N" in allele.alt.upper():
        flags.append("alt_n")
    ref, alt = allele.ref, allele.alt
    if len(ref) != len(alt):
        shared = next((i for i, (a, b) in enumerate(zip(ref, alt)) if a != b), min(len(ref), len(alt)))
        if allele.start + shared <= tss.pos0 < allele.end:
            flags.append("spans_tss")
    return tuple(flags)


def quality_flags(off_contig: bool, n_fraction: float, percentile: float | None = None,
                  background_max_n: float | None = None) -> tuple[str, ...]:
    """Flags of a score from its window's quality (see docs/output.md, *Flags*).

    ``off_contig``: the window ran off a contig end (N padding). ``n_rich``: more than
    :data:`~varxpress.sequence.windows.N_RICH_FRACTION` of the reference window is ``N``. ``background_mismatch``: a
    percentile was computed although the window has more ``N`` than any window the background was built from
    (``background_max_n``, the background's ``max_n_fraction``; :data:`N_RICH_FRACTION` where it does not say).
    """
    flags = []
    if off_contig:
        flags.append("off_contig")
    if n_fraction > N_RICH_FRACTION:
        flags.append("n_rich")
    limit = N_RICH_FRACTION if background_max_n is None else background_max_n
    if percentile is not None and n_fraction > limit:
        flags.append("background_mismatch")
    return tuple(flags)


def units_text(output_scale: str, short: bool = False) -> str:
    """The model's output unit in words, for people (``short``: a colour-bar label on two lines)."""
    if output_scale == "standardized_log10":
        return ("change of predicted log10 mRNA level\n(standard deviations across genes)" if short else
                "predicted log10 mRNA level, in standard deviations across genes")
    if output_scale == "log10":
        return "change of predicted log10 mRNA level" if short else "predicted log10 mRNA level"
    if output_scale == "background_sd":  # a combination of models (varxpress.models.combination)
        return ("combined change\n(background SDs of each model)" if short else
                "weighted mean of the models' deltas, each in SDs of its background deltas")
    return f"change of model output\n({output_scale})" if short else f"model output ({output_scale})"


def delta(ref_pred: np.ndarray | float, alt_pred: np.ndarray | float) -> np.ndarray | float:
    """``alt - ref`` on the model's output scale (shape: the inputs' broadcast).

    The one place a delta is computed: ``score`` (through :func:`varxpress.models.ensemble.ensemble_stats`), the
    background, mutagenesis and ensembles all call it.
    """
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


def mean_log2_fold_change(ref_preds: np.ndarray, alt_preds: np.ndarray, scales: list[tuple[str, float | None]]):
    """log2 fold change of an ensemble: the mean over members of each member's own log2 fold change.

    Args:
        ref_preds, alt_preds: shape (n, k), member ``j``'s predictions on its own output scale in column ``j``.
        scales: ``k`` pairs ``(output_scale, label_sd)``, one per member.

    Returns:
        shape (n,), or None when any member's output scale does not say how it maps to log10 expression.
        Members standardised with different label sds (e.g. networks trained on different species' labels) are
        each converted with their own ``label_sd`` before averaging.
    """
    deltas = np.asarray(delta(ref_preds, alt_preds), dtype=np.float64)
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
