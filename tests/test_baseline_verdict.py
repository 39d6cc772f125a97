"""The baseline verdict: bootstrap intervals over genes, the paired model-minus-baseline test and the minimum n.

The predictions are made with numpy (no training): the verdict only sees labels and predictions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests._planted import planted_set
from varxpress.learning.bootstrap import Bootstrap, interval, resample_metrics
from varxpress.learning.baselines import MIN_TEST_GENES, check_against_baselines, regression_metrics


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / x.std()


def test_resampled_metrics_match_scipy_on_each_resample() -> None:
    """The vectorised resampling computes, for each resample, what scipy computes on that resample."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    p = 0.5 * y + rng.normal(size=40)
    p[:6] = p[0]  # ties, so the Spearman ranks must average them
    out = resample_metrics(y, {"m": p}, n_boot=25, seed=3)
    idx = np.random.default_rng(3).integers(0, 40, size=(25, 40))  # the same draws (one block)
    for b in range(25):
        ys, ps = y[idx[b]], p[idx[b]]
        assert out["m"]["pearson"][b] == pytest.approx(stats.pearsonr(ys, ps)[0], abs=1e-12)
        assert out["m"]["spearman"][b] == pytest.approx(stats.spearmanr(ys, ps)[0], abs=1e-12)
        assert out["m"]["r2"][b] == pytest.approx(regression_metrics(ys, ps)["r2"], abs=1e-12)


def test_blocks_do_not_change_the_resamples(monkeypatch) -> None:
    from varxpress.learning import bootstrap

    rng = np.random.default_rng(2)
    y, p = rng.normal(size=50), rng.normal(size=50)
    whole = resample_metrics(y, {"m": p}, n_boot=40, seed=5)
    monkeypatch.setattr(bootstrap, "BLOCK_CELLS", 50 * 7)  # blocks of 7 resamples
    blocked = resample_metrics(y, {"m": p}, n_boot=40, seed=5)
    # the stream of draws is consumed in the same order, so every resample is the same
    assert np.allclose(whole["m"]["pearson"], blocked["m"]["pearson"])


def test_interval_covers_the_truth_and_narrows_with_n() -> None:
    rng = np.random.default_rng(4)
    widths = []
    for n in (50, 800):
        y = rng.normal(size=n)
        p = 0.6 * y + 0.8 * rng.normal(size=n)  # population Pearson r = 0.6
        ci = Bootstrap(y, {"m": p}, n_boot=500).intervals("m")
        assert ci["pearson_ci_low"] < 0.6 < ci["pearson_ci_high"]
        assert ci["pearson_ci_low"] < regression_metrics(y, p)["pearson"] < ci["pearson_ci_high"]
        widths.append(ci["pearson_ci_high"] - ci["pearson_ci_low"])
    assert widths[1] < widths[0] / 2.5  # ~ 1/sqrt(n): 4x narrower for 16x the genes
    assert np.isnan(interval(np.full(10, np.nan))[0])


def test_leak_groups_are_resampled_whole_and_widen_the_interval() -> None:
    """Each element measured twice (both orientations, sharing its errors): resampling rows treats the pair as two
    independent observations and gives an interval about 1/sqrt(2) too narrow; resampling groups does not."""
    from varxpress.learning.bootstrap import _group_resamples

    groups = np.array([3, 1, 3, 2, 1, 2, 2, 7])
    for idx in _group_resamples(groups, 20, np.random.default_rng(0)):
        drawn = groups[idx]
        for g in np.unique(drawn):  # a drawn group comes whole, as often as it was drawn
            assert (drawn == g).sum() % (groups == g).sum() == 0
        if 2 in drawn:
            assert sorted(set(idx[drawn == 2])) == [3, 5, 6]
        assert len(np.unique(drawn)) <= 4

    rng = np.random.default_rng(6)
    n = 300
    y = rng.normal(size=n)
    p = 0.5 * y + rng.normal(size=n)
    twice_y, twice_p, pairs = np.repeat(y, 2), np.repeat(p, 2), np.repeat(np.arange(n), 2)
    width = lambda b: b.intervals("m")["r2_ci_high"] - b.intervals("m")["r2_ci_low"]  # noqa: E731
    single = width(Bootstrap(y, {"m": p}, n_boot=600, seed=1))
    rows = width(Bootstrap(twice_y, {"m": twice_p}, n_boot=600, seed=1))
    grouped = Bootstrap(twice_y, {"m": twice_p}, n_boot=600, seed=1, groups=pairs)
    assert grouped.unit == "leak group"
    assert rows < 0.8 * single  # the naive interval is too narrow
    assert 0.85 * single < width(grouped) < 1.15 * single


def test_the_reported_case_of_eight_genes_fails() -> None:
    """A model with test r² −0.03 and Pearson −0.20 on 8 genes, against baselines that do even worse on those 8
    genes: the old rule (model r² above each baseline's) said "beats baselines"; the verdict must not."""
    rng = np.random.default_rng(0)
    y = 5 + _unit(rng.normal(size=8))
    w0 = _unit(rng.normal(size=8))
    w = _unit(w0 - np.mean(w0 * _unit(y)) * _unit(y))  # uncorrelated with y
    z = -0.2 * _unit(y) + np.sqrt(1 - 0.04) * w  # Pearson -0.2 with y
    a = (-0.4 + np.sqrt(0.16 + 0.12)) / 2  # r2 = 2 a r - a^2 = -0.03
    model = y.mean() + a * z
    baselines = {"mean": np.full(8, y.mean() + 0.55), "kmer_ridge": y.mean() + 0.8 * w}
    m = regression_metrics(y, model)
    assert m["r2"] == pytest.approx(-0.03, abs=1e-9) and m["pearson"] == pytest.approx(-0.20, abs=1e-9)
    assert all(m["r2"] > regression_metrics(y, p)["r2"] for p in baselines.values())  # what the old rule saw
    guard = check_against_baselines(y, model, baselines)
    assert guard["beats_baselines"] is False
    assert guard["verdict"] == "too few test genes to tell"
    assert any("8 genes" in r and str(MIN_TEST_GENES) in r for r in guard["reasons"])
    assert any(r.startswith("no positive correlation (Pearson r = -0.200)") for r in guard["reasons"])
    # the same model on enough genes is still refused, for its correlation
    big_y = np.tile(y, 5) + rng.normal(0, 1e-3, size=40)
    big = check_against_baselines(big_y, np.tile(model, 5), {k: np.tile(v, 5) for k, v in baselines.items()})
    assert big["verdict"] == "no positive correlation" and big["beats_baselines"] is False


def test_a_good_model_on_enough_genes_beats_the_baselines() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    ridge = 0.3 * y + rng.normal(0, 0.9, size=200)
    model = 0.8 * y + rng.normal(0, 0.4, size=200)
    guard = check_against_baselines(y, model, {"mean": np.full(200, 0.05), "kmer_ridge": ridge})
    assert guard["beats_baselines"] is True and guard["verdict"] == "beats the baselines" and not guard["reasons"]
    low, high = guard["paired"]["kmer_ridge"]["r2_diff_ci"]
    assert 0 < low < guard["r2_margin"]["kmer_ridge"] < high
    assert guard["n"] == 200 and guard["bootstrap"]["paired"] is True
    json.dumps(guard, allow_nan=False)  # the mean baseline's undefined Pearson is written as null


def test_a_marginally_better_model_on_noisy_data_is_not_clearly_better() -> None:
    """Model and ridge both see the same weak signal; the model a little more of it: its r² is higher, but not by
    more than the genes' noise."""
    rng = np.random.default_rng(2)
    n = 150
    signal = rng.normal(size=n)
    y = signal + rng.normal(0, 2.5, size=n)
    ridge = 0.15 * signal + 0.05 * rng.normal(size=n)
    model = 0.17 * signal + 0.05 * rng.normal(size=n)
    m, r = regression_metrics(y, model), regression_metrics(y, ridge)
    assert m["pearson"] > 0 and m["r2"] > r["r2"]
    guard = check_against_baselines(y, model, {"mean": np.full(n, y.mean()), "kmer_ridge": ridge})
    assert guard["beats_baselines"] is False
    assert guard["verdict"] == "not clearly better than the baselines"
    assert guard["paired"]["kmer_ridge"]["r2_diff_ci"][0] <= 0 < guard["r2_margin"]["kmer_ridge"]
    # paired, not two separate intervals: the same genes resampled for model and ridge
    boot = Bootstrap(y, {"model": model, "kmer_ridge": ridge}, seed=0)
    diff = boot.samples["model"]["r2"] - boot.samples["kmer_ridge"]["r2"]
    assert guard["paired"]["kmer_ridge"]["r2_diff_ci"] == pytest.approx(list(interval(diff)))


def test_worse_and_constant_models() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    base = {"mean": np.full(300, 0.01), "kmer_ridge": 0.5 * y}
    constant = check_against_baselines(y, np.full(300, y.mean() + 1e-6), base)
    assert constant["beats_baselines"] is False and constant["near_constant"] is True
    assert constant["verdict"] == "predictions are near-constant" and constant["r2_margin"]["kmer_ridge"] < 0
    # nearly constant: sd 0.5% of the labels' while its r2 would beat a poor baseline
    tiny = check_against_baselines(y, y.mean() + 0.005 * y, {"mean": base["mean"]})
    assert tiny["near_constant"] is True and tiny["verdict"] == "predictions are near-constant"
    assert tiny["r2_margin"]["mean"] > 0
    weak = check_against_baselines(y, 0.3 * y, base)  # r2 below the ridge's
    assert weak["verdict"] == "does not beat the baselines" and weak["near_constant"] is False
    assert any("kmer_ridge" in r for r in weak["reasons"])


def _eight_test_genes(folder: Path) -> Path:
    return planted_set(folder, 40, seed=5, test_size=8, valid_size=8)


def test_evaluate_require_beats_baselines_exits_nonzero_on_eight_genes(tmp_path: Path, caplog) -> None:
    from tests.toy import toy_model_file
    from varxpress.cli import main

    set_path = _eight_test_genes(tmp_path)
    model = toy_model_file(tmp_path, 100, 100)
    args = ["evaluate", "-m", str(model), "-d", str(set_path), "--kmax", "2", "--bootstrap", "200",
            "-o", str(tmp_path / "eval")]
    with caplog.at_level(logging.INFO):
        assert main(args + ["--require-beats-baselines"]) == 3
    assert "too few test genes to tell (8 genes; a verdict needs at least 30)" in caplog.text
    report = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert report["beats_baselines"] is False and report["verdict"] == "too few test genes to tell"
    model_row = report["metrics"]["model"]
    assert model_row["n"] == 8 and model_row["pearson_ci_low"] <= model_row["pearson"] <= model_row["pearson_ci_high"]
    assert main(args) == 0  # without the flag the verdict is only reported


def test_the_failure_warning_says_each_reason_once(caplog) -> None:
    from varxpress.learning.baselines import warn_if_failed

    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    guard = check_against_baselines(y, 0.3 * y, {"mean": np.full(300, 0.01), "kmer_ridge": 0.5 * y})
    with caplog.at_level("WARNING"):
        warn_if_failed(guard, "test split")
    text = caplog.text
    assert "test split: does not beat the baselines (" in text and "kmer_ridge: r2" in text
    assert text.count("does not beat the baselines") == 1
