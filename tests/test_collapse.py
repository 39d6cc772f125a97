"""Collapse detection while training (varxpress.learning.collapse): a dead final ReLU layer, predictions without spread.

The collapsing configurations are tiny (a 120-base window, 4 filters, 4 dense units, 1-2 epochs on 400 sequences)
and recreate the two classic causes: a final ReLU layer whose bias starts so negative that every unit is dead, and
a learning rate far too high. The healthy case is the planted-motif run shared with tests/test_training.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._planted import trained_planted
from tests.test_training import _kmer_friendly_set, _tiny_hparams
from varxpress.learning import training
from varxpress.learning.collapse import SPREAD_FRACTION, likely_causes
from varxpress.learning.prepared import PreparedSet


def _dead_relu_network(monkeypatch, bias: float = -50.0) -> None:
    """Make build_network return networks whose last dense layer's bias is ``bias`` (every unit dead)."""
    original = training.build_network

    def build(hparams):
        net = original(hparams)
        last = [layer for layer in net.layers if layer.name.startswith("dense_")][-1]
        kernel, b = last.get_weights()
        last.set_weights([kernel, np.full_like(b, bias)])
        return net

    monkeypatch.setattr(training, "build_network", build)


def test_a_dead_final_relu_is_reported_with_its_causes(tmp_path: Path, monkeypatch, caplog) -> None:
    import yaml

    from varxpress.cli import main
    from varxpress.models.network import ExpressionModel

    set_path = _kmer_friendly_set(tmp_path)
    _dead_relu_network(monkeypatch)
    (tmp_path / "hp.yaml").write_text(yaml.safe_dump(_tiny_hparams(learning_rate=0.01, epochs=2, patience=5)))
    args = ["train", "-d", str(set_path), "-p", str(tmp_path / "hp.yaml"), "-o", str(tmp_path / "m.vxm.h5"),
            "--kmax", "2"]
    with caplog.at_level(logging.WARNING):
        assert main(args) == 0  # warn (the default): training goes on, the model is still written
    assert "the model has COLLAPSED at epoch 1" in caplog.text
    assert "all 4 units of the final ReLU layer (relu_1) output 0 on every validation gene" in caplog.text
    assert "Likely causes: learning rate too high (0.01" in caplog.text and "initialisation" in caplog.text
    metrics = json.loads((tmp_path / "m.report" / "metrics.json").read_text())
    collapse = metrics["collapse"]
    assert collapse["detected"] is True and [e["epoch"] for e in collapse["events"]] == [1, 2]
    assert collapse["events"][0]["dead_units"] == collapse["events"][0]["units"] == 4
    assert collapse["events"][0]["spread_ratio"] < SPREAD_FRACTION
    history = pd.read_csv(tmp_path / "m.report" / "history.tsv", sep="\t")
    assert history["dead_relu_fraction"].tolist() == [1.0, 1.0] and (history["val_pred_sd_ratio"] < 1e-6).all()
    assert ExpressionModel.load(tmp_path / "m.vxm.h5").metadata.metrics["collapse"]["detected"] is True
    # --on-collapse stop ends training at the first collapsed epoch
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        main(args + ["--on-collapse", "stop", "-o", str(tmp_path / "s.vxm.h5")])
    assert "Stopping (--on-collapse stop)" in caplog.text
    stopped = json.loads((tmp_path / "s.report" / "metrics.json").read_text())
    assert stopped["epochs_run"] == 1 and stopped["collapse"]["action"] == "stop"


def test_a_huge_learning_rate_collapses_the_predictions(tmp_path: Path, caplog) -> None:
    set_path = _kmer_friendly_set(tmp_path)
    with PreparedSet(set_path) as pset, caplog.at_level(logging.WARNING):
        result = training.fit(pset, _tiny_hparams(learning_rate=10.0, epochs=2, patience=5))
    assert result.collapse["detected"] is True
    assert "the model has COLLAPSED" in caplog.text and "learning rate too high (10)" in caplog.text
    # one step of size 10 pushes every unit of the 4-unit dense layer negative for every gene (seeded, repeatable)
    event = result.collapse["events"][0]
    assert event["epoch"] == 1 and event["dead_units"] == event["units"] == 4
    assert event["spread_ratio"] < SPREAD_FRACTION
    assert result.history["dead_relu_fraction"] == [1.0, 1.0]


def test_a_narrow_spread_with_no_dead_unit_first_suggests_more_training(tmp_path: Path, monkeypatch, caplog) -> None:
    """A network that has barely moved (a learning rate of 1e-9) predicts about one value without any dead unit:
    the advice "learning rate too high: try lower" pointed the wrong way; it now comes after "not trained enough"."""
    original = training.build_network

    def build(hparams):
        net = original(hparams)
        last = [layer for layer in net.layers if layer.name.startswith("dense_")][-1]
        kernel, b = last.get_weights()
        last.set_weights([np.zeros_like(kernel), np.full_like(b, 1.0)])  # every unit outputs 1 for every gene
        return net

    monkeypatch.setattr(training, "build_network", build)
    set_path = _kmer_friendly_set(tmp_path)
    with PreparedSet(set_path) as pset, caplog.at_level(logging.WARNING):
        result = training.fit(pset, _tiny_hparams(learning_rate=1e-9, epochs=1, patience=5))
    event = result.collapse["events"][0]
    assert event["dead_units"] == 0 and event["spread_ratio"] < SPREAD_FRACTION
    assert "Likely causes: not trained enough yet: a network starts near the labels' mean" in caplog.text
    assert caplog.text.index("not trained enough") < caplog.text.index("learning rate too high")


def test_likely_causes_name_unstandardised_labels_far_from_zero() -> None:
    causes = likely_causes(0.001, standardized=False, label_mean=250.0, label_sd=10.0)
    assert causes[0].startswith("labels not standardised and far from 0 (mean 250")
    assert likely_causes(0.001, standardized=True, label_mean=250.0, label_sd=10.0)[0].startswith("learning rate")


@pytest.mark.slow
def test_a_healthy_planted_run_is_not_flagged(tmp_path_factory) -> None:
    trained = trained_planted(tmp_path_factory)
    metrics = json.loads((trained["report"] / "metrics.json").read_text())
    assert metrics["collapse"]["detected"] is False and metrics["collapse"]["events"] == []
    history = pd.read_csv(trained["report"] / "history.tsv", sep="\t")
    assert (history["val_pred_sd_ratio"] > SPREAD_FRACTION).all()
    assert (history["dead_relu_fraction"] < 1).all()
    assert history["val_pred_sd_ratio"].iloc[-1] > 0.5  # a model that learnt the planted structure spreads out
