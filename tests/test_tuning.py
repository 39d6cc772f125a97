"""Tests of varxpress.learning.tuning: space building, persisted trials, resume after kill -9, SparkTrials in local mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests._planted import planted_files
from varxpress.learning import dataset
from varxpress.learning import tuning
from varxpress.errors import ModelError
from varxpress.learning.prepared import PreparedSet
from varxpress.io.tables import read_label_table

ROOT = Path(__file__).resolve().parents[1]

#: Tiny trials (window 40 + 60 of a 160 bp set, 4-8 filters): ~1-3 s each on a CPU.
TINY_SPACE = {
    "upstream": ["choice", 40, 60], "downstream": 60, "n_conv": ["choice", 1, 2], "conv_filters": ["pow2", 2, 3],
    "conv_kernel": ["quniform", 3, 6, 1], "conv_pool": ["choice", 2, 5], "dense_units": ["pow2", 2, 3],
    "dense_dropout": 0.0, "learning_rate": ["loguniform", 1e-3, 1e-2], "batch_size": 32, "epochs": 3,
    "patience": 1, "seed": 0,
}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tuning")
    fasta, labels = planted_files(folder, n=300, length=160, seed=2)
    (folder / "space.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    return dataset.prepare_sequences(fasta, read_label_table(labels), folder / "t.vxd.h5",
                                     options=dataset.SequenceSetOptions(test_size=50, valid_size=50, seed=0))


def _load_trials(folder: Path):
    return tuning.TrialStore(folder).load()[0]


def _signature(trial) -> tuple:
    return trial["tid"], tuple(sorted((k, tuple(v)) for k, v in trial["misc"]["vals"].items()))


# -- space --------------------------------------------------------------------------------------------------------------

def test_flat_space_to_hparams() -> None:
    from hyperopt.pyll.stochastic import sample

    space = tuning.build_space({**TINY_SPACE, "n_conv": ["choice", 3], "conv2_pool": 1})
    assert "conv3_filters" in space and "conv4_filters" not in space and space["conv2_pool"] == 1
    flat = sample(space, rng=np.random.default_rng(0))
    hp = tuning.flat_to_hparams(flat)
    assert len(hp["conv"]) == 3 and hp["conv"][1]["pool"] == 1
    assert all(isinstance(layer["kernel"], int) for layer in hp["conv"])
    assert hp["conv"][0]["filters"] in (4, 8) and hp["upstream"] in (40, 60) and hp["downstream"] == 60
    assert "n_conv" not in hp and len(hp["dense"]) == 1


@pytest.mark.parametrize("space, match", [
    ({"conv_widht": 3}, "unknown parameters"),
    ({"epochs": ["choice", 1, 2]}, "fixed value"),
    ({"n_conv": ["choice", 1, 5]}, "1..4"),
    ({"learning_rate": ["lognormal", 1, 2]}, "unknown distribution"),
])
def test_bad_spaces(space: dict, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        tuning.build_space(space)


def test_default_space_is_clipped_to_the_set(tiny_set: Path) -> None:
    with PreparedSet(tiny_set) as pset:
        clipped = tuning.clip_space(tuning.DEFAULT_SPACE, pset)
    assert clipped["upstream"] == 80 and clipped["downstream"] == 80  # the set stores 80 + 80 < 1000
    tuning.build_space(clipped)


# -- search, persistence, resume ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_search_resumes_after_kill_9_without_losing_or_repeating_trials(tiny_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    space = tiny_set.parent / "space.yaml"
    cmd = [sys.executable, "-m", "varxpress", "hyperopt", "--dataset", str(tiny_set), "--space", str(space),
           "--out-dir", str(out), "--max-evals", "50", "--trial-epochs", "2", "--no-final", "--seed", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    n = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "trials.json").exists():
                n = len(_load_trials(out).trials)
                if n >= 3:
                    break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9, mid-trial most likely
        _, err = proc.communicate()
    assert n >= 3, f"the search did not persist 3 trials in time: {err.decode()[-2000:]}"
    before = _load_trials(out)  # what survived the kill (possibly more than n)
    saved = {_signature(t) for t in before.trials}
    assert len(saved) == len(before.trials) >= 3
    assert all(t["result"]["status"] == "ok" for t in before.trials)
    # resume up to 6 trials in total, in this process
    result = tuning.search(tiny_set, out, tuning.read_space(space), max_evals=6, trial_epochs=2, seed=1,
                           final=False)
    after = _load_trials(out)
    tids = [t["tid"] for t in after.trials]
    assert len(after.trials) == 6 and len(set(tids)) == 6  # none lost, none repeated
    assert saved <= {_signature(t) for t in after.trials}  # the finished ones kept, unchanged
    for old in before.trials:
        new = next(t for t in after.trials if t["tid"] == old["tid"])
        assert new["result"] == old["result"]
    assert result.best["loss"] == min(t["result"]["loss"] for t in after.trials)
    assert (out / "best_hparams.json").exists()
    lines = (out / "trials.tsv").read_text().splitlines()
    assert lines[0].startswith("tid\tstatus\tloss") and len(lines) == 7
    # a further run with the same --max-evals has nothing to do
    again = tuning.search(tiny_set, out, tuning.read_space(space), max_evals=6, trial_epochs=2, final=False)
    assert len(again.trials.trials) == 6


def test_interrupted_search_saves_finished_trials(tiny_set: Path, tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C (KeyboardInterrupt) during the third trial: two finished trials are on disk, then resumed."""
    calls = {"n": 0}
    real_call = tuning.Objective.__call__

    def interrupting(self, flat):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_call(self, flat)

    monkeypatch.setattr(tuning.Objective, "__call__", interrupting)
    space = {**TINY_SPACE, "n_conv": 1, "upstream": 40}
    with pytest.raises(KeyboardInterrupt):
        tuning.search(tiny_set, tmp_path, space, algo="random", max_evals=5, trial_epochs=1, final=False)
    assert len(_load_trials(tmp_path).trials) == 2
    monkeypatch.setattr(tuning.Objective, "__call__", real_call)
    result = tuning.search(tiny_set, tmp_path, space, algo="anneal", max_evals=3, trial_epochs=1, final=True,
                           final_epochs=1, model_out=tmp_path / "best.vxm.h5")
    assert sorted(t["tid"] for t in result.trials.trials) == [0, 1, 3]  # tid 2 (interrupted) is not reused
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(result.model_path)
    assert model.metadata.hparams["upstream"] == 40 and "beats_baselines" in model.metadata.metrics


def test_trials_of_another_set_are_not_resumed(tiny_set: Path, tmp_path: Path) -> None:
    """The finished trials' losses were measured on their set's genes: a search on another set in the same folder
    would pick its best among unlike numbers, so it is refused, and the folder is left as it was."""
    from varxpress.errors import DatasetError

    space = {**TINY_SPACE, "n_conv": 1, "upstream": 40}
    tuning.search(tiny_set, tmp_path / "s", space, algo="random", max_evals=1, trial_epochs=1, final=False)
    before = (tmp_path / "s" / "trials.json").read_bytes()
    fasta, labels = planted_files(tmp_path, n=300, length=160, seed=9)
    other = dataset.prepare_sequences(fasta, read_label_table(labels), tmp_path / "other.vxd.h5",
                                      options=dataset.SequenceSetOptions(test_size=50, valid_size=50, seed=0))
    with pytest.raises(DatasetError, match="holds trials run on .*t.vxd.h5.*their losses cannot be compared"):
        tuning.search(other, tmp_path / "s", space, algo="random", max_evals=2, trial_epochs=1, final=False)
    assert (tmp_path / "s" / "trials.json").read_bytes() == before


def test_resuming_with_another_trial_budget_is_warned_about(tiny_set: Path, tmp_path: Path, caplog) -> None:
    """A trial's loss is its best within --trial-epochs: 1-epoch and 3-epoch losses ranked together favour the
    longer trials, so resuming with another budget says so (the same budget says nothing)."""
    space = {**TINY_SPACE, "n_conv": 1, "upstream": 40}
    tuning.search(tiny_set, tmp_path / "s", space, algo="random", max_evals=1, trial_epochs=1, final=False)
    tuning.search(tiny_set, tmp_path / "s", space, algo="random", max_evals=1, trial_epochs=1, final=False)
    assert "--trial-epochs" not in caplog.text
    tuning.search(tiny_set, tmp_path / "s", space, algo="random", max_evals=2, trial_epochs=2, final=False)
    assert "with --trial-epochs 2, but its trials ran with 1" in caplog.text


class _Planted:
    """Unpickling this creates ``path``: what a crafted trials.pkl could do (run any code)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_a_legacy_pickle_is_refused_never_unpickled(tiny_set: Path, tmp_path: Path, caplog) -> None:
    import pickle

    from varxpress.cli import main

    marker = tmp_path / "PWNED"
    out = tmp_path / "search"
    out.mkdir()
    (out / "trials.pkl").write_bytes(pickle.dumps({"format": tuning.STORE_FORMAT, "trials": _Planted(marker)}))
    rc = main(["hyperopt", "-d", str(tiny_set), "-o", str(out), "--max-evals", "1", "--no-final"])
    assert rc == 1 and not marker.exists()
    assert "not loaded" in caplog.text and "trials.pkl" in caplog.text
    assert "never code" in " ".join(build_help("hyperopt").split())


def test_trial_records_are_plain_json_and_rebuild_hyperopt_trials(tiny_set: Path, tmp_path: Path) -> None:
    import json

    space = {**TINY_SPACE, "n_conv": 1, "upstream": 40}
    first = tuning.search(tiny_set, tmp_path, space, algo="random", max_evals=2, trial_epochs=1, final=False)
    record = json.loads((tmp_path / "trials.json").read_text())
    assert record["format"] == tuning.STORE_FORMAT and len(record["trials"]) == 2
    assert isinstance(record["trials"][0]["book_time"], str)
    loaded = _load_trials(tmp_path)
    assert [_signature(t) for t in loaded.trials] == [_signature(t) for t in first.trials.trials]
    assert [t["result"] for t in loaded.trials] == [t["result"] for t in first.trials.trials]
    assert loaded.trials[0]["book_time"] == first.trials.trials[0]["book_time"]


def build_help(command: str) -> str:
    from varxpress.cli import build_parser

    parser = build_parser(only=command)
    return parser._subparsers._group_actions[0].choices[command].format_help()


def test_failed_trials_do_not_stop_the_search(tiny_set: Path, tmp_path: Path) -> None:
    space = {**TINY_SPACE, "n_conv": 1, "dense_dropout": ["uniform", 1.0, 1.5]}  # a dropout the network refuses
    result = tuning.search(tiny_set, tmp_path, space, algo="random", max_evals=2, trial_epochs=1, final=False)
    assert [t["result"]["status"] for t in result.trials.trials] == ["fail", "fail"]
    assert "dropout" in result.trials.trials[0]["result"]["error"]
    assert result.best is None


def test_pools_larger_than_what_is_left_are_capped_and_recorded() -> None:
    """The Xpresso space draws up to 30 per layer for up to 4 layers: on a 1.5 kb window 30 x 30 leaves one
    position, so a third and fourth pool of 30 are capped at it; a window that holds every pool is unchanged."""
    flat = {"upstream": 1000.0, "downstream": 500.0, "n_conv": 4, "n_dense": 1, "dense1_units": 8}
    for i in range(1, 5):
        flat.update({f"conv{i}_filters": 8, f"conv{i}_kernel": 5.0, f"conv{i}_pool": 30.0})
    hp = tuning.flat_to_hparams(flat)
    assert [layer["pool"] for layer in hp["conv"]] == [30, 30, 1, 1]  # 1500 -> 50 -> 1 -> 1 -> 1
    from varxpress.models.hparams import flattened_length
    assert flattened_length(hp) == 8
    hp = tuning.flat_to_hparams({**flat, "upstream": 7000.0, "downstream": 3500.0, "n_conv": 2})
    assert [layer["pool"] for layer in hp["conv"]] == [30, 30]  # 10,500 -> 350 -> 11


def test_a_short_window_search_trains_its_capped_pools(tiny_set: Path, tmp_path: Path) -> None:
    space = {**TINY_SPACE, "upstream": 40, "downstream": 10, "n_conv": 2, "conv_pool": ["choice", 10, 20]}
    result = tuning.search(tiny_set, tmp_path, space, algo="random", max_evals=2, trial_epochs=1, final=False)
    assert [t["result"]["status"] for t in result.trials.trials] == ["ok", "ok"]  # 50 bp, pooled 100x+ as drawn
    for trial in result.trials.trials:
        first, second = (layer["pool"] for layer in trial["result"]["hparams"]["conv"])
        assert first in (10, 20) and second == 50 // first  # what was trained, as recorded


def test_hyperopt_cli(tiny_set: Path, tmp_path: Path) -> None:
    from varxpress.cli import main

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({**TINY_SPACE, "n_conv": 1}))
    rc = main(["hyperopt", "-d", str(tiny_set), "--space", str(space), "-o", str(tmp_path / "s"),
               "--max-evals", "2", "--trial-epochs", "1", "--final-epochs", "1", "--algo", "random", "--kmax", "2"])
    assert rc == 0
    assert (tmp_path / "s" / "best.vxm.h5").exists() and (tmp_path / "s" / "best.report" / "metrics.json").exists()


# -- Spark ----------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_spark_trials_in_local_mode_persist_and_resume(tiny_set: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'varxpress[spark]')")
    import shutil

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime for Spark (install a JDK 17+)")
    space = {**TINY_SPACE, "n_conv": 1}
    first = tuning.search(tiny_set, tmp_path, space, max_evals=2, trial_epochs=1, spark="local[2]",
                          parallelism=2, final=False)
    assert len(first.trials.trials) == 2
    saved = {_signature(t) for t in _load_trials(tmp_path).trials}
    assert all(t["result"]["status"] == "ok" for t in first.trials.trials)
    second = tuning.search(tiny_set, tmp_path, space, max_evals=3, trial_epochs=1, spark="local[2]",
                           parallelism=2, final=False)
    after = _load_trials(tmp_path).trials
    assert len(after) == 3 and len({t["tid"] for t in after}) == 3
    assert saved <= {_signature(t) for t in after}
    assert second.best is not None
