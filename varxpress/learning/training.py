"""Train a network on a prepared set (``varxpress train``).

Route: hyperparameters (JSON/YAML, :func:`varxpress.models.network.load_hparams`) -> windows cropped from the prepared set to
the hyperparameters' ``upstream``/``downstream`` -> :func:`varxpress.models.network.build_network` -> Keras ``fit`` with early
stopping on validation loss (the best epoch's weights are restored and kept as a checkpoint) -> a model file in the
format ``score`` reads, whose metadata records the window, the label scale, the feature standardisation, the
hyperparameters, the metrics and the training set's fingerprint.

Labels: by default standardised with the training split's mean and sd (``--no-standardize-labels`` to keep them
as they are); the model then outputs standardised values and its metadata carries ``label_mean``/``label_sd`` so
``log10 = out * sd + mean``. Metrics are always reported in label units.

Data feeding: the training split is held in memory as uint8 windows (4 bytes per base, a quarter of float32) when
it is smaller than ``--max-memory-gb`` (default 8); otherwise batches are read from the HDF5 file (chunked rows)
by a ``keras.utils.PyDataset``. Either way each batch is converted to float32 on the fly.

After training the model is checked against the training-mean and the k-mer ridge baselines on the test split
(:func:`varxpress.learning.evaluation.check_against_baselines`: positive correlation, an r² gain over each baseline that holds
under a paired bootstrap over the test genes, enough test genes to tell): ``metrics.json`` carries
``beats_baselines``, ``verdict``, ``reasons`` and ``near_constant``, every metric has its bootstrap 95% interval
(``*_ci_low``/``*_ci_high``), a failing model is logged loudly, and ``--require-beats-baselines`` turns it into exit
status 3.

Cross-validation ensemble (``--cv-folds K``): the train and valid rows are dealt at random into ``K`` folds; member
``i`` validates (early stopping) on fold ``i``, trains on the others with seed ``seed + i`` and is tested on the
set's own test split, which no member touches. The members share one label standardisation (mean and sd of all
train + valid labels) so their outputs, and deltas, are on one scale. They are exported with
:func:`varxpress.models.ensemble.export_ensemble`; the folder's ``metrics.json`` holds the test metrics of the members'
mean prediction. ``-o`` is still the ordinary model trained on the recorded split.

Repeatability: ``keras.utils.set_random_seed(seed)`` and, with ``deterministic`` (default), TensorFlow's
deterministic ops. Runs use a GPU when TensorFlow finds one, else the CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varxpress.cli.types import existing_path
from varxpress.learning.dataset import Arrays, PreparedSet
from varxpress.errors import DatasetError, ModelError
from varxpress.learning.bootstrap import Bootstrap
from varxpress.learning.collapse import SPREAD_FRACTION
from varxpress.learning.evaluation import (MIN_TEST_GENES, baseline_metrics, check_against_baselines, plot_pred_vs_obs,
                         regression_metrics, warn_if_failed)
from varxpress.io.outputs import open_output, save_figure

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["read_hparams", "set_seed", "WindowBatches", "FitResult", "fit", "TrainResult", "train", "cv_folds",
           "EnsembleResult", "member_name", "train_cv", "write_ensemble_report", "add_arguments", "run"]

log = logging.getLogger(__name__)

ON_COLLAPSE = ("warn", "stop")


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow (``keras.utils.set_random_seed``); optionally deterministic TF ops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        try:
            tf.config.experimental.enable_op_determinism()
        except (AttributeError, RuntimeError) as exc:  # pragma: no cover - old TF
            log.debug("deterministic ops unavailable: %s", exc)


def _keras():
    import keras

    return keras


class WindowBatches:
    """Factory of a ``keras.utils.PyDataset`` over rows of a prepared set (built lazily so importing is cheap).

    Use :meth:`make`; the dataset yields ``(inputs, y float32 (b,))`` with inputs ``{"promoter": float32 (b, L, 4),
    "halflife": float32 (b, F)}``, or the promoter array alone for a network without features.
    """

    @staticmethod
    def make(source: Arrays | tuple[PreparedSet, np.ndarray], upstream: int, downstream: int,
             labels: np.ndarray, batch_size: int, use_features: bool, shuffle: bool, seed: int,
             rc_augment: bool = False):
        """``rc_augment``: each row of a batch is reverse-complemented (bases reversed, A<->T, C<->G) with
        probability 1/2, drawn afresh every epoch (a training-time choice; the label is kept)."""
        keras = _keras()

        class _Batches(keras.utils.PyDataset):
            def __init__(self) -> None:
                super().__init__(workers=1, use_multiprocessing=False)
                self.in_memory = isinstance(source, Arrays)
                self.n = len(source.ids) if self.in_memory else len(source[1])
                self.rng = np.random.default_rng(seed)
                self.order = self.rng.permutation(self.n) if shuffle else np.arange(self.n)

            def __len__(self) -> int:
                return max(1, -(-self.n // batch_size))

            def __getitem__(self, i: int):
                pick = self.order[i * batch_size:(i + 1) * batch_size]
                if self.in_memory:
                    X, feats = source.X[pick], source.features[pick]
                else:
                    pset, rows = source
                    arrays = pset.read_rows(rows[pick], upstream, downstream)
                    X, feats = arrays.X, arrays.features
                X = X.astype(np.float32)
                if rc_augment:
                    flip = self.rng.random(len(pick)) < 0.5
                    X[flip] = X[flip, ::-1, ::-1]  # ACGT channel order: reversing it complements
                inputs = {"promoter": X, "halflife": feats.astype(np.float32)} if use_features else X
                return inputs, labels[pick].astype(np.float32)

            def on_epoch_end(self) -> None:
                if shuffle:
                    self.order = self.rng.permutation(self.n)

        return _Batches()


@dataclass
class FitResult:
    """A fitted network. ``history``: per-epoch ``loss``/``val_loss`` (standardised units when labels are) and
    the collapse checks' ``val_pred_sd_ratio``/``dead_relu_fraction``; ``best_epoch`` 1-based;
    ``label_mean``/``label_sd``: the label standardisation (None when off); ``collapse``: ``detected`` (bool),
    ``events`` (one per collapsed epoch, :class:`varxpress.learning.collapse.CollapseMonitor`), ``threshold``, ``action``."""

    keras_model: object
    history: dict
    best_epoch: int
    best_val_loss: float
    label_mean: float | None
    label_sd: float | None
    hparams: dict
    collapse: dict = field(default_factory=dict)


def read_hparams(path: str | os.PathLike) -> dict:
    """Hyperparameters from a JSON or YAML file *as written* (keys left out stay out, so :func:`fit` can fill
    ``upstream``/``downstream``/``n_features`` from the prepared set before
    :func:`varxpress.models.network.validate_hparams` fills the rest from ``DEFAULT_HPARAMS``)."""
    from varxpress.models.network import read_hparams_file

    return read_hparams_file(path)


def _prepare_hparams(hparams: dict, pset: PreparedSet) -> dict:
    """Fill window and feature count from the set where the hyperparameters leave them out; validate."""
    from varxpress.models.network import validate_hparams

    hp = copy.deepcopy(dict(hparams))
    hp.setdefault("upstream", pset.upstream)
    hp.setdefault("downstream", pset.downstream)
    if hp.get("n_features") is None:
        hp["n_features"] = pset.n_features
    hp = validate_hparams(hp)
    if hp["n_features"] not in (0, pset.n_features):
        raise ModelError(f"hyperparameters ask for n_features={hp['n_features']} but {pset.path} has "
                         f"{pset.n_features} features ({', '.join(pset.feature_names) or 'none'}); set n_features "
                         f"to {pset.n_features} or 0 (no features)")
    pset.crop(int(hp["upstream"]), int(hp["downstream"]))  # raises if the window does not fit
    return hp


def _load_split(pset: PreparedSet, split: str, hp: dict, max_bytes: float, cache: dict | None):
    """In-memory Arrays, or ``(pset, rows)`` for streaming when the split is larger than ``max_bytes``."""
    key = (str(pset.path), split, int(hp["upstream"]), int(hp["downstream"]))
    if cache is not None and key in cache:
        return cache[key]
    rows = pset.indices(split)
    size = len(rows) * (int(hp["upstream"]) + int(hp["downstream"])) * 4
    if size > max_bytes:
        log.info("%s split: %.1f GB of windows, streamed from %s", split, size / 1e9, pset.path)
        return (pset, rows)
    arrays = pset.load(split, int(hp["upstream"]), int(hp["downstream"]))
    if cache is not None:
        cache[key] = arrays
    return arrays


def _labels_of(data) -> np.ndarray:
    return data.labels if isinstance(data, Arrays) else data[0].labels[data[1]]


def fit(pset: PreparedSet, hparams: dict, standardize_labels: bool = True, epochs: int | None = None,
        checkpoint: str | os.PathLike | None = None, max_memory_gb: float = 8.0, cache: dict | None = None,
        verbose: int = 0, deterministic: bool = True,
        label_scale: tuple[float, float] | None = None, on_collapse: str = "warn") -> FitResult:
    """Build and fit a network on the train split, early-stopping on the valid split.

    Args:
        pset: the prepared set.
        hparams: hyperparameters (see :mod:`varxpress.models.network`); ``n_features``, ``upstream``, ``downstream``
            default to the set's.
        standardize_labels: z-score labels with the training split's mean/sd.
        epochs: overrides ``hparams["epochs"]``.
        checkpoint: file for the best weights (``.weights.h5``); a temporary file when None.
        max_memory_gb: splits larger than this are streamed from the HDF5 file.
        cache: a dict reused across calls (hyperopt trials) to keep loaded splits in memory.
        label_scale: ``(mean, sd)`` to standardise labels with instead of the training split's (cross-validation
            members share one scale).
        on_collapse: ``"warn"`` (default) or ``"stop"``: what to do when the predictions collapse to nearly one
            value or the final ReLU layer dies (:mod:`varxpress.learning.collapse`); either way it is logged and recorded.

    Raises:
        ModelError: hyperparameters that do not fit the set; DatasetError: an empty train or valid split.
    """
    from varxpress.learning.collapse import SPREAD_FRACTION, CollapseMonitor, likely_causes
    from varxpress.models.network import build_network

    if on_collapse not in ON_COLLAPSE:
        raise ModelError(f"on_collapse {on_collapse!r} is not one of {', '.join(ON_COLLAPSE)}")
    keras = _keras()
    hp = _prepare_hparams(hparams, pset)
    seed = int(hp.get("seed", 0))
    set_seed(seed, deterministic)
    max_bytes = max_memory_gb * 1e9
    train_data = _load_split(pset, "train", hp, max_bytes, cache)
    valid_data = _load_split(pset, "valid", hp, max_bytes, cache)
    y_train, y_valid = _labels_of(train_data), _labels_of(valid_data)
    if len(y_train) == 0 or len(y_valid) == 0:
        raise DatasetError(f"{pset.path} has {len(y_train)} training and {len(y_valid)} validation items; "
                           "both must be non-empty (prepare with --valid-size > 0)")
    raw_mean, raw_sd = float(np.mean(y_train)), float(np.std(y_train))
    mean = sd = None
    if standardize_labels:
        if label_scale is not None:
            mean, sd = float(label_scale[0]), float(label_scale[1]) or 1.0
        else:
            mean, sd = float(np.mean(y_train)), float(np.std(y_train)) or 1.0
        y_train, y_valid = (y_train - mean) / sd, (y_valid - mean) / sd
    use_features = int(hp["n_features"]) > 0
    batch = int(hp.get("batch_size", 128))
    up, down = int(hp["upstream"]), int(hp["downstream"])
    train_batches = WindowBatches.make(train_data, up, down, y_train, batch, use_features, True, seed,
                                       rc_augment=bool(hp.get("rc_augment", False)))
    valid_batches = WindowBatches.make(valid_data, up, down, y_valid, max(batch, 256), use_features, False, seed)
    network = build_network(hp)
    _compile(network, hp)
    n_epochs = int(epochs if epochs is not None else hp.get("epochs", 10))
    monitor = CollapseMonitor.make(valid_batches, y_valid, likely_causes(float(hp.get("learning_rate", 5e-4)),
                                   standardize_labels, raw_mean, raw_sd), stop=on_collapse == "stop")
    with tempfile.TemporaryDirectory(prefix="varxpress-fit-") as tmp:
        ckpt = Path(checkpoint) if checkpoint else Path(tmp) / "best.weights.h5"
        callbacks = [
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(hp.get("patience", 3)),
                                          restore_best_weights=True),
            keras.callbacks.ModelCheckpoint(str(ckpt), monitor="val_loss", save_best_only=True,
                                            save_weights_only=True),
            keras.callbacks.TerminateOnNaN(),
            monitor,
        ]
        history = network.fit(train_batches, validation_data=valid_batches, epochs=n_epochs, callbacks=callbacks,
                              verbose=verbose)
        hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        hist.update(monitor.history)
        val = np.asarray(hist.get("val_loss", [np.nan]), dtype=np.float64)
        if np.isfinite(val).any() and ckpt.exists():
            network.load_weights(str(ckpt))  # the best epoch, also when training stopped on NaN
    best = int(np.nanargmin(val)) if np.isfinite(val).any() else len(val) - 1
    collapse = {"detected": bool(monitor.events), "events": monitor.events, "threshold": SPREAD_FRACTION,
                "action": on_collapse}
    return FitResult(network, hist, best + 1, float(val[best]), mean, sd, hp, collapse)


def _compile(network, hp: dict) -> None:
    keras = _keras()
    lr = float(hp.get("learning_rate", 5e-4))
    name = str(hp.get("optimizer", "adam")).lower()
    if name == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=float(hp.get("momentum", 0.9)))
    elif name == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    else:
        raise ModelError(f"optimizer {name!r} is not one of adam, sgd")
    network.compile(optimizer=optimizer, loss="mse")


def predict_network(network, data, hp: dict, batch_size: int = 256) -> np.ndarray:
    """Raw network outputs ``(n,)`` on in-memory Arrays or streamed ``(pset, rows)``."""
    labels = np.zeros(len(_labels_of(data)), dtype=np.float32)
    if len(labels) == 0:
        return np.zeros(0)
    batches = WindowBatches.make(data, int(hp["upstream"]), int(hp["downstream"]), labels, batch_size,
                                 int(hp["n_features"]) > 0, False, 0)
    out = [np.asarray(network.predict_on_batch(batches[i][0]), dtype=np.float64).reshape(-1)
           for i in range(len(batches))]
    return np.concatenate(out)


# -- train: fit + metrics + guard + model file ----------------------------------------------------------------------

@dataclass
class TrainResult:
    """What ``train`` produced: the saved model path, metrics (as in ``metrics.json``) and report files.

    ``predictions``: split name -> ``(ids, observed, prediction)`` in label units, for ``valid`` and ``test``."""

    model_path: Path
    metrics: dict
    report_dir: Path
    fit: FitResult = field(repr=False)
    predictions: dict = field(default_factory=dict, repr=False)


def train(dataset: str | os.PathLike | PreparedSet, hparams: dict, out: str | os.PathLike,
          report_dir: str | os.PathLike | None = None, standardize_labels: bool = True, epochs: int | None = None,
          seed: int | None = None, name: str | None = None, kmax: int = 6, max_memory_gb: float = 8.0,
          deterministic: bool = True, verbose: int = 0, source: str = "varxpress train",
          label_scale: tuple[float, float] | None = None, on_collapse: str = "warn") -> TrainResult:
    """Train, check against the baselines, save the model and write the report.

    Args:
        dataset: prepared set (path or :class:`PreparedSet`).
        hparams: hyperparameters; ``seed`` overrides ``hparams["seed"]``, ``epochs`` ``hparams["epochs"]``.
        out: model file to write (``.vxm.h5``), atomically.
        report_dir: folder for ``metrics.json``, ``history.tsv``, ``learning_curves.png``, ``pred_vs_obs.png``
            and ``predictions.tsv`` (default: ``<out without suffix>.report/``).
        kmax: longest k-mer of the ridge baseline.
        label_scale: ``(mean, sd)`` of the label standardisation (default: the training split's).
        on_collapse: ``"warn"`` or ``"stop"`` (see :func:`fit`); the checks land in ``metrics["collapse"]`` (also in
            the model's metadata) and ``history.tsv``.

    Returns:
        :class:`TrainResult`; ``metrics["beats_baselines"]`` is the guard's verdict.
    """
    pset = dataset if isinstance(dataset, PreparedSet) else PreparedSet(dataset)
    hp = copy.deepcopy(hparams)
    if seed is not None:
        hp["seed"] = int(seed)
    if epochs is not None:
        hp["epochs"] = int(epochs)
    out = Path(out)
    report = Path(report_dir) if report_dir else out.with_name(out.name.split(".")[0] + ".report")
    report.mkdir(parents=True, exist_ok=True)
    result = fit(pset, hp, standardize_labels, checkpoint=report / "best.weights.h5", max_memory_gb=max_memory_gb,
                 verbose=verbose, deterministic=deterministic, label_scale=label_scale, on_collapse=on_collapse)
    hp = result.hparams
    log.info("trained %d epochs; best epoch %d, validation loss %.4g", len(result.history.get("loss", [])),
             result.best_epoch, result.best_val_loss)
    metrics, preds = _score_splits(pset, result, hp, kmax, max_memory_gb)
    metrics["collapse"] = result.collapse
    if result.collapse["detected"]:
        log.warning("!!! train: the model collapsed during training (epochs %s); see %s/metrics.json "
                    "(\"collapse\") !!!", ", ".join(str(e["epoch"]) for e in result.collapse["events"]), report)
    _save_model(result, pset, hp, metrics, out, name or out.name.split(".")[0], standardize_labels, source)
    _write_report(report, result, metrics, preds)
    return TrainResult(out, metrics, report, result, {split: item[:3] for split, item in preds.items()})


def _score_splits(pset: PreparedSet, result: FitResult, hp: dict, kmax: int, max_memory_gb: float):
    """Model and baseline metrics on valid and test, in label units, and the guard on test."""
    max_bytes = max_memory_gb * 1e9
    shift, scale = (result.label_mean, result.label_sd) if result.label_mean is not None else (0.0, 1.0)
    metrics: dict = {"model": {}, "best_epoch": result.best_epoch,
                     "epochs_run": len(result.history.get("loss", []))}
    preds: dict = {}
    evals = {}
    for split in ("valid", "test"):
        data = _load_split(pset, split, hp, max_bytes, None)
        y = _labels_of(data).astype(np.float64)
        if len(y) == 0:
            log.warning("the %s split of %s is empty: no %s metrics", split, pset.path, split)
            continue
        p = predict_network(result.keras_model, data, hp) * scale + shift
        metrics["model"][split] = regression_metrics(y, p)
        preds[split] = (data.ids if isinstance(data, Arrays) else [pset.ids[i] for i in data[1]], y, p)
        if isinstance(data, Arrays):
            evals[split] = (data.X, data.features, y)
    train_data = _load_split(pset, "train", hp, max_bytes, None)
    if isinstance(train_data, Arrays) and evals:
        base, base_preds = baseline_metrics((train_data.X, train_data.features, train_data.labels), evals, kmax)
        metrics["baselines"] = base
        for split in list(preds):
            preds[split] = preds[split] + ({k: v[split] for k, v in base_preds.items()},)
    else:
        log.warning("the set is too large for the in-memory baselines: run `varxpress evaluate` on a subset")
        metrics["baselines"] = {}
    boots = {}
    for split, item in preds.items():  # bootstrap 95% intervals over genes, the same resamples for every predictor
        boots[split] = Bootstrap(item[1], {"model": item[2], **(item[3] if len(item) > 3 else {})})
        metrics["model"][split].update(boots[split].intervals("model"))
        for name in (item[3] if len(item) > 3 else {}):
            metrics["baselines"][name][split].update(boots[split].intervals(name))
    guard_split = "test" if "test" in metrics["model"] else "valid"
    if guard_split in metrics["model"] and len(preds[guard_split]) > 3:
        _, y, p, base_preds = preds[guard_split]
        guard = check_against_baselines(y, p, base_preds, boot=boots[guard_split])
        warn_if_failed(guard, f"train ({guard_split} split)")
    else:
        guard = {"beats_baselines": False, "verdict": "no baselines", "reasons": ["the baselines could not be fitted"],
                 "near_constant": True, "r2_margin": {}}
    metrics.update(guard, guard_split=guard_split)
    for split, m in metrics["model"].items():
        log.info("%s: r2 %.4f, pearson %.4f, spearman %.4f, mse %.4g (mean baseline r2 %.4f, k-mer ridge r2 %.4f)",
                 split, m["r2"], m["pearson"], m["spearman"], m["mse"],
                 metrics["baselines"].get("mean", {}).get(split, {}).get("r2", float("nan")),
                 metrics["baselines"].get("kmer_ridge", {}).get(split, {}).get("r2", float("nan")))
    return metrics, preds


def _save_model(result: FitResult, pset: PreparedSet, hp: dict, metrics: dict, out: Path, name: str,
                standardize_labels: bool, source: str) -> None:
    from varxpress import __version__
    from varxpress.models.network import ExpressionModel, ModelMetadata

    units = str(pset.attr("label_units", "log10 expression"))
    feature_names = pset.feature_names if int(hp["n_features"]) else []
    meta = ModelMetadata(
        name=name,
        upstream=int(hp["upstream"]),
        downstream=int(hp["downstream"]),
        genome_build=str(pset.attr("genome_build", "unknown")) if pset.kind == "genomic" else "n/a",
        output=(f"{'z-scored ' if standardize_labels else ''}{units} (labels of {pset.path.name}"
                f"{'; label units = out * label_sd + label_mean' if standardize_labels else ''})"),
        output_scale="standardized_log10" if standardize_labels else "log10",
        label_mean=result.label_mean if standardize_labels else 0.0,
        label_sd=result.label_sd if standardize_labels else 1.0,
        feature_names=list(feature_names),
        default_features=[0.0] * len(feature_names),
        hparams=hp,
        metrics=_json_safe(metrics),
        training_data=_json_safe({**pset.fingerprint(), "feature_mean": pset.feature_mean.tolist(),
                       "feature_sd": pset.feature_sd.tolist(), "feature_transform": "(raw - mean) / sd; missing -> 0"}),
        source={"command": source, "trained_by": f"varxpress {__version__}"},
        varxpress_version=__version__,
    )
    model = ExpressionModel(result.keras_model, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    log.info("saved model %s", out)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _write_report(report: Path, result: FitResult, metrics: dict, preds: dict) -> None:
    from varxpress.learning.evaluation import _pyplot

    with open_output(report / "metrics.json") as handle:
        handle.write(json.dumps(_json_safe(metrics), indent=2, allow_nan=False))
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
    plt = _pyplot()
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


# -- ensembles: cross-validation folds, and the report of any ensemble of trained members ------------------------------

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
    the members' :class:`TrainResult` s."""

    manifest: Path
    metrics: dict
    members: list = field(repr=False)


def member_name(i: int) -> str:
    """File name of ensemble member ``i`` (1-based): ``member_01.vxm.h5`` (as :func:`export_ensemble` names them)."""
    return f"member_{i:02d}.vxm.h5"


def train_cv(dataset: str | os.PathLike | PreparedSet, hparams: dict, out_dir: str | os.PathLike, folds: int,
             standardize_labels: bool = True, epochs: int | None = None, seed: int | None = None,
             name: str | None = None, kmax: int = 6, max_memory_gb: float = 8.0, deterministic: bool = True,
             verbose: int = 0, source: str = "varxpress train", on_collapse: str = "warn") -> EnsembleResult:
    """Train one member per cross-validation fold of the train + valid rows and export them as an ensemble.

    Member ``i`` (1-based) early-stops on fold ``i``, trains on the other folds with seed ``seed + i - 1`` and is
    tested on the set's test split; it is written by :func:`train` to ``OUT_DIR/member_0i.vxm.h5`` with its report
    in ``OUT_DIR/member_0i.report/``. All members standardise labels with the mean and sd of the train + valid
    labels. The folds are dealt with ``seed`` (:func:`cv_folds`).

    Args:
        out_dir: the ensemble folder (``ensemble.json``, members, ``metrics.json``, ``predictions.tsv``).
        folds: number of folds and members (>= 2).
        other arguments: as for :func:`train`.

    Returns:
        :class:`EnsembleResult`.
    """
    from varxpress.models.ensemble import export_ensemble

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
                                 name=f"{name or file.name.split('.')[0]}_fold{i + 1}", kmax=kmax,
                                 max_memory_gb=max_memory_gb, deterministic=deterministic, verbose=verbose,
                                 source=f"{source} (cross-validation fold {i + 1} of {folds})", label_scale=scale,
                                 on_collapse=on_collapse))
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
        members: :class:`TrainResult` s in member order, all with predictions on the same test rows.
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
        handle.write(json.dumps(_json_safe(metrics), indent=2, allow_nan=False))
    return metrics


# -- CLI --------------------------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress train``."""
    from varxpress.cli.types import non_negative_int, positive_float, positive_int

    parser.add_argument("--dataset", "-d", required=True, type=existing_path,
                        help="prepared set (from `varxpress prepare`)")
    parser.add_argument("--hparams", "-p", required=True, type=existing_path,
                        help="hyperparameter file (JSON or YAML; see docs/training.md)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="model file to write (.vxm.h5)")
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="folder for metrics.json, history.tsv, predictions.tsv and the PNG plots "
                             "(default: OUT without suffix + .report)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the hyperparameters' epochs")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="override the hyperparameters' seed")
    parser.add_argument("--name", default=None, help="model name in the metadata (default: file stem)")
    parser.add_argument("--no-standardize-labels", dest="standardize_labels", action="store_false",
                        help="train on the labels as they are (default: z-scored with training-split mean/sd)")
    parser.add_argument("--kmax", type=positive_int, default=6, help="longest k-mer of the ridge baseline (default 6)")
    parser.add_argument("--max-memory-gb", type=positive_float, default=8.0,
                        help="splits larger than this (uint8 windows) are streamed from the HDF5 file")
    parser.add_argument("--on-collapse", choices=ON_COLLAPSE, default="warn",
                        help="when, at the end of an epoch, the validation predictions' sd falls below "
                             f"{100 * SPREAD_FRACTION:g}%% of the labels' sd or every unit of the final ReLU layer "
                             "is dead: warn loudly and go on (warn, default) or stop training (stop); recorded in "
                             "metrics.json and the model's metadata either way")
    parser.add_argument("--nondeterministic", dest="deterministic", action="store_false",
                        help="allow non-deterministic (faster on GPU) TensorFlow ops")
    parser.add_argument("--require-beats-baselines", action="store_true",
                        help="exit with status 3 when the model (and, with --cv-folds, any ensemble member) does "
                             "not beat the mean and k-mer ridge baselines on the test split: it needs a positive "
                             "Pearson r, non-constant predictions and an r2 gain over each baseline whose paired "
                             f"bootstrap 95%% interval is above 0, on at least {MIN_TEST_GENES} test genes (fewer: "
                             "'too few test genes to tell', also status 3)")
    ens = parser.add_argument_group("cross-validation ensemble")
    ens.add_argument("--cv-folds", type=_fold_count, default=None, metavar="K",
                     help="also train K members, one per fold of the train + valid genes (fold i validates member "
                          "i, seed + i - 1), tested on the untouched test split, and export them as an ensemble "
                          "for `score --ensemble`; -o is still the model trained on the recorded split")
    ens.add_argument("--ensemble-out", type=Path, default=None, metavar="DIR",
                     help="folder of the --cv-folds ensemble (default: OUT without suffix + .ensemble)")


def _fold_count(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if k < 2:
        raise argparse.ArgumentTypeError(f"--cv-folds {k}: a cross-validation needs at least 2 folds")
    return k


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress train``; 0 on success, 3 when ``--require-beats-baselines`` fails."""
    if args.ensemble_out is not None and args.cv_folds is None:
        raise ModelError("--ensemble-out is the folder of a --cv-folds ensemble: add --cv-folds K (e.g. 5)")
    hparams = read_hparams(args.hparams)
    source = getattr(args, "command_line", None) or "varxpress train"
    result = train(args.dataset, hparams, args.out, args.report_dir, args.standardize_labels, args.epochs,
                   args.seed, args.name, args.kmax, args.max_memory_gb, args.deterministic,
                   verbose=0, source=source, on_collapse=args.on_collapse)
    failed = []
    if not result.metrics.get("beats_baselines", False):
        failed.append(f"the model: {result.metrics.get('verdict')} (see {result.report_dir}/metrics.json)")
    if args.cv_folds:
        folder = args.ensemble_out or args.out.with_name(args.out.name.split(".")[0] + ".ensemble")
        ens = train_cv(args.dataset, hparams, folder, args.cv_folds, args.standardize_labels, args.epochs,
                       args.seed, args.name, args.kmax, args.max_memory_gb, args.deterministic, source=source,
                       on_collapse=args.on_collapse)
        failed += [f"ensemble member {m['file']}" for m in ens.metrics["members"] if not m["beats_baselines"]]
    if failed and args.require_beats_baselines:
        log.error("not beating the baselines: %s; failing as --require-beats-baselines asks", "; ".join(failed))
        return 3
    return 0
