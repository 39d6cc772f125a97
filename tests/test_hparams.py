"""Tests of varxpress.models.hparams: the typed hyperparameter record and the JSON it stores.

The dict rules themselves (ranges, error messages) are tested through ``validate_hparams`` in tests/test_model.py;
here: the record's types, that it cannot be changed, and that its dict form is the one files already hold.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import pytest

from varxpress.errors import ModelError
from varxpress.models.hparams import (DEFAULT_HPARAMS, ConvLayer, DenseLayer, Hyperparameters, load_hparams,
                                      read_hparams_file, validate_hparams)
from varxpress.models.network import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parents[1]


def test_from_dict_gives_typed_layers_and_settings() -> None:
    hp = Hyperparameters.from_dict({"upstream": 30.0, "downstream": 30, "conv": [{"filters": 4.0, "kernel": 3}],
                                    "dense": [{"units": 2}], "batch_size": 8.0, "rc_augment": 1})
    assert hp.conv == (ConvLayer(filters=4, kernel=3, dilation=1, pool=1),)
    assert hp.dense == (DenseLayer(units=2, dropout=0.0),)
    assert type(hp.conv[0].filters) is int and type(hp.upstream) is int and hp.length == 60
    assert type(hp.training.batch_size) is int and hp.training.batch_size == 8
    assert hp.training.rc_augment is True and hp.global_pool is None
    assert hp.training.optimizer == DEFAULT_HPARAMS["optimizer"] and hp.n_features == DEFAULT_HPARAMS["n_features"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.upstream = 10  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.training.seed = 1  # type: ignore[misc]


def test_to_dict_round_trips_and_keeps_the_order_keys_came_in() -> None:
    given = {"rc_augment": False, "note": {"why": ["kept"]}, "upstream": 20, "downstream": 10,
             "conv": [{"filters": 2, "kernel": 3}], "dense": [{"units": 2}], "global_pool": "max"}
    hp = Hyperparameters.from_dict(given)
    out = hp.to_dict()
    assert list(out) == list(DEFAULT_HPARAMS) + ["rc_augment", "note", "global_pool"]
    assert out["note"] == {"why": ["kept"]} and out["note"] is not given["note"]  # a copy, as given
    assert out["global_pool"] == "max" and out["rc_augment"] is False
    assert Hyperparameters.from_dict(out) == hp
    assert validate_hparams(given) == out


def test_defaults_and_a_shipped_file_come_back_unchanged() -> None:
    assert Hyperparameters.from_dict(DEFAULT_HPARAMS).to_dict() == DEFAULT_HPARAMS
    path = ROOT / "recipes" / "yeast" / "hparams.json"
    written = json.loads(path.read_text())
    loaded = load_hparams(path)
    assert {k: loaded[k] for k in written} == written
    assert json.dumps(Hyperparameters.from_dict(loaded).to_dict()) == json.dumps(loaded)


def test_a_model_files_stored_json_is_reproduced_byte_for_byte() -> None:
    with h5py.File(DEFAULT_MODEL_PATH, "r") as h5:
        stored = h5.attrs["hparams"]
        stored = stored.decode() if isinstance(stored, bytes) else str(stored)
    again = json.dumps(Hyperparameters.from_dict(json.loads(stored)).to_dict(), sort_keys=True)
    assert again == stored


@pytest.mark.parametrize("bad, message", [
    ({"conv": [{"filters": 2, "kernel": 3, "stride": 2}]}, r"conv\[0\] has unknown keys \['stride'\]"),
    ({"dense": [{"units": 2, "dropout": 1.0}]}, r"dense\[0\]\.dropout=1\.0 must lie in \[0\.0, 1\.0\)"),
    ({"global_pool": "sum"}, "global_pool='sum' must be one of none, max, avg"),
    ({"batch_norm": "yes"}, "batch_norm='yes' must be true or false"),
    ({"conv_dropout": 1.0}, r"conv_dropout=1\.0 must lie in \[0\.0, 1\.0\)"),
    ({"upstream": 5, "downstream": 5}, "window length 10 does not survive the pooling"),
])
def test_bad_values_are_named(bad: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        Hyperparameters.from_dict(bad)


def test_batch_norm_and_conv_dropout_are_written_back_only_when_given() -> None:
    base = {"upstream": 20, "downstream": 10, "conv": [{"filters": 2, "kernel": 3}], "dense": [{"units": 2}]}
    assert "batch_norm" not in validate_hparams(base) and "conv_dropout" not in validate_hparams(base)
    hp = Hyperparameters.from_dict({**base, "conv_dropout": 0, "batch_norm": 1})
    assert hp.batch_norm is True and hp.conv_dropout == 0.0
    assert list(hp.to_dict())[-2:] == ["conv_dropout", "batch_norm"]
    assert Hyperparameters.from_dict(hp.to_dict()) == hp


@pytest.mark.parametrize("key, near", [("learning_rte", "learning_rate"), ("epoch", "epochs"),
                                       ("batchsize", "batch_size"), ("rc_augmnt", "rc_augment")])
def test_a_misspelt_key_in_a_hyperparameter_file_is_refused(tmp_path, key, near) -> None:
    """A typo would leave the real hyperparameter at its default without a word (the network reads only known
    keys); a key that resembles none is a note kept in the metadata, with a warning."""
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({key: 1, "epochs": 2}))
    with pytest.raises(ModelError, match=f"{path}: unknown key '{key}': did you mean '{near}'"):
        read_hparams_file(path)


def test_a_note_key_in_a_hyperparameter_file_is_kept_with_a_warning(tmp_path, caplog) -> None:
    path = tmp_path / "hp.yaml"
    path.write_text("window_rule: {why: TSS-anchored}\nepochs: 2\n")
    assert read_hparams_file(path) == {"window_rule": {"why": "TSS-anchored"}, "epochs": 2}
    assert "key not read by the network (kept in the model's metadata): window_rule" in caplog.text
