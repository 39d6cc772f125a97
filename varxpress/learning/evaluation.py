"""How good is a model: its metrics on a split of a prepared set, beside the baselines (``varxpress evaluate``).

The baselines and the verdict are in :mod:`varxpress.learning.baselines`; predictions are compared in label units
(:func:`varxpress.learning.prediction.label_mapping`). A model without that mapping (e.g. an imported Xpresso model
evaluated on other labels) is calibrated with a least-squares line ``a * out + b`` fitted on the set's training
split; the table says so (``calibrated``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from varxpress.errors import DatasetError, UsageError
from varxpress.io.distinct import check_distinct
from varxpress.io.outputs import open_output
from varxpress.learning.baselines import baseline_metrics, check_against_baselines, regression_metrics, \
    warn_if_failed
from varxpress.learning.held_out import held_out
from varxpress.learning.bootstrap import N_BOOT, Bootstrap
from varxpress.learning.plots import plot_evaluation
from varxpress.learning.prediction import check_label_transform, label_mapping, model_predictions
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.train_report import json_safe
from varxpress.models.network import ExpressionModel

__all__ = ["evaluate", "EvaluationResult", "evaluation_metrics", "write_evaluated_model", "VERDICT_NOT_HELD_OUT"]

#: the verdict of a split that is not held out (``train``, ``all``)
VERDICT_NOT_HELD_OUT = "no verdict: not held-out genes"

log = logging.getLogger(__name__)


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

    Every metric gets a bootstrap 95% interval over the split's genes, or its leak groups in a sequence set split
    by groups (``*_ci_low``/``*_ci_high``; ``n_boot``
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
    if not isinstance(model, ExpressionModel):
        model = ExpressionModel.load(model)
    pset = dataset if isinstance(dataset, PreparedSet) else PreparedSet(dataset)
    check_label_transform(model, pset)
    status = held_out(model, pset, split)  # refuses a judged split holding the model's training genes
    if status.status == "unverified":
        log.warning("evaluate on %s: %s", split, status.reason)
    out, arrays = model_predictions(model, pset, split, batch_size)
    if len(arrays.ids) == 0:
        raise DatasetError(f"split {split!r} of {pset.path} is empty")
    mapping = label_mapping(model)
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
    boot = Bootstrap(y, {"model": pred, **base_preds}, n_boot, seed, pset.leak_groups(arrays.index))
    guard = check_against_baselines(y, pred, base_preds, boot=boot)
    if status.status == "no":  # metrics, but no verdict on genes a model may have trained on
        guard.update(beats_baselines=False, verdict=VERDICT_NOT_HELD_OUT, reasons=[status.reason])
    else:
        warn_if_failed(guard, f"evaluate on {split}")
    guard["held_out"] = status.as_dict()
    rows = [{"predictor": "model", **model_metrics, **boot.intervals("model"), "calibrated": calibrated}]
    rows += [{"predictor": name, **m[split], **boot.intervals(name), "calibrated": False}
             for name, m in metrics.items()]
    table = pd.DataFrame(rows)
    if "kmer_k" in table:  # the ridge's k: a whole number, empty for the other predictors
        table["kmer_k"] = table["kmer_k"].astype("Int64")
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


def evaluation_metrics(result: EvaluationResult, pset: PreparedSet, split: str) -> dict:
    """An evaluation in the shape of ``train``'s metrics (docs/training.md): ``model`` and ``baselines`` per split,
    the verdict's fields (``beats_baselines``, ``verdict``, ``reasons``, ``paired``, ``bootstrap``, ...),
    ``guard_split``, and ``evaluated_on``: the set's fingerprint without local paths (hashes, split, counts)."""
    rows = {row["predictor"]: _jsonable(row) for row in result.table.to_dict("records")}
    model = {split: rows.pop("model")}
    return json_safe({"model": model, "baselines": {name: {split: row} for name, row in rows.items()},
                      **result.guard, "guard_split": split,
                      "evaluated_on": _without_paths(pset.fingerprint()),
                      "measured_by": "varxpress evaluate"})


def _without_paths(value):
    """A fingerprint without its ``path`` entries, at any depth: they name where the set was built, not what it is."""
    if isinstance(value, dict):
        return {k: _without_paths(v) for k, v in value.items() if k != "path"}
    if isinstance(value, list):
        return [_without_paths(v) for v in value]
    return value


def write_evaluated_model(model: ExpressionModel, metrics: dict, out: str | os.PathLike) -> Path:
    """Write a copy of ``model`` whose metadata's ``metrics`` are ``metrics`` (:func:`evaluation_metrics`): for a
    network merged from seeds or imported, which has no test metrics of its own. The weights are unchanged.

    Raises:
        UsageError: ``out`` is the model's own file (it is an input), or the evaluation gave no verdict (a split that
            is not held out).
    """
    if model.path is not None:
        check_distinct({"--model": [str(model.path)]}, {"--write-model": [str(out)]})
    if (metrics.get("held_out") or {}).get("status") == "no":
        raise UsageError(f"--write-model records a held-out verdict; the {metrics.get('guard_split')!r} split has "
                         f"none: evaluate on test")
    meta = copy.deepcopy(model.metadata)
    meta.metrics = metrics
    return ExpressionModel(None, meta, weights=model.numpy_weights()).save(out, compress=_compressed(model.path))


def _compressed(path: Path | None) -> bool:
    """Whether the model file stores its weights compressed (the copy keeps the same layout and about its size)."""
    import h5py  # only where a model file is read or written

    if path is None:
        return False
    with h5py.File(path, "r") as h5:  # weights/<layer>/<weight>, as ExpressionModel.save writes them
        return any(weight.compression is not None for layer in h5["weights"].values() for weight in layer.values())


def _jsonable(row: dict) -> dict:
    return {k: (None if (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA else
                (v.item() if isinstance(v, np.generic) else v)) for k, v in row.items()}
