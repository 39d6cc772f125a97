"""Hyperparameter search (``varxpress hyperopt``): TPE, annealing or random search with hyperopt, resumable.

The only module that imports hyperopt.

Search space
    A flat mapping of parameter names to a fixed value or a distribution ``[name, args...]`` (YAML or JSON file,
    ``--space``; :data:`DEFAULT_SPACE` otherwise, its window bounds clipped to the prepared set's):

    ``upstream``, ``downstream`` (window bounds), ``n_conv`` (1-4), ``conv_filters``, ``conv_kernel``,
    ``conv_dilation``, ``conv_pool`` (one draw *per conv layer*; ``conv2_pool`` etc. override a single layer),
    ``n_dense`` (1-2), ``dense_units``, ``dense_dropout`` (per dense layer, ``dense1_units`` ...),
    ``learning_rate``, ``batch_size``, ``optimizer``, ``momentum``, ``global_pool`` (``none``/``max``/``avg``),
    ``rc_augment`` (reverse-complement augmentation, true/false), ``n_features`` (fixed, or ``[choice, 0, N]``:
    without / with the set's N features), and fixed-only ``epochs``, ``patience``, ``seed``.

    Distributions: ``[choice, a, b, ...]``, ``[uniform, lo, hi]``, ``[quniform, lo, hi, q]``,
    ``[loguniform, lo, hi]`` and ``[qloguniform, lo, hi, q]`` (bounds in natural units, not logs),
    ``[pow2, lo, hi]`` (``2**k`` for integer ``k`` in ``[lo, hi]``).

Objective
    Each trial trains for ``--trial-epochs`` epochs (early stopping on validation loss inside that budget) and
    reports the best validation MSE (on standardised labels) as its loss. Hyperparameters the network refuses
    (e.g. pooling that leaves no positions) make a failed trial (``status: fail``), not a crashed search.

Persistence and resume
    After every finished trial the finished trials are written atomically (temporary file + rename) to
    ``OUT_DIR/trials.json`` (a JSON record of each finished trial, from which hyperopt's ``Trials`` are rebuilt)
    and summarised in ``OUT_DIR/trials.tsv``. Running the same command again loads them and continues up to
    ``--max-evals`` *in total*; a trial that was running when the search was interrupted (Ctrl-C, ``kill -9``, a
    lost machine) is simply proposed afresh. Loading the record runs no code; a ``trials.pkl`` (the pickle of
    earlier versions) is never unpickled: the search refuses to start beside one until it is moved away.

Spark
    ``--spark MASTER`` (``local[2]``, or a cluster URL such as ``spark://host:7077``) runs trials as Spark tasks
    through hyperopt's own ``SparkTrials`` (``--parallelism`` trials at once). Finished trials are persisted from
    the driver whenever the count of successful trials grows, and once more at the end (or on Ctrl-C), so resume
    works the same way; failed trials are persisted with the next success. The workers need varxpress and its
    dependencies installed; in local mode they use this Python (``PYSPARK_PYTHON`` defaults to it).

At the end the best trial's hyperparameters are written to ``OUT_DIR/best_hparams.json`` and, unless
``--no-final``, retrained with ``--final-epochs`` (default: the space's ``epochs``) by
:func:`varxpress.learning.training.train`, which saves the model and its report.

Ensemble
    ``--ensemble-top-k K`` retrains the ``K`` best successful trials (validation loss, ties by trial id) the same
    way and exports them with :func:`varxpress.models.ensemble.export_ensemble` to ``--ensemble-out`` (default
    ``OUT_DIR/ensemble``), source ``{"kind": "hyperopt-top-k", "trials": [...], "losses": [...]}``. Members must
    read one window, so only trials with the best trial's ``upstream``/``downstream`` are eligible (others are
    skipped, with a warning). The final model, when made, is reused as the best trial's member.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from varxpress.errors import DatasetError, ModelError, VarxpressError
from varxpress.io.outputs import open_output
from varxpress.learning.baselines import regression_metrics
from varxpress.learning.batches import import_keras, load_split, predict_network
from varxpress.learning.crossval import member_name, write_ensemble_report
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.training import fit, train
from varxpress.models.ensemble import export_ensemble
from varxpress.models.hparams import MAX_CONV, MAX_DENSE

__all__ = [
    "DEFAULT_SPACE",
    "read_space",
    "build_space",
    "flat_to_hparams",
    "Objective",
    "TrialStore",
    "SearchResult",
    "top_k_trials",
    "search",
]

log = logging.getLogger(__name__)

STORE_FORMAT = "varxpress-hyperopt-trials"

#: The Xpresso search space (Agarwal & Shendure 2020, STAR Methods), window bounds clipped to the prepared set.
DEFAULT_SPACE: dict[str, Any] = {
    "upstream": ["quniform", 1000, 10000, 500],
    "downstream": ["quniform", 1000, 10000, 500],
    "n_conv": ["choice", 1, 2, 3, 4],
    "conv_filters": ["pow2", 5, 7],
    "conv_kernel": ["quniform", 4, 20, 1],
    "conv_dilation": ["quniform", 1, 4, 1],
    "conv_pool": ["quniform", 1, 30, 1],
    "n_dense": ["choice", 1, 2],
    "dense_units": ["pow2", 1, 7],
    "dense_dropout": ["uniform", 0.0, 0.5],
    "learning_rate": ["loguniform", 1e-4, 1e-2],
    "batch_size": ["pow2", 5, 8],
    "optimizer": ["choice", "adam", "sgd"],
    "momentum": ["uniform", 0.8, 0.99],
    "epochs": 20,
    "patience": 4,
    "seed": 0,
}

_FIXED_ONLY = ("epochs", "patience", "seed", "n_features")
_LAYER_PARAMS = {"conv": ("filters", "kernel", "dilation", "pool"), "dense": ("units", "dropout")}
_TOP_PARAMS = ("upstream", "downstream", "n_conv", "n_dense", "learning_rate", "batch_size", "optimizer",
               "momentum", "global_pool", "rc_augment") + _FIXED_ONLY


# -- space --------------------------------------------------------------------------------------------------------------

def read_space(path: str | os.PathLike) -> dict[str, Any]:
    """Read a search-space file (YAML or JSON mapping; see the module docstring)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"cannot read search space {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"search space {path} must be a mapping of parameter -> value or [distribution, ...]")
    return data


def _known(name: str) -> bool:
    if name in _TOP_PARAMS:
        return True
    for kind, params in _LAYER_PARAMS.items():
        limit = MAX_CONV if kind == "conv" else MAX_DENSE
        for p in params:
            if name == f"{kind}_{p}" or any(name == f"{kind}{i}_{p}" for i in range(1, limit + 1)):
                return True
    return False


def _is_dist(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) >= 2 and isinstance(value[0], str)


def _dist(label: str, spec: Any):
    """A hyperopt expression for ``[name, args...]``, or the constant itself."""
    from hyperopt import hp
    from hyperopt.pyll import scope

    if not _is_dist(spec):
        return spec
    name, args = spec[0], list(spec[1:])
    try:
        if name == "choice":
            return hp.choice(label, args)
        if name == "uniform":
            return hp.uniform(label, float(args[0]), float(args[1]))
        if name == "quniform":
            return hp.quniform(label, float(args[0]), float(args[1]), float(args[2]))
        if name == "loguniform":
            return hp.loguniform(label, math.log(float(args[0])), math.log(float(args[1])))
        if name == "qloguniform":
            return hp.qloguniform(label, math.log(float(args[0])), math.log(float(args[1])), float(args[2]))
        if name == "pow2":
            return scope.int(2 ** hp.quniform(label, float(args[0]), float(args[1]), 1))
    except (IndexError, ValueError) as exc:
        raise ModelError(f"search space {label}: bad arguments {args} for {name}: {exc}") from exc
    raise ModelError(f"search space {label}: unknown distribution {name!r}; use choice, uniform, quniform, "
                     "loguniform, qloguniform or pow2")


def _max_layers(spec: Any, limit: int, label: str) -> int:
    values = spec[1:] if _is_dist(spec) and spec[0] == "choice" else [spec]
    if _is_dist(spec) and spec[0] != "choice":
        raise ModelError(f"search space {label}: use a constant or [choice, ...]")
    try:
        top = max(int(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"search space {label}: {spec!r} is not a layer count") from exc
    if not 1 <= top <= limit or min(int(v) for v in values) < 1:
        raise ModelError(f"search space {label}: layer counts must lie in 1..{limit}")
    return top


def clip_space(space: dict[str, Any], pset: PreparedSet) -> dict[str, Any]:
    """Clip the window bounds of a space to what the prepared set stores (a range clipped to one value becomes it)."""
    space = copy.deepcopy(space)
    for key, limit in (("upstream", pset.upstream), ("downstream", pset.downstream)):
        spec = space.get(key, limit)
        if _is_dist(spec) and spec[0] in ("quniform", "uniform", "qloguniform", "loguniform"):
            lo, hi = float(spec[1]), min(float(spec[2]), float(limit))
            spec = [spec[0], lo, hi, *spec[3:]] if lo < hi else int(hi)  # nothing left to search
        elif _is_dist(spec) and spec[0] == "choice":
            kept = [v for v in spec[1:] if int(v) <= limit] or [limit]
            spec = ["choice", *kept]
        elif not _is_dist(spec) and int(spec) > limit:
            raise DatasetError(f"search space {key}={spec} exceeds the prepared set's stored {key} ({limit})")
        space[key] = spec
    return space


def build_space(space: dict[str, Any]) -> dict[str, Any]:
    """The hyperopt space (a dict of expressions and constants) for a flat space mapping."""
    unknown = sorted(k for k in space if not _known(k))
    if unknown:
        raise ModelError(f"search space has unknown parameters {unknown}; see `varxpress hyperopt --help`")
    for key in _FIXED_ONLY:
        spec = space.get(key)
        if _is_dist(spec) and not (key == "n_features" and spec[0] == "choice"):
            raise ModelError(f"search space {key} must be a fixed value"
                             + (" or [choice, 0, N] (without / with the set's N features)"
                                if key == "n_features" else ""))
    out: dict[str, Any] = {}
    for key in _TOP_PARAMS:
        if key in space:
            out[key] = _dist(key, space[key])
    n_layers = {"conv": _max_layers(space.get("n_conv", 1), MAX_CONV, "n_conv"),
                "dense": _max_layers(space.get("n_dense", 1), MAX_DENSE, "n_dense")}
    for kind, params in _LAYER_PARAMS.items():
        for i in range(1, n_layers[kind] + 1):
            for p in params:
                spec = space.get(f"{kind}{i}_{p}", space.get(f"{kind}_{p}"))
                if spec is not None:
                    out[f"{kind}{i}_{p}"] = _dist(f"{kind}{i}_{p}", spec)
    return out


def flat_to_hparams(flat: dict[str, Any]) -> dict[str, Any]:
    """Nested hyperparameters (``conv``/``dense`` lists) from one flat sample of :func:`build_space`.

    Integral floats (hyperopt's ``quniform`` yields ``6.0``) become ints; numpy scalars become Python ones.
    """
    def clean(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    flat = {k: clean(v) for k, v in flat.items()}
    hp = {k: flat[k] for k in _TOP_PARAMS if k in flat and k not in ("n_conv", "n_dense")}
    for kind, params in _LAYER_PARAMS.items():
        n = int(flat.get(f"n_{kind}", 1))
        layers = []
        for i in range(1, n + 1):
            layer = {p: flat[f"{kind}{i}_{p}"] for p in params if f"{kind}{i}_{p}" in flat}
            layers.append(layer)
        if any(layers):
            hp[kind] = layers
    return hp


# -- objective ------------------------------------------------------------------------------------------------------------

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
        from hyperopt import STATUS_FAIL, STATUS_OK

        hp = flat_to_hparams(flat)
        try:
            pset = _OPEN_SETS.get(self.dataset) or _OPEN_SETS.setdefault(self.dataset, PreparedSet(self.dataset))
            result = fit(pset, hp, self.standardize_labels, epochs=self.trial_epochs, cache=_DATA_CACHE,
                         max_memory_gb=self.max_memory_gb, deterministic=self.deterministic)
        except (VarxpressError, ValueError) as exc:
            log.info("trial failed: %s", exc)
            return {"status": STATUS_FAIL, "error": str(exc), "hparams": _jsonable(hp)}
        if not np.isfinite(result.best_val_loss):
            return {"status": STATUS_FAIL, "error": "validation loss is not finite", "hparams": _jsonable(hp)}
        valid = load_split(pset, "valid", result.hparams, self.max_memory_gb * 1e9, _DATA_CACHE)
        pred = predict_network(result.keras_model, valid, result.hparams)
        y = valid.labels if hasattr(valid, "labels") else valid[0].labels[valid[1]]
        if result.label_mean is not None:
            pred = pred * result.label_sd + result.label_mean
        val = regression_metrics(y, pred)
        _clear_session()
        return {"status": STATUS_OK, "loss": float(result.best_val_loss), "hparams": _jsonable(result.hparams),
                "best_epoch": result.best_epoch, "epochs_run": len(result.history.get("loss", [])),
                "val_r2": _finite(val["r2"]), "val_pearson": _finite(val["pearson"])}


def _clear_session() -> None:
    import_keras().backend.clear_session()


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


# -- persistence ----------------------------------------------------------------------------------------------------------

class TrialStore:
    """Finished trials on disk: ``trials.json`` (one JSON record per trial) and ``trials.tsv`` (summary).

    The trial state is plain data: loading it never runs code, unlike a pickle (a ``trials.pkl`` written by an
    earlier varxpress is refused, not unpickled). Each record is a hyperopt trial document (``tid``, ``state``,
    ``spec``, ``result``, ``misc`` with the sampled ``vals``...), times as ISO-8601 strings; :meth:`load` rebuilds
    a ``hyperopt.Trials`` from them. Writes are atomic (temporary file in the same folder, then ``os.replace``), so
    a kill at any moment leaves either the previous or the new file, never a torn one.
    """

    LEGACY = "trials.pkl"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "trials.json"
        self.tsv = self.folder / "trials.tsv"

    @staticmethod
    def finished_docs(trials) -> list[dict]:
        """Deep copies of the finished (done or error) trial documents of ``trials``."""
        from hyperopt import JOB_STATE_DONE, JOB_STATE_ERROR

        return [copy.deepcopy(d) for d in list(trials._dynamic_trials)
                if d["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR)]

    @staticmethod
    def rebuild(docs: list[dict], ids: list[int] = ()) -> Any:
        """A plain ``hyperopt.Trials`` holding ``docs``; ``ids``: trial ids already handed out (kept unused)."""
        from hyperopt import Trials

        out = Trials()
        if docs:
            out._insert_trial_docs(docs)
        out.refresh()
        out._ids.update(int(i) for i in ids)
        out._ids.update(int(d["tid"]) for d in docs)
        return out

    def save(self, trials, config: dict | None = None) -> int:
        """Persist the finished trials; returns how many."""
        docs = self.finished_docs(trials)
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"format": STORE_FORMAT, "version": 2, "config": _jsonable(config or {}),
                   "ids": sorted(int(d["tid"]) for d in list(trials._dynamic_trials)),
                   "trials": [_encode_doc(d) for d in docs]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as handle:
            json.dump(payload, handle, indent=1, allow_nan=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._write_tsv(docs)
        return len(docs)

    def _write_tsv(self, docs: list[dict]) -> None:
        tmp = self.tsv.with_name(f".{self.tsv.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as handle:
            handle.write("tid\tstatus\tloss\tval_r2\tepochs_run\thparams\n")
            for t in sorted(docs, key=lambda d: d["tid"]):
                r = t.get("result", {})
                handle.write(f"{t['tid']}\t{r.get('status', 'error')}\t{r.get('loss', 'NA')}\t"
                             f"{r.get('val_r2', 'NA')}\t{r.get('epochs_run', 'NA')}\t"
                             f"{json.dumps(_jsonable(r.get('hparams', {})), sort_keys=True)}\n")
        os.replace(tmp, self.tsv)

    def load(self) -> tuple[Any, dict] | None:
        """``(Trials, config)`` from ``trials.json``, or None when there is none.

        Raises:
            DatasetError: the file is not a varxpress trials record, or only a legacy ``trials.pkl`` is there.
        """
        legacy = self.folder / self.LEGACY
        if not self.path.exists():
            if legacy.exists():
                raise DatasetError(f"{legacy} is a pickle written by an older varxpress; it is not loaded, since "
                                   f"unpickling a file can run any code. Move it away to start the search afresh "
                                   f"in {self.folder} (trials are now kept in {self.path.name})")
            return None
        try:
            with open(self.path) as handle:
                payload = json.load(handle)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot resume from {self.path}: {exc}; move it away to start afresh") from exc
        if not isinstance(payload, dict) or payload.get("format") != STORE_FORMAT \
                or not isinstance(payload.get("trials"), list):
            raise DatasetError(f"{self.path} is not a varxpress hyperopt trials file; move it away to start afresh")
        try:
            docs = [_decode_doc(d) for d in payload["trials"]]
            trials = self.rebuild(docs, payload.get("ids", []))
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise DatasetError(f"{self.path}: a trial record is malformed ({exc!r}); move the file away to start "
                               f"afresh") from exc
        if legacy.exists():
            log.warning("%s is ignored (a pickle of an older varxpress; never loaded): trials come from %s",
                        legacy, self.path)
        return trials, payload.get("config", {})


_TIME_KEYS = ("book_time", "refresh_time")


def _encode_doc(doc: dict) -> dict:
    """A hyperopt trial document as JSON data (times as ISO-8601 strings, numpy scalars as numbers)."""
    out = _jsonable({k: v for k, v in doc.items() if k not in _TIME_KEYS})
    for key in _TIME_KEYS:
        value = doc.get(key)
        out[key] = value.isoformat() if hasattr(value, "isoformat") else None
    return out


def _decode_doc(doc: dict) -> dict:
    """The inverse of :func:`_encode_doc`."""
    import datetime

    out = dict(doc)
    for key in _TIME_KEYS:
        if out.get(key) is not None:
            out[key] = datetime.datetime.fromisoformat(out[key])
    return out


# -- search -----------------------------------------------------------------------------------------------------------------

@dataclass
class SearchResult:
    """``trials``: all finished trials (plain ``hyperopt.Trials``); ``best``: the best trial's result dict
    (None when no trial succeeded); ``model_path``: the retrained model (None with ``final=False``);
    ``ensemble``: the top-k ensemble's manifest (None without ``ensemble_top_k``)."""

    trials: Any
    best: dict | None
    model_path: Path | None = None
    metrics: dict | None = None
    ensemble: Path | None = None


def _rank(trial: dict) -> tuple[float, int]:
    return float(trial["result"]["loss"]), int(trial["tid"])


def top_k_trials(trials: list[dict], k: int) -> list[dict]:
    """The ``k`` best successful trials by validation loss (ties: lower trial id first) that read the best
    trial's window (``upstream``, ``downstream``), best first; fewer when fewer qualify.

    Args:
        trials: hyperopt trial documents (``tid``, ``result`` with ``status``, ``loss``, ``hparams``).
    """
    ok = sorted((t for t in trials if t.get("result", {}).get("status") == "ok"), key=_rank)
    if not ok or k < 1:
        return []

    def window(trial: dict) -> tuple:
        return trial["result"]["hparams"].get("upstream"), trial["result"]["hparams"].get("downstream")

    chosen = [t for t in ok if window(t) == window(ok[0])][:k]
    considered = ok[:ok.index(chosen[-1]) + 1] if len(chosen) == k else ok
    skipped = [t["tid"] for t in considered if window(t) != window(ok[0])]
    if skipped:
        log.warning("ensemble: trials %s read another window than the best trial's (upstream, downstream = %s) "
                    "and are left out: ensemble members must read one window", skipped, window(ok[0]))
    if len(chosen) < k:
        log.warning("ensemble: only %d successful trials read the best trial's window; exporting %d, not %d",
                    len(chosen), len(chosen), k)
    return chosen


def _retrain(dataset, trial: dict, out: Path, out_dir: Path, flat_space: dict, final_epochs: int | None,
             **train_args):
    """Retrain one finished trial with the final epochs (``final_epochs``, else the space's ``epochs``) through
    :func:`varxpress.learning.training.train`; returns its :class:`~varxpress.learning.training.TrainResult`."""
    hp = copy.deepcopy(trial["result"]["hparams"])
    if final_epochs is not None:
        hp["epochs"] = int(final_epochs)
    elif "epochs" in flat_space:
        hp["epochs"] = int(flat_space["epochs"])
    return train(dataset, hp, out, source=f"varxpress hyperopt (trial {trial['tid']} of {out_dir})", **train_args)


def _export_top_k(dataset, ranked: list[dict], folder: Path, final_model, out_dir: Path, flat_space: dict,
                  final_epochs: int | None, **train_args) -> Path:
    """Retrain the ``ranked`` trials (reusing ``final_model``, the best trial's retrained model, when given) into
    ``folder`` and export them as an ensemble with its report; returns the manifest."""
    members = []
    for i, trial in enumerate(ranked, 1):
        if final_model is not None and i == 1:  # ranked[0] is the best trial, already retrained the same way
            members.append(final_model)
            continue
        log.info("ensemble member %d of %d: retraining trial %d", i, len(ranked), trial["tid"])
        members.append(_retrain(dataset, trial, folder / member_name(i), out_dir, flat_space, final_epochs,
                                **train_args))
    source = {"kind": "hyperopt-top-k", "trials": [int(t["tid"]) for t in ranked],
              "losses": [float(t["result"]["loss"]) for t in ranked], "search": str(out_dir.resolve()),
              "final_epochs": members[0].fit.hparams.get("epochs")}
    manifest = export_ensemble([m.model_path for m in members], folder, source=source,
                               names=[member_name(i) for i in range(1, len(members) + 1)])
    write_ensemble_report(folder, members, source)
    return manifest


def _algorithm(name: str):
    from hyperopt import anneal, rand, tpe

    algos = {"tpe": tpe.suggest, "anneal": anneal.suggest, "random": rand.suggest}
    if name not in algos:
        raise ModelError(f"algorithm {name!r} is not one of {', '.join(algos)}")
    return algos[name]


def _spark_trials(master: str, parallelism: int, timeout: float | None):
    try:
        from hyperopt import SparkTrials
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ModelError("--spark needs pyspark (and Java 17+): pip install 'varxpress[spark]'") from exc
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master(master).appName("varxpress-hyperopt")
               .config("spark.ui.enabled", "false").getOrCreate())
    return SparkTrials(parallelism=parallelism, spark_session=session, timeout=timeout)


def search(dataset: str | os.PathLike, out_dir: str | os.PathLike, space: dict[str, Any] | None = None,
           algo: str = "tpe", max_evals: int = 50, timeout: float | None = None, trial_epochs: int | None = 5,
           seed: int = 0, spark: str | None = None, parallelism: int = 2, standardize_labels: bool = True,
           final: bool = True, final_epochs: int | None = None, model_out: str | os.PathLike | None = None,
           max_memory_gb: float = 8.0, deterministic: bool = True, kmax: int = 6, ensemble_top_k: int = 0,
           ensemble_out: str | os.PathLike | None = None) -> SearchResult:
    """Run (or resume) a hyperparameter search; retrain and save the best model.

    Args:
        dataset: prepared set.
        out_dir: folder for ``trials.json``, ``trials.tsv``, ``best_hparams.json`` and (by default) the model.
        space: flat search space (see the module docstring); :data:`DEFAULT_SPACE` when None.
        algo: ``tpe``, ``anneal`` or ``random``.
        max_evals: total number of trials, finished ones of earlier runs included.
        timeout: seconds for this run's search (not counting the final retraining).
        trial_epochs: epochs per trial (None: the space's ``epochs``).
        seed: seed of the proposals (the trials' own training seed is the space's ``seed``).
        spark: Spark master URL to run trials on (``local[2]``), or None to run them here, one by one.
        parallelism: concurrent Spark trials.
        final, final_epochs, model_out: retrain the best trial (``final_epochs`` default: the space's
            ``epochs``) to ``model_out`` (default ``OUT_DIR/best.vxm.h5``).
        ensemble_top_k, ensemble_out: retrain the ``k`` best trials the same way (see :func:`top_k_trials`) and
            export them as an ensemble to ``ensemble_out`` (default ``OUT_DIR/ensemble``); 0: none.

    Returns:
        :class:`SearchResult`.

    Raises:
        KeyboardInterrupt: after saving the finished trials.
    """
    from hyperopt import STATUS_OK, fmin
    from hyperopt.exceptions import AllTrialsFailed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with PreparedSet(dataset) as pset:
        flat_space = clip_space(copy.deepcopy(DEFAULT_SPACE if space is None else space), pset)
    hspace = build_space(flat_space)
    store = TrialStore(out_dir)
    config = {"dataset": str(Path(dataset).resolve()), "space": flat_space, "algo": algo, "seed": seed,
              "trial_epochs": trial_epochs}
    loaded = store.load()
    trials = None
    if loaded is not None:
        trials, old_config = loaded
        for key in ("dataset", "space"):
            if old_config.get(key) not in (None, config[key]):
                log.warning("resuming %s with a different %s than the run that wrote it", store.path, key)
        log.info("resuming the search in %s: %d finished trials", out_dir, len(trials.trials))
    n_before = len(trials.trials) if trials is not None else 0
    if spark:
        spark_trials = _spark_trials(spark, parallelism, timeout)
        if trials is not None and trials.trials:
            spark_trials.insert_trial_docs(copy.deepcopy(trials.trials))
            spark_trials.refresh()
            spark_trials._ids.update(trials._ids)
        trials = spark_trials
    elif trials is None:
        from hyperopt import Trials

        trials = Trials()

    def persist(current, *args):
        n = store.save(current, config)
        log.info("%d finished trials saved to %s", n, store.path)
        return False, args

    objective = Objective(str(dataset), trial_epochs, standardize_labels, max_memory_gb, deterministic)
    if n_before < max_evals:
        try:
            fmin(objective, hspace, algo=_algorithm(algo), max_evals=max_evals, trials=trials, timeout=timeout,
                 rstate=np.random.default_rng(seed + n_before), early_stop_fn=persist, show_progressbar=False,
                 return_argmin=False)
        except AllTrialsFailed:
            pass  # reported below
        except KeyboardInterrupt:
            n = store.save(trials, config)
            log.warning("search interrupted: %d finished trials saved to %s; run the same command to resume",
                        n, store.path)
            raise
        except BaseException:
            store.save(trials, config)
            raise
    else:
        log.info("%d trials already finished (--max-evals %d): nothing to search", n_before, max_evals)
    store.save(trials, config)
    done = store.load()[0]
    ok = [t for t in done.trials if t["result"].get("status") == STATUS_OK]
    log.info("search: %d finished trials (%d ok, %d failed)", len(done.trials), len(ok), len(done.trials) - len(ok))
    if not ok:
        log.warning("no trial succeeded; see %s", store.tsv)
        return SearchResult(done, None)
    best = min(ok, key=_rank)
    best_result = {"tid": best["tid"], **best["result"]}
    with open_output(out_dir / "best_hparams.json") as handle:
        handle.write(json.dumps(best_result["hparams"], indent=2, sort_keys=True))
    log.info("best trial %d: validation loss %.4g, hyperparameters in %s", best["tid"], best_result["loss"],
             out_dir / "best_hparams.json")
    train_args = {"standardize_labels": standardize_labels, "kmax": kmax, "max_memory_gb": max_memory_gb,
                  "deterministic": deterministic}
    trained = None
    if final:
        model_out = Path(model_out) if model_out else out_dir / "best.vxm.h5"
        trained = _retrain(dataset, best, model_out, out_dir, flat_space, final_epochs, **train_args)
    manifest = None
    if ensemble_top_k:
        folder = Path(ensemble_out) if ensemble_out else out_dir / "ensemble"
        manifest = _export_top_k(dataset, top_k_trials(ok, ensemble_top_k), folder, trained, out_dir, flat_space,
                                 final_epochs, **train_args)
    return SearchResult(done, best_result, trained.model_path if trained else None,
                        trained.metrics if trained else None, manifest)
