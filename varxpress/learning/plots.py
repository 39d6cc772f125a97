"""Figures of the learning half: predicted against observed, and the r² of a model beside its baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from varxpress.io.outputs import save_figure
from varxpress.learning.baselines import regression_metrics
from varxpress.learning.bootstrap import Bootstrap

__all__ = ["pyplot", "with_interval", "plot_pred_vs_obs", "plot_evaluation"]


def pyplot():
    """matplotlib's pyplot on the Agg backend (imported here, on first use: matplotlib is slow to start)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def with_interval(value: float, low: float, high: float) -> str:
    """``value [low, high]`` with three decimals; the value alone where the interval is not finite."""
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
    ax.set_title(f"{label}: r² = {with_interval(m['r2'], ci['r2_ci_low'], ci['r2_ci_high'])}, Pearson = "
                 f"{with_interval(m['pearson'], ci['pearson_ci_low'], ci['pearson_ci_high'])}, n = {m['n']}",
                 fontsize=8)


def plot_evaluation(table: pd.DataFrame, predictions: pd.DataFrame, path: Path, title: str = "") -> None:
    """PNG: r² of model and baselines (bars, bootstrap 95% intervals as error bars) and the model's
    predicted-vs-observed scatter."""
    plt = pyplot()
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
