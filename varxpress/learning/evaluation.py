"""How good is a model: metrics, the two baselines every model must beat, ``evaluate`` and ``predict``.

Baselines (both fitted on the *training* split of the same prepared set, scored on the same evaluation split):

* ``mean``: the training-split mean label for every gene. Its r² on held-out genes is about 0 (slightly below);
  a model that does not beat it has learnt nothing (an earlier attempt predicted one constant, test r² = 0.008).
* ``kmer_ridge``: ridge regression on the frequencies of every 1- to 6-mer of the window (5,460 columns, k-mers
  containing ``N`` skipped) plus the set's per-gene features, standardised; the penalty is chosen by generalised
  cross-validation (``RidgeCV``) on the training split. A CNN that does not beat a bag of k-mers is not using
  positions or motif combinations.

Predictions are compared in label units: a model whose metadata says its output is standardised
(``output_scale`` ``standardized_*`` with ``label_mean``/``label_sd``) is mapped back with ``out * sd + mean``.
A model without that mapping (e.g. an imported Xpresso model evaluated on other labels) is calibrated with a
least-squares line ``a * out + b`` fitted on the set's training split; the table says so (``calibrated``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from varxpress.learning.bootstrap import N_BOOT, Bootstrap
from varxpress.cli.types import existing_path
from varxpress.io.outputs import open_output, save_figure
from varxpress.learning.dataset import PreparedSet, fit_length, read_fasta_records, read_label_table
from varxpress.errors import DatasetError
from varxpress.cli.types import model_path_argument
from varxpress.models.registry import BUNDLED

__all__ = [
    "regression_metrics",
    "kmer_counts",
    "MeanBaseline",
    "KmerRidgeBaseline",
    "baseline_metrics",
    "check_against_baselines",
    "MIN_TEST_GENES",
    "model_predictions",
    "evaluate",
    "EvaluationResult",
    "predict_fasta",
    "predict_dataset",
    "plot_pred_vs_obs",
    "add_evaluate_arguments",
    "run_evaluate",
    "add_predict_arguments",
    "run_predict",
]

log = logging.getLogger(__name__)

NEAR_CONSTANT = 0.01  # prediction sd below this fraction of the label sd counts as a constant predictor
#: Fewest evaluation genes on which the baseline verdict is given. With n = 30 the standard error of a Pearson r
#: (Fisher z) is 1/sqrt(27) = 0.19, so only r above ~0.36 is told apart from 0 at 95%, and percentile bootstrap
#: intervals of fewer than ~30 resampled units are known to be too narrow; below it any verdict is noise.
MIN_TEST_GENES = 30
VERDICT_BEATS = "beats the baselines"
VERDICT_TOO_FEW = "too few test genes to tell"
VERDICT_CONSTANT = "predictions are near-constant"
VERDICT_NO_CORRELATION = "no positive correlation"
VERDICT_WORSE = "does not beat the baselines"
VERDICT_UNCLEAR = "not clearly better than the baselines"


# -- metrics --------------------------------------------------------------------------------------------------------

def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, r² (coefficient of determination, 1 - SS_res/SS_tot), Pearson, Spearman of ``(n,)`` arrays.

    Also ``n``, ``pred_sd`` and ``label_sd``. Correlations are NaN (JSON ``null``) when either side is constant.
    """
    from scipy import stats

    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape[0]} labels but {y_pred.shape[0]} predictions")
    n = y_true.shape[0]
    out = {"n": int(n), "mse": float("nan"), "r2": float("nan"), "pearson": float("nan"),
           "spearman": float("nan"), "pred_sd": float("nan"), "label_sd": float("nan")}
    if n == 0:
        return out
    resid = float(np.sum((y_true - y_pred) ** 2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    out.update(mse=resid / n, pred_sd=float(y_pred.std()), label_sd=float(y_true.std()))
    out["r2"] = 1.0 - resid / total if total > 0 else float("nan")
    def varies(x: np.ndarray) -> bool:
        return bool(x.std() > 1e-12 * max(1.0, float(np.abs(x).max())))

    if n > 1 and varies(y_pred) and varies(y_true):
        out["pearson"] = float(stats.pearsonr(y_true, y_pred)[0])
        out["spearman"] = float(stats.spearmanr(y_true, y_pred)[0])
    return out


# -- baselines ------------------------------------------------------------------------------------------------------

def kmer_counts(X: np.ndarray, kmax: int = 6, kmin: int = 1, block: int = 256) -> np.ndarray:
    """Counts of every k-mer, ``kmin <= k <= kmax``, in one-hot windows.

    Args:
        X: ``(n, L, 4)`` one-hot (uint8 or float); all-zero rows (``N``) break k-mers.

    Returns:
        float32 ``(n, sum(4**k))``: for each k (ascending) the 4**k k-mers in lexicographic ACGT order.
    """
    X = np.asarray(X)
    n, length = X.shape[:2]
    width = sum(4**k for k in range(kmin, kmax + 1))
    out = np.zeros((n, width), dtype=np.float32)
    for lo in range(0, n, block):
        chunk = X[lo:lo + block]
        rows = chunk.shape[0]
        valid = chunk.sum(axis=-1) > 0
        idx = chunk.argmax(axis=-1).astype(np.int64)
        col = 0
        for k in range(kmin, kmax + 1):
            m = length - k + 1
            if m <= 0:
                col += 4**k
                continue
            code = np.zeros((rows, m), dtype=np.int64)
            ok = np.ones((rows, m), dtype=bool)
            for j in range(k):
                code = code * 4 + idx[:, j:j + m]
                ok &= valid[:, j:j + m]
            flat = (np.arange(rows, dtype=np.int64)[:, None] * 4**k + code)[ok]
            out[lo:lo + rows, col:col + 4**k] = np.bincount(flat, minlength=rows * 4**k).reshape(rows, 4**k)
            col += 4**k
    return out


class MeanBaseline:
    """Predicts the training-split mean label for everything."""

    name = "mean"

    def fit(self, X: np.ndarray, features: np.ndarray, y: np.ndarray) -> MeanBaseline:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: np.ndarray, features: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_, dtype=np.float64)


class KmerRidgeBaseline:
    """Ridge regression on 1..``kmax``-mer frequencies (+ per-gene features), penalty by GCV on the fit data."""

    name = "kmer_ridge"

    def __init__(self, kmax: int = 6, alphas: Sequence[float] | None = None) -> None:
        self.kmax = kmax
        self.alphas = np.logspace(-1, 6, 22) if alphas is None else np.asarray(alphas)

    def _design(self, X: np.ndarray, features: np.ndarray) -> np.ndarray:
        counts = kmer_counts(X, self.kmax)
        bases = np.maximum(np.asarray(X).sum(axis=(1, 2)), 1).astype(np.float32)
        design = counts / bases[:, None]
        if features is not None and np.asarray(features).size:
            design = np.hstack([design, np.asarray(features, dtype=np.float32)])
        return design

    def fit(self, X: np.ndarray, features: np.ndarray, y: np.ndarray) -> KmerRidgeBaseline:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model_ = make_pipeline(StandardScaler(), RidgeCV(alphas=self.alphas))
        self.model_.fit(self._design(X, features), np.asarray(y, dtype=np.float64))
        log.debug("k-mer ridge: alpha %.3g", self.model_[-1].alpha_)
        return self

    def predict(self, X: np.ndarray, features: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._design(X, features)).astype(np.float64)


def baseline_metrics(train: tuple[np.ndarray, np.ndarray, np.ndarray],
                     evals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                     kmax: int = 6) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, np.ndarray]]]:
    """Fit both baselines on ``train = (X, features, y)`` and score them on each named evaluation split.

    Returns:
        ``(metrics, predictions)``: ``metrics[baseline][split]`` is :func:`regression_metrics`,
        ``predictions[baseline][split]`` the ``(n,)`` predictions.
    """
    metrics: dict[str, dict[str, dict]] = {}
    preds: dict[str, dict[str, np.ndarray]] = {}
    for baseline in (MeanBaseline(), KmerRidgeBaseline(kmax)):
        baseline.fit(*train)
        metrics[baseline.name], preds[baseline.name] = {}, {}
        for split, (X, features, y) in evals.items():
            p = baseline.predict(X, features)
            preds[baseline.name][split] = p
            metrics[baseline.name][split] = regression_metrics(y, p)
    return metrics, preds


def check_against_baselines(y: np.ndarray, model_pred: np.ndarray, baseline_preds: dict[str, np.ndarray],
                            margin: float = 0.0, min_genes: int = MIN_TEST_GENES, n_boot: int = N_BOOT,
                            seed: int = 0, boot: Bootstrap | None = None) -> dict:
    """The baseline verdict: does the model beat every baseline by more than noise on these genes?

    The model beats the baselines when all of these hold (checked in this order; the first that fails is the
    ``verdict``, every one that fails is listed in ``reasons``):

    1. at least ``min_genes`` genes (:data:`MIN_TEST_GENES`), else ``"too few test genes to tell"``;
    2. predictions not near-constant (sd >= :data:`NEAR_CONSTANT` of the label sd);
    3. a positive Pearson r between predictions and labels, else ``"no positive correlation"``;
    4. for every baseline, the paired bootstrap 95% interval of ``r2(model) - r2(baseline)`` (same resampled
       genes for both, :class:`varxpress.learning.bootstrap.Bootstrap`) lies above ``margin``: ``"does not beat the
       baselines"`` when even the point difference does not, ``"not clearly better than the baselines"`` when
       only the interval reaches down to the margin.

    Args:
        y: shape (n,), observed labels.
        model_pred: shape (n,), the model's predictions in label units.
        baseline_preds: baseline name -> shape (n,) predictions of the same genes.
        margin: r² the model must gain over every baseline (lower interval bound above it).
        min_genes: fewest genes on which a verdict is given.
        n_boot, seed: bootstrap resamples and seed (ignored when ``boot`` is given).
        boot: a :class:`Bootstrap` already run on ``{"model": ..., **baselines}`` of these genes.

    Returns:
        ``beats_baselines`` (bool), ``verdict`` (str), ``reasons`` (list of str), ``near_constant`` (bool), ``n``,
        ``min_genes``, ``model_pearson``, ``r2_margin`` ({baseline: model r2 - baseline r2}), ``paired``
        ({baseline: ``r2_diff``, ``r2_diff_ci``, ``pearson_diff``, ``pearson_diff_ci``}) and ``bootstrap``
        (its settings); NaN as None.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    model = regression_metrics(y, model_pred)
    if boot is None:
        boot = Bootstrap(y, {"model": model_pred, **baseline_preds}, n_boot, seed)
    n = model["n"]
    near_constant = not (model["pred_sd"] >= NEAR_CONSTANT * model["label_sd"]) if n else True
    reasons = []
    if n < min_genes:
        reasons.append(f"{VERDICT_TOO_FEW} ({n} genes; a verdict needs at least {min_genes})")
    if near_constant:
        reasons.append(f"{VERDICT_CONSTANT} (sd < {100 * NEAR_CONSTANT:.0f}% of the label sd)")
    if not model["pearson"] > 0:
        reasons.append(f"{VERDICT_NO_CORRELATION} (Pearson r = {model['pearson']:.3f})")
    margins, paired, worse, unclear = {}, {}, [], []
    for name, pred in baseline_preds.items():
        base = regression_metrics(y, pred)
        margins[name] = float(model["r2"] - base["r2"])
        low, high = boot.difference("model", name, "r2")
        paired[name] = {"r2_diff": margins[name], "r2_diff_ci": [low, high],
                        "pearson_diff": float(model["pearson"] - base["pearson"]),
                        "pearson_diff_ci": list(boot.difference("model", name, "pearson"))}
        if not margins[name] > margin:
            worse.append(f"{name}: r2 {model['r2']:.3f} vs {base['r2']:.3f}")
        elif not low > margin:
            unclear.append(f"{name}: r2 gain {margins[name]:.3f}, 95% interval [{low:.3f}, {high:.3f}]")
    if worse:
        reasons.append(f"{VERDICT_WORSE} ({'; '.join(worse)})")
    if unclear:
        reasons.append(f"{VERDICT_UNCLEAR} ({'; '.join(unclear)})")
    verdict = reasons[0].split(" (")[0] if reasons else VERDICT_BEATS
    return _nan_to_none({
        "beats_baselines": not reasons, "verdict": verdict, "reasons": reasons, "near_constant": bool(near_constant),
        "n": int(n), "min_genes": int(min_genes), "model_pearson": model["pearson"], "r2_margin": margins,
        "r2_margin_required": float(margin), "paired": paired,
        "bootstrap": {"n_boot": boot.n_boot, "seed": boot.seed, "level": 0.95, "paired": True}})


def _nan_to_none(obj):
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return None if isinstance(obj, float) and not np.isfinite(obj) else obj


def warn_if_failed(guard: dict, where: str) -> None:
    """Log the loud warning of a model that fails :func:`check_against_baselines`."""
    if guard["near_constant"]:
        log.warning("!!! %s: the predictions are (nearly) constant (sd < %.0f%% of the label sd): the model has "
                    "collapsed to one value; check the labels, the learning rate and the window !!!",
                    where, 100 * NEAR_CONSTANT)
    if not guard["beats_baselines"]:
        log.warning("!!! %s: %s: %s !!!", where, guard["verdict"], "; ".join(guard["reasons"]))


# -- model predictions ----------------------------------------------------------------------------------------------

def _label_mapping(model) -> tuple[float, float] | None:
    """``(scale, shift)`` mapping model output to label units, or None when the metadata does not tell."""
    meta = model.metadata
    scale = str(getattr(meta, "output_scale", "") or "")
    mean, sd = getattr(meta, "label_mean", None), getattr(meta, "label_sd", None)
    if scale.startswith("standardized"):
        if mean is None or sd is None:
            return None
        return float(sd), float(mean)
    return 1.0, 0.0


def _model_features(model, pset: PreparedSet, features: np.ndarray) -> np.ndarray | None:
    """Feature matrix for ``model`` from a set's standardised features; defaults where the set does not fit."""
    if not model.n_features:
        return None
    if pset.n_features == model.n_features:
        names = list(getattr(model.metadata, "feature_names", None) or [])
        if names and pset.feature_names and names != pset.feature_names:
            log.warning("feature names differ: model %s, set %s; using the set's columns in order",
                        names, pset.feature_names)
        return features
    log.warning("the model takes %d features but %s has %d: using the model's default features for every gene",
                model.n_features, pset.path, pset.n_features)
    return None


def model_predictions(model, pset: PreparedSet, split: str | Sequence[str], batch_size: int = 256):
    """Raw model outputs on a split of a prepared set (window cropped, or N-padded with a warning).

    Returns:
        ``(outputs (n,), Arrays)``.
    """
    spec = model.window_spec
    pad = spec.upstream > pset.upstream or spec.downstream > pset.downstream
    if pad:
        log.warning("model window (%d, %d) is wider than %s's stored window (%d, %d): the extra bases are N",
                    spec.upstream, spec.downstream, pset.path, pset.upstream, pset.downstream)
    arrays = pset.load(split, spec.upstream, spec.downstream, pad=pad)
    feats = _model_features(model, pset, arrays.features)
    out = model.predict(arrays.X.astype(np.float32), feats, batch_size=batch_size) if len(arrays.ids) else \
        np.zeros(0)
    return np.asarray(out, dtype=np.float64), arrays


@dataclass
class EvaluationResult:
    """``table``: one row per predictor (model, mean, kmer_ridge) with :func:`regression_metrics` columns and the
    bootstrap 95% interval of each of ``pearson``, ``spearman``, ``r2`` (``pearson_ci_low``, ``pearson_ci_high``, ...);
    ``predictions``: per gene id, observed, model and baseline predictions; ``guard``: the baseline check."""

    table: pd.DataFrame
    predictions: pd.DataFrame
    guard: dict


def evaluate(model, dataset: str | os.PathLike | PreparedSet, split: str = "test", out_dir: str | None = None,
             kmax: int = 6, batch_size: int = 256, n_boot: int = N_BOOT, seed: int = 0) -> EvaluationResult:
    """Metrics of ``model`` on a split of a prepared set, beside the mean and k-mer ridge baselines.

    Every metric gets a bootstrap 95% interval over the split's genes (``*_ci_low``/``*_ci_high``; ``n_boot``
    resamples seeded with ``seed``, the same resamples for every predictor), and the verdict of
    :func:`check_against_baselines` uses the paired differences on those resamples.

    Args:
        model: an ``ExpressionModel`` or a model file path.
        dataset: a prepared set (path or :class:`PreparedSet`).
        split: ``test``, ``valid``, ``train`` or ``all``; baselines are always fitted on ``train``.
        out_dir: when given, writes ``evaluation.tsv``, ``evaluation.json``, ``predictions.tsv`` and
            ``evaluation.png`` there.
        kmax: longest k-mer of the ridge baseline.
    """
    from varxpress.models.network import ExpressionModel

    if not isinstance(model, ExpressionModel):
        model = ExpressionModel.load(model)
    pset = dataset if isinstance(dataset, PreparedSet) else PreparedSet(dataset)
    out, arrays = model_predictions(model, pset, split, batch_size)
    if len(arrays.ids) == 0:
        raise DatasetError(f"split {split!r} of {pset.path} is empty")
    mapping = _label_mapping(model)
    calibrated = mapping is None
    if calibrated:
        train_out, train_arrays = model_predictions(model, pset, "train", batch_size)
        slope, intercept = np.polyfit(train_out, train_arrays.labels.astype(np.float64), 1)
        log.warning("the model's output scale has no label mapping in its metadata: calibrated on the training "
                    "split as %.4g * output + %.4g", slope, intercept)
        mapping = (float(slope), float(intercept))
    pred = out * mapping[0] + mapping[1]
    y = arrays.labels.astype(np.float64)
    train = pset.load("train", model.window_spec.upstream, model.window_spec.downstream,
                      pad=model.window_spec.upstream > pset.upstream or model.window_spec.downstream > pset.downstream)
    metrics, preds = baseline_metrics((train.X, train.features, train.labels),
                                      {split: (arrays.X, arrays.features, y)}, kmax)
    model_metrics = regression_metrics(y, pred)
    base_preds = {name: p[split] for name, p in preds.items()}
    boot = Bootstrap(y, {"model": pred, **base_preds}, n_boot, seed)
    guard = check_against_baselines(y, pred, base_preds, boot=boot)
    warn_if_failed(guard, f"evaluate on {split}")
    rows = [{"predictor": "model", **model_metrics, **boot.intervals("model"), "calibrated": calibrated}]
    rows += [{"predictor": name, **m[split], **boot.intervals(name), "calibrated": False}
             for name, m in metrics.items()]
    table = pd.DataFrame(rows)
    predictions = pd.DataFrame({"id": arrays.ids, "observed": y, "model": pred,
                                **{name: p[split] for name, p in preds.items()}})
    if out_dir is not None:
        _write_evaluation(Path(out_dir), table, predictions, guard, model, pset, split)
    return EvaluationResult(table, predictions, guard)


def _write_evaluation(out_dir: Path, table: pd.DataFrame, predictions: pd.DataFrame, guard: dict, model,
                      pset: PreparedSet, split: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_output(out_dir / "evaluation.tsv") as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    with open_output(out_dir / "predictions.tsv") as fh:
        predictions.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    report = {"model": str(getattr(model, "path", "")), "dataset": str(pset.path), "split": split,
              "metrics": {r["predictor"]: _jsonable(r) for r in table.to_dict("records")}, **guard}
    with open_output(out_dir / "evaluation.json") as fh:
        fh.write(json.dumps(report, indent=2, allow_nan=False, default=str))
    plot_evaluation(table, predictions, out_dir / "evaluation.png", title=f"{pset.path.name}: {split}")
    log.info("wrote %s/evaluation.{tsv,json,png} and predictions.tsv", out_dir)


def _jsonable(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else
                (v.item() if isinstance(v, np.generic) else v)) for k, v in row.items()}


# -- plots ------------------------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _with_interval(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(low) else f"{value:.3f}"


def plot_pred_vs_obs(ax, observed: np.ndarray, predicted: np.ndarray, label: str) -> None:
    """Scatter of predicted against observed with the y = x line; r² and Pearson (bootstrap 95% interval over
    the genes in brackets) in the title."""
    m = regression_metrics(observed, predicted)
    ci = Bootstrap(observed, {label: predicted}).intervals(label)
    ax.scatter(observed, predicted, s=6, alpha=0.5, linewidths=0)
    lo = float(np.nanmin([np.min(observed), np.min(predicted)])) if len(observed) else 0.0
    hi = float(np.nanmax([np.max(observed), np.max(predicted)])) if len(observed) else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
    ax.set_xlabel("observed")
    ax.set_ylabel("predicted")
    ax.set_title(f"{label}: r² = {_with_interval(m['r2'], ci['r2_ci_low'], ci['r2_ci_high'])}, Pearson = "
                 f"{_with_interval(m['pearson'], ci['pearson_ci_low'], ci['pearson_ci_high'])}, n = {m['n']}",
                 fontsize=8)


def plot_evaluation(table: pd.DataFrame, predictions: pd.DataFrame, path: Path, title: str = "") -> None:
    """PNG: r² of model and baselines (bars, bootstrap 95% intervals as error bars) and the model's
    predicted-vs-observed scatter."""
    plt = _pyplot()
    fig, (bar_ax, sc_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    r2 = table["r2"].fillna(0).to_numpy()
    colors = ["tab:blue" if p == "model" else "tab:grey" for p in table["predictor"]]
    bar_ax.bar(table["predictor"], r2, color=colors)
    if "r2_ci_low" in table:
        low, high = table["r2_ci_low"].to_numpy(float), table["r2_ci_high"].to_numpy(float)
        ok = np.isfinite(low) & np.isfinite(high)
        err = np.vstack([np.where(ok, r2 - low, 0), np.where(ok, high - r2, 0)]).clip(min=0)
        bar_ax.errorbar(np.arange(len(r2)), r2, yerr=err, fmt="none", ecolor="black", capsize=4, lw=1,
                        label="bootstrap 95% interval")
        bar_ax.legend(fontsize=8, loc="lower right")
    for i, v in enumerate(r2):
        bar_ax.text(i, v, f"{v:.3f}", ha="left", va="bottom" if v >= 0 else "top", fontsize=9)
    bar_ax.axhline(0, color="black", lw=0.8)
    bar_ax.set_ylabel("r²")
    bar_ax.set_title(title, fontsize=9)
    plot_pred_vs_obs(sc_ax, predictions["observed"].to_numpy(), predictions["model"].to_numpy(), "model")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


# -- predict ----------------------------------------------------------------------------------------------------------

class Prediction(NamedTuple):
    ids: list[str]
    prediction: np.ndarray
    observed: np.ndarray | None


def _to_label_units(model, out: np.ndarray) -> np.ndarray:
    mapping = _label_mapping(model)
    if mapping is None:
        log.warning("the model's metadata has no label mean/sd: predictions are the raw (standardised) output")
        return out
    return out * mapping[0] + mapping[1]


def predict_fasta(model, fasta: str | os.PathLike, labels: str | os.PathLike | None = None,
                  tss_index: int | None = None, align: str = "center", batch_size: int = 256) -> Prediction:
    """Predictions for the sequences of a FASTA, in label units (see the module docstring).

    Each record is fitted to the model window: with ``tss_index`` (the record's TSS position, 0-based) the window
    ``[tss_index - upstream, tss_index + downstream)`` is cut out (N-padded past the ends); without it a record
    of exactly the window length is used as it is, others are N-padded/cropped by ``align``
    (:func:`varxpress.learning.dataset.fit_length`). Records are used as given (no reverse complement); features are the
    model's defaults.
    """
    from varxpress.sequence.encode import one_hot
    from varxpress.models.network import ExpressionModel

    if not isinstance(model, ExpressionModel):
        model = ExpressionModel.load(model)
    spec = model.window_spec
    records = read_fasta_records(fasta)
    seqs = []
    for _, seq in records:
        if tss_index is not None:
            a, b = tss_index - spec.upstream, tss_index + spec.downstream
            seq = "N" * max(-a, 0) + seq[max(a, 0):max(b, 0)] + "N" * max(b - len(seq), 0)
            seqs.append(seq[:spec.length].ljust(spec.length, "N"))
        else:
            seqs.append(fit_length(seq, spec.length, align))
    out = np.zeros(0)
    if seqs:
        out = np.concatenate([model.predict(one_hot(seqs[i:i + 4096]), None, batch_size=batch_size)
                              for i in range(0, len(seqs), 4096)])
    ids = [r[0] for r in records]
    observed = None
    if labels is not None:
        table = read_label_table(labels).values
        observed = np.array([table.get(i, np.nan) for i in ids], dtype=np.float64)
    return Prediction(ids, _to_label_units(model, np.asarray(out, np.float64)), observed)


def predict_dataset(model, dataset: str | os.PathLike, split: str = "all", batch_size: int = 256) -> Prediction:
    """Predictions for the genes of a prepared set (with their features), in label units, with observed labels."""
    from varxpress.models.network import ExpressionModel

    if not isinstance(model, ExpressionModel):
        model = ExpressionModel.load(model)
    with PreparedSet(dataset) as pset:
        out, arrays = model_predictions(model, pset, split, batch_size)
    return Prediction(arrays.ids, _to_label_units(model, out), arrays.labels.astype(np.float64))


# -- CLI --------------------------------------------------------------------------------------------------------------

def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress evaluate``."""
    from varxpress.cli.types import positive_int

    parser.add_argument("--model", "-m", required=True, type=model_path_argument,
                        help=f"model file (.vxm.h5) or a bundled model's name ({', '.join(BUNDLED)})")
    parser.add_argument("--dataset", "-d", required=True, type=existing_path,
                        help="prepared set (from `varxpress prepare`)")
    parser.add_argument("--split", choices=("test", "valid", "train", "all"), default="test",
                        help="split to evaluate on; baselines are fitted on train")
    parser.add_argument("--kmax", type=positive_int, default=6, help="longest k-mer of the ridge baseline")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="prediction batch size")
    parser.add_argument("--require-beats-baselines", action="store_true",
                        help="exit with status 3 unless the model beats both baselines: positive Pearson r and an "
                             "r2 gain over each baseline whose paired bootstrap 95%% interval is above 0, on at "
                             f"least {MIN_TEST_GENES} genes (fewer: 'too few test genes to tell', also status 3)")
    parser.add_argument("--bootstrap", type=int, default=N_BOOT, metavar="B",
                        help="bootstrap resamples of the genes for the 95%% intervals and the verdict "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default %(default)s)")
    parser.add_argument("-o", "--out-dir", required=True, type=Path,
                        help="folder for evaluation.tsv/.json/.png and predictions.tsv")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``varxpress evaluate``."""
    result = evaluate(args.model, args.dataset, args.split, args.out_dir, args.kmax, args.batch_size,
                      args.bootstrap, args.seed)
    for row in result.table.to_dict("records"):
        log.info("%-10s r2 %s  pearson %s  spearman %s  mse %.4g  (n=%d; 95%% bootstrap intervals)",
                 row["predictor"], *(_with_interval(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"])
                                     for m in ("r2", "pearson", "spearman")), row["mse"], row["n"])
    guard = result.guard
    log.info("verdict: %s", guard["verdict"])
    if args.require_beats_baselines and not guard["beats_baselines"]:
        log.error("--require-beats-baselines: %s", "; ".join(guard["reasons"]))
        return 3
    return 0


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress predict``."""
    from varxpress.cli.types import non_negative_int, positive_int

    parser.add_argument("--model", "-m", required=True, type=model_path_argument,
                        help=f"model file (.vxm.h5) or a bundled model's name ({', '.join(BUNDLED)})")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--fasta", type=existing_path, help="FASTA of sequences (transcription direction)")
    src.add_argument("--dataset", type=existing_path, help="prepared set: predict its genes")
    parser.add_argument("--labels", type=existing_path,
                        help="--fasta: label table (id, value) to add an observed column")
    parser.add_argument("--tss-index", type=non_negative_int, default=None,
                        help="--fasta: 0-based TSS position in each record (default: fit the record to the window)")
    parser.add_argument("--align", choices=("center", "left", "right"), default="center",
                        help="--fasta without --tss-index: pad/crop records of another length")
    parser.add_argument("--split", choices=("all", "train", "valid", "test"), default="all",
                        help="--dataset: which genes")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="prediction batch size")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output TSV (id, prediction[, observed])")


def run_predict(args: argparse.Namespace) -> int:
    """Run ``varxpress predict``: writes ``id  prediction  [observed]`` (TSV)."""
    if args.fasta:
        result = predict_fasta(args.model, args.fasta, args.labels, args.tss_index, args.align, args.batch_size)
    else:
        if args.labels:
            raise DatasetError("--labels goes with --fasta; a prepared set carries its own labels")
        result = predict_dataset(args.model, args.dataset, args.split, args.batch_size)
    frame = pd.DataFrame({"id": result.ids, "prediction": result.prediction})
    if result.observed is not None:
        frame["observed"] = result.observed
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
    with open_output(args.out) as fh:
        frame.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    log.info("wrote %d predictions to %s", len(frame), args.out)
    return 0
