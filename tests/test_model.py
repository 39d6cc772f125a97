"""Tests of varxpress.models.network: hyperparameters, network builder, model file round trip and load errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from varxpress.errors import ModelError, OutputError
from varxpress.models.hparams import DEFAULT_HPARAMS, flattened_length, load_hparams, validate_hparams
from varxpress.models.metadata import ModelMetadata
from varxpress.models.network import DEFAULT_MODEL_PATH, ExpressionModel, build_network, iter_layers, layer_names
from varxpress.sequence.windows import WindowSpec

TINY = {
    "upstream": 40, "downstream": 20,
    "conv": [{"filters": 4, "kernel": 5, "dilation": 1, "pool": 3}, {"filters": 3, "kernel": 4, "dilation": 2, "pool": 2}],
    "dense": [{"units": 5, "dropout": 0.1}, {"units": 3, "dropout": 0.0}],
    "n_features": 2, "seed": 1,
}


def one_hot_random(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    X[:, ::7] = 0.0  # some N positions
    return X


@pytest.fixture(scope="module")
def tiny_model() -> ExpressionModel:
    return ExpressionModel.from_hparams(TINY, name="tiny", genome_build="toy",
                                        feature_names=["a", "b"], default_features=[0.5, -1.0],
                                        label_mean=0.3, label_sd=0.8, metrics={"val_mse": 0.5})


# ---- hyperparameters --------------------------------------------------------------------------------------------


def test_default_hparams_are_the_xpresso_architecture() -> None:
    hp = validate_hparams(DEFAULT_HPARAMS)
    assert [c["filters"] for c in hp["conv"]] == [128, 32]
    assert [c["pool"] for c in hp["conv"]] == [30, 10]
    assert [d["units"] for d in hp["dense"]] == [64, 2]
    assert flattened_length(hp) == 10500 // 30 // 10 * 32 == 1120


def test_validate_fills_defaults_and_casts_integral_floats() -> None:
    hp = validate_hparams({"upstream": 30.0, "downstream": 30, "conv": [{"filters": 4.0, "kernel": 3}],
                           "dense": [{"units": 2}], "n_features": 0})
    assert hp["upstream"] == 30 and isinstance(hp["upstream"], int)
    assert hp["conv"] == [{"filters": 4, "kernel": 3, "dilation": 1, "pool": 1}]
    assert hp["dense"] == [{"units": 2, "dropout": 0.0}]
    assert hp["optimizer"] == DEFAULT_HPARAMS["optimizer"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"conv": []}, "1 to 4"),
        ({"conv": [{"filters": 2, "kernel": 2}] * 5}, "1 to 4"),
        ({"dense": []}, "1 to 2"),
        ({"dense": [{"units": 2}] * 3}, "1 to 2"),
        ({"conv": [{"filters": 0, "kernel": 3}]}, "filters"),
        ({"conv": [{"filters": 2, "kernel": 2.5}]}, "kernel"),
        ({"conv": [{"filters": 2, "kernel": 3, "stride": 2}]}, "unknown keys"),
        ({"dense": [{"units": 4, "dropout": 1.0}]}, "dropout"),
        ({"dense": [{"units": 4, "dropout": -0.1}]}, "dropout"),
        ({"upstream": -1}, "upstream"),
        ({"upstream": 0, "downstream": 0}, "window"),
        ({"n_features": True}, "n_features"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"conv": [{"filters": 2, "kernel": 3, "pool": 7}, {"filters": 2, "kernel": 3, "pool": 9}]}, "survive the pooling"),
    ],
)
def test_validate_rejects_bad_values(change: dict, message: str) -> None:
    hp = {**TINY, **change}
    with pytest.raises(ModelError, match=message):
        validate_hparams(hp)
    with pytest.raises(ModelError, match=message):
        build_network(hp)


def test_window_just_surviving_the_pooling_is_accepted() -> None:
    hp = {**TINY, "conv": [{"filters": 2, "kernel": 3, "pool": 6}, {"filters": 2, "kernel": 3, "pool": 10}]}
    assert flattened_length(hp) == 60 // 6 // 10 * 2 == 2
    assert build_network(hp).outputs[0].shape[-1] == 1


def test_validate_rejects_non_mapping() -> None:
    with pytest.raises(ModelError, match="mapping"):
        validate_hparams([1, 2])  # type: ignore[arg-type]


def test_load_hparams_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "h.json").write_text(json.dumps(TINY))
    (tmp_path / "h.yaml").write_text(
        "upstream: 40\ndownstream: 20\nn_features: 2\nseed: 1\n"
        "conv:\n  - {filters: 4, kernel: 5, dilation: 1, pool: 3}\n  - {filters: 3, kernel: 4, dilation: 2, pool: 2}\n"
        "dense:\n  - {units: 5, dropout: 0.1}\n  - {units: 3, dropout: 0.0}\n"
    )
    assert load_hparams(tmp_path / "h.json") == load_hparams(tmp_path / "h.yaml") == validate_hparams(TINY)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="bad.json"):
        load_hparams(tmp_path / "bad.json")
    (tmp_path / "badval.json").write_text(json.dumps({**TINY, "dense": []}))
    with pytest.raises(ModelError, match="badval.json"):
        load_hparams(tmp_path / "badval.json")
    with pytest.raises(ModelError, match="cannot read"):
        load_hparams(tmp_path / "missing.json")


# ---- network ------------------------------------------------------------------------------------------------------


def test_build_network_layers_and_shapes() -> None:
    net = build_network(TINY)
    names = [layer.name for layer in net.layers]
    assert names == ["promoter", "conv_1", "pool_1", "conv_2", "pool_2", "flatten", "halflife", "concat",
                     "dense_1", "relu_1", "dropout_1", "dense_2", "relu_2", "dropout_2", "output"]
    assert [n for n in names if n not in ("promoter", "halflife")] == layer_names(TINY)
    assert {type(layer).__name__ for layer in net.layers} == {
        "InputLayer", "Conv1D", "MaxPooling1D", "Flatten", "Concatenate", "Dense", "Activation", "Dropout"}
    assert tuple(net.get_layer("flatten").output.shape[1:]) == (flattened_length(TINY),)
    assert tuple(net.get_layer("conv_2").get_weights()[0].shape) == (4, 4, 3)
    assert net.get_layer("conv_2").dilation_rate == (2,)
    assert net.get_layer("pool_1").strides == (3,)


def test_build_network_without_features_or_pooling() -> None:
    hp = {**TINY, "n_features": 0, "conv": [{"filters": 3, "kernel": 3, "pool": 1}]}
    net = build_network(hp)
    names = [layer.name for layer in net.layers]
    assert "halflife" not in names and "concat" not in names and "pool_1" not in names
    assert len(net.inputs) == 1
    assert tuple(net.get_layer("flatten").output.shape[1:]) == (60 * 3,)


def test_build_network_is_seeded() -> None:
    a, b = build_network(TINY), build_network(TINY)
    c = build_network({**TINY, "seed": 2})
    wa, wb, wc = (m.get_layer("conv_1").get_weights()[0] for m in (a, b, c))
    assert np.array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


def test_iter_layers_describes_weights(tiny_model: ExpressionModel) -> None:
    info = iter_layers(tiny_model)
    assert [i.name for i in info] == layer_names(TINY)
    kinds = {i.name: i.kind for i in info}
    assert kinds["conv_1"] == "conv" and kinds["pool_1"] == "pool" and kinds["output"] == "output"
    conv2 = next(i for i in info if i.name == "conv_2")
    assert conv2.config == {"filters": 3, "kernel": 4, "dilation": 2, "padding": "same", "activation": "relu"}
    assert conv2.weights["kernel"].dtype == np.float32 and conv2.weights["kernel"].shape == (4, 4, 3)
    drop = next(i for i in info if i.name == "dropout_1")
    assert drop.config["rate"] == pytest.approx(0.1)


# ---- prediction ---------------------------------------------------------------------------------------------------


def test_predict_shapes_defaults_and_determinism(tiny_model: ExpressionModel) -> None:
    X = one_hot_random(11, 60)
    p = tiny_model.predict(X, batch_size=4)
    assert p.shape == (11,) and p.dtype == np.float64
    assert np.array_equal(p, tiny_model.predict(X, batch_size=4))
    np.testing.assert_allclose(p, tiny_model.predict(X, batch_size=256), rtol=0, atol=1e-6)
    explicit = tiny_model.predict(X, np.tile([0.5, -1.0], (11, 1)), batch_size=4)
    assert np.array_equal(p, explicit)  # None -> default_features
    assert np.array_equal(p, tiny_model.predict(X, np.array([0.5, -1.0]), batch_size=4))
    other = tiny_model.predict(X, np.full((11, 2), 3.0))
    assert not np.allclose(p, other)
    assert tiny_model.predict(X[:0]).shape == (0,)


def test_predict_rejects_wrong_shapes(tiny_model: ExpressionModel) -> None:
    with pytest.raises(ModelError, match=r"\(n, 60, 4\)"):
        tiny_model.predict(one_hot_random(2, 59))
    with pytest.raises(ModelError, match="features"):
        tiny_model.predict(one_hot_random(2, 60), np.zeros((2, 3)))


def test_to_log10(tiny_model: ExpressionModel) -> None:
    np.testing.assert_allclose(tiny_model.to_log10(np.array([0.0, 1.0])), [0.3, 1.1])
    m = ExpressionModel.from_hparams({**TINY, "n_features": 0}, name="x")
    with pytest.raises(ModelError, match="label_mean"):
        m.to_log10(1.0)


def test_properties() -> None:
    model = ExpressionModel.from_hparams(TINY, name="fresh")
    assert model.window_spec == WindowSpec(40, 20)
    assert model.n_features == 2
    assert model.metadata.feature_names == ["feature_1", "feature_2"] and model.metadata.default_features == [0.0, 0.0]
    assert model.sha256 is None and model.path is None


# ---- files --------------------------------------------------------------------------------------------------------


def test_save_load_round_trip(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    path = tmp_path / "m.vxm.h5"
    tiny_model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.vxm.h5"]  # no temp file left behind
    loaded = ExpressionModel.load(path)
    assert loaded.metadata == tiny_model.metadata
    assert loaded.metadata.label_sd == 0.8 and loaded.metadata.feature_names == ["a", "b"]
    assert loaded.sha256 == tiny_model.sha256 and len(loaded.sha256) == 64
    X = one_hot_random(9, 60, seed=3)
    assert np.array_equal(loaded.predict(X), tiny_model.predict(X))
    for a, b in zip(iter_layers(loaded), iter_layers(tiny_model)):
        for key in a.weights:
            assert np.array_equal(a.weights[key], b.weights[key])
    with h5py.File(path, "r") as h5:
        assert h5.attrs["varxpress_format"] == 1
        assert json.loads(h5.attrs["hparams"]) == tiny_model.metadata.hparams
        assert set(h5["weights"]) == {"conv_1", "conv_2", "dense_1", "dense_2", "output"}
        assert h5["weights/conv_1/kernel"].shape == (5, 4, 4)


def test_save_overwrites_and_unknown_metadata_keys_survive(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    path = tmp_path / "m.vxm.h5"
    tiny_model.save(path)
    with h5py.File(path, "a") as h5:
        meta = json.loads(h5.attrs["metadata"])
        meta["future_field"] = {"x": 1}
        h5.attrs["metadata"] = json.dumps(meta)
    loaded = ExpressionModel.load(path)
    assert loaded.metadata.extra == {"future_field": {"x": 1}}
    loaded.save(path)
    assert ExpressionModel.load(path).metadata.extra == {"future_field": {"x": 1}}


def test_save_to_missing_folder_raises_output_error(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write"):
        tiny_model.save(tmp_path / "nope" / "m.vxm.h5")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist.*import-xpresso"):
        ExpressionModel.load(tmp_path / "absent.vxm.h5")


def test_load_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "junk.vxm.h5"
    path.write_text("hello")
    with pytest.raises(ModelError, match="junk.vxm.h5 is not an HDF5 file"):
        ExpressionModel.load(path)


def test_load_hdf5_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(ModelError, match="no varxpress metadata"):
        ExpressionModel.load(path)
    keras_like = tmp_path / "keras.h5"
    with h5py.File(keras_like, "w") as h5:
        h5.attrs["model_config"] = "{}"
    with pytest.raises(ModelError, match="import-xpresso"):
        ExpressionModel.load(keras_like)


def _saved(tiny_model: ExpressionModel, tmp_path: Path) -> Path:
    path = tmp_path / "m.vxm.h5"
    tiny_model.save(path)
    return path


def test_load_newer_format(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    path = _saved(tiny_model, tmp_path)
    with h5py.File(path, "a") as h5:
        h5.attrs["varxpress_format"] = 99
    with pytest.raises(ModelError, match="upgrade varxpress"):
        ExpressionModel.load(path)


def test_load_weights_not_matching_architecture(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    path = _saved(tiny_model, tmp_path)
    with h5py.File(path, "a") as h5:
        del h5["weights/dense_1/kernel"]
        h5["weights/dense_1/kernel"] = np.zeros((3, 5), dtype=np.float32)
    with pytest.raises(ModelError, match=r"m.vxm.h5.*dense_1/kernel has shape \(3, 5\)"):
        ExpressionModel.load(path)
    path2 = tmp_path / "m2.vxm.h5"
    tiny_model.save(path2)
    with h5py.File(path2, "a") as h5:
        del h5["weights/output"]
    with pytest.raises(ModelError, match="missing layers: \\['output'\\]"):
        ExpressionModel.load(path2)


def test_load_window_not_matching_input(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    path = _saved(tiny_model, tmp_path)
    with h5py.File(path, "a") as h5:
        meta = json.loads(h5.attrs["metadata"])
        meta["upstream"] = 41
        h5.attrs["metadata"] = json.dumps(meta)
    with pytest.raises(ModelError, match="m.vxm.h5: the metadata window .*upstream 41"):
        ExpressionModel.load(path)


def test_load_bad_hparams_and_damaged_metadata(tiny_model: ExpressionModel, tmp_path: Path) -> None:
    path = _saved(tiny_model, tmp_path)
    with h5py.File(path, "a") as h5:
        h5.attrs["hparams"] = json.dumps({**TINY, "dense": []})
    with pytest.raises(ModelError, match="m.vxm.h5: hyperparameter dense"):
        ExpressionModel.load(path)
    path2 = tmp_path / "m2.vxm.h5"
    tiny_model.save(path2)
    with h5py.File(path2, "a") as h5:
        h5.attrs["metadata"] = "{broken"
    with pytest.raises(ModelError, match="not JSON"):
        ExpressionModel.load(path2)


def test_metadata_feature_count_must_match() -> None:
    with pytest.raises(ModelError, match="2 half-life features"):
        ExpressionModel.from_hparams(TINY, name="x", feature_names=["a"], default_features=[0.0])


def test_metadata_dict_round_trip() -> None:
    meta = ModelMetadata(name="m", upstream=3, downstream=2, feature_names=["f"], default_features=[0.0])
    again = ModelMetadata.from_dict(json.loads(json.dumps(meta.to_dict())))
    assert again == meta
    with pytest.raises(ModelError, match="lacks upstream"):
        ModelMetadata.from_dict({"name": "x", "downstream": 2})


def test_import_is_lazy() -> None:
    code = "import sys, varxpress.models.network; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- bundled model ------------------------------------------------------------------------------------------------


def test_bundled_model_loads_with_expected_metadata() -> None:
    model = ExpressionModel.load()
    assert model.path == DEFAULT_MODEL_PATH
    meta = model.metadata
    assert meta.name == "xpresso_human_hg38"
    assert (meta.upstream, meta.downstream, meta.genome_build, meta.alphabet) == (7000, 3500, "hg38", "ACGT")
    assert model.window_spec == WindowSpec(7000, 3500)
    assert meta.output_scale == "standardized_log10"
    assert meta.label_mean == pytest.approx(0.2959) and meta.label_sd == pytest.approx(0.8405)
    assert model.n_features == 6 and meta.default_features == [0.0] * 6 and len(meta.feature_names) == 6
    assert meta.metrics["val_mse"] == 0.426 and meta.metrics["test_r2"] == 0.59
    assert meta.source["sha256"] == "15a383648008df5f843ec8651e78be5faf82609c88fb068da890aa7a89387bb0"
    assert "Cell Reports" in meta.source["citation"]
    assert meta.source["verification"]["max_abs_diff"] < 1e-5
    assert validate_hparams(meta.hparams)["conv"] == DEFAULT_HPARAMS["conv"]
    assert layer_names(meta.hparams) == [i.name for i in iter_layers(model)]
    p = model.predict(one_hot_random(2, 10500))
    assert p.shape == (2,) and np.isfinite(p).all()


def test_batch_norm_model_round_trips_through_its_file(tmp_path) -> None:
    """A network with BatchNormalization and conv dropout: its layers are the documented ones, and the file keeps
    the normalisation statistics (a model that lost them would predict differently)."""
    hp = {"upstream": 30, "downstream": 20, "conv": [{"filters": 3, "kernel": 5, "pool": 2}, {"filters": 2, "kernel": 3}],
          "dense": [{"units": 4}], "n_features": 0, "batch_norm": True, "conv_dropout": 0.1, "global_pool": "avg"}
    model = ExpressionModel.from_hparams(hp, name="bn")
    rng = np.random.default_rng(1)
    for layer in model.keras_model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 1, n), rng.normal(0, 1, n), rng.uniform(0.2, 3, n)])
    names = [i.name for i in iter_layers(model)]
    assert names == layer_names(model.hparams)
    assert names[:6] == ["conv_1", "bn_1", "conv_relu_1", "pool_1", "conv_dropout_1", "conv_2"]
    assert [i.kind for i in iter_layers(model)][:3] == ["conv", "batchnorm", "relu"]
    X = one_hot_random(5, 50)
    loaded = ExpressionModel.load(model.save(tmp_path / "bn.vxm.h5"))
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=0, atol=1e-6)
    assert loaded.hparams["batch_norm"] is True and loaded.hparams["conv_dropout"] == 0.1


def test_model_stem_keeps_what_precedes_the_model_suffix() -> None:
    from varxpress.models.network import model_stem

    assert model_stem("out/wtc11-lr0.001.vxm.h5") == "wtc11-lr0.001"
    assert model_stem("m.vxm.h5") == "m" and model_stem("m.h5") == "m" and model_stem("model") == "model"
