"""Tests of varxpress.models.xpresso: converting published Xpresso Keras 2 models and checking them against references.

Synthetic tests write a small Keras-2.0.5-style HDF5 file (model_config JSON + model_weights groups) into tmp_path.
Real-data tests read ``../shared/data`` through ``tests.realdata`` (skipped with a reason where it is absent,
failed under ``CI=true``).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from tests.realdata import DATA, need
from varxpress.cli import import_xpresso as import_cli
from varxpress.models import xpresso
from varxpress.sequence.encode import one_hot, reverse_complement
from varxpress.errors import ModelError
from varxpress.models.network import ExpressionModel, build_network
from varxpress.models.keras2 import numpy_forward, read_keras2_h5
from varxpress.models.xpresso import hparams_from_config, import_xpresso

HUMAN = DATA / "xpresso" / "human_trainepoch.11-0.426.h5"
MOUSE = DATA / "xpresso" / "mouse_trainepoch.05-0.278.h5"


# ---- a Keras-2-style file written by hand --------------------------------------------------------------------------


def _layer(cls: str, name: str, inbound: list[str], **cfg: object) -> dict:
    return {"class_name": cls, "name": name, "config": {"name": name, **cfg},
            "inbound_nodes": [[[src, 0, 0, {}] for src in inbound]] if inbound else []}


def keras2_config(length: int, n_features: int, conv: list[tuple[int, int, int, int]], dense: list[tuple[int, float]],
                  extra_layer: dict | None = None) -> dict:
    """Keras 2.0.5 functional model_config: conv = (filters, kernel, dilation, pool), dense = (units, dropout)."""
    layers = [_layer("InputLayer", "promoter", [], batch_input_shape=[None, length, 4], dtype="float32")]
    prev = "promoter"
    for i, (filters, kernel, dil, pool) in enumerate(conv, 1):
        layers.append(_layer("Conv1D", f"conv1d_{i}", [prev], filters=filters, kernel_size=[kernel], padding="same",
                             strides=[1], dilation_rate=[dil], activation="relu", use_bias=True))
        prev = f"conv1d_{i}"
        if pool > 1:
            layers.append(_layer("MaxPooling1D", f"max_pooling1d_{i}", [prev], pool_size=[pool], strides=[pool],
                                 padding="valid"))
            prev = f"max_pooling1d_{i}"
    if extra_layer is not None:
        extra_layer["inbound_nodes"] = [[[prev, 0, 0, {}]]]
        layers.append(extra_layer)
        prev = extra_layer["name"]
    layers.append(_layer("Flatten", "flatten_1", [prev]))
    prev = "flatten_1"
    if n_features:
        layers.append(_layer("InputLayer", "halflife", [], batch_input_shape=[None, n_features], dtype="float32"))
        layers.append(_layer("Concatenate", "concatenate_1", ["flatten_1", "halflife"], axis=-1))
        prev = "concatenate_1"
    for j, (units, rate) in enumerate(dense, 1):
        layers.append(_layer("Dense", f"dense_{j}", [prev], units=units, activation="linear", use_bias=True))
        layers.append(_layer("Activation", f"activation_{j}", [f"dense_{j}"], activation="relu"))
        layers.append(_layer("Dropout", f"dropout_{j}", [f"activation_{j}"], rate=rate))
        prev = f"dropout_{j}"
    out = f"dense_{len(dense) + 1}"
    layers.append(_layer("Dense", out, [prev], units=1, activation="linear", use_bias=True))
    inputs = [["promoter", 0, 0]] + ([["halflife", 0, 0]] if n_features else [])
    return {"class_name": "Model", "config": {"name": "model_1", "layers": layers, "input_layers": inputs,
                                              "output_layers": [[out, 0, 0]]}}


def random_weights(config: dict, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Random kernels/biases with the shapes the config implies (numpy only)."""
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple] = {}
    weights: dict[str, list[np.ndarray]] = {}
    for layer in config["config"]["layers"]:
        cls, cfg, name = layer["class_name"], layer["config"], layer["name"]
        src = [n[0] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if cls == "InputLayer":
            shapes[name] = tuple(cfg["batch_input_shape"][1:])
        elif cls == "Conv1D":
            length, c_in = shapes[src[0]]
            k = (rng.standard_normal((cfg["kernel_size"][0], c_in, cfg["filters"])) * 0.3).astype(np.float32)
            weights[name] = [k, (rng.standard_normal(cfg["filters"]) * 0.1).astype(np.float32)]
            shapes[name] = (length, cfg["filters"])
        elif cls == "MaxPooling1D":
            length, c = shapes[src[0]]
            shapes[name] = (length // cfg["pool_size"][0], c)
        elif cls == "Flatten":
            shapes[name] = (int(np.prod(shapes[src[0]])),)
        elif cls == "Concatenate":
            shapes[name] = (sum(shapes[s][0] for s in src),)
        elif cls == "Dense":
            n_in = shapes[src[0]][0]
            k = (rng.standard_normal((n_in, cfg["units"])) / np.sqrt(n_in)).astype(np.float32)
            weights[name] = [k, (rng.standard_normal(cfg["units"]) * 0.1).astype(np.float32)]
            shapes[name] = (cfg["units"],)
        else:
            shapes[name] = shapes[src[0]]
    return weights


def write_keras2_h5(path: Path, config: dict, weights: dict[str, list[np.ndarray]]) -> Path:
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = b"2.0.5"
        h5.attrs["backend"] = b"tensorflow"
        h5.attrs["model_config"] = json.dumps(config).encode()
        h5.attrs["training_config"] = json.dumps({"optimizer_config": {"class_name": "Adam", "config": {"lr": 0.002}}}).encode()
        mw = h5.create_group("model_weights")
        names = [layer["name"] for layer in config["config"]["layers"]]
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            g = mw.create_group(name)
            ws = weights.get(name, [])
            wnames = [f"{name}/kernel:0", f"{name}/bias:0"][: len(ws)]
            g.attrs["weight_names"] = np.array([w.encode() for w in wnames])
            for wname, value in zip(wnames, ws):
                g.create_dataset(wname, data=value)
    return path


@pytest.fixture
def tiny_keras2(tmp_path: Path) -> Path:
    config = keras2_config(60, 3, [(5, 6, 1, 3), (4, 3, 2, 2)], [(6, 0.1), (3, 0.2)])
    return write_keras2_h5(tmp_path / "tiny_trainepoch.02-0.500.h5", config, random_weights(config, seed=4))


# ---- synthetic tests ------------------------------------------------------------------------------------------------


def test_hparams_read_from_config(tiny_keras2: Path) -> None:
    config, weights, attrs = read_keras2_h5(tiny_keras2)
    hp = hparams_from_config(config, attrs["training_config"], upstream=40)
    assert (hp["upstream"], hp["downstream"], hp["n_features"]) == (40, 20, 3)
    assert hp["conv"] == [{"filters": 5, "kernel": 6, "dilation": 1, "pool": 3},
                          {"filters": 4, "kernel": 3, "dilation": 2, "pool": 2}]
    assert hp["dense"] == [{"units": 6, "dropout": 0.1}, {"units": 3, "dropout": 0.2}]
    assert hp["learning_rate"] == 0.002 and hp["optimizer"] == "adam"
    assert list(weights) == [layer["name"] for layer in config["config"]["layers"]]


def test_numpy_forward_agrees_with_build_network() -> None:
    """The numpy reference and the Keras builder agree on architectures with even kernels, dilation, no pooling."""
    for seed, (conv, dense, n_feat) in enumerate([
        ([(3, 4, 1, 1)], [(4, 0.0)], 0),
        ([(5, 6, 2, 3), (2, 5, 3, 1), (3, 2, 1, 2)], [(7, 0.3)], 2),
        ([(2, 1, 1, 5), (3, 8, 1, 2), (2, 3, 2, 1), (2, 2, 1, 3)], [(3, 0.0), (2, 0.5)], 4),
    ]):
        config = keras2_config(90, n_feat, conv, dense)
        weights = random_weights(config, seed)
        hp = hparams_from_config(config, upstream=60)
        net = build_network(hp)
        for layer, name in zip([l for l in net.layers if l.weights],
                               [l["name"] for l in config["config"]["layers"] if l["name"] in weights]):
            layer.set_weights(weights[name])
        rng = np.random.default_rng(seed)
        X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (5, 90))]
        F = rng.standard_normal((5, n_feat)).astype(np.float32)
        ref = numpy_forward(config, weights, {"promoter": X, "halflife": F})
        got = np.asarray(net.predict_on_batch([X, F] if n_feat else X)).reshape(-1)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_import_synthetic_and_cli(tiny_keras2: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    import_cli.add_arguments(parser)
    out = tmp_path / "tiny.vxm.h5"
    args = parser.parse_args([str(tiny_keras2), "--out", str(out), "--upstream", "40", "--downstream", "20",
                              "--genome-build", "toy", "--name", "tiny"])
    assert import_cli.run(args) == 0
    model = ExpressionModel.load(out)
    meta = model.metadata
    assert (meta.name, meta.genome_build, meta.upstream, meta.downstream) == ("tiny", "toy", 40, 20)
    assert meta.label_mean is None and meta.label_sd is None  # unknown file: no output map
    assert meta.feature_names == ["halflife_1", "halflife_2", "halflife_3"]
    assert meta.metrics["val_mse"] == 0.5 and meta.metrics["epoch"] == 2
    assert meta.source["file"] == tiny_keras2.name and len(meta.source["sha256"]) == 64
    config, weights, _ = read_keras2_h5(tiny_keras2)
    rng = np.random.default_rng(9)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (6, 60))]
    F = rng.standard_normal((6, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X, F), numpy_forward(config, weights, {"promoter": X, "halflife": F}),
                               rtol=0, atol=1e-5)


def test_import_refuses_wrong_window(tiny_keras2: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="input length is 60"):
        import_xpresso(tiny_keras2, tmp_path / "x.vxm.h5", upstream=7000, downstream=3500)


def test_import_fails_when_predictions_differ(tiny_keras2: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = xpresso.numpy_forward
    monkeypatch.setattr(xpresso, "numpy_forward", lambda *a, **k: real(*a, **k) + 1e-3)
    out = tmp_path / "x.vxm.h5"
    with pytest.raises(ModelError, match="differs from the original"):
        import_xpresso(tiny_keras2, out, upstream=40, downstream=20)
    assert not out.exists()


def test_import_rejects_unsupported_layers(tmp_path: Path) -> None:
    bn = _layer("BatchNormalization", "batch_normalization_1", [])
    config = keras2_config(60, 0, [(3, 3, 1, 2)], [(4, 0.0)], extra_layer=bn)
    path = write_keras2_h5(tmp_path / "bn.h5", config, random_weights(config))
    with pytest.raises(ModelError, match="BatchNormalization cannot be converted"):
        import_xpresso(path, tmp_path / "x.vxm.h5", upstream=30, downstream=30)


def test_import_rejects_non_keras_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        import_xpresso(tmp_path / "none.h5", tmp_path / "x.vxm.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="not an HDF5 file"):
        import_xpresso(junk, tmp_path / "x.vxm.h5")
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w"):
        pass
    with pytest.raises(ModelError, match="not a full Keras model"):
        import_xpresso(empty, tmp_path / "x.vxm.h5")


# ---- real data ------------------------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("which", ["human", "mouse"])
def test_converted_xpresso_equals_original_numpy_network(which: str, tmp_path: Path) -> None:
    """Required check: the converted published model equals the original network (numpy rebuild) within 1e-5."""
    src = need(HUMAN if which == "human" else MOUSE)
    config, weights, _ = read_keras2_h5(src)
    hp = hparams_from_config(config)
    assert (hp["upstream"] + hp["downstream"], hp["n_features"]) == (10500, 6)
    assert [c["pool"] for c in hp["conv"]] == [30, 10] and [d["units"] for d in hp["dense"]] == [64, 2]
    model = import_xpresso(src, tmp_path / f"{which}.vxm.h5", genome_build="hg38" if which == "human" else "mm10")
    rng = np.random.default_rng(123)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (6, 10500))]
    X[rng.random((6, 10500)) < 0.05] = 0.0
    F = rng.standard_normal((6, 6)).astype(np.float32)
    ref = numpy_forward(config, weights, {"promoter": X, "halflife": F})
    np.testing.assert_allclose(model.predict(X, F), ref, rtol=0, atol=1e-5)
    ref0 = numpy_forward(config, weights, {"promoter": X, "halflife": np.zeros_like(F)})
    np.testing.assert_allclose(model.predict(X), ref0, rtol=0, atol=1e-5)
    assert model.metadata.metrics["test_r2"] == (0.59 if which == "human" else 0.71)


def _read_fasta_gz(path: Path) -> dict[str, str]:
    seqs: dict[str, list[str]] = {}
    name = None
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                name = line[1:].split()[0]
                seqs[name] = []
            elif name is not None:
                seqs[name].append(line.strip())
    return {k: "".join(v).upper() for k, v in seqs.items()}


@pytest.mark.realdata
def test_bundled_model_reproduces_published_kipoi_predictions() -> None:
    """Windows cut from real hg38 ([tss-7000, tss+3500) on +, [tss-3500, tss+7000) reverse-complemented on -).

    Encoded by varxpress' own ``reverse_complement``/``one_hot``, as ``score`` does (the whole ``score`` path with
    the bundled defaults is checked against the same predictions in tests/test_published.py).
    """
    fasta = need(DATA / "hg38" / "hg38_65_windows_131kb.fa.gz")
    bed = pd.read_csv(need(DATA / "xpresso" / "kipoi_human_hg38_windows.bed.gz"), sep="\t", header=None,
                      names=["chrom", "start", "end", "gene", "dot", "strand"])
    published = pd.read_csv(need(DATA / "xpresso" / "kipoi_xpresso_human_hg38_predictions.tsv.gz"), sep="\t")
    assert len(bed) == len(published)
    regions = []
    for header, seq in _read_fasta_gz(fasta).items():  # header chrom:start-end, 0-based half-open
        chrom, span = header.rsplit(":", 1)
        start, end = map(int, span.split("-"))
        assert len(seq) == end - start
        regions.append((chrom, start, end, seq))
    windows, expected = [], []
    for i, row in enumerate(bed.itertuples(index=False)):
        assert row.end - row.start == 10500
        for chrom, start, end, seq in regions:
            if chrom == row.chrom and start <= row.start and row.end <= end:
                w = seq[row.start - start: row.end - start]
                windows.append(reverse_complement(w) if row.strand == "-" else w)
                expected.append(published["preds/expression_pred"].iloc[i])
                break
    assert len(windows) >= 50
    X = one_hot(windows)
    got = ExpressionModel.load().predict(X)  # half-life features at their defaults (zeros), as Kipoi
    expected_arr = np.asarray(expected)
    assert np.corrcoef(got, expected_arr)[0, 1] > 0.999
    assert np.max(np.abs(got - expected_arr)) < 0.1


@pytest.mark.realdata
def test_bundled_model_is_the_published_human_model() -> None:
    src = need(HUMAN)
    model = ExpressionModel.load()
    assert model.metadata.source["sha256"] == xpresso.sha256_file(src)
    _, weights, _ = read_keras2_h5(src)
    conv = model.keras_model.get_layer("conv_1").get_weights()
    assert np.array_equal(conv[0], weights["conv1d_1"][0]) and np.array_equal(conv[1], weights["conv1d_1"][1])
    out = model.keras_model.get_layer("output").get_weights()
    assert np.array_equal(out[0], weights["dense_3"][0])
