"""Tests of varxpress.learning.evaluation: metrics, k-mer counting, baselines, ``evaluate`` and ``predict``."""

from __future__ import annotations

import copy
import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._planted import planted_set, trained_planted, write_fasta
from tests.realdata import DATA, need
from varxpress.sequence.encode import one_hot
from varxpress.learning.baselines import KmerRidgeBaseline, kmer_counts, regression_metrics
from varxpress.learning.evaluation import evaluate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return trained_planted(tmp_path_factory)


# -- metrics and k-mers ---------------------------------------------------------------------------------------------

def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = regression_metrics(y, y)
    assert perfect["r2"] == 1 and perfect["mse"] == 0 and perfect["pearson"] == pytest.approx(1)
    mean = regression_metrics(y, np.full(4, 2.5))
    assert mean["r2"] == 0 and np.isnan(mean["pearson"]) and mean["pred_sd"] == 0
    flipped = regression_metrics(y, y[::-1])
    assert flipped["spearman"] == pytest.approx(-1) and flipped["r2"] == pytest.approx(-3)
    assert regression_metrics([], [])["n"] == 0


def _naive_counts(seq: str, kmax: int) -> np.ndarray:
    out = []
    for k in range(1, kmax + 1):
        index = {"".join(p): i for i, p in enumerate(itertools.product("ACGT", repeat=k))}
        counts = np.zeros(4**k)
        for i in range(len(seq) - k + 1):
            if seq[i:i + k] in index:
                counts[index[seq[i:i + k]]] += 1
        out.append(counts)
    return np.concatenate(out)


def test_kmer_counts_match_a_naive_count_and_skip_n() -> None:
    seqs = ["ACGTTGCANNACGTAC", "AAAAAAAAAAAAAAAA", "NNNNNNNNNNNNNNNN", "GATTACAGATTACAGA"]
    counts = kmer_counts(one_hot(seqs).astype(np.uint8), kmax=4, block=3)
    assert counts.shape == (4, 4 + 16 + 64 + 256)
    for row, seq in zip(counts, seqs):
        assert np.array_equal(row, _naive_counts(seq, 4))
    assert counts[1, 0] == 16 and counts[1, 4] == 15  # A, AA
    assert counts[2].sum() == 0


def test_kmer_ridge_learns_motif_counts() -> None:
    rng = np.random.default_rng(0)
    seqs, y = [], []
    for _ in range(600):
        s = list("".join(rng.choice(list("ACGT"), size=80)))
        k = int(rng.integers(0, 3))
        for j in range(k):
            s[5 + 30 * j:11 + 30 * j] = "GATTAC"
        seqs.append("".join(s))
        y.append(k)
    X = one_hot(seqs).astype(np.uint8)
    ridge = KmerRidgeBaseline(kmax=6).fit(X[:500], np.zeros((500, 0)), np.array(y[:500]))
    pred = ridge.predict(X[500:], np.zeros((100, 0)))
    assert regression_metrics(np.array(y[500:]), pred)["r2"] > 0.6  # measured 0.74


def test_kmer_ridge_chooses_its_k_on_the_training_genes_only() -> None:
    """Labels that only GC content explains, few genes: the 1..6-mer ridge drowns the signal in 5,460 columns, so
    the baseline must pick a small k by its leave-one-out error on the fit genes (a fixed k = kmax would make it a
    weaker baseline than it can be), and the chosen fit is exactly the fixed-k ridge of that k."""
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), size=120, p=[(1 - g) / 2, g / 2, g / 2, (1 - g) / 2]))
            for g in rng.uniform(0.3, 0.7, 400)]
    X = one_hot(seqs).astype(np.uint8)
    y = X[:, :, 1:3].sum(axis=(1, 2)) / 120 + rng.normal(0, 0.03, 400)
    none = np.zeros((300, 0))
    chosen = KmerRidgeBaseline(kmax=6).fit(X[:300], none, y[:300])
    assert chosen.k_ <= 2 and set(chosen.loo_mse_) == set(range(1, 7))
    assert chosen.loo_mse_[chosen.k_] == min(chosen.loo_mse_.values()) < chosen.loo_mse_[6]
    fixed6 = KmerRidgeBaseline(kmax=6, choose_k=False).fit(X[:300], none, y[:300])
    assert fixed6.k_ == 6 and set(fixed6.loo_mse_) == {6}
    held = (X[300:], np.zeros((100, 0)))
    r2 = {name: regression_metrics(y[300:], ridge.predict(*held))["r2"] for name, ridge in
          (("chosen", chosen), ("fixed6", fixed6))}
    assert r2["chosen"] > r2["fixed6"], r2  # measured 0.93 against 0.91
    same = KmerRidgeBaseline(kmax=chosen.k_, choose_k=False).fit(X[:300], none, y[:300])
    assert np.allclose(same.predict(*held), chosen.predict(*held), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="kmax=0"):
        KmerRidgeBaseline(kmax=0)


# -- evaluate ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_evaluate_cli_on_a_trained_model(trained, tmp_path: Path) -> None:
    from varxpress.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(trained["model"]), "--dataset", str(trained["dataset"]),
                 "--require-beats-baselines", "-o", str(out)]) == 0
    table = pd.read_csv(out / "evaluation.tsv", sep="\t").set_index("predictor")
    assert list(table.index) == ["model", "mean", "kmer_ridge"]
    assert (table["n"] == 200).all()
    assert table.loc["model", "r2"] > 0.8
    assert table.loc["model", "r2"] > table.loc["kmer_ridge", "r2"] + 0.5
    assert table.loc["model", "r2"] > table.loc["mean", "r2"] + 0.7
    assert not table.loc["model", "calibrated"]
    # the same numbers as train's own report on the test split
    metrics = json.loads((trained["report"] / "metrics.json").read_text())
    assert table.loc["model", "r2"] == pytest.approx(metrics["model"]["test"]["r2"], abs=1e-4)
    assert table.loc["kmer_ridge", "r2"] == pytest.approx(metrics["baselines"]["kmer_ridge"]["test"]["r2"], abs=1e-4)
    # the k the ridge chose: the same in both, a whole number, and only on the ridge's row
    k = metrics["baselines"]["kmer_ridge"]["test"]["kmer_k"]
    assert isinstance(k, int) and 1 <= k <= 6
    kcol = (out / "evaluation.tsv").read_text().splitlines()
    col = kcol[0].split("\t").index("kmer_k")
    assert [line.split("\t")[col] for line in kcol[1:]] == ["", "", str(k)]
    report = json.loads((out / "evaluation.json").read_text())
    assert report["beats_baselines"] is True and report["split"] == "test"
    assert report["metrics"]["kmer_ridge"]["kmer_k"] == k and report["metrics"]["model"]["kmer_k"] is None
    assert (out / "evaluation.png").read_bytes()[:8] == PNG
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert list(preds.columns) == ["id", "observed", "model", "mean", "kmer_ridge"] and len(preds) == 200
    assert preds["mean"].nunique() == 1 and preds["model"].nunique() > 150


def test_evaluate_writes_a_copy_of_the_model_that_records_its_evaluation(trained, tmp_path: Path, capsys) -> None:
    """--write-model: the copy's metadata carries the evaluation (the same numbers and verdict as evaluation.json,
    the set's fingerprint without its path), its weights are the model's; the model's own file is refused first."""
    from varxpress.cli import main
    from varxpress.models.network import ExpressionModel

    out, copy = tmp_path / "eval", tmp_path / "evaluated.vxm.h5"
    args = ["evaluate", "--model", str(trained["model"]), "--dataset", str(trained["dataset"]), "-o", str(out)]
    assert main([*args, "--write-model", str(copy), "--kmax", "3"]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    original, written = ExpressionModel.load(trained["model"]), ExpressionModel.load(copy)
    metrics = written.metadata.metrics
    assert metrics["verdict"] == report["verdict"] and metrics["guard_split"] == "test"
    assert metrics["model"]["test"]["r2"] == pytest.approx(report["metrics"]["model"]["r2"])
    assert metrics["baselines"]["kmer_ridge"]["test"]["kmer_k"] == report["metrics"]["kmer_ridge"]["kmer_k"]
    assert metrics["paired"] == report["paired"]
    assert "path" not in json.dumps(metrics["evaluated_on"]) and metrics["evaluated_on"]["n"]["test"] == 200
    assert metrics["evaluated_on"]["labels"]["sha256"]  # what the set is, not where it was built
    assert metrics != original.metadata.metrics and written.metadata.hparams == original.metadata.hparams
    for layer, weights in original.numpy_weights().items():
        for name, value in weights.items():
            assert np.array_equal(written.numpy_weights()[layer][name], value)
    before = Path(trained["model"]).read_bytes()
    assert main([*args, "--write-model", str(trained["model"])]) == 2  # a usage error, before any evaluation
    assert "would destroy the input" in capsys.readouterr().err
    assert Path(trained["model"]).read_bytes() == before


class _Set:
    """What :func:`held_out` reads of a prepared set: its file, kind, contigs and splits."""

    def __init__(self, path: Path, chroms: list[str], split: list[int], kind: str = "genomic") -> None:
        from varxpress.models.metadata import sha256_file

        self.path, self.kind, self._chroms, self._split = path, kind, np.array(chroms), np.array(split)
        self.sha256 = sha256_file(path)

    def column(self, name: str) -> np.ndarray:
        assert name == "chrom"
        return self._chroms

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self._split == ("train", "valid", "test").index(split))


class _Model:
    def __init__(self, training_data: dict) -> None:
        self.metadata = type("Meta", (), {"training_data": training_data})()


def test_held_out_refuses_training_contigs_and_says_what_it_could_not_check(tmp_path: Path) -> None:
    """A verdict needs genes the model never trained on: the model's own set is held out by construction, a set
    of contigs it held out is verified (chr prefix and case ignored), one gene on a contig it trained on refuses the
    evaluation, and what cannot be checked is said."""
    from varxpress.errors import DatasetError
    from varxpress.learning.held_out import held_out
    from varxpress.models.metadata import sha256_file

    own = tmp_path / "own.vxd.h5"
    own.write_bytes(b"the training set")
    other = tmp_path / "other.vxd.h5"
    other.write_bytes(b"another set")
    chrom_model = _Model({"sha256": sha256_file(own), "split_method": "chrom", "test_chroms": ["chrIV", "chrXVI"],
                          "valid_chroms": ["chrXII"]})
    # held out: the model's own set; a set whose test genes lie on IV and XII only (other spelling)
    assert held_out(chrom_model, _Set(own, ["I", "I", "IV"], [0, 0, 2]), "test").status == "verified"
    good = held_out(chrom_model, _Set(other, ["I", "IV", "XII", "iv", "ChrXVI"], [0, 2, 2, 1, 2]), "test")
    assert good.status == "verified" and "chrIV, chrXII, chrXVI" in good.reason
    # a member of a `train --cv-folds` ensemble trained on all but its own fold of the train and valid rows
    member = _Model({"sha256": sha256_file(own), "split_method": "chrom", "test_chroms": ["chrIV", "chrXVI"],
                     "valid_chroms": ["chrXII"], "cv_fold": 1, "cv_folds": 2})
    assert held_out(member, _Set(own, ["I", "XII"], [1, 1]), "valid").status == "no"
    assert held_out(member, _Set(own, ["IV"], [2]), "test").status == "verified"
    assert held_out(member, _Set(other, ["IV", "XVI"], [2, 2]), "test").status == "verified"
    with pytest.raises(DatasetError, match=r"1 of the 2 genes .* it held out only chrIV, chrXVI\)"):
        held_out(member, _Set(other, ["IV", "XII"], [2, 2]), "test")  # its valid contig was in its folds
    mito = _Model({"sha256": sha256_file(own), "split_method": "chrom", "test_chroms": ["chrM"]})
    assert held_out(mito, _Set(other, ["MT", "ChrM"], [2, 2]), "test").status == "verified"  # one key genome-wide
    # a randomly split set of the same genome: test genes on contigs the model trained on
    with pytest.raises(DatasetError, match="2 of the 3 genes of the 'test' split of .* lie on contigs the model "
                                           "trained on .I, V; it held out only chrIV, chrXII, chrXVI."):
        held_out(chrom_model, _Set(other, ["I", "IV", "V", "I"], [2, 2, 2, 0]), "test")
    # not judged at all: the splits a model of the set trains on
    assert held_out(chrom_model, _Set(own, ["I"], [0]), "train").status == "no"
    assert held_out(chrom_model, _Set(own, ["I"], [0]), "all").status == "no"
    # cannot be checked: no training set recorded (imported), or another set split at random or by group
    assert held_out(_Model({}), _Set(other, ["I"], [2]), "test").status == "unverified"
    random_model = _Model({"sha256": sha256_file(own), "split_method": "random"})
    assert held_out(random_model, _Set(other, ["I"], [2]), "test").status == "unverified"
    assert held_out(random_model, _Set(own, ["I"], [2]), "test").status == "verified"


def test_evaluate_gives_no_verdict_on_training_genes_and_writes_no_model_from_them(trained, tmp_path: Path,
                                                                                   capsys) -> None:
    """--split train/all: metrics, but no verdict (the model trained on those genes), --require-beats-baselines
    fails, and --write-model is refused before any work; on the model's own test split the status is verified."""
    from varxpress.cli import main

    args = ["evaluate", "--model", str(trained["model"]), "--dataset", str(trained["dataset"]), "--kmax", "2",
            "--bootstrap", "50"]
    assert main([*args, "--split", "all", "-o", str(tmp_path / "all"), "--require-beats-baselines"]) == 3
    report = json.loads((tmp_path / "all" / "evaluation.json").read_text())
    assert report["verdict"] == "no verdict: not held-out genes" and report["beats_baselines"] is False
    assert report["held_out"]["status"] == "no"
    assert main([*args, "--split", "train", "-o", str(tmp_path / "t"), "--write-model", str(tmp_path / "m.vxm.h5")]) \
        == 2
    assert "--split train has none" in capsys.readouterr().err
    assert not (tmp_path / "t").exists() and not (tmp_path / "m.vxm.h5").exists()
    assert main([*args, "-o", str(tmp_path / "test")]) == 0
    report = json.loads((tmp_path / "test" / "evaluation.json").read_text())
    assert report["held_out"] == {"status": "verified", "reason": "the test split of the set the model was trained on"}


def test_evaluate_refuses_labels_of_another_transform(trained, tmp_path: Path) -> None:
    """A model of raw labels judged on log10 labels would compare different quantities (the collapse warning it
    used to get named the wrong cause)."""
    from varxpress.errors import DatasetError
    from varxpress.io.tables import read_label_table
    from varxpress.learning import dataset

    labels = read_label_table(trained["folder"] / "labels.tsv", transform="log10", pseudocount=5.0)
    logged = dataset.prepare_sequences(trained["folder"] / "seqs.fa", labels, tmp_path / "log.vxd.h5",
                                       options=dataset.SequenceSetOptions(test_size=200, valid_size=200, seed=0))
    with pytest.raises(DatasetError, match=r"trained on labels transformed none, the set's are log10\(value \+ 5.0\)"):
        evaluate(trained["model"], logged, kmax=2)
    # predict --dataset printed the two side by side (58.4 observed next to 1.61 predicted), without a word
    from varxpress.learning.prediction import predict_dataset
    with pytest.raises(DatasetError, match=r"trained on labels transformed none, the set's are log10"):
        predict_dataset(trained["model"], logged)


def _small_planted_set(folder: Path) -> Path:
    return planted_set(folder, 80, seed=7, test_size=20, valid_size=10)


def test_evaluate_bundled_xpresso_model_on_any_prepared_set(tmp_path: Path, caplog) -> None:
    """A model window wider than the set (N-padded), features the set lacks (defaults): still evaluated."""
    from varxpress.models.network import DEFAULT_MODEL_PATH

    if not DEFAULT_MODEL_PATH.exists():
        pytest.skip(f"{DEFAULT_MODEL_PATH} absent: the bundled Xpresso model is made by `varxpress import-xpresso`")
    set_path = _small_planted_set(tmp_path)
    result = evaluate(DEFAULT_MODEL_PATH, set_path, out_dir=tmp_path / "eval", kmax=3)
    assert "wider than" in caplog.text and "default features" in caplog.text
    table = result.table.set_index("predictor")
    assert table.loc["model", "n"] == 20 and np.isfinite(table.loc["model", ["mse", "r2"]].astype(float)).all()
    assert not table.loc["model", "calibrated"]  # the bundled model records label_mean/label_sd
    assert (tmp_path / "eval" / "evaluation.tsv").exists()


def test_evaluate_calibrates_a_model_without_label_scale(tmp_path: Path, caplog) -> None:
    from tests.toy import toy_hparams
    from varxpress.models.network import ExpressionModel

    set_path = _small_planted_set(tmp_path)
    model = ExpressionModel.from_hparams(toy_hparams(150, 150), name="nolabels")
    assert model.metadata.label_mean is None
    result = evaluate(model, set_path, split="valid", kmax=2)
    table = result.table.set_index("predictor")
    assert table.loc["model", "calibrated"] and table.loc["model", "n"] == 10
    assert "calibrated on the training split" in caplog.text


@pytest.mark.realdata
def test_evaluate_xpresso_on_real_hg38_genes(tmp_path: Path) -> None:
    """Real hg38 windows + Xpresso's own labels: the bundled model correlates with the labels."""
    from varxpress.cli import main
    from varxpress.models.network import DEFAULT_MODEL_PATH

    windows = DATA / "hg38" / "hg38_65_windows_131kb.fa.gz"
    tss_bed = DATA / "xpresso" / "hg38_promoters_cage_corrected.bed.gz"
    labels = DATA / "xpresso" / "1to1_orthologs_expression.txt.gz"
    need(windows, tss_bed, labels, DEFAULT_MODEL_PATH)
    contigs: dict[str, tuple[str, int, str]] = {}
    name, parts = None, []
    with gzip.open(windows, "rt") as fh, open(tmp_path / "genome.fa", "w") as out:
        for line in itertools.chain(fh, [">end"]):
            if line.startswith(">"):
                if name:
                    chrom, span = name.split(":")
                    contigs[f"w{len(contigs)}"] = (chrom.removeprefix("chr"), int(span.split("-")[0]),
                                                   "".join(parts))
                    out.write(f">w{len(contigs) - 1}\n{contigs[f'w{len(contigs) - 1}'][2]}\n")
                name, parts = line[1:].split()[0], []
            else:
                parts.append(line.strip())
    rows = []
    with gzip.open(tss_bed, "rt") as fh:
        for line in fh:
            chrom, start, _end, gene, _score, strand = line.split()[:6]
            t = int(start) + 10000
            left, right = (7000, 3500) if strand == "+" else (3500, 7000)
            for contig, (c, offset, seq) in contigs.items():
                if c == chrom and offset <= t - left and t + right <= offset + len(seq):
                    rows.append(f"{gene}\t{gene}\t{contig}\t{t - offset + 1}\t{strand}\n")
                    break
    (tmp_path / "tss.tsv").write_text("".join(rows))
    assert len(rows) > 40
    assert main(["prepare", "--genome", str(tmp_path / "genome.fa"), "--tss", str(tmp_path / "tss.tsv"),
                 "--labels", str(labels), "--label-column", "4", "--upstream", "7000", "--downstream", "3500",
                 "--test-size", "10", "--valid-size", "5", "--genome-build", "hg38",
                 "-o", str(tmp_path / "real.vxd.h5")]) == 0
    result = evaluate(DEFAULT_MODEL_PATH, tmp_path / "real.vxd.h5", split="all", kmax=4)
    model = result.table.set_index("predictor").loc["model"]
    assert model["n"] > 30
    assert model["pearson"] > 0.4  # Xpresso's r with these labels is ~0.7 genome-wide


# -- predict -----------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_predict_fasta_and_dataset(trained, tmp_path: Path) -> None:
    from varxpress.cli import main
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(trained["model"])
    seqs = trained["seqs"][:5]
    ids = trained["ids"][:5]
    write_fasta(tmp_path / "q.fa", ids, [s[20:220] for s in seqs])  # exactly the model window
    write_fasta(tmp_path / "full.fa", ids, seqs)
    labels = pd.read_csv(trained["folder"] / "labels.tsv", sep="\t").set_index("gene_id")
    assert main(["predict", "--model", str(trained["model"]), "--fasta", str(tmp_path / "q.fa"), "--labels",
                 str(trained["folder"] / "labels.tsv"), "-o", str(tmp_path / "q.tsv")]) == 0
    out = pd.read_csv(tmp_path / "q.tsv", sep="\t")
    assert list(out.columns) == ["id", "prediction", "observed"] and out["id"].tolist() == ids
    expect = model.to_log10(model.predict(one_hot([s[20:220] for s in seqs])))
    assert out["prediction"].to_numpy() == pytest.approx(expect, abs=1e-4)
    assert out["observed"].to_numpy() == pytest.approx(labels.loc[ids, "expression"].to_numpy(), abs=1e-5)
    # a model of log10 labels gets the table's raw values in its own units
    logged = ExpressionModel(None, copy.deepcopy(model.metadata), weights=model.numpy_weights())
    logged.metadata.training_data["labels"] = {**logged.metadata.training_data["labels"], "transform": "log10",
                                               "pseudocount": 5.0}
    logged.save(tmp_path / "log.vxm.h5")
    assert main(["predict", "--model", str(tmp_path / "log.vxm.h5"), "--fasta", str(tmp_path / "q.fa"), "--labels",
                 str(trained["folder"] / "labels.tsv"), "-o", str(tmp_path / "l.tsv")]) == 0
    observed = pd.read_csv(tmp_path / "l.tsv", sep="\t")["observed"].to_numpy()
    assert observed == pytest.approx(np.log10(labels.loc[ids, "expression"].to_numpy() + 5.0), abs=1e-5)
    # a table of more columns (the raw Presnyak table: id, name, value) is read with prepare's column options
    wide = tmp_path / "wide.tsv"
    wide.write_text("name\tgene_id\tfpkm\n" + "".join(f"N{i}\t{g}\t{labels.loc[g, 'expression']}\n"
                                                     for i, g in enumerate(ids)))
    assert main(["predict", "--model", str(trained["model"]), "--fasta", str(tmp_path / "q.fa"), "--labels",
                 str(wide), "--id-column", "gene_id", "--label-column", "fpkm", "-o", str(tmp_path / "w.tsv")]) == 0
    assert pd.read_csv(tmp_path / "w.tsv", sep="\t")["observed"].to_numpy() == \
        pytest.approx(labels.loc[ids, "expression"].to_numpy(), abs=1e-5)
    # full 240 bp records: --tss-index cuts [120 - 100, 120 + 100); without it they are centre-cropped (same here)
    for extra in (["--tss-index", "120"], []):
        assert main(["predict", "-m", str(trained["model"]), "--fasta", str(tmp_path / "full.fa"), *extra,
                     "-o", str(tmp_path / "f.tsv")]) == 0
        full = pd.read_csv(tmp_path / "f.tsv", sep="\t")
        assert full["prediction"].to_numpy() == pytest.approx(expect, abs=1e-4)
        assert "observed" not in full.columns
    assert main(["predict", "-m", str(trained["model"]), "--dataset", str(trained["dataset"]), "--split", "test",
                 "-o", str(tmp_path / "d.tsv")]) == 0
    d = pd.read_csv(tmp_path / "d.tsv", sep="\t").set_index("id")
    report = pd.read_csv(trained["report"] / "predictions.tsv", sep="\t").set_index("id")
    test = report[report["split"] == "test"]
    assert len(d) == 200
    assert d.loc[test.index, "prediction"].to_numpy() == pytest.approx(test["prediction"].to_numpy(), abs=1e-4)
    assert d.loc[test.index, "observed"].to_numpy() == pytest.approx(test["observed"].to_numpy(), abs=1e-4)
    assert set(d["split"]) == {"test"}  # each gene's split, as the training report has it
    assert main(["predict", "-m", str(trained["model"]), "--dataset", str(trained["dataset"]),
                 "-o", str(tmp_path / "all.tsv")]) == 0
    every = pd.read_csv(tmp_path / "all.tsv", sep="\t").set_index("id")
    assert every.loc[report.index, "split"].tolist() == report["split"].tolist()
