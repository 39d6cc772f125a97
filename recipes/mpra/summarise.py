"""Summarise a run of recipes/mpra/run.sh: held-out metrics with bootstrap intervals, a results file and a plot.

Usage: python recipes/mpra/summarise.py OUT_DIR --results benchmarks/results/mpra.json --plot docs/figures/x.png

Intervals: 2,000 bootstrap resamples (seed 0) of the test split, drawn by *leak group* (an element with its other
orientation, identical or reverse-complementary sequences: the prepared set's ``group`` column), because the two
orientations of an element are measured separately but are not independent. Percentile 95 % intervals; for the
model-minus-ridge difference the same resamples are used for both predictors (paired).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

CELLS = ("HepG2", "WTC11")
N_BOOT = 2000


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    ss_res, ss_tot = float(np.sum((y - p) ** 2)), float(np.sum((y - y.mean()) ** 2))
    return {"pearson": float(np.corrcoef(y, p)[0, 1]) if np.ptp(p) > 0 else float("nan"),
            "spearman": float(stats.spearmanr(y, p)[0]) if np.ptp(p) > 0 else float("nan"),
            "r2": 1.0 - ss_res / ss_tot}


def _bootstrap(frame: pd.DataFrame, groups: np.ndarray, predictors: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    rows_of = {g: np.flatnonzero(groups == g) for g in uniq}
    draws: dict[str, list[dict]] = {p: [] for p in predictors}
    y_all = frame["observed"].to_numpy()
    for _ in range(N_BOOT):
        pick = np.concatenate([rows_of[g] for g in rng.choice(uniq, len(uniq))])
        for p in predictors:
            draws[p].append(_metrics(y_all[pick], frame[p].to_numpy()[pick]))
    out = {}
    for p in predictors:
        point = _metrics(y_all, frame[p].to_numpy())
        out[p] = {}
        for m in point:  # a constant predictor (the mean) has no correlation: null
            values = np.asarray([d[m] for d in draws[p]])
            out[p][m] = ({"value": None, "ci95": None} if not np.isfinite(point[m]) else
                         {"value": round(point[m], 4),
                          "ci95": [round(float(np.percentile(values, q)), 4) for q in (2.5, 97.5)]})
    diff = [a["pearson"] - b["pearson"] for a, b in zip(draws["model"], draws["kmer_ridge"])]
    out["model_minus_kmer_ridge_pearson"] = {
        "value": round(out["model"]["pearson"]["value"] - out["kmer_ridge"]["pearson"]["value"], 4),
        "ci95": [round(float(np.percentile(diff, q)), 4) for q in (2.5, 97.5)]}
    return out


def _test_predictions(report: Path) -> pd.DataFrame:
    """The test rows of an ``evaluate`` folder's predictions.tsv (columns id, observed, model, mean, kmer_ridge)."""
    return pd.read_csv(report / "predictions.tsv", sep="\t", dtype={"id": str})


def _members(out_dir: Path, model) -> list[dict]:
    """Seed, best epoch and epochs run of each trained network behind a (merged) model."""
    from varxpress.models.network import ExpressionModel

    listed = model.metadata.source.get("ensemble", {}).get("members")
    members = [ExpressionModel.load(out_dir / m["file"]) for m in listed] if listed else [model]
    return [{"seed": m.hparams.get("seed"), "best_epoch": m.metadata.metrics.get("best_epoch"),
             "epochs_run": m.metadata.metrics.get("epochs_run")} for m in members]


def summarise(out_dir: Path) -> dict:
    from varxpress.learning.prepared import PreparedSet
    from varxpress.models.network import ExpressionModel

    result: dict = {"bootstrap": {"resamples": N_BOOT, "unit": "leak group", "interval": "percentile 95%",
                                  "seed": 0}, "cells": {}}
    for cell in CELLS:
        report = out_dir / f"human-mpra-{cell.lower()}.eval"
        if not (report / "predictions.tsv").exists():
            continue
        frame = _test_predictions(report)
        with PreparedSet(out_dir / f"{cell}.vxd.h5") as pset:
            group_of = dict(zip(pset.ids, pset.column("group")))
            n = {name: int((pset.split == code).sum()) for code, name in enumerate(("train", "valid", "test"))}
            n_groups = int(pset.column("group").max()) + 1
        groups = np.asarray([group_of[i] for i in frame["id"]])
        model = ExpressionModel.load(out_dir / f"human-mpra-{cell.lower()}.vxm.h5")
        result["cells"][cell] = {
            "rows": n, "leak_groups": n_groups, "test_groups": int(len(np.unique(groups))),
            "metrics_test": _bootstrap(frame, groups, ["model", "mean", "kmer_ridge"]),
            "verdict": json.loads((report / "evaluation.json").read_text())["verdict"],
            "hparams": model.hparams, "members": _members(out_dir, model),
            "window": {"upstream": model.window_spec.upstream, "downstream": model.window_spec.downstream},
            "parameters": int(model.keras_model.count_params()),
            "units": "log10 activity (log2 RNA/DNA x log10 2)",
        }
    stability = out_dir / "window_stability.json"
    if stability.exists():
        result["window_stability"] = json.loads(stability.read_text())
    trials = out_dir / "HepG2.search" / "trials.tsv"
    if trials.exists():
        result["search"] = {"space": "recipes/mpra/space.yaml", "trials": 4, "trial_epochs": 2,
                            "trials_table": pd.read_csv(trials, sep="\t").to_dict("records")}
        best = out_dir / "search-best.report"
        if (best / "metrics.json").exists():
            metrics = json.loads((best / "metrics.json").read_text())
            result["search"]["best_retrained"] = {
                "test": metrics["model"]["test"], "beats_baselines": metrics["beats_baselines"],
                "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
                "kmer_ridge_test": metrics["baselines"]["kmer_ridge"]["test"]}
    second = out_dir / "WTC11.search" / "trials.tsv"
    if second.exists():
        result["search_bn"] = {"space": "recipes/mpra/space_bn.yaml", "set": "WTC11", "trial_epochs": 4,
                               "trials_table": pd.read_csv(second, sep="\t").to_dict("records")}
    return result


def plot(out_dir: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in CELLS if (out_dir / f"human-mpra-{c.lower()}.eval" / "predictions.tsv").exists()]
    fig, axes = plt.subplots(1, len(cells), figsize=(4.2 * len(cells), 4), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        frame = _test_predictions(out_dir / f"human-mpra-{cell.lower()}.eval")
        y, p = frame["observed"].to_numpy(), frame["model"].to_numpy()
        ax.scatter(p, y, s=3, alpha=0.3, color="tab:blue", rasterized=True)
        lo, hi = min(y.min(), p.min()), max(y.max(), p.max())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_xlabel("predicted log10 activity")
        ax.set_ylabel("measured log10 activity")
        ax.set_title(f"{cell} held-out test (n={len(y)}), r={np.corrcoef(y, p)[0, 1]:.3f}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--plot", type=Path, required=True)
    args = ap.parse_args()
    result = summarise(args.out_dir)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1, default=str) + "\n")
    plot(args.out_dir, args.plot)


if __name__ == "__main__":
    main()
