"""A Keras network read into numpy stages, for the local engine (:mod:`varxpress.models.local_scorer`).

:func:`parse_network` reads the layers :func:`varxpress.models.network.build_network` makes (Conv1D 'same' ->
activation -> MaxPooling1D with strides == pool ... -> Flatten or GlobalAveragePooling1D -> [Concatenate features] ->
Dense head with one output) into :class:`ConvStage` s and a :class:`Head`, each holding its weights as numpy arrays and the arithmetic
of its step; any other layer raises :class:`Unsupported` naming it. :func:`supports` tells whether a network fits.
A loaded :class:`~varxpress.models.network.ExpressionModel` is read the same way from its hyperparameters and numpy
weights (:func:`parse_hparams`, no Keras); :func:`parse_model` picks the way.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from varxpress.models.layers import BN_EPSILON

logger = logging.getLogger(__name__)

__all__ = ["ACTIVATIONS", "ConvStage", "Head", "Unsupported", "parse_network", "parse_hparams", "parse_model",
           "supports", "keras_model_of", "one_blas_thread"]

# Up to this many gathered elements, :meth:`ConvStage.unchanged_max` masks whole windows instead of a running max.
_DIRECT_MAX = 1 << 17


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x) if x.flags.writeable else np.maximum(x, 0)


def _linear(x: np.ndarray) -> np.ndarray:
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": _relu,
    "linear": _linear,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}


_BLAS: Any = None


def one_blas_thread() -> AbstractContextManager:
    """Context limiting BLAS to one thread (about 30 us; threadpoolctl ships with scikit-learn)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController  # optional: a missing one only costs speed

            _BLAS = ThreadpoolController()
        except ImportError:  # pragma: no cover
            _BLAS = False
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else nullcontext()


class Unsupported(Exception):
    """The network has a layer the local rule does not cover (the message says which); :class:`LocalScorer` turns it
    into a ModelError."""


@dataclass
class ConvStage:
    """Conv1D -> elementwise activations -> optional MaxPooling1D (pool 1 = none)."""

    kernel: np.ndarray  # (k, cin, cout) float32
    bias: np.ndarray  # (cout,) float32
    dilation: int
    acts: list[str]
    pool: int = 1

    def __post_init__(self) -> None:
        k, cin, cout = self.kernel.shape
        self.k, self.cin, self.cout = k, cin, cout
        self.pad = self.dilation * (k - 1)
        self.left = self.pad // 2
        self.right = self.pad - self.left
        # kcat[c, m*cout + o] = kernel[m, c, o]: one matmul gives every tap's contribution
        self.kcat = np.ascontiguousarray(self.kernel.transpose(1, 0, 2).reshape(cin, k * cout))
        # kaug: kernel.reshape(k*cin, cout) with the bias as a last row (for im2col rows ending in a 1)
        self.kaug = np.concatenate([self.kernel.reshape(k * cin, cout), self.bias[None, :]]).astype(np.float32)

    def activate(self, z: np.ndarray) -> np.ndarray:
        for name in self.acts:
            z = ACTIVATIONS[name](z)
        return z

    def preact(self, x: np.ndarray) -> np.ndarray:
        """Full 'same' convolution. x: (n, length, cin) float32 -> (n, length, cout) float32 pre-activation.

        im2col with a trailing column of ones, (n * length, k*cin + 1) @ kaug (k*cin + 1, cout): the bias is added by
        the same product (saves a pass over the (n * length, cout) result).
        """
        n, length, _ = x.shape
        kc = self.k * self.cin
        cols = np.empty((n, length, kc + 1), dtype=np.float32)
        cols[..., kc] = 1.0
        if self.k == 1:
            cols[..., :kc] = x
        else:  # tap-major to match kernel.reshape(k*cin, cout)
            xp = np.zeros((n, length + self.pad, self.cin), dtype=np.float32)
            xp[:, self.left : self.left + length] = x
            win = np.lib.stride_tricks.sliding_window_view(xp, self.pad + 1, axis=1)[..., :: self.dilation]
            cols[..., :kc].reshape(n, length, self.k, self.cin)[...] = win.transpose(0, 1, 3, 2)
        z = cols.reshape(n * length, kc + 1) @ self.kaug
        return z.reshape(n, length, self.cout)

    def pool_full(self, z: np.ndarray) -> np.ndarray:
        """z: (n, length, cout) pre-activations -> (n, length // pool, cout) max-pooled (remainder dropped).

        Pooling is done before the activation: every supported activation is non-decreasing, so
        ``max(act(z)) == act(max(z))`` exactly, and the local path relies on the same order.
        """
        if self.pool == 1:
            return z
        n, length, c = z.shape
        q = length // self.pool
        return z[:, : q * self.pool].reshape(n, q, self.pool, c).max(axis=2)

    def unchanged_max(self, z: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Max of some pooling windows of z over the positions outside a changed range.

        Args:
            z: reference pre-activations, shape (length, cout).
            q: pooling-window index of each query, shape (N,), in [0, length // pool).
            a, b: changed range of each query relative to its window start, shape (N,), ``0 <= a <= b < pool``.

        Returns:
            shape (N, cout) float32: max of ``z[q*pool + t]`` over ``t`` in ``[0, a) U (b, pool)``; -inf where that set
            is empty.

        Few queries: gather their windows and mask the changed rows (N * pool * cout elements). Many queries: one
        running maximum over the windows' positions, forwards then backwards, each query reading the running maximum
        at its boundary; only (windows, cout) buffers, no (windows * pool, cout) prefix arrays, because at whole-gene
        batches the page faults of such temporaries cost more than the arithmetic.
        """
        p, c, n = self.pool, self.cout, q.shape[0]
        z3 = z[: (z.shape[0] // p) * p].reshape(-1, p, c)  # (windows, p, c) view
        if n * p * c <= _DIRECT_MAX or n * 2 < p:  # small gather, or fewer queries than the 2p running-max steps
            g = z3[q]  # (N, p, c) copy
            t = np.arange(p)
            g[(t >= a[:, None]) & (t <= b[:, None])] = -np.inf
            return g.max(axis=1)
        windows, inv = np.unique(q, return_inverse=True)
        if windows.shape[0] * 4 >= z3.shape[0]:
            src, row = z3, q  # most windows: read the cache in place
        else:
            src, row = z3[windows], inv  # (T, p, c) copy of the touched windows
        out = np.full((n, c), -np.inf, dtype=np.float32)
        # forwards: a query with a = v > 0 takes the max over positions [0, v)
        order, cnt = np.argsort(a, kind="stable"), np.bincount(a, minlength=p)
        ends = np.cumsum(cnt).tolist()
        top = int(a.max())
        if top > 0:
            run = src[:, 0].copy()
            for v in range(1, top + 1):
                if cnt[v]:
                    sel = order[ends[v - 1] : ends[v]]
                    out[sel] = run[row[sel]]
                if v < top:
                    np.maximum(run, src[:, v], out=run)
        # backwards: a query with b = w < p - 1 also takes the max over positions (w, p)
        order, cnt = np.argsort(b, kind="stable"), np.bincount(b, minlength=p)
        ends = [0] + np.cumsum(cnt).tolist()
        bottom = int(b.min())
        if bottom < p - 1:
            run = src[:, p - 1].copy()
            for w in range(p - 2, bottom - 1, -1):
                if cnt[w]:
                    sel = order[ends[w] : ends[w + 1]]
                    out[sel] = np.maximum(out[sel], run[row[sel]])
                if w > bottom:
                    np.maximum(run, src[:, w], out=run)
        return out


@dataclass
class Head:
    """Flatten -> [Concatenate(features)] -> Dense (first) -> ops (activations and further Dense layers)."""

    w_flat: np.ndarray  # (n_last, c_last, units) float32 rows of the first Dense for the flattened conv output
    w_feat: np.ndarray  # (n_features, units) float64
    bias: np.ndarray  # (units,) float64
    first_acts: list[str]
    ops: list[tuple[str, Any]]  # ("act", name) | ("dense", (W float64, b float64))

    def finish(self, h: np.ndarray) -> np.ndarray:
        """h: (n, units) float64 pre-activation of the first Dense -> (n,) network output."""
        x = h
        for name in self.first_acts:
            x = ACTIVATIONS[name](x.copy())
        for kind, arg in self.ops:
            if kind == "act":
                x = ACTIVATIONS[arg](x.copy())
            else:
                w, b = arg
                x = x @ w + b
        return x[:, 0]




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
    c_last = stages[-1].cout
    w, _ = first_dense
    flat_len = c_last if global_avg else n * c_last
    if w.shape[0] != flat_len + n_features:
        raise Unsupported(f"first Dense has {w.shape[0]} inputs, expected {flat_len} + {n_features}")
    if flat_first:
        w_flat, w_feat = w[:flat_len], w[flat_len:]
    else:
        w_feat, w_flat = w[:n_features], w[n_features:]
    head.w_flat = _average_rows(w_flat, n) if global_avg else np.ascontiguousarray(w_flat.reshape(n, c_last, -1))
    head.w_feat = w_feat.astype(np.float64)
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
            stage = _fold(stage, *(bn[k] for k in ("gamma", "beta", "moving_mean", "moving_variance")), BN_EPSILON)
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
    flat_len = stages[-1].cout if global_avg else n * stages[-1].cout
    if w.shape[0] != flat_len + n_features:
        raise Unsupported(f"first Dense has {w.shape[0]} inputs, expected {flat_len} + {n_features}")
    head.w_flat = (_average_rows(w[:flat_len], n) if global_avg
                   else np.ascontiguousarray(w[:flat_len].reshape(n, stages[-1].cout, -1)))
    head.w_feat = w[flat_len:].astype(np.float64)
    return stages, head, n, n_features, "promoter", "halflife" if n_features else None


def _average_rows(w: np.ndarray, n: int) -> np.ndarray:
    """A Dense layer's rows ``w`` (c, units) after a global average over ``n`` positions, as the rows of the same
    Dense after a Flatten, (n, c, units): the average is linear, so ``mean_p(x[p]) @ w == flatten(x) @ (w / n
    repeated n times)``, and the engines need no other head."""
    return np.ascontiguousarray(np.broadcast_to((w.astype(np.float64) / n).astype(np.float32), (n, *w.shape)))


def parse_model(model: Any) -> tuple[list[ConvStage], Head, int, int, str, str | None]:
    """:func:`parse_hparams` for an :class:`~varxpress.models.network.ExpressionModel` (no Keras needed),
    :func:`parse_network` for anything else with a Keras network (a plain ``keras.Model``, an imported one)."""
    if hasattr(model, "numpy_weights") and hasattr(model, "hparams"):
        return parse_hparams(model.hparams, model.numpy_weights())
    return parse_network(keras_model_of(model))


def _fold(stage: ConvStage, gamma: Any, beta: Any, mean: Any, var: Any, epsilon: float) -> ConvStage:
    """The convolution followed by an (inference-mode) batch normalisation, as one convolution: per output channel
    ``gamma * (z - mean) / sqrt(var + eps) + beta`` is affine in ``z``, so it scales the kernel and moves the bias."""
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, var))
    factor = gamma / np.sqrt(var + float(epsilon))
    kernel = (stage.kernel.astype(np.float64) * factor).astype(np.float32)
    bias = ((stage.bias.astype(np.float64) - mean) * factor + beta).astype(np.float32)
    return ConvStage(kernel, bias, stage.dilation, [], stage.pool)


def _fold_batch_norm(stage: ConvStage, layer: Any) -> ConvStage:
    """:func:`_fold` of a Keras BatchNormalization layer."""
    if layer.axis not in (-1, 2, [-1], [2]) or not layer.center or not layer.scale:
        raise Unsupported(f"{layer.name}: BatchNormalization must normalise the channel axis with center and scale")
    return _fold(stage, *layer.get_weights(), float(layer.epsilon))


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
