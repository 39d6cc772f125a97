"""The search: hyperopt's ``fmin`` over the space (TPE, annealing or random; locally or on Spark), resumed from and
persisted to the trial record, then the best trial (and the top-k ensemble) retrained with the final epochs."""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hyperopt import STATUS_OK, Trials, anneal, fmin, rand, tpe
from hyperopt.exceptions import AllTrialsFailed

from varxpress.errors import DatasetError, ModelError
from varxpress.io.outputs import open_output
from varxpress.learning.crossval import member_name, write_ensemble_report
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.training import train
from varxpress.learning.tuning.objective import Objective
from varxpress.learning.tuning.space import DEFAULT_SPACE, build_space, clip_space
from varxpress.learning.tuning.trials import TrialStore
from varxpress.models.ensemble import export_ensemble
from varxpress.models.metadata import sha256_file

__all__ = ["SearchResult", "top_k_trials", "search"]

log = logging.getLogger(__name__)


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
    algos = {"tpe": tpe.suggest, "anneal": anneal.suggest, "random": rand.suggest}
    if name not in algos:
        raise ModelError(f"algorithm {name!r} is not one of {', '.join(algos)}")
    return algos[name]


def _spark_trials(master: str, parallelism: int, timeout: float | None):
    try:
        from hyperopt import SparkTrials  # needs pyspark, an optional extra
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with PreparedSet(dataset) as pset:
        flat_space = clip_space(copy.deepcopy(DEFAULT_SPACE if space is None else space), pset)
    hspace = build_space(flat_space)
    store = TrialStore(out_dir)
    config = {"dataset": str(Path(dataset).resolve()), "dataset_sha256": sha256_file(dataset), "space": flat_space,
              "algo": algo, "seed": seed, "trial_epochs": trial_epochs}
    loaded = store.load()
    trials = None
    if loaded is not None:
        trials, old_config = loaded
        recorded = old_config.get("dataset_sha256")
        if (recorded or old_config.get("dataset")) not in (None, config["dataset_sha256" if recorded else "dataset"]):
            # the finished trials' losses were measured on other genes: the best of both would compare unlike things
            raise DatasetError(f"{store.path} holds trials run on {old_config.get('dataset')} (sha256 "
                               f"{str(recorded)[:12]}…), not on {dataset}: their losses cannot be compared; give "
                               f"another --out-dir, or the set those trials ran on")
        if old_config.get("space") not in (None, config["space"]):
            log.warning("resuming %s with a different search space than the run that wrote it", store.path)
        if "trial_epochs" in old_config and old_config["trial_epochs"] != trial_epochs:
            # a trial's loss is its best validation loss within its epochs: losses of other budgets do not compare
            log.warning("resuming %s with --trial-epochs %s, but its trials ran with %s: the losses of the two "
                        "budgets are ranked together (longer trials tend to win); give another --out-dir to "
                        "compare like with like", store.path, trial_epochs, old_config["trial_epochs"])
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
