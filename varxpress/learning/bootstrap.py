"""Bootstrap over genes: 95% intervals of the evaluation metrics and paired model-minus-baseline differences.

Genes are resampled with replacement (``n_boot`` resamples, default 1,000, from a seeded
``numpy.random.default_rng``). Where rows are not independent, ``groups`` names the unit to resample instead: a
sequence set's leak groups (an element measured in both orientations, identical sequences) are drawn whole, so a
pair that shares its errors does not count as two independent observations. Every predictor is scored on the *same* resamples, so the difference of two
predictors' metrics is a paired bootstrap: gene-to-gene difficulty, shared by both, cancels. Intervals are the
2.5th and 97.5th percentiles of the resampled values (percentile bootstrap); resamples where a correlation is
undefined (one side constant) are left out of that metric's interval.

The work is vectorised: a block of resamples is one ``(b, n)`` index array and each metric one reduction along the
gene axis (Spearman ranks by ``scipy.stats.rankdata(axis=1)``, ties averaged, as ``scipy.stats.spearmanr``).
Blocks keep ``b * n`` near :data:`BLOCK_CELLS`, so memory stays in the tens of MB for any number of genes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

import numpy as np

__all__ = ["N_BOOT", "METRICS", "resample_metrics", "interval", "Bootstrap"]

log = logging.getLogger(__name__)

N_BOOT = 1000  # resamples; the 2.5% tail then rests on 25 values, enough for a two-decimal interval
METRICS = ("pearson", "spearman", "r2")
BLOCK_CELLS = 2_000_000


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of ``(b, n)`` arrays; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / den
    return np.where(den > 1e-12, r, np.nan)


def _r2_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Coefficient of determination ``1 - SS_res/SS_tot`` of each row; NaN where the labels are constant."""
    total = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    resid = ((y - p) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - resid / total
    return np.where(total > 1e-12, r2, np.nan)


def _group_resamples(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices of ``n_boot`` resamples that draw whole groups with replacement (as many draws as groups)."""
    order = np.argsort(groups, kind="stable")
    _, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    for _ in range(n_boot):
        drawn = rng.integers(0, starts.size, starts.size)
        length = sizes[drawn]
        offsets = np.repeat(starts[drawn] - np.cumsum(length) + length, length)
        yield order[offsets + np.arange(length.sum())]


def resample_metrics(y: np.ndarray, preds: Mapping[str, np.ndarray], n_boot: int = N_BOOT,
                     seed: int = 0, groups: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Pearson, Spearman and r² of every predictor on the same ``n_boot`` resamples of the genes.

    Args:
        y: shape (n,), observed labels.
        preds: predictor name -> shape (n,) predictions of the same genes.
        n_boot: number of resamples.
        seed: seed of the resampling.
        groups: shape (n,), the unit of resampling when rows are not independent (None: every row its own).

    Returns:
        ``out[name][metric]``: float64, shape (n_boot,), one value per resample (NaN where undefined).
    """
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=np.float64).ravel()
    n = y.shape[0]
    out = {name: {m: np.full(n_boot, np.nan) for m in METRICS} for name in preds}
    if n < 2:
        return out
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups).ravel()
        if groups.shape != y.shape:
            raise ValueError(f"groups has {groups.size} values for {n} labels")
        for b, idx in enumerate(_group_resamples(groups, n_boot, rng)):
            ys = y[idx][None]
            y_rank = rankdata(ys, axis=1)
            for name, p in preds.items():
                ps = np.asarray(p, dtype=np.float64).ravel()[idx][None]
                out[name]["pearson"][b] = _pearson_rows(ys, ps)[0]
                out[name]["spearman"][b] = _pearson_rows(y_rank, rankdata(ps, axis=1))[0]
                out[name]["r2"][b] = _r2_rows(ys, ps)[0]
        return out
    block = max(1, BLOCK_CELLS // n)
    for lo in range(0, n_boot, block):
        idx = rng.integers(0, n, size=(min(block, n_boot - lo), n))
        ys = y[idx]
        y_rank = rankdata(ys, axis=1)
        for name, p in preds.items():
            ps = np.asarray(p, dtype=np.float64).ravel()[idx]
            hi = lo + idx.shape[0]
            out[name]["pearson"][lo:hi] = _pearson_rows(ys, ps)
            out[name]["spearman"][lo:hi] = _pearson_rows(y_rank, rankdata(ps, axis=1))
            out[name]["r2"][lo:hi] = _r2_rows(ys, ps)
    return out


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of resampled values, NaNs left out; ``(nan, nan)`` when fewer than half are finite."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < values.size / 2:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


class Bootstrap:
    """The resampled metrics of a set of predictors on one split, with their intervals and paired differences.

    Args:
        y: shape (n,), observed labels.
        preds: predictor name -> shape (n,) predictions (label units).
        n_boot, seed, groups: as for :func:`resample_metrics`; :attr:`unit` says what was resampled.
    """

    def __init__(self, y: np.ndarray, preds: Mapping[str, np.ndarray], n_boot: int = N_BOOT, seed: int = 0,
                 groups: np.ndarray | None = None) -> None:
        self.n = int(np.asarray(y).size)
        self.n_boot, self.seed = int(n_boot), int(seed)
        self.unit = "gene" if groups is None else "leak group"
        self.samples = resample_metrics(y, preds, n_boot, seed, groups)

    def intervals(self, name: str) -> dict[str, float]:
        """``{metric}_ci_low`` and ``{metric}_ci_high`` (95%) of every metric of predictor ``name``."""
        out: dict[str, float] = {}
        for metric in METRICS:
            out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = interval(self.samples[name][metric])
        return out

    def difference(self, name: str, other: str, metric: str) -> tuple[float, float]:
        """95% interval of ``metric(name) - metric(other)`` over the shared resamples (paired)."""
        return interval(self.samples[name][metric] - self.samples[other][metric])
