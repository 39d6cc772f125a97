"""The layers of the network, described without Keras: their names (:func:`layer_names`) and weights
(:func:`weight_shapes`) for some hyperparameters, as :func:`varxpress.models.network.build_network` makes them, and
numpy descriptors of a built network's layers (:func:`iter_layers`) for other engines.

``tests/test_model.py`` and ``tests/test_fastpath.py`` check the first two against the Keras network itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from varxpress.errors import ModelError
from varxpress.models.hparams import validate_hparams

__all__ = ["BN_EPSILON", "LayerInfo", "iter_layers", "layer_names", "weight_shapes"]

#: The epsilon of every BatchNormalization ``build_network`` makes (Keras' default, stated so that the numpy
#: engines fold the same one).
BN_EPSILON = 1e-3


def layer_names(hparams: Mapping[str, Any]) -> list[str]:
    """Names of the layers ``build_network`` makes for ``hparams``, in forward order (inputs excluded).

    ``pool_i`` is present only when conv layer i has ``pool > 1``; ``bn_i`` and ``conv_relu_i`` only with
    ``batch_norm``; ``conv_dropout_i`` only with a non-zero ``conv_dropout``; ``concat`` only when ``n_features > 0``.
    """
    hp = validate_hparams(hparams)
    names: list[str] = []
    for i, layer in enumerate(hp["conv"], 1):
        names.append(f"conv_{i}")
        if hp.get("batch_norm"):
            names += [f"bn_{i}", f"conv_relu_{i}"]
        if layer["pool"] > 1:
            names.append(f"pool_{i}")
        if hp.get("conv_dropout"):
            names.append(f"conv_dropout_{i}")
    names.append("global_pool" if hp.get("global_pool", "none") != "none" else "flatten")
    if hp["n_features"] > 0:
        names.append("concat")
    for j in range(1, len(hp["dense"]) + 1):
        names += [f"dense_{j}", f"relu_{j}", f"dropout_{j}"]
    names.append("output")
    return names


def weight_shapes(hparams: Mapping[str, Any]) -> dict[str, dict[str, tuple[int, ...]]]:
    """The weights of the layers ``build_network`` makes for ``hparams``: ``{layer: {weight: shape}}``, in
    forward order and in Keras' order of each layer's weights (``kernel, bias``; ``gamma, beta, moving_mean,
    moving_variance``). What :meth:`ExpressionModel.load` checks a file against, without building the network."""
    hp = validate_hparams(hparams)
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    channels, length = 4, hp["upstream"] + hp["downstream"]
    for i, c in enumerate(hp["conv"], 1):
        shapes[f"conv_{i}"] = {"kernel": (c["kernel"], channels, c["filters"]), "bias": (c["filters"],)}
        if hp.get("batch_norm"):
            shapes[f"bn_{i}"] = {w: (c["filters"],) for w in ("gamma", "beta", "moving_mean", "moving_variance")}
        channels = c["filters"]
        length //= c["pool"]  # MaxPooling1D(pool, strides=pool, 'valid') keeps floor(length / pool) positions
    width = (channels if hp.get("global_pool", "none") != "none" else length * channels) + hp["n_features"]
    for j, d in enumerate(hp["dense"], 1):
        shapes[f"dense_{j}"] = {"kernel": (width, d["units"]), "bias": (d["units"],)}
        width = d["units"]
    shapes["output"] = {"kernel": (width, 1), "bias": (1,)}
    return shapes


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the network in forward order, as plain numpy.

    ``kind`` is one of ``conv`` (config: filters, kernel, dilation, padding='same', activation 'relu', or 'linear'
    when a ``batchnorm`` and a ``relu`` follow; weights: kernel (k, c_in, filters), bias (filters,)), ``batchnorm``
    (config: epsilon; weights: gamma, beta, moving_mean, moving_variance, each (filters,)), ``pool`` (config: pool,
    strides=pool, padding='valid'), ``flatten``, ``concat`` (appends the half-life features), ``dense`` (config: units; weights: kernel (in, units),
    bias (units,); linear), ``relu``, ``dropout`` (config: rate; identity at prediction), ``output`` (Dense with 1
    unit, linear).
    """

    name: str
    kind: str
    config: dict[str, Any]
    weights: dict[str, np.ndarray]


def iter_layers(model: Any) -> list[LayerInfo]:
    """Descriptors of the layers of an :class:`~varxpress.models.network.ExpressionModel` (or a ``keras.Model``
    from ``build_network``).

    Weights are float32 numpy copies. Raises ModelError for a Keras model that is not of this architecture.
    """
    keras_model = getattr(model, "keras_model", model)
    out: list[LayerInfo] = []
    for layer in keras_model.layers:
        name = layer.name
        cls = type(layer).__name__
        w = [np.asarray(v, dtype=np.float32) for v in layer.get_weights()]
        if cls == "InputLayer":
            continue
        if cls == "Conv1D":
            cfg = {"filters": layer.filters, "kernel": layer.kernel_size[0], "dilation": layer.dilation_rate[0],
                   "padding": layer.padding, "activation": layer.get_config()["activation"]}
            out.append(LayerInfo(name, "conv", cfg, {"kernel": w[0], "bias": w[1]}))
        elif cls == "BatchNormalization":
            out.append(LayerInfo(name, "batchnorm", {"epsilon": float(layer.epsilon)},
                                 dict(zip(("gamma", "beta", "moving_mean", "moving_variance"), w))))
        elif cls == "MaxPooling1D":
            out.append(LayerInfo(name, "pool", {"pool": layer.pool_size[0], "strides": layer.strides[0],
                                                "padding": layer.padding}, {}))
        elif cls == "Flatten":
            out.append(LayerInfo(name, "flatten", {}, {}))
        elif cls in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
            out.append(LayerInfo(name, "global_pool", {"mode": "max" if "Max" in cls else "avg"}, {}))
        elif cls == "Concatenate":
            out.append(LayerInfo(name, "concat", {}, {}))
        elif cls == "Dense":
            kind = "output" if name == "output" else "dense"
            out.append(LayerInfo(name, kind, {"units": layer.units}, {"kernel": w[0], "bias": w[1]}))
        elif cls == "Activation":
            out.append(LayerInfo(name, "relu", {}, {}))
        elif cls == "Dropout":
            out.append(LayerInfo(name, "dropout", {"rate": float(layer.rate)}, {}))
        else:
            raise ModelError(f"layer {name!r} of type {cls} is not part of the varxpress architecture")
    return out
