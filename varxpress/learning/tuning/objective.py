"""One trial of the search: train the drawn hyperparameters briefly and report the best validation loss."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from hyperopt import STATUS_FAIL, STATUS_OK

from varxpress.errors import VarxpressError
from varxpress.lazy_keras import import_keras
from varxpress.learning.baselines import regression_metrics
from varxpress.learning.batches import load_split, predict_network
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.training import fit
from varxpress.learning.tuning.space import flat_to_hparams
from varxpress.learning.tuning.trials import jsonable

__all__ = ["Objective"]

log = logging.getLogger(__name__)


_DATA_CACHE: dict = {}
_OPEN_SETS: dict[str, PreparedSet] = {}


class Objective:
    """The picklable objective: train one trial on ``dataset`` and return hyperopt's result dict.

    Result keys: ``loss`` (best validation MSE), ``status``, ``hparams`` (nested, validated), ``best_epoch``,
    ``epochs_run``, ``val_r2``; failed trials carry ``error``.
    """

    def __init__(self, dataset: str, trial_epochs: int | None, standardize_labels: bool = True,
                 max_memory_gb: float = 8.0, deterministic: bool = True) -> None:
        self.dataset = str(dataset)
        self.trial_epochs = trial_epochs
        self.standardize_labels = standardize_labels
        self.max_memory_gb = max_memory_gb
        self.deterministic = deterministic

    def __call__(self, flat: dict[str, Any]) -> dict[str, Any]:
        hp = flat_to_hparams(flat)
        try:
            pset = _OPEN_SETS.get(self.dataset) or _OPEN_SETS.setdefault(self.dataset, PreparedSet(self.dataset))
            result = fit(pset, hp, self.standardize_labels, epochs=self.trial_epochs, cache=_DATA_CACHE,
                         max_memory_gb=self.max_memory_gb, deterministic=self.deterministic)
        except (VarxpressError, ValueError) as exc:
            log.info("trial failed: %s", exc)
            return {"status": STATUS_FAIL, "error": str(exc), "hparams": jsonable(hp)}
        if not np.isfinite(result.best_val_loss):
            return {"status": STATUS_FAIL, "error": "validation loss is not finite", "hparams": jsonable(hp)}
        valid = load_split(pset, "valid", result.hparams, self.max_memory_gb * 1e9, _DATA_CACHE)
        pred = predict_network(result.keras_model, valid, result.hparams)
        y = valid.labels if hasattr(valid, "labels") else valid[0].labels[valid[1]]
        if result.label_mean is not None:
            pred = pred * result.label_sd + result.label_mean
        val = regression_metrics(y, pred)
        _clear_session()
        return {"status": STATUS_OK, "loss": float(result.best_val_loss), "hparams": jsonable(result.hparams),
                "best_epoch": result.best_epoch, "epochs_run": len(result.history.get("loss", [])),
                "val_r2": _finite(val["r2"]), "val_pearson": _finite(val["pearson"])}


def _clear_session() -> None:
    import_keras().backend.clear_session()


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None
