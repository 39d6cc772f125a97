"""Train a network on a prepared set (``varxpress train``).

Route: hyperparameters (JSON/YAML, :func:`varxpress.models.hparams.load_hparams`) -> windows cropped from the prepared
set to the hyperparameters' ``upstream``/``downstream`` -> :func:`varxpress.models.network.build_network` -> Keras
``fit`` with early stopping on validation loss (the best epoch's weights are restored and kept as a checkpoint) -> a
model file in the format ``score`` reads, whose metadata records the window, the label scale, the feature
standardisation, the hyperparameters, the metrics and the training set's fingerprint.

Labels: by default standardised with the training split's mean and sd (``--no-standardize-labels`` to keep them
as they are); the model then outputs standardised values and its metadata carries ``label_mean``/``label_sd`` so
``log10 = out * sd + mean``. Metrics are always reported in label units.

Data feeding (:mod:`varxpress.learning.batches`): the training split is held in memory as uint8 windows when it is
smaller than ``--max-memory-gb`` (default 8); otherwise batches are streamed from the HDF5 file.

After training the model is checked against the training-mean and the k-mer ridge baselines on the test split
(:func:`varxpress.learning.baselines.check_against_baselines`: positive correlation, an r² gain over each baseline that
holds under a paired bootstrap over the test genes, enough test genes to tell): ``metrics.json`` carries
``beats_baselines``, ``verdict``, ``reasons`` and ``near_constant``, every metric has its bootstrap 95% interval
(``*_ci_low``/``*_ci_high``), a failing model is logged loudly, and ``--require-beats-baselines`` turns it into exit
status 3.

Cross-validation ensembles (``--cv-folds K``) are trained by :mod:`varxpress.learning.crossval`; ``-o`` is still
the ordinary model trained on the recorded split. The report beside the model is written by
:mod:`varxpress.learning.train_report`.

Repeatability: ``keras.utils.set_random_seed(seed)`` and, with ``deterministic`` (default), TensorFlow's
deterministic ops. Runs use a GPU when TensorFlow finds one, else the CPU.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varxpress import __version__
from varxpress.errors import DatasetError, ModelError
from varxpress.io.outputs import atomic_path
from varxpress.lazy_keras import import_keras
from varxpress.learning.baselines import baseline_metrics, check_against_baselines, regression_metrics, \
    warn_if_failed
from varxpress.learning.batches import WindowBatches, labels_of, load_split, predict_network
from varxpress.learning.bootstrap import Bootstrap
from varxpress.learning.collapse import SPREAD_FRACTION, CollapseMonitor, likely_causes
from varxpress.learning.prepared import Arrays, PreparedSet
from varxpress.learning.train_report import json_safe, write_train_report
from varxpress.models.hparams import read_hparams_file, validate_hparams
from varxpress.models.metadata import ModelMetadata
from varxpress.models.layers import weight_shapes
from varxpress.models.network import ExpressionModel, build_network, model_stem, set_weights

__all__ = ["read_hparams", "set_seed", "FitResult", "fit", "start_from", "TrainResult", "train", "ON_COLLAPSE"]

log = logging.getLogger(__name__)

ON_COLLAPSE = ("warn", "stop")


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow (``keras.utils.set_random_seed``); optionally deterministic TF ops."""
    keras = import_keras()
    import tensorflow as tf  # loaded by Keras just above; imported here so that --help need not start it

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        try:
            tf.config.experimental.enable_op_determinism()
        except (AttributeError, RuntimeError) as exc:  # pragma: no cover - old TF
            log.debug("deterministic ops unavailable: %s", exc)



@dataclass
class FitResult:
    """A fitted network. ``history``: per-epoch ``loss``/``val_loss`` (standardised units when labels are) and
    the collapse checks' ``val_pred_sd_ratio``/``dead_relu_fraction``; ``best_epoch`` 1-based;
    ``label_mean``/``label_sd``: the label standardisation (None when off); ``collapse``: ``detected`` (bool),
    ``events`` (one per collapsed epoch, :class:`varxpress.learning.collapse.CollapseMonitor`), ``threshold``, ``action``;
    ``started_from``: the provenance of the model whose weights training started from (None: random weights)."""

    keras_model: object
    history: dict
    best_epoch: int
    best_val_loss: float
    label_mean: float | None
    label_sd: float | None
    hparams: dict
    collapse: dict = field(default_factory=dict)
    started_from: dict | None = None


def read_hparams(path: str | os.PathLike) -> dict:
    """Hyperparameters from a JSON or YAML file *as written* (keys left out stay out, so :func:`fit` can fill
    ``upstream``/``downstream``/``n_features`` from the prepared set before
    :func:`varxpress.models.hparams.validate_hparams` fills the rest from ``DEFAULT_HPARAMS``)."""
    return read_hparams_file(path)


def _prepare_hparams(hparams: dict, pset: PreparedSet) -> dict:
    """Fill window and feature count from the set where the hyperparameters leave them out; validate."""
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



def fit(pset: PreparedSet, hparams: dict, standardize_labels: bool = True, epochs: int | None = None,
        checkpoint: str | os.PathLike | None = None, max_memory_gb: float = 8.0, cache: dict | None = None,
        verbose: int = 0, deterministic: bool = True,
        label_scale: tuple[float, float] | None = None, on_collapse: str = "warn",
        init_from: str | os.PathLike | None = None) -> FitResult:
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
        init_from: a model file (``.vxm.h5``) of the same architecture whose weights the network starts from
            (fine-tuning a network trained on another set) instead of a random initialisation.

    Raises:
        ModelError: hyperparameters that do not fit the set, or an ``init_from`` model of another architecture;
        DatasetError: an empty train or valid split.
    """
    if on_collapse not in ON_COLLAPSE:
        raise ModelError(f"on_collapse {on_collapse!r} is not one of {', '.join(ON_COLLAPSE)}")
    keras = import_keras()
    hp = _prepare_hparams(hparams, pset)
    seed = int(hp.get("seed", 0))
    set_seed(seed, deterministic)
    max_bytes = max_memory_gb * 1e9
    train_data = load_split(pset, "train", hp, max_bytes, cache)
    valid_data = load_split(pset, "valid", hp, max_bytes, cache)
    y_train, y_valid = labels_of(train_data), labels_of(valid_data)
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
    started_from = start_from(network, hp, init_from) if init_from is not None else None
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
    return FitResult(network, hist, best + 1, float(val[best]), mean, sd, hp, collapse, started_from)


def start_from(network, hp: dict, path: str | os.PathLike) -> dict:
    """Set ``network``'s weights (built from ``hp``) to those of the model file ``path``; return its provenance
    (file name, model name, SHA-256, its training set's fingerprint) for the new model's metadata.

    Raises:
        ModelError: the file's network has other layers or weight shapes (a different architecture).
    """
    source = ExpressionModel.load(path)
    weights = source.numpy_weights()
    want, have = weight_shapes(hp), weight_shapes(source.hparams)
    if want != have:
        differ = sorted(name for name in set(want) | set(have) if want.get(name) != have.get(name))
        windows = [(h["upstream"], h["downstream"]) for h in (source.hparams, hp)]
        why = (f"its window is {windows[0][0]} bp upstream and {windows[0][1]} downstream, these hyperparameters' "
               f"{windows[1][0]} and {windows[1][1]}: the first dense layer's width follows the window; set upstream "
               "and downstream as the model has them (or use global pooling)"
               if windows[0] != windows[1] else
               "a model to start from needs the same conv, dense, batch_norm and n_features settings")
        raise ModelError(f"{path}: its network differs from the one these hyperparameters build (layers "
                         f"{', '.join(differ)}); {why}")
    set_weights(network, weights)
    log.info("starting from the weights of %s (%s)", path, source.metadata.name)
    return {"file": Path(path).name, "name": source.metadata.name, "sha256": source.sha256,
            "training_data": source.metadata.training_data}


def _compile(network, hp: dict) -> None:
    keras = import_keras()
    lr = float(hp.get("learning_rate", 5e-4))
    name = str(hp.get("optimizer", "adam")).lower()
    if name == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=float(hp.get("momentum", 0.9)))
    elif name == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    else:
        raise ModelError(f"optimizer {name!r} is not one of adam, sgd")
    network.compile(optimizer=optimizer, loss="mse")



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
          label_scale: tuple[float, float] | None = None, on_collapse: str = "warn",
          init_from: str | os.PathLike | None = None) -> TrainResult:
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
    report = Path(report_dir) if report_dir else out.with_name(model_stem(out) + ".report")
    with tempfile.TemporaryDirectory(prefix="varxpress-train-") as tmp:
        # the best epoch's weights are kept aside until the run is complete: an interrupted run must not replace the
        # report of an earlier one (nor leave a lone weights file)
        checkpoint = Path(tmp) / "best.weights.h5"
        result = fit(pset, hp, standardize_labels, checkpoint=checkpoint, max_memory_gb=max_memory_gb,
                     verbose=verbose, deterministic=deterministic, label_scale=label_scale, on_collapse=on_collapse,
                     init_from=init_from)
        return _finish(result, pset, out, report, checkpoint, name, standardize_labels, source, kmax, max_memory_gb)


def _finish(result: FitResult, pset: PreparedSet, out: Path, report: Path, checkpoint: Path, name: str | None,
            standardize_labels: bool, source: str, kmax: int, max_memory_gb: float) -> TrainResult:
    """Score the trained network, then write the model, the report and the best epoch's weights."""
    hp = result.hparams
    log.info("trained %d epochs; best epoch %d, validation loss %.4g", len(result.history.get("loss", [])),
             result.best_epoch, result.best_val_loss)
    metrics, preds = _score_splits(pset, result, hp, kmax, max_memory_gb)
    metrics["collapse"] = result.collapse
    if result.collapse["detected"]:
        log.warning("!!! train: the model collapsed during training (epochs %s); see %s/metrics.json "
                    "(\"collapse\") !!!", ", ".join(str(e["epoch"]) for e in result.collapse["events"]), report)
    _save_model(result, pset, hp, metrics, out, name or model_stem(out), standardize_labels, source)
    report.mkdir(parents=True, exist_ok=True)
    write_train_report(report, result, metrics, preds)
    if checkpoint.exists():
        with atomic_path(report / "best.weights.h5") as dst:
            shutil.copyfile(checkpoint, dst)
    return TrainResult(out, metrics, report, result, {split: item[:3] for split, item in preds.items()})


def _score_splits(pset: PreparedSet, result: FitResult, hp: dict, kmax: int, max_memory_gb: float):
    """Model and baseline metrics on valid and test, in label units, and the guard on test."""
    max_bytes = max_memory_gb * 1e9
    shift, scale = (result.label_mean, result.label_sd) if result.label_mean is not None else (0.0, 1.0)
    metrics: dict = {"model": {}, "best_epoch": result.best_epoch,
                     "epochs_run": len(result.history.get("loss", []))}
    preds: dict = {}
    groups: dict = {}
    evals = {}
    for split in ("valid", "test"):
        data = load_split(pset, split, hp, max_bytes, None)
        y = labels_of(data).astype(np.float64)
        if len(y) == 0:
            log.warning("the %s split of %s is empty: no %s metrics", split, pset.path, split)
            continue
        p = predict_network(result.keras_model, data, hp) * scale + shift
        metrics["model"][split] = regression_metrics(y, p)
        preds[split] = (data.ids if isinstance(data, Arrays) else [pset.ids[i] for i in data[1]], y, p)
        groups[split] = pset.leak_groups(data.index if isinstance(data, Arrays) else data[1])
        if isinstance(data, Arrays):
            evals[split] = (data.X, data.features, y)
    train_data = load_split(pset, "train", hp, max_bytes, None)
    if isinstance(train_data, Arrays) and evals:
        base, base_preds = baseline_metrics((train_data.X, train_data.features, train_data.labels), evals, kmax)
        metrics["baselines"] = base
        for split in list(preds):
            preds[split] = preds[split] + ({k: v[split] for k, v in base_preds.items()},)
    else:
        log.warning("the set is too large for the in-memory baselines: run `varxpress evaluate` on a subset")
        metrics["baselines"] = {}
    boots = {}
    for split, item in preds.items():  # bootstrap 95% intervals over genes (leak groups), the same resamples for all
        boots[split] = Bootstrap(item[1], {"model": item[2], **(item[3] if len(item) > 3 else {})},
                                 groups=groups[split])
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
        metrics=json_safe(metrics),
        training_data=json_safe({**pset.fingerprint(), "feature_mean": pset.feature_mean.tolist(),
                       "feature_sd": pset.feature_sd.tolist(), "feature_transform": "(raw - mean) / sd; missing -> 0"}),
        source={"command": source, "trained_by": f"varxpress {__version__}",
                **({"started_from": json_safe(result.started_from)} if result.started_from else {})},
        varxpress_version=__version__,
    )
    model = ExpressionModel(result.keras_model, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)  # which logs where it saved the model
