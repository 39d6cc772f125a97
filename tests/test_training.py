"""Tests of varxpress.learning.training: a small network trained for real on planted-motif data (tests/_planted.py).

The planted labels depend on *where* motif A lies (core vs decoy region, same k-mer counts) and on an AND of two
motifs, so a CNN can explain nearly all of the variance while the training mean explains none and a k-mer ridge
very little.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._planted import MOTIF_A, SMALL_HPARAMS, trained_planted, write_fasta, write_labels
from varxpress.learning import dataset
from varxpress.learning import training
from varxpress.errors import DatasetError, ModelError
from varxpress.learning.prepared import PreparedSet
from varxpress.io.tables import read_label_table
from varxpress.learning import batches

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_planted(tmp_path_factory)


@pytest.mark.slow
def test_trained_model_learns_the_planted_structure(trained) -> None:
    assert trained["rc"] == 0  # --require-beats-baselines passed
    metrics = json.loads((trained["report"] / "metrics.json").read_text())
    test = metrics["model"]["test"]
    mean = metrics["baselines"]["mean"]["test"]
    kmer = metrics["baselines"]["kmer_ridge"]["test"]
    # measured: model test r2 ~0.95, mean baseline ~0.00, k-mer ridge ~0.08
    assert test["r2"] > 0.8
    assert test["r2"] > mean["r2"] + 0.7
    assert test["r2"] > kmer["r2"] + 0.5
    assert test["pearson"] > 0.9 and test["spearman"] > 0.85
    assert metrics["beats_baselines"] is True and metrics["near_constant"] is False
    assert metrics["verdict"] == "beats the baselines" and metrics["reasons"] == []
    assert metrics["r2_margin"]["kmer_ridge"] == pytest.approx(test["r2"] - kmer["r2"])
    assert metrics["paired"]["kmer_ridge"]["r2_diff_ci"][0] > 0.3  # the paired bootstrap's lower bound
    assert test["pearson_ci_low"] < test["pearson"] < test["pearson_ci_high"]
    assert kmer["r2_ci_high"] < test["r2_ci_low"]  # the intervals of model and ridge do not even overlap
    for split in ("valid", "test"):
        assert set(metrics["model"][split]) >= {"mse", "r2", "pearson", "spearman", "n"}
    assert metrics["model"]["test"]["n"] == 200 and metrics["model"]["valid"]["n"] == 200
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= SMALL_HPARAMS["epochs"]


@pytest.mark.slow
def test_predictions_are_not_constant(trained) -> None:
    pred = pd.read_csv(trained["report"] / "predictions.tsv", sep="\t")
    test = pred[pred["split"] == "test"]
    assert len(test) == 200 and test["prediction"].nunique() > 150
    assert test["prediction"].std() > 0.5 * test["observed"].std()
    # the model separates the planted classes: A in the core region adds 2 to the label
    core = {trained["ids"][i] for i, d in enumerate(trained["info"]) if d["core"]}
    in_core = test["id"].isin(core)
    assert test.loc[in_core, "prediction"].mean() - test.loc[~in_core, "prediction"].mean() > 1.5


@pytest.mark.slow
def test_report_files(trained) -> None:
    report = trained["report"]
    for name in ("learning_curves.png", "pred_vs_obs.png"):
        assert (report / name).read_bytes()[:8] == PNG
    history = pd.read_csv(report / "history.tsv", sep="\t")
    assert list(history.columns) == ["epoch", "loss", "val_loss", "val_pred_sd_ratio", "dead_relu_fraction"]
    assert len(history) >= 2
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert (report / "best.weights.h5").exists()


@pytest.mark.slow
def test_saved_model_carries_its_metadata(trained) -> None:
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(trained["model"])
    meta = model.metadata
    assert (meta.upstream, meta.downstream) == (100, 100)
    assert meta.output_scale == "standardized_log10"
    with PreparedSet(trained["dataset"]) as pset:
        train_labels = pset.labels[pset.split == 0]
        assert meta.label_mean == pytest.approx(float(train_labels.mean()), rel=1e-5)
        assert meta.label_sd == pytest.approx(float(train_labels.std()), rel=1e-5)
        assert meta.training_data["sha256"] == dataset.sha256_file(trained["dataset"])
        assert meta.training_data["labels"]["sha256"] == dataset.sha256_file(trained["folder"] / "labels.tsv")
        test = pset.load("test", 100, 100)
    assert meta.metrics["beats_baselines"] is True
    assert meta.hparams["conv"] == SMALL_HPARAMS["conv"]
    # the file's predictions are the report's predictions
    pred = model.to_log10(model.predict(test.X.astype(np.float32)))
    report = pd.read_csv(trained["report"] / "predictions.tsv", sep="\t").set_index("id")
    assert pred == pytest.approx(report.loc[test.ids, "prediction"].to_numpy(), abs=1e-4)


@pytest.mark.slow
def test_trained_model_scores_variants_unchanged(trained, tmp_path: Path) -> None:
    """`score` uses a `train` model as it is: destroying motif A in the core region lowers the prediction a lot,
    a substitution in plain background hardly changes it."""
    from varxpress.cli import main
    from varxpress.sequence.encode import one_hot
    from varxpress.models.network import ExpressionModel

    info, seqs = trained["info"], trained["seqs"]
    gene = next(i for i, d in enumerate(info) if d["core"] and not d["b"] and not d["c"])
    seq = seqs[gene]
    a = info[gene]["a_start"]
    assert seq[a:a + 8] == MOTIF_A
    write_fasta(tmp_path / "genome.fa", ["g"], [seq])
    (tmp_path / "tss.tsv").write_text("g	g	g	121	+\n")  # 1-based 121 = window index 120 = the TSS
    broken = "".join("A" if b != "A" else "C" for b in MOTIF_A)
    far = 210  # window index 190: no motif region
    far_alt = "A" if seq[far] != "A" else "C"
    vcf = ["##fileformat=VCFv4.2", "##contig=<ID=g,length=240>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
           f"g\t{a + 1}\tbreakA\t{MOTIF_A}\t{broken}\t.\t.\t.", f"g\t{far + 1}\tfar\t{seq[far]}\t{far_alt}\t.\t.\t."]
    (tmp_path / "in.vcf").write_text("\n".join(vcf) + "\n")
    rc = main(["score", str(tmp_path / "in.vcf"), "--fasta", str(tmp_path / "genome.fa"), "--tss",
               str(tmp_path / "tss.tsv"), "--model", str(trained["model"]), "--tsv", str(tmp_path / "out.tsv"),
               "-o", str(tmp_path / "out.vcf")])
    assert rc == 0
    rows = pd.read_csv(tmp_path / "out.tsv", sep="\t", comment="#").set_index("id")
    model = ExpressionModel.load(trained["model"])
    sd = model.metadata.label_sd
    # the planted effect is -2 log10 units for A moved out of the core; with no A left at all (never seen in
    # training, where A is always somewhere) the model still predicts a large drop
    assert rows.loc["breakA", "delta"] * sd < -0.5
    assert abs(rows.loc["far", "delta"]) * sd < 0.2
    assert abs(rows.loc["breakA", "delta"]) > 5 * abs(rows.loc["far", "delta"])
    # score's windows are the training windows: same reference prediction as `predict` on [TSS-100, TSS+100)
    ref = model.predict(one_hot([seq[20:220]]))[0]
    assert rows.loc["breakA", "ref_pred"] == pytest.approx(ref, abs=1e-4)
    alt_seq = seq[:a] + broken + seq[a + 8:]
    assert rows.loc["breakA", "alt_pred"] == pytest.approx(model.predict(one_hot([alt_seq[20:220]]))[0], abs=1e-4)


def _kmer_friendly_set(folder: Path, n: int = 400) -> Path:
    """Labels = count of a motif anywhere: a k-mer ridge explains them, an untrained network cannot."""
    rng = np.random.default_rng(3)
    seqs, labels = [], []
    for _ in range(n):
        s = list("".join(rng.choice(list("ACGT"), size=120)))
        k = int(rng.integers(0, 4))
        for j in range(k):
            s[10 + 25 * j:18 + 25 * j] = "GCATTCGA"
        seqs.append("".join(s))
        labels.append(k + rng.normal(0, 0.1))
    ids = [f"r{i}" for i in range(n)]
    write_fasta(folder / "k.fa", ids, seqs)
    write_labels(folder / "k.tsv", ids, np.array(labels))
    return dataset.prepare_sequences(folder / "k.fa", read_label_table(folder / "k.tsv"),
                                     folder / "k.vxd.h5",
                                     options=dataset.SequenceSetOptions(test_size=80, valid_size=80, seed=0))


def _tiny_hparams(**changes) -> dict:
    hp = {"upstream": 60, "downstream": 60, "conv": [{"filters": 4, "kernel": 6, "pool": 10}],
          "dense": [{"units": 4, "dropout": 0.0}], "learning_rate": 1e-7, "batch_size": 64, "epochs": 1,
          "patience": 1, "seed": 0}
    hp.update(changes)
    return hp


def test_require_beats_baselines_fails_an_untrained_model(tmp_path: Path) -> None:
    import yaml

    from varxpress.cli import main

    set_path = _kmer_friendly_set(tmp_path)
    (tmp_path / "hp.yaml").write_text(yaml.safe_dump(_tiny_hparams()))
    args = ["train", "-d", str(set_path), "-p", str(tmp_path / "hp.yaml"), "-o", str(tmp_path / "m.vxm.h5"),
            "--kmax", "4"]
    assert main(args + ["--require-beats-baselines"]) == 3
    metrics = json.loads((tmp_path / "m.report" / "metrics.json").read_text())
    assert metrics["beats_baselines"] is False
    assert metrics["baselines"]["kmer_ridge"]["test"]["r2"] > 0.5
    assert metrics["model"]["test"]["r2"] < metrics["baselines"]["kmer_ridge"]["test"]["r2"]
    assert (tmp_path / "m.vxm.h5").exists()  # the model is still written, for inspection
    assert main(args) == 0  # without the flag the failure is only reported


def test_training_is_repeatable_and_streaming_gives_the_same_model(tmp_path: Path) -> None:
    set_path = _kmer_friendly_set(tmp_path)
    hp = _tiny_hparams(learning_rate=0.01, epochs=2)
    with PreparedSet(set_path) as pset:
        valid = pset.load("valid", 60, 60)
        outs = []
        for max_gb in (8.0, 8.0, 0.0):  # in memory twice, then streamed from the HDF5 file
            result = training.fit(pset, hp, max_memory_gb=max_gb)
            outs.append(batches.predict_network(result.keras_model, valid, result.hparams))
    assert np.std(outs[0]) > 0
    assert np.array_equal(outs[0], outs[1])
    assert outs[2] == pytest.approx(outs[0], abs=1e-5)


def test_hparams_that_do_not_fit_the_set(tmp_path: Path) -> None:
    set_path = _kmer_friendly_set(tmp_path, n=200)
    with PreparedSet(set_path) as pset:
        with pytest.raises(ModelError, match="n_features=3"):
            training.fit(pset, _tiny_hparams(n_features=3))
        with pytest.raises(DatasetError, match="does not fit"):
            training.fit(pset, _tiny_hparams(upstream=61))


def test_read_hparams_keeps_what_the_file_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "hp.json").write_text(json.dumps({"conv": [{"filters": 2, "kernel": 3}], "dense": [{"units": 2}]}))
    assert training.read_hparams(tmp_path / "hp.json") == {"conv": [{"filters": 2, "kernel": 3}],
                                                           "dense": [{"units": 2}]}
    (tmp_path / "bad.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ModelError, match="mapping"):
        training.read_hparams(tmp_path / "bad.yaml")


def test_example_hparam_files_are_valid() -> None:
    from varxpress.models.hparams import validate_hparams

    folder = Path(__file__).resolve().parents[1] / "docs" / "examples"
    files = sorted(folder.glob("hparams_*.*"))
    assert files, f"no example hyperparameter files in {folder}"
    for path in files:
        validate_hparams(training.read_hparams(path))


def test_training_can_start_from_another_models_weights(tmp_path: Path, caplog) -> None:
    """``--init-from``: the network starts from the file's weights exactly (not a random draw), the saved model
    names where it started, and a model of another architecture is refused before any training."""
    import yaml

    from varxpress.cli import main
    from varxpress.models.network import ExpressionModel, build_network

    set_path = _kmer_friendly_set(tmp_path)
    (tmp_path / "hp.yaml").write_text(yaml.safe_dump(_tiny_hparams(learning_rate=0.01, epochs=2)))
    first = tmp_path / "first.vxm.h5"
    assert main(["train", "-d", str(set_path), "-p", str(tmp_path / "hp.yaml"), "-o", str(first), "--kmax", "2",
                 "--seed", "1"]) == 0
    source = ExpressionModel.load(first)
    hp = training._prepare_hparams(_tiny_hparams(seed=5), PreparedSet(set_path))
    network = build_network(hp)
    before = [w.copy() for layer in network.layers for w in layer.get_weights()]
    provenance = training.start_from(network, hp, first)
    after = [w for layer in network.layers for w in layer.get_weights()]
    wanted = [w for layer in source.numpy_weights().values() for w in layer.values()]
    assert len(after) == len(wanted) and all(np.array_equal(a, b) for a, b in zip(after, wanted))
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))  # seed 5's draw was replaced
    assert provenance["sha256"] == source.sha256 and provenance["file"] == "first.vxm.h5"

    second = tmp_path / "second-lr0.01.vxm.h5"  # a dot in the name: its report folder is its own
    assert main(["train", "-d", str(set_path), "-p", str(tmp_path / "hp.yaml"), "-o", str(second), "--kmax", "2",
                 "--init-from", str(first)]) == 0
    started = ExpressionModel.load(second).metadata.source["started_from"]
    assert started["sha256"] == source.sha256 and started["name"] == "first"
    assert (tmp_path / "second-lr0.01.report" / "metrics.json").exists()
    assert ExpressionModel.load(second).metadata.name == "second-lr0.01"
    assert "started_from" not in source.metadata.source

    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(_tiny_hparams(conv=[{"filters": 5, "kernel": 6, "pool": 10}])))
    assert main(["train", "-d", str(set_path), "-p", str(tmp_path / "wide.yaml"), "-o", str(tmp_path / "w.vxm.h5"),
                 "--init-from", str(first)]) == 1
    assert "its network differs" in caplog.text and "conv_1" in caplog.text
    assert not (tmp_path / "w.vxm.h5").exists()
    (tmp_path / "narrow.yaml").write_text(yaml.safe_dump(_tiny_hparams(upstream=40)))  # the window, not a layer
    caplog.clear()
    assert main(["train", "-d", str(set_path), "-p", str(tmp_path / "narrow.yaml"), "-o", str(tmp_path / "n.vxm.h5"),
                 "--init-from", str(first)]) == 1
    assert "its window is 60 bp upstream and 60 downstream, these hyperparameters' 40 and 60" in caplog.text


def test_an_interrupted_training_leaves_the_earlier_report_and_no_lone_weights(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C after some epochs (here: when the fit is done, before anything is written) must not replace the
    best weights of an earlier run's report, nor leave a weights file where no report was."""
    set_path = _kmer_friendly_set(tmp_path)
    earlier = tmp_path / "m.report"
    earlier.mkdir()
    (earlier / "best.weights.h5").write_bytes(b"the earlier run's")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_finish", interrupted)
    for out in (tmp_path / "m.vxm.h5", tmp_path / "fresh.vxm.h5"):
        with pytest.raises(KeyboardInterrupt):
            training.train(set_path, _tiny_hparams(epochs=2), out, kmax=2)
    assert (earlier / "best.weights.h5").read_bytes() == b"the earlier run's"
    assert not (tmp_path / "fresh.report").exists() and not (tmp_path / "m.vxm.h5").exists()
