"""The published Xpresso models' file format, read without Keras: a Keras 2.0.5 full-model HDF5 file.

:func:`read_keras2_h5` gives its ``model_config``, its weights and its other attributes; :func:`numpy_forward` runs
the network the config describes in plain numpy, independently of :func:`varxpress.models.network.build_network`,
so :func:`varxpress.models.xpresso.import_xpresso` can check its conversion against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from varxpress.errors import ModelError

__all__ = ["read_keras2_h5", "config_layers", "inbound_names", "numpy_forward"]


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def read_keras2_h5(path: str | Path) -> tuple[dict[str, Any], dict[str, list[np.ndarray]], dict[str, Any]]:
    """Read a Keras 2 full-model HDF5 file.

    Returns:
        (model_config dict, weights {layer name: [arrays in the file's weight_names order]}, other attributes such
        as keras_version and training_config (parsed)).

    Raises:
        ModelError: missing file, not HDF5, or no ``model_config``/``model_weights``.
    """
    import h5py  # only when a file is converted: the CLI imports this module for --help

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Keras model file {path} does not exist; give the path of a published Xpresso .h5 file")
    if not h5py.is_hdf5(path):
        raise ModelError(f"{path} is not an HDF5 file; give a Keras 2 .h5 model such as human_trainepoch.11-0.426.h5")
    with h5py.File(path, "r") as h5:
        if "model_config" not in h5.attrs or "model_weights" not in h5:
            hint = " (it is already a varxpress model)" if "varxpress_format" in h5.attrs else ""
            raise ModelError(f"{path} is not a full Keras model file (no model_config/model_weights){hint}; give a "
                             f"Keras 2 .h5 file saved with model.save()")
        config = json.loads(_decode(h5.attrs["model_config"]))
        attrs: dict[str, Any] = {"keras_version": _decode(h5.attrs.get("keras_version", "")),
                                 "backend": _decode(h5.attrs.get("backend", ""))}
        if "training_config" in h5.attrs:
            try:
                attrs["training_config"] = json.loads(_decode(h5.attrs["training_config"]))
            except ValueError:
                attrs["training_config"] = None
        mw = h5["model_weights"]
        weights: dict[str, list[np.ndarray]] = {}
        for lname in [_decode(n) for n in mw.attrs.get("layer_names", list(mw.keys()))]:
            g = mw[lname]
            names = [_decode(n) for n in g.attrs.get("weight_names", [])]
            weights[lname] = [np.asarray(g[n][()]) for n in names]
    return config, weights, attrs


def config_layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The layer entries of a functional ``model_config``, in file order."""
    try:
        return list(config["config"]["layers"])
    except (KeyError, TypeError) as exc:
        raise ModelError("model_config has no config.layers list; not a Keras functional model") from exc


def inbound_names(layer: dict[str, Any]) -> list[str]:
    """Names of the layers feeding ``layer`` (its first inbound node)."""
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return []
    return [entry[0] for entry in nodes[0]]


def _activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "linear":
        return x
    raise ModelError(f"activation {name!r} is not supported by the numpy reference")


def _conv1d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, dilation: int, padding: str) -> np.ndarray:
    """x (n, L, C), kernel (k, C, F) -> (n, L_out, F); 'same' pads (k_eff-1)//2 left like Keras/TensorFlow."""
    k = kernel.shape[0]
    span = dilation * (k - 1) + 1
    n, length, _ = x.shape
    if padding == "same":
        left = (span - 1) // 2
        right = span - 1 - left
        x = np.pad(x, ((0, 0), (left, right), (0, 0)))
        out_len = length
    elif padding == "valid":
        out_len = length - span + 1
    else:
        raise ModelError(f"conv padding {padding!r} is not supported by the numpy reference")
    out = np.zeros((n, out_len, kernel.shape[2]), dtype=np.float64)
    for j in range(k):
        out += x[:, j * dilation: j * dilation + out_len, :] @ kernel[j]
    return out + bias


def _maxpool1d(x: np.ndarray, pool: int, strides: int) -> np.ndarray:
    n, length, c = x.shape
    out_len = (length - pool) // strides + 1
    idx = np.arange(out_len)[:, None] * strides + np.arange(pool)[None, :]
    return x[:, idx, :].max(axis=2)


def numpy_forward(config: dict[str, Any], weights: dict[str, list[np.ndarray]],
                  inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a Keras 2 functional ``model_config`` with ``weights`` in float64 numpy.

    Independent of Keras and of :func:`varxpress.models.network.build_network`: it walks the config's layers in order
    (Keras stores them topologically) and applies Conv1D ('same'/'valid', dilation, relu/linear), MaxPooling1D
    ('valid'), Flatten (channels-last, row-major, as Keras), Concatenate (last axis), Dense, Activation and Dropout
    (identity at prediction).

    Args:
        inputs: {input layer name: array}; e.g. ``promoter`` (n, L, 4) and ``halflife`` (n, F).

    Returns:
        the output layer's values, shape (n,) for a 1-unit output.
    """
    values: dict[str, np.ndarray] = {}
    layers = config_layers(config)
    for layer in layers:
        name, cls, cfg = layer["name"], layer["class_name"], layer["config"]
        srcs = [values[s] for s in inbound_names(layer)]
        if cls == "InputLayer":
            if name not in inputs:
                raise ModelError(f"numpy reference: no array given for input {name!r}")
            values[name] = np.asarray(inputs[name], dtype=np.float64)
        elif cls == "Conv1D":
            kernel, bias = (np.asarray(w, dtype=np.float64) for w in weights[name])
            if list(cfg.get("strides", [1])) != [1]:
                raise ModelError(f"numpy reference: {name} has strides != 1")
            y = _conv1d(srcs[0], kernel, bias, int(cfg.get("dilation_rate", [1])[0]), cfg["padding"])
            values[name] = _activation(y, cfg.get("activation", "linear"))
        elif cls == "MaxPooling1D":
            if cfg.get("padding", "valid") != "valid":
                raise ModelError(f"numpy reference: {name} has padding {cfg.get('padding')!r}")
            pool = int(cfg["pool_size"][0])
            values[name] = _maxpool1d(srcs[0], pool, int((cfg.get("strides") or [pool])[0]))
        elif cls == "Flatten":
            values[name] = srcs[0].reshape(srcs[0].shape[0], -1)
        elif cls == "Concatenate":
            values[name] = np.concatenate(srcs, axis=cfg.get("axis", -1))
        elif cls == "Dense":
            w = [np.asarray(a, dtype=np.float64) for a in weights[name]]
            y = srcs[0] @ w[0] + (w[1] if len(w) > 1 else 0.0)
            values[name] = _activation(y, cfg.get("activation", "linear"))
        elif cls == "Activation":
            values[name] = _activation(srcs[0], cfg["activation"])
        elif cls == "Dropout":
            values[name] = srcs[0]
        else:
            raise ModelError(f"numpy reference: layer type {cls} ({name}) is not supported")
    out_name = config["config"]["output_layers"][0][0]
    return values[out_name].reshape(values[out_name].shape[0], -1)[:, 0]
