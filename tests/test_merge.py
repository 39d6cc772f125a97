"""Tests of varxpress.models.merge: members of one architecture merged into one network that predicts their mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from varxpress.errors import ModelError
from varxpress.models.merge import merge_members
from varxpress.models.network import ExpressionModel


def _random_member(path: Path, seed: int, hp: dict) -> Path:
    """An untrained network with random biases and (where present) trained-looking normalisation statistics."""
    model = ExpressionModel.from_hparams({**hp, "seed": seed}, name=f"m{seed}", label_mean=1.5, label_sd=0.5)
    rng = np.random.default_rng(seed)
    for layer in model.keras_model.layers:
        ws = layer.get_weights()
        if type(layer).__name__ == "BatchNormalization":
            n = ws[0].shape
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 0.5, n),
                               rng.uniform(0.2, 3, n)])
        elif ws:
            layer.set_weights([w if w.ndim > 1 else rng.normal(0, 0.1, w.shape).astype(np.float32) for w in ws])
    model.save(path)
    return path


@pytest.mark.parametrize("dense", [[{"units": 5, "dropout": 0.3}],
                                   [{"units": 6, "dropout": 0.1}, {"units": 3, "dropout": 0.0}]])
@pytest.mark.parametrize("global_pool, batch_norm", [("none", False), ("avg", False), ("avg", True), ("none", True)])
def test_merged_members_predict_their_mean(tmp_path, dense, global_pool, batch_norm) -> None:
    hp = {"upstream": 30, "downstream": 10, "n_features": 2, "global_pool": global_pool, "dense": dense,
          "conv": [{"filters": 4, "kernel": 5, "dilation": 1, "pool": 2},
                   {"filters": 3, "kernel": 3, "dilation": 2, "pool": 2}]}
    if batch_norm:
        hp.update(batch_norm=True, conv_dropout=0.2)
    paths = [_random_member(tmp_path / f"m{s}.vxm.h5", s, hp) for s in (1, 2, 3)]
    out = merge_members(paths, tmp_path / "merged.vxm.h5", "merged")
    rng = np.random.default_rng(0)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (7, 40))]
    feats = rng.normal(size=(7, 2)).astype(np.float32)
    members = np.stack([ExpressionModel.load(p).predict(X, feats) for p in paths])
    merged = ExpressionModel.load(out)
    assert merged.metadata.hparams["conv"][0]["filters"] == 12 and merged.metadata.label_sd == 0.5
    assert [m["seed"] for m in merged.metadata.source["ensemble"]["members"]] == [1, 2, 3]
    assert np.ptp(members, axis=0).min() > 1e-4  # the members differ, so the mean is a real test
    np.testing.assert_allclose(merged.predict(X, feats), members.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_members_of_different_shapes_are_refused(tmp_path) -> None:
    hp = {"upstream": 20, "downstream": 10, "n_features": 0, "dense": [{"units": 2}],
          "conv": [{"filters": 2, "kernel": 3}]}
    a = _random_member(tmp_path / "a.vxm.h5", 1, hp)
    b = _random_member(tmp_path / "b.vxm.h5", 2, {**hp, "conv": [{"filters": 3, "kernel": 3}]})
    with pytest.raises(ModelError, match="not the architecture"):
        merge_members([a, b], tmp_path / "m.vxm.h5", "m")
    with pytest.raises(ModelError, match="at least two"):
        merge_members([a], tmp_path / "m.vxm.h5", "m")
    assert not (tmp_path / "m.vxm.h5").exists()
