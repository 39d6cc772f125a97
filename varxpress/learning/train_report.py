"""The report ``varxpress train`` writes beside a model: metrics.json, history.tsv, predictions.tsv and plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from varxpress.io.outputs import open_output, save_figure
from varxpress.learning.plots import plot_pred_vs_obs, pyplot

__all__ = ["json_safe", "write_train_report"]

log = logging.getLogger(__name__)


def json_safe(obj):
    """``obj`` with numpy scalars as Python numbers, tuples as lists and non-finite floats as None (for JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_train_report(report: Path, result, metrics: dict, preds: dict) -> None:
    """Write the report of a :class:`varxpress.learning.training.FitResult` into the folder ``report``.

    ``preds``: split name -> ``(ids, observed, prediction[, {baseline: prediction}])`` in label units.
    """
    with open_output(report / "metrics.json") as handle:
        handle.write(json.dumps(json_safe(metrics), indent=2, allow_nan=False))
    hist = result.history
    keys = [k for k in ("loss", "val_loss") if k in hist]
    columns = keys + [k for k in ("val_pred_sd_ratio", "dead_relu_fraction") if k in hist]
    with open_output(report / "history.tsv") as handle:
        handle.write("epoch\t" + "\t".join(columns) + "\n")
        for i in range(len(hist.get("loss", []))):
            handle.write(f"{i + 1}\t" + "\t".join(f"{hist[k][i]:.6g}" if i < len(hist[k]) else "NA"
                                                   for k in columns) + "\n")
    with open_output(report / "predictions.tsv") as handle:
        names = sorted({n for v in preds.values() if len(v) > 3 for n in v[3]})
        handle.write("id\tsplit\tobserved\tprediction" + "".join(f"\t{n}" for n in names) + "\n")
        for split, item in preds.items():
            ids, y, p = item[:3]
            extra = item[3] if len(item) > 3 else {}
            for i, gene in enumerate(ids):
                cols = "".join(f"\t{extra[n][i]:.6g}" if n in extra else "\tNA" for n in names)
                handle.write(f"{gene}\t{split}\t{y[i]:.6g}\t{p[i]:.6g}{cols}\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in keys:
        ax.plot(range(1, len(hist[key]) + 1), hist[key], marker="o", ms=3, label=key)
    ax.axvline(result.best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {result.best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE" + (" (standardised labels)" if result.label_mean is not None else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, report / "learning_curves.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(preds) or 1, figsize=(4.5 * max(len(preds), 1), 4), squeeze=False)
    for ax, (split, item) in zip(axes[0], preds.items()):
        plot_pred_vs_obs(ax, item[1], item[2], split)
    fig.tight_layout()
    save_figure(fig, report / "pred_vs_obs.png", dpi=100)
    plt.close(fig)
    log.info("wrote %s/{metrics.json,history.tsv,predictions.tsv,learning_curves.png,pred_vs_obs.png}", report)
