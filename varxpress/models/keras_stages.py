"""A network read into numpy stages, for the local engines (:mod:`varxpress.models.local_scorer`,
:mod:`varxpress.models.shiftpath`).

:func:`parse_network` reads the layers :func:`varxpress.models.network.build_network` makes (Conv1D 'same' ->
activation -> MaxPooling1D with strides == pool ... -> Flatten or GlobalAveragePooling1D -> [Concatenate features] ->
Dense head with one output) into :class:`~varxpress.models.stages.ConvStage` s and a
:class:`~varxpress.models.stages.Head` (defined in :mod:`varxpress.models.stages`, re-exported here), each holding
its weights as numpy arrays and the arithmetic of its step; any other layer raises :class:`Unsupported` naming it.
:func:`supports` tells whether a network fits.
A loaded :class:`~varxpress.models.network.ExpressionModel` is read the same way from its hyperparameters and numpy
weights (:func:`parse_hparams`, no Keras); :func:`parse_model` picks the way.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from varxpress.models.layers import BN_EPSILON
from varxpress.models.stages import (ACTIVATIONS, ConvStage, Head, Unsupported, average_rows, fold_normalisation,
                                     one_blas_thread)

logger = logging.getLogger(__name__)

__all__ = ["ACTIVATIONS", "ConvStage", "Head", "Unsupported", "parse_network", "parse_hparams", "parse_model",
           "supports", "keras_model_of", "one_blas_thread"]


def activation_name(fn: Any) -> str:
    import keras  # a Keras model is being read, so Keras is already loaded; imported here for --help's start-up

    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    name = str(name)
    if name not in ACTIVATIONS:
        raise Unsupported(f"activation {name!r} (supported: {', '.join(ACTIVATIONS)})")
    return name


def keras_model_of(model: Any) -> Any:
    """The ``keras.Model`` of an ``ExpressionModel``, or ``model`` itself."""
    return getattr(model, "keras_model", model)


def parse_network(keras_model: Any) -> tuple[list[ConvStage], Head, int, int, str, str | None]:
    """Read a Keras network into numpy stages. Raises :class:`Unsupported` naming the first layer that does not fit.

    Returns (stages, head, window_length, n_features, sequence_input_name, feature_input_name).
    """
    from keras import layers as kl  # see activation_name

    seq_name: str | None = None
    feat_name: str | None = None
    length = n_features = 0
    for inp in keras_model.inputs:
        shape = tuple(inp.shape)
        if len(shape) == 3:
            if seq_name is not None:
                raise Unsupported("more than one sequence input")
            seq_name, length = inp.name, shape[1]
            if shape[2] != 4:
                raise Unsupported(f"sequence input has {shape[2]} channels, expected 4")
        elif len(shape) == 2:
            if feat_name is not None:
                raise Unsupported("more than one feature input")
            feat_name, n_features = inp.name, shape[1]
        else:
            raise Unsupported(f"input {inp.name!r} of shape {shape}")
    if seq_name is None or length is None:
        raise Unsupported("no fixed-length (None, L, 4) sequence input")

    stages: list[ConvStage] = []
    head: Head | None = None
    first_dense: tuple[np.ndarray, np.ndarray] | None = None
    flat_first = True
    global_avg = False
    phase = "conv"
    for layer in keras_model.layers:
        if isinstance(layer, kl.InputLayer) or isinstance(layer, kl.Dropout):
            continue
        if phase == "conv":
            if type(layer) is kl.Conv1D:
                if layer.padding != "same" or tuple(layer.strides) != (1,) or layer.data_format != "channels_last":
                    raise Unsupported(f"{layer.name}: Conv1D must be padding='same', stride 1, channels_last")
                if getattr(layer, "groups", 1) != 1:
                    raise Unsupported(f"{layer.name}: grouped convolution")
                kernel = np.asarray(layer.kernel, dtype=np.float32)
                bias = (
                    np.asarray(layer.bias, dtype=np.float32)
                    if layer.use_bias
                    else np.zeros(kernel.shape[2], dtype=np.float32)
                )
                stages.append(
                    ConvStage(kernel, bias, int(layer.dilation_rate[0]), [activation_name(layer.activation)])
                )
            elif (isinstance(layer, kl.BatchNormalization) and stages and stages[-1].pool == 1
                  and stages[-1].acts == ["linear"]):
                stages[-1] = _fold_batch_norm(stages[-1], layer)
            elif isinstance(layer, (kl.Activation, kl.ReLU)) and stages and stages[-1].pool == 1:
                relu_layer = isinstance(layer, kl.ReLU)
                stages[-1].acts.append(_relu_layer_name(layer) if relu_layer else activation_name(layer.activation))
            elif isinstance(layer, kl.MaxPooling1D) and stages and stages[-1].pool == 1:
                p = int(layer.pool_size[0])
                if tuple(layer.strides) != (p,) or layer.padding != "valid" or layer.data_format != "channels_last":
                    raise Unsupported(f"{layer.name}: MaxPooling1D must have strides == pool_size, padding 'valid'")
                stages[-1].pool = p
            elif isinstance(layer, kl.Flatten) and stages:
                phase = "concat"
            elif isinstance(layer, kl.GlobalAveragePooling1D) and stages:
                if layer.data_format != "channels_last" or getattr(layer, "keepdims", False):
                    raise Unsupported(f"{layer.name}: GlobalAveragePooling1D must be channels_last without keepdims")
                global_avg, phase = True, "concat"
            else:
                raise Unsupported(f"{layer.name}: {type(layer).__name__} where Conv1D/MaxPooling1D/Flatten expected")
        elif phase == "concat":
            if isinstance(layer, kl.Concatenate):
                if feat_name is None or layer.axis not in (-1, 1) or len(layer.input) != 2:
                    raise Unsupported(f"{layer.name}: Concatenate must join the flattened output and the features")
                sources = [t._keras_history.operation for t in layer.input]
                pooled = (kl.Flatten, kl.GlobalAveragePooling1D)
                if not any(isinstance(s, pooled) for s in sources):
                    raise Unsupported(f"{layer.name}: Concatenate does not take the Flatten output")
                flat_first = isinstance(sources[0], pooled)
            elif isinstance(layer, kl.Dense):
                w = np.asarray(layer.kernel, dtype=np.float32)
                b = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(w.shape[1])
                first_dense = (w, b)
                head = Head(
                    np.empty(0, np.float32), np.empty(0), b, [activation_name(layer.activation)], []
                )
                phase = "head"
            else:
                raise Unsupported(f"{layer.name}: {type(layer).__name__} where Concatenate/Dense expected")
        else:
            assert head is not None
            if isinstance(layer, kl.Dense):
                w = np.asarray(layer.kernel, dtype=np.float64)
                b = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(w.shape[1])
                head.ops.append(("dense", (w, b)))
                act = activation_name(layer.activation)
                if act != "linear":
                    head.ops.append(("act", act))
            elif isinstance(layer, (kl.Activation, kl.ReLU)):
                name = _relu_layer_name(layer) if isinstance(layer, kl.ReLU) else activation_name(layer.activation)
                if head.ops:
                    head.ops.append(("act", name))
                else:
                    head.first_acts.append(name)
            else:
                raise Unsupported(f"{layer.name}: {type(layer).__name__} in the dense head")
    if head is None or first_dense is None:
        raise Unsupported("no Flatten -> Dense head")
    if feat_name is not None and phase != "head":
        raise Unsupported("feature input is not concatenated")
    # geometry and the first Dense's rows
    n = int(length)
    for st in stages:
        n //= st.pool
        if n < 1:
            raise Unsupported("pooling leaves no positions")
    w, _ = first_dense
    _split_first_dense(head, w, n, stages[-1].cout, n_features, global_avg, flat_first)
    last_units = next((arg[0].shape[1] for kind, arg in reversed(head.ops) if kind == "dense"), w.shape[1])
    if last_units != 1:
        raise Unsupported("the network's output is not a single unit")
    return stages, head, n, n_features, seq_name, feat_name


def parse_hparams(hparams: dict[str, Any], weights: dict[str, dict[str, np.ndarray]]
                  ) -> tuple[list[ConvStage], Head, int, int, str, str | None]:
    """What :func:`parse_network` reads from the network :func:`varxpress.models.network.build_network` makes for
    ``hparams``, from the hyperparameters and the weights alone (``{layer: {weight: array}}``, as
    :meth:`~varxpress.models.network.ExpressionModel.numpy_weights` gives them), without Keras. The same arrays in
    the same dtypes (``tests/test_fastpath.py`` compares the two readings); :class:`Unsupported` where
    :func:`parse_network` would raise it (global pooling)."""
    global_avg = hparams.get("global_pool", "none") == "avg"
    if hparams.get("global_pool", "none") not in ("none", "avg"):
        raise Unsupported("global_pool: GlobalMaxPooling1D where Conv1D/MaxPooling1D/Flatten expected")
    stages: list[ConvStage] = []
    for i, c in enumerate(hparams["conv"], 1):
        w = weights[f"conv_{i}"]
        stage = ConvStage(np.asarray(w["kernel"], dtype=np.float32), np.asarray(w["bias"], dtype=np.float32),
                          int(c["dilation"]), ["relu"])
        if hparams.get("batch_norm"):
            bn = weights[f"bn_{i}"]
            stats = (bn[k] for k in ("gamma", "beta", "moving_mean", "moving_variance"))
            stage = fold_normalisation(stage, *stats, BN_EPSILON)
            stage.acts.append("relu")
        stage.pool = int(c["pool"])
        stages.append(stage)
    n = hparams["upstream"] + hparams["downstream"]
    for st in stages:
        n //= st.pool
        if n < 1:
            raise Unsupported("pooling leaves no positions")
    dense = [weights[f"dense_{j}"] for j in range(1, len(hparams["dense"]) + 1)] + [weights["output"]]
    w = np.asarray(dense[0]["kernel"], dtype=np.float32)
    head = Head(np.empty(0, np.float32), np.empty(0), np.asarray(dense[0]["bias"], dtype=np.float64), ["linear"], [])
    if len(dense) > 1:
        head.first_acts.append("relu")
    for j, layer in enumerate(dense[1:], 2):
        head.ops.append(("dense", (np.asarray(layer["kernel"], dtype=np.float64),
                                   np.asarray(layer["bias"], dtype=np.float64))))
        if j < len(dense):  # dense_j is followed by its ReLU; the output is linear
            head.ops.append(("act", "relu"))
    n_features = int(hparams["n_features"])
    _split_first_dense(head, w, n, stages[-1].cout, n_features, global_avg, flat_first=True)
    return stages, head, n, n_features, "promoter", "halflife" if n_features else None


def _split_first_dense(head: Head, w: np.ndarray, n: int, c_last: int, n_features: int, global_avg: bool,
                       flat_first: bool) -> None:
    """Set ``head.w_flat`` (n, c_last, units) and ``head.w_feat`` from the first Dense's kernel ``w``: its rows for
    the flattened (or globally averaged) convolution output and for the features, in the order they were joined."""
    flat_len = c_last if global_avg else n * c_last
    if w.shape[0] != flat_len + n_features:
        raise Unsupported(f"first Dense has {w.shape[0]} inputs, expected {flat_len} + {n_features}")
    if flat_first:
        w_flat, w_feat = w[:flat_len], w[flat_len:]
    else:
        w_feat, w_flat = w[:n_features], w[n_features:]
    head.w_flat = average_rows(w_flat, n) if global_avg else np.ascontiguousarray(w_flat.reshape(n, c_last, -1))
    head.w_feat = w_feat.astype(np.float64)


def parse_model(model: Any) -> tuple[list[ConvStage], Head, int, int, str, str | None]:
    """:func:`parse_hparams` for an :class:`~varxpress.models.network.ExpressionModel` (no Keras needed),
    :func:`parse_network` for anything else with a Keras network (a plain ``keras.Model``, an imported one)."""
    if hasattr(model, "numpy_weights") and hasattr(model, "hparams"):
        return parse_hparams(model.hparams, model.numpy_weights())
    return parse_network(keras_model_of(model))


def _fold_batch_norm(stage: ConvStage, layer: Any) -> ConvStage:
    """:func:`~varxpress.models.stages.fold_normalisation` of a Keras BatchNormalization layer."""
    if layer.axis not in (-1, 2, [-1], [2]) or not layer.center or not layer.scale:
        raise Unsupported(f"{layer.name}: BatchNormalization must normalise the channel axis with center and scale")
    return fold_normalisation(stage, *layer.get_weights(), float(layer.epsilon))


def _relu_layer_name(layer: Any) -> str:
    if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
        raise Unsupported(f"{layer.name}: ReLU with max_value/negative_slope/threshold")
    return "relu"


def supports(model: Any) -> bool:
    """Whether :class:`LocalScorer` can score this network exactly.

    Args:
        model: a ``varxpress.models.network.ExpressionModel`` or a ``keras.Model``.

    Returns:
        True for networks of the shape ``build_network`` makes (Conv1D 'same' -> activation -> MaxPooling1D with
        strides == pool ... -> Flatten or GlobalAveragePooling1D -> [Concatenate features] -> Dense head with one
        output); False otherwise
        (the reason is logged at DEBUG level).
    """
    try:
        parse_model(model)
    except Unsupported as exc:
        logger.debug("fast path does not support this network: %s", exc)
        return False
    return True
