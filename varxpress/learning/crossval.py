"""Cross-validation ensembles (``varxpress train --cv-folds K``), and the report of any ensemble of trained members.

The train and valid rows are dealt at random into ``K`` folds; member ``i`` validates (early stopping) on fold ``i``,
trains on the others with seed ``seed + i`` and is tested on the set's own test split, which no member touches. The
members share one label standardisation (mean and sd of all train + valid labels) so their outputs, and deltas,
are on one scale. They are exported with :func:`varxpress.models.ensemble.export_ensemble`; the folder's
``metrics.json`` holds the test metrics of the members' mean prediction.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varxpress.errors import DatasetError, ModelError
from varxpress.io.outputs import open_output
from varxpress.learning.baselines import regression_metrics
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.train_report import json_safe
from varxpress.learning.training import train
from varxpress.models.ensemble import export_ensemble
from varxpress.models.network import model_stem

__all__ = ["cv_folds", "EnsembleResult", "member_name", "train_cv", "write_ensemble_report"]

log = logging.getLogger(__name__)


def cv_folds(split: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Deal the non-test rows of a split into ``k`` folds of near-equal size, at random.

    Args:
        split: uint8, shape (n,), split codes (0 train, 1 valid, 2 test).
        k: number of folds, 2 to the number of non-test rows.
        seed: seed of the deal.

    Returns:
        int64, shape (n,): the fold ``0..k-1`` of each train or valid row, ``-1`` for test rows.

    Raises:
        DatasetError: ``k`` below 2 or above the number of train + valid rows.
    """
    split = np.asarray(split)
    rows = np.flatnonzero(split != 2)
    if not 2 <= k <= len(rows):
        raise DatasetError(f"--cv-folds {k}: need 2 <= K <= {len(rows)} (the number of train + valid items)")
    folds = np.full(split.shape[0], -1, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(rows)] = np.arange(len(rows)) % k
    return folds


class _FoldSet(PreparedSet):
    """A prepared set read with fold ``fold`` of :func:`cv_folds` as its valid split, the other folds as its train
    split and the file's test split unchanged; its fingerprint names the fold."""

    def __init__(self, path: str | os.PathLike, folds: np.ndarray, fold: int) -> None:
        super().__init__(path)
        folds = np.asarray(folds)
        if folds.shape != self.split.shape:
            self.close()
            raise DatasetError(f"{folds.shape[0]} fold numbers for the {self.n} rows of {self.path}")
        self.split = np.where(folds < 0, 2, np.where(folds == fold, 1, 0)).astype(np.uint8)
        self.fold, self.n_folds = int(fold), int(folds.max()) + 1

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "cv_fold": self.fold + 1, "cv_folds": self.n_folds}


@dataclass
class EnsembleResult:
    """An exported ensemble: its ``manifest`` (``ensemble.json``), ``metrics`` (as in its ``metrics.json``) and
    the members' :class:`varxpress.learning.training.TrainResult` s."""

    manifest: Path
    metrics: dict
    members: list = field(repr=False)


def member_name(i: int) -> str:
    """File name of ensemble member ``i`` (1-based): ``member_01.vxm.h5`` (as :func:`export_ensemble` names them)."""
    return f"member_{i:02d}.vxm.h5"


def train_cv(dataset: str | os.PathLike | PreparedSet, hparams: dict, out_dir: str | os.PathLike, folds: int,
             standardize_labels: bool = True, epochs: int | None = None, seed: int | None = None,
             name: str | None = None, kmax: int = 6, max_memory_gb: float = 8.0, deterministic: bool = True,
             verbose: int = 0, source: str = "varxpress train", on_collapse: str = "warn",
             init_from: str | os.PathLike | None = None) -> EnsembleResult:
    """Train one member per cross-validation fold of the train + valid rows and export them as an ensemble.

    Member ``i`` (1-based) early-stops on fold ``i``, trains on the other folds with seed ``seed + i - 1`` and is
    tested on the set's test split; it is written by :func:`varxpress.learning.training.train` to
    ``OUT_DIR/member_0i.vxm.h5`` with its report
    in ``OUT_DIR/member_0i.report/``. All members standardise labels with the mean and sd of the train + valid
    labels. The folds are dealt with ``seed`` (:func:`cv_folds`).

    Args:
        out_dir: the ensemble folder (``ensemble.json``, members, ``metrics.json``, ``predictions.tsv``).
        folds: number of folds and members (>= 2).
        init_from: a model file every member starts from (see :func:`varxpress.learning.training.fit`).
        other arguments: as for :func:`varxpress.learning.training.train`.

    Returns:
        :class:`EnsembleResult`.
    """
    path = dataset.path if isinstance(dataset, PreparedSet) else Path(dataset)
    hp = copy.deepcopy(hparams)
    if seed is not None:
        hp["seed"] = int(seed)
    base_seed = int(hp.get("seed", 0))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with PreparedSet(path) as pset:
        assignment = cv_folds(pset.split, folds, base_seed)
        y = pset.labels[assignment >= 0].astype(np.float64)
        fingerprint = {k: v for k, v in pset.fingerprint().items() if k in ("path", "sha256", "n")}
    scale = (float(y.mean()), float(y.std()) or 1.0) if standardize_labels else None
    members = []
    for i in range(folds):
        file = out_dir / member_name(i + 1)
        with _FoldSet(path, assignment, i) as view:
            log.info("cross-validation fold %d of %d: %d training and %d validation items, seed %d", i + 1, folds,
                     int((view.split == 0).sum()), int((view.split == 1).sum()), base_seed + i)
            members.append(train(view, {**hp, "seed": base_seed + i}, file, None, standardize_labels, epochs,
                                 name=f"{name or model_stem(file)}_fold{i + 1}", kmax=kmax,
                                 max_memory_gb=max_memory_gb, deterministic=deterministic, verbose=verbose,
                                 source=f"{source} (cross-validation fold {i + 1} of {folds})", label_scale=scale,
                                 on_collapse=on_collapse, init_from=init_from))
    ens_source = {"kind": "cv", "folds": folds, "fold_seed": base_seed,
                  "seeds": [base_seed + i for i in range(folds)],
                  "valid_sizes": [int((assignment == i).sum()) for i in range(folds)],
                  "label_scale": list(scale) if scale else None, "test": "the set's test split, used by no member",
                  "dataset": fingerprint}
    manifest = export_ensemble([m.model_path for m in members], out_dir, source=ens_source,
                               names=[m.model_path.name for m in members])
    metrics = write_ensemble_report(out_dir, members, ens_source)
    return EnsembleResult(manifest, metrics, members)


def write_ensemble_report(out_dir: str | os.PathLike, members: list, source: dict) -> dict:
    """Write ``OUT_DIR/metrics.json`` and ``OUT_DIR/predictions.tsv`` for an ensemble of trained members.

    ``metrics.json``: ``test`` (metrics of the members' mean prediction on the test split, label units; absent
    when the set has no test split), ``members`` (each member's file, best epoch, valid and test metrics and
    baseline verdict), ``all_members_beat_baselines`` and the manifest's ``source``. ``predictions.tsv``: id,
    observed, the mean prediction, its sd across members (``ddof=1``) and each member's prediction.

    Args:
        members: :class:`varxpress.learning.training.TrainResult` s in member order, all with predictions on the
            same test rows.
    """
    out_dir = Path(out_dir)
    names = [member_name(i) for i in range(1, len(members) + 1)]
    metrics: dict = {"k": len(members), "source": source, "members": [
        {"file": name, "model": str(m.model_path), "best_epoch": m.metrics.get("best_epoch"),
         "valid": m.metrics["model"].get("valid"), "test": m.metrics["model"].get("test"),
         "beats_baselines": bool(m.metrics.get("beats_baselines", False))}
        for name, m in zip(names, members)]}
    metrics["all_members_beat_baselines"] = all(m["beats_baselines"] for m in metrics["members"])
    tests = [m.predictions.get("test") for m in members]
    if all(t is not None for t in tests) and tests:
        ids, y = list(tests[0][0]), np.asarray(tests[0][1], dtype=np.float64)
        if any(list(t[0]) != ids for t in tests[1:]):
            raise ModelError("the ensemble's members were tested on different rows; they must share one test split")
        preds = np.stack([np.asarray(t[2], dtype=np.float64) for t in tests], axis=1)  # (n, k)
        mean = preds.mean(axis=1)
        sd = preds.std(axis=1, ddof=1) if preds.shape[1] > 1 else np.full(len(mean), np.nan)
        metrics["test"] = regression_metrics(y, mean)
        metrics["test"]["mean_member_sd"] = float(np.mean(sd)) if len(sd) else float("nan")
        with open_output(out_dir / "predictions.tsv") as handle:
            handle.write("id\tobserved\tprediction\tsd\t" + "\t".join(n.split(".")[0] for n in names) + "\n")
            for j, gene in enumerate(ids):
                handle.write(f"{gene}\t{y[j]:.6g}\t{mean[j]:.6g}\t{sd[j]:.6g}\t"
                             + "\t".join(f"{v:.6g}" for v in preds[j]) + "\n")
        m = metrics["test"]
        log.info("ensemble of %d on the test split: r2 %.4f, pearson %.4f, mse %.4g (members' r2 %s)", len(members),
                 m["r2"], m["pearson"], m["mse"],
                 ", ".join(f"{(x['test'] or {}).get('r2', float('nan')):.4f}" for x in metrics["members"]))
    else:
        log.warning("the set has no test split: the ensemble in %s has no test metrics", out_dir)
    with open_output(out_dir / "metrics.json") as handle:
        handle.write(json.dumps(json_safe(metrics), indent=2, allow_nan=False))
    return metrics
