"""Ensembles written by `varxpress train --cv-folds` and `varxpress hyperopt --ensemble-top-k`, read back by
`EnsembleModel.load` and `varxpress score --ensemble` (tiny planted-motif data, 1-2 epoch networks)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests._planted import planted_files, write_fasta
from varxpress.learning import dataset
from varxpress.learning import tuning
from varxpress.cli import main
from varxpress.models.ensemble import MANIFEST, EnsembleModel
from varxpress.errors import DatasetError
from varxpress.learning.prepared import PreparedSet
from varxpress.io.tables import read_label_table
from varxpress.learning import crossval

#: ~1 s per fit on a CPU: window 60 + 60 of a 160 bp set.
TINY_HPARAMS = {"upstream": 60, "downstream": 60, "conv": [{"filters": 4, "kernel": 6, "pool": 5}],
                "dense": [{"units": 4, "dropout": 0.0}], "learning_rate": 0.01, "batch_size": 32, "epochs": 2,
                "patience": 1, "seed": 0}
TINY_SPACE = {"upstream": 40, "downstream": 60, "n_conv": 1, "conv_filters": ["pow2", 2, 3],
              "conv_kernel": ["quniform", 3, 6, 1], "conv_pool": ["choice", 2, 5], "dense_units": ["pow2", 2, 3],
              "dense_dropout": 0.0, "learning_rate": ["loguniform", 1e-3, 1e-2], "batch_size": 32, "epochs": 2,
              "patience": 1, "seed": 0}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    """240 planted sequences of 160 bp (TSS at 80): 40 test, 40 valid, 160 train."""
    folder = tmp_path_factory.mktemp("ens_set")
    fasta, labels = planted_files(folder, n=240, length=160, seed=4)
    return dataset.prepare_sequences(fasta, read_label_table(labels), folder / "e.vxd.h5",
                                     options=dataset.SequenceSetOptions(test_size=40, valid_size=40, seed=0))


def _split_ids(report: Path, split: str) -> set[str]:
    pred = pd.read_csv(report / "predictions.tsv", sep="\t")
    return set(pred.loc[pred["split"] == split, "id"])


def _tiny_vcf(folder: Path) -> dict:
    """A 200 bp contig with a + strand gene at 101 and two SNVs in its window."""
    seq = "".join(np.random.default_rng(7).choice(list("ACGT"), size=200))
    write_fasta(folder / "g.fa", ["g"], [seq])
    (folder / "tss.tsv").write_text("G\tGENE\tg\t101\t+\n")
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    rows = [f"g\t{p}\tv{p}\t{seq[p - 1]}\t{other[seq[p - 1]]}\t.\t.\t." for p in (70, 120)]
    (folder / "in.vcf").write_text("\n".join(["##fileformat=VCFv4.2", "##contig=<ID=g,length=200>",
                                              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO", *rows]) + "\n")
    return {"vcf": folder / "in.vcf", "fasta": folder / "g.fa", "tss": folder / "tss.tsv"}


def test_cv_folds_deal_the_non_test_rows_evenly() -> None:
    split = np.array([0] * 7 + [1] * 3 + [2] * 4, dtype=np.uint8)
    folds = crossval.cv_folds(split, 3, seed=1)
    assert (folds[split == 2] == -1).all()
    assert sorted(np.bincount(folds[split != 2]).tolist()) == [3, 3, 4]
    assert np.array_equal(folds, crossval.cv_folds(split, 3, seed=1))
    assert not np.array_equal(folds, crossval.cv_folds(split, 3, seed=2))
    for k in (1, 11):
        with pytest.raises(DatasetError, match="2 <= K <= 10"):
            crossval.cv_folds(split, k)


def test_train_cv_folds_exports_a_scorable_ensemble(tiny_set: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "hp.yaml").write_text(yaml.safe_dump(TINY_HPARAMS))
    ens = tmp_path / "ens"
    argv = ["train", "-d", str(tiny_set), "-p", str(tmp_path / "hp.yaml"), "-o", str(tmp_path / "m.vxm.h5"),
            "--kmax", "2", "--quiet"]
    assert main(argv + ["--ensemble-out", str(ens)]) == 1  # without --cv-folds: refused before training
    assert "--ensemble-out is the folder of a --cv-folds ensemble: add --cv-folds K" in caplog.text
    assert not (tmp_path / "m.vxm.h5").exists()
    assert main(argv + ["--cv-folds", "3", "--ensemble-out", str(ens)]) == 0
    assert (tmp_path / "m.vxm.h5").exists()  # -o: still the model of the recorded split
    manifest = json.loads((ens / MANIFEST).read_text())
    assert [m["file"] for m in manifest["members"]] == [f"member_0{i}.vxm.h5" for i in (1, 2, 3)]
    source = manifest["source"]
    assert source["kind"] == "cv" and source["folds"] == 3 and source["seeds"] == [0, 1, 2]

    with PreparedSet(tiny_set) as pset:
        test_ids = {pset.ids[i] for i in pset.indices("test")}
        non_test = {pset.ids[i] for i in pset.indices(["train", "valid"])}
        test = pset.load("test", 60, 60)
    valid = [_split_ids(ens / f"member_0{i}.report", "valid") for i in (1, 2, 3)]
    assert sum(len(v) for v in valid) == len(non_test) == 200  # disjoint ...
    assert set().union(*valid) == non_test  # ... and covering the train + valid genes
    assert sorted(map(len, valid)) == [66, 67, 67] and source["valid_sizes"] == [len(v) for v in valid]
    for i in (1, 2, 3):
        assert _split_ids(ens / f"member_0{i}.report", "test") == test_ids  # the test split is untouched

    model = EnsembleModel.load(ens)
    assert len(model) == 3 and model.source == source
    weights = [np.concatenate([w.ravel() for w in m.keras_model.get_weights()]) for m in model.members]
    assert all(not np.allclose(weights[a], weights[b]) for a, b in ((0, 1), (0, 2), (1, 2)))
    assert len({m.metadata.label_sd for m in model.members}) == 1  # one label scale: comparable deltas
    assert [m.metadata.training_data["cv_fold"] for m in model.members] == [1, 2, 3]

    metrics = json.loads((ens / "metrics.json").read_text())
    assert metrics["test"]["n"] == 40 and len(metrics["members"]) == 3
    assert all(m["test"]["n"] == 40 for m in metrics["members"])
    pred = pd.read_csv(ens / "predictions.tsv", sep="\t").set_index("id")
    members = model.members[0].to_log10(model.predict(test.X.astype(np.float32)))  # (40, 3), label units
    assert pred.loc[test.ids, "prediction"].to_numpy() == pytest.approx(members.mean(axis=1), abs=1e-4)
    assert metrics["test"]["r2"] == pytest.approx(
        1 - np.sum((test.labels - members.mean(axis=1)) ** 2) / np.sum((test.labels - test.labels.mean()) ** 2),
        abs=1e-3)

    files = _tiny_vcf(tmp_path)
    tsv = tmp_path / "ens.tsv"
    assert main(["score", str(files["vcf"]), "--fasta", str(files["fasta"]), "--tss", str(files["tss"]),
                 "--ensemble", str(ens), "--out", str(tmp_path / "ens.vcf"), "--tsv", str(tsv), "--quiet"]) == 0
    rows = pd.read_csv(tsv, sep="\t", comment="#")
    assert len(rows) == 2 and rows["delta_sd"].notna().all() and (rows["delta_sd"] > 0).all()
    assert "Members=3" in (tmp_path / "ens.vcf").read_text()


def test_top_k_trials_ranks_by_loss_then_id_within_the_best_window() -> None:
    def trial(tid, loss, up=40, status="ok"):
        return {"tid": tid, "result": {"status": status, "loss": loss, "hparams": {"upstream": up, "downstream": 60}}}

    trials = [trial(0, 0.5), trial(1, 0.3), trial(2, 0.3), trial(3, 0.1, up=60), trial(4, 0.05, status="fail"),
              trial(5, 0.2)]
    # the best (tid 3) reads upstream 60, alone: an ensemble of one
    assert [t["tid"] for t in tuning.top_k_trials(trials, 3)] == [3]
    trials[3]["result"]["hparams"]["upstream"] = 40
    assert [t["tid"] for t in tuning.top_k_trials(trials, 3)] == [3, 5, 1]
    trials[3]["result"]["hparams"]["upstream"] = 60
    trials[3]["result"]["loss"] = 0.9
    assert [t["tid"] for t in tuning.top_k_trials(trials, 3)] == [5, 1, 2]  # tie 0.3: lower id first
    assert tuning.top_k_trials(trials, 0) == []


def test_hyperopt_ensemble_top_k_exports_the_best_trials(tiny_set: Path, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    out = tmp_path / "search"
    assert main(["hyperopt", "-d", str(tiny_set), "--space", str(tmp_path / "space.yaml"), "-o", str(out),
                 "--max-evals", "3", "--trial-epochs", "1", "--final-epochs", "1", "--algo", "random",
                 "--kmax", "2", "--ensemble-top-k", "2", "--quiet"]) == 0
    trials = tuning.TrialStore(out).load()[0].trials
    assert len(trials) == 3
    ranked = sorted((t for t in trials if t["result"]["status"] == "ok"),
                    key=lambda t: (t["result"]["loss"], t["tid"]))[:2]
    manifest = json.loads((out / "ensemble" / MANIFEST).read_text())
    source = manifest["source"]
    assert source["kind"] == "hyperopt-top-k"
    assert source["trials"] == [t["tid"] for t in ranked]
    assert source["losses"] == pytest.approx([t["result"]["loss"] for t in ranked])
    model = EnsembleModel.load(out / "ensemble")
    assert len(model) == 2
    for member, trial in zip(model.members, ranked):
        assert member.metadata.hparams["conv"] == trial["result"]["hparams"]["conv"]
        assert member.metadata.hparams["learning_rate"] == pytest.approx(trial["result"]["hparams"]["learning_rate"])
        assert member.metadata.hparams["epochs"] == 1  # --final-epochs
    # member 1 is the final model of the best trial, reused rather than trained twice
    assert manifest["members"][0]["sha256"] == hashlib.sha256((out / "best.vxm.h5").read_bytes()).hexdigest()
    assert json.loads((out / "ensemble" / "metrics.json").read_text())["test"]["n"] == 40
