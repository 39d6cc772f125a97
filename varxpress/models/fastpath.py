"""Fast scoring of substitutions by local recomputation (a pure-numpy engine).

A convolution only sees a few bases, so a substitution (SNV or MNV) changes the first layer's output at a handful of
positions, then a bounded stretch of each later convolution and pooling layer. :class:`LocalScorer` caches every
layer's reference activations for one gene window (:meth:`LocalScorer.prepare`) and scores substitutions by
recomputing only the affected stretch of each layer, then the small dense head
(:meth:`LocalScorer.predict_substitutions`).
Edits of the same gene are stacked and handled together, so the per-variant cost is a few small matrix products.

The rule, per layer (positions are 0-based indices along the layer's input; ``[a, b]`` closed):

* ``Conv1D(padding="same", dilation d, kernel k)``: total pad ``P = d*(k-1)``, ``left = P // 2``, ``right = P - left``;
  an input change on ``[a, b]`` changes the pre-activation on ``[a - right, b + left]`` (clipped), by exactly
  ``sum_m K[m]^T dx[j - left + d*m]`` (the convolution is linear before its activation).
* elementwise activation, then ``MaxPooling1D(p, strides=p, padding="valid")``: ``[a, b]`` -> ``[a // p, b // p]``
  clipped to ``n // p`` pooled positions (the remainder positions are dropped, as Keras does); the touched pooling
  windows are recomputed from the cached pre-activations.
* ``Flatten`` + ``Concatenate(features)`` + first ``Dense``: the cached pre-activation ``h`` changes by
  ``W[changed flat rows]^T . delta``; the rest of the dense head is run in full (it is tiny).

Only the layer types :func:`varxpress.models.network.build_network` produces are handled; :func:`supports` tells whether a
network fits. Indels shift the window and are not substitutions: :meth:`LocalScorer.predict_windows` (module
:mod:`varxpress.models.shiftpath`) scores them by reusing the reference's first layer, shifted, and recomputing the rest.

Predictions are on the network's own output scale (as ``keras_model.predict`` returns them), as float64.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np

from varxpress.errors import ModelError

logger = logging.getLogger(__name__)

__all__ = [
    "Edit",
    "RefCache",
    "LocalScorer",
    "GeneJob",
    "GeneResult",
    "supports",
    "score_gene",
    "score_gene_substitutions",
    "score_genes",
    "ScoringPool",
]

Edit = tuple[int, int]
"""One substituted base: ``(window_index, base_index)``; window index 0-based in the (oriented) window, base index
0-3 for A, C, G, T (``varxpress.sequence.encode.ALPHABET``) or -1 for N (an all-zero one-hot row)."""

# Largest float32 array (elements) one batch step may allocate; batches of edits are cut to stay below it.
_BATCH_ELEMENTS = 1 << 22
# Flattened conv outputs up to this size take the first dense update as one dense matmul per batch.
_DENSE_SCATTER_MAX = 1 << 13
# Rough cost of one small numpy call, in multiply-adds (for choosing between one big product and many small ones).
_CALL_COST = 200_000
# Up to this many gathered elements, :meth:`_ConvStage.unchanged_max` masks whole windows instead of a running max.
_DIRECT_MAX = 1 << 17
# Batches of fewer edits continue through the next stages whole rather than split by the pooled width they need.
_SPLIT_MIN = 64


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x) if x.flags.writeable else np.maximum(x, 0)


def _linear(x: np.ndarray) -> np.ndarray:
    return x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": _relu,
    "linear": _linear,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
}


_BLAS: Any = None


def _one_blas_thread() -> AbstractContextManager:
    """Context limiting BLAS to one thread (about 30 us; threadpoolctl ships with scikit-learn)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:  # pragma: no cover
            _BLAS = False
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else nullcontext()


class _Unsupported(Exception):
    """Internal: the network has a layer the local rule does not cover (message says which)."""


@dataclass
class _ConvStage:
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
            z = _ACTIVATIONS[name](z)
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
class _Head:
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
            x = _ACTIVATIONS[name](x.copy())
        for kind, arg in self.ops:
            if kind == "act":
                x = _ACTIVATIONS[arg](x.copy())
            else:
                w, b = arg
                x = x @ w + b
        return x[:, 0]


@dataclass
class RefCache:
    """Reference activations of one gene window (from :meth:`LocalScorer.prepare`).

    Attributes:
        onehot: reference window, shape (L, 4) float32 (rows A, C, G, T; N = zeros).
        features: the non-sequence features used, shape (F,) float64.
        z: per conv stage, pre-activation of the convolution, shape (n_i, c_i) float32 (n_0 = L).
        a: per conv stage, pooled and activated output, shape (n_i // pool_i, c_i) float32.
        h: pre-activation of the first dense layer, shape (units,) float64.
        pred: reference prediction (network output scale).
    """

    onehot: np.ndarray
    features: np.ndarray
    z: list[np.ndarray] = field(repr=False)
    a: list[np.ndarray] = field(repr=False)
    h: np.ndarray = field(repr=False)
    pred: float = 0.0
    shifted: dict = field(default_factory=dict, repr=False)  #: base codes, first layer pooled per phase (shiftpath)


def _activation_name(fn: Any) -> str:
    import keras

    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    name = str(name)
    if name not in _ACTIVATIONS:
        raise _Unsupported(f"activation {name!r} (supported: {', '.join(_ACTIVATIONS)})")
    return name


def _keras_model_of(model: Any) -> Any:
    return getattr(model, "keras_model", model)


def _parse(keras_model: Any) -> tuple[list[_ConvStage], _Head, int, int, str, str | None]:
    """Read a Keras network into numpy stages. Raises _Unsupported naming the first layer that does not fit.

    Returns (stages, head, window_length, n_features, sequence_input_name, feature_input_name).
    """
    from keras import layers as kl

    seq_name: str | None = None
    feat_name: str | None = None
    length = n_features = 0
    for inp in keras_model.inputs:
        shape = tuple(inp.shape)
        if len(shape) == 3:
            if seq_name is not None:
                raise _Unsupported("more than one sequence input")
            seq_name, length = inp.name, shape[1]
            if shape[2] != 4:
                raise _Unsupported(f"sequence input has {shape[2]} channels, expected 4")
        elif len(shape) == 2:
            if feat_name is not None:
                raise _Unsupported("more than one feature input")
            feat_name, n_features = inp.name, shape[1]
        else:
            raise _Unsupported(f"input {inp.name!r} of shape {shape}")
    if seq_name is None or length is None:
        raise _Unsupported("no fixed-length (None, L, 4) sequence input")

    stages: list[_ConvStage] = []
    head: _Head | None = None
    first_dense: tuple[np.ndarray, np.ndarray] | None = None
    flat_first = True
    phase = "conv"
    for layer in keras_model.layers:
        if isinstance(layer, kl.InputLayer) or isinstance(layer, kl.Dropout):
            continue
        if phase == "conv":
            if type(layer) is kl.Conv1D:
                if layer.padding != "same" or tuple(layer.strides) != (1,) or layer.data_format != "channels_last":
                    raise _Unsupported(f"{layer.name}: Conv1D must be padding='same', stride 1, channels_last")
                if getattr(layer, "groups", 1) != 1:
                    raise _Unsupported(f"{layer.name}: grouped convolution")
                kernel = np.asarray(layer.kernel, dtype=np.float32)
                bias = (
                    np.asarray(layer.bias, dtype=np.float32)
                    if layer.use_bias
                    else np.zeros(kernel.shape[2], dtype=np.float32)
                )
                stages.append(
                    _ConvStage(kernel, bias, int(layer.dilation_rate[0]), [_activation_name(layer.activation)])
                )
            elif isinstance(layer, (kl.Activation, kl.ReLU)) and stages and stages[-1].pool == 1:
                relu_layer = isinstance(layer, kl.ReLU)
                stages[-1].acts.append(_relu_layer_name(layer) if relu_layer else _activation_name(layer.activation))
            elif isinstance(layer, kl.MaxPooling1D) and stages and stages[-1].pool == 1:
                p = int(layer.pool_size[0])
                if tuple(layer.strides) != (p,) or layer.padding != "valid" or layer.data_format != "channels_last":
                    raise _Unsupported(f"{layer.name}: MaxPooling1D must have strides == pool_size, padding 'valid'")
                stages[-1].pool = p
            elif isinstance(layer, kl.Flatten) and stages:
                phase = "concat"
            else:
                raise _Unsupported(f"{layer.name}: {type(layer).__name__} where Conv1D/MaxPooling1D/Flatten expected")
        elif phase == "concat":
            if isinstance(layer, kl.Concatenate):
                if feat_name is None or layer.axis not in (-1, 1) or len(layer.input) != 2:
                    raise _Unsupported(f"{layer.name}: Concatenate must join the flattened output and the features")
                sources = [t._keras_history.operation for t in layer.input]
                if not any(isinstance(s, kl.Flatten) for s in sources):
                    raise _Unsupported(f"{layer.name}: Concatenate does not take the Flatten output")
                flat_first = isinstance(sources[0], kl.Flatten)
            elif isinstance(layer, kl.Dense):
                w = np.asarray(layer.kernel, dtype=np.float32)
                b = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(w.shape[1])
                first_dense = (w, b)
                head = _Head(
                    np.empty(0, np.float32), np.empty(0), b, [_activation_name(layer.activation)], []
                )
                phase = "head"
            else:
                raise _Unsupported(f"{layer.name}: {type(layer).__name__} where Concatenate/Dense expected")
        else:
            assert head is not None
            if isinstance(layer, kl.Dense):
                w = np.asarray(layer.kernel, dtype=np.float64)
                b = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(w.shape[1])
                head.ops.append(("dense", (w, b)))
                act = _activation_name(layer.activation)
                if act != "linear":
                    head.ops.append(("act", act))
            elif isinstance(layer, (kl.Activation, kl.ReLU)):
                name = _relu_layer_name(layer) if isinstance(layer, kl.ReLU) else _activation_name(layer.activation)
                if head.ops:
                    head.ops.append(("act", name))
                else:
                    head.first_acts.append(name)
            else:
                raise _Unsupported(f"{layer.name}: {type(layer).__name__} in the dense head")
    if head is None or first_dense is None:
        raise _Unsupported("no Flatten -> Dense head")
    if feat_name is not None and phase != "head":
        raise _Unsupported("feature input is not concatenated")
    # geometry and the first Dense's rows
    n = int(length)
    for st in stages:
        n //= st.pool
        if n < 1:
            raise _Unsupported("pooling leaves no positions")
    c_last = stages[-1].cout
    w, _ = first_dense
    flat_len = n * c_last
    if w.shape[0] != flat_len + n_features:
        raise _Unsupported(f"first Dense has {w.shape[0]} inputs, expected {flat_len} + {n_features}")
    if flat_first:
        w_flat, w_feat = w[:flat_len], w[flat_len:]
    else:
        w_feat, w_flat = w[:n_features], w[n_features:]
    head.w_flat = np.ascontiguousarray(w_flat.reshape(n, c_last, -1))
    head.w_feat = w_feat.astype(np.float64)
    last_units = next((arg[0].shape[1] for kind, arg in reversed(head.ops) if kind == "dense"), w.shape[1])
    if last_units != 1:
        raise _Unsupported("the network's output is not a single unit")
    return stages, head, n, n_features, seq_name, feat_name


def _relu_layer_name(layer: Any) -> str:
    if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
        raise _Unsupported(f"{layer.name}: ReLU with max_value/negative_slope/threshold")
    return "relu"


def supports(model: Any) -> bool:
    """Whether :class:`LocalScorer` can score this network exactly.

    Args:
        model: a ``varxpress.models.network.ExpressionModel`` or a ``keras.Model``.

    Returns:
        True for networks of the shape ``build_network`` makes (Conv1D 'same' -> activation -> MaxPooling1D with
        strides == pool ... -> Flatten -> [Concatenate features] -> Dense head with one output); False otherwise
        (the reason is logged at DEBUG level).
    """
    try:
        _parse(_keras_model_of(model))
    except _Unsupported as exc:
        logger.debug("fast path does not support this network: %s", exc)
        return False
    return True


class LocalScorer:
    """Numpy copy of a network that scores substitutions by local recomputation.

    Holds only numpy arrays (picklable; no TensorFlow needed after construction).

    Args:
        model: ``varxpress.models.network.ExpressionModel`` (its ``.keras_model`` and ``.metadata.default_features`` are used)
            or a plain ``keras.Model``.
        threads: worker processes :func:`score_genes` uses by default. The methods of this class run in the
            calling thread with one BLAS thread (the batched products are small: more BLAS threads or a thread
            pool were measured slower, see docs/performance.md); use processes to use more cores.

    Raises:
        ModelError: the network has a layer the local rule does not cover (see :func:`supports`).
    """

    def __init__(self, model: Any, threads: int = 1) -> None:
        self.threads = max(1, int(threads))
        try:
            stages, head, n_last, n_features, _, _ = _parse(_keras_model_of(model))
        except _Unsupported as exc:
            raise ModelError(f"fast path cannot score this network: {exc}; use full recomputation") from exc
        self.stages = stages
        self.head = head
        self.n_last = n_last
        self.n_features = n_features
        self.length = self._input_length(model)
        meta = getattr(model, "metadata", None)
        default = getattr(meta, "default_features", None) if meta is not None else None
        self.default_features = None if default is None else np.asarray(default, dtype=np.float64).reshape(-1)

    @staticmethod
    def ref_prediction(cache: RefCache) -> float:
        """The reference prediction of a prepared gene window (network output scale)."""
        return cache.pred

    @staticmethod
    def _input_length(model: Any) -> int:
        for inp in _keras_model_of(model).inputs:
            if len(inp.shape) == 3:
                return int(inp.shape[1])
        raise ModelError("network has no (None, L, 4) input")  # unreachable after _parse

    # ------------------------------------------------------------------ full forward
    def _features(self, features: np.ndarray | Sequence[float] | None, n: int) -> np.ndarray:
        if self.n_features == 0:
            return np.zeros((n, 0))
        if features is None:
            if self.default_features is None:
                raise ModelError(f"the network takes {self.n_features} features and none were given")
            features = self.default_features
        f = np.asarray(features, dtype=np.float64)
        if f.ndim == 1:
            f = np.broadcast_to(f, (n, f.shape[0]))
        if f.shape != (n, self.n_features):
            raise ModelError(
                f"features have shape {f.shape}, expected ({n}, {self.n_features}) or ({self.n_features},)"
            )
        return f

    def _check_onehot(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (self.length, 4):
            raise ModelError(f"one-hot windows have shape {x.shape}, expected (n, {self.length}, 4)")
        return x

    def _forward(self, x: np.ndarray, f: np.ndarray, keep: bool, k0: int = 0
                 ) -> tuple[np.ndarray, list, list, np.ndarray]:
        """x: input of conv stage ``k0`` (the one-hot windows for 0), shape (n, length, c)."""
        zs, acts = [], []
        for st in self.stages[k0:]:
            z = st.preact(x)
            pooled = st.pool_full(z)
            x = st.activate(pooled.copy() if keep and pooled is z else pooled)
            if keep:
                zs.append(z)
                acts.append(x)
        n = x.shape[0]
        h = x.reshape(n, -1) @ self.head.w_flat.reshape(-1, self.head.w_flat.shape[2])
        h = h.astype(np.float64) + f @ self.head.w_feat + self.head.bias
        return self.head.finish(h), zs, acts, h

    def predict_full(
        self, onehot: np.ndarray, features: np.ndarray | Sequence[float] | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """Full forward pass in numpy (a TensorFlow-free fallback).

        Args:
            onehot: windows, shape (n, L, 4) (rows A, C, G, T; N = zeros).
            features: shape (n, F) or (F,); None -> the model's default features.
            batch_size: windows per step (bounds memory).

        Returns:
            predictions, shape (n,) float64, on the network's output scale.
        """
        x = self._check_onehot(onehot)
        f = self._features(features, x.shape[0])
        out = np.empty(x.shape[0])
        for i in range(0, x.shape[0], batch_size):
            out[i : i + batch_size] = self._forward(x[i : i + batch_size], f[i : i + batch_size], keep=False)[0]
        return out

    def prepare(self, ref_onehot: np.ndarray, features: np.ndarray | Sequence[float] | None = None) -> RefCache:
        """Run the reference window once and cache every layer's activations.

        Args:
            ref_onehot: reference window, shape (L, 4), oriented as the network sees it.
            features: shape (F,); None -> the model's default features.

        Returns:
            the :class:`RefCache` for :meth:`predict_substitutions` (a few MB for the Xpresso network).
        """
        x = self._check_onehot(np.asarray(ref_onehot)[None])
        f = self._features(features, 1)
        with _one_blas_thread():
            pred, zs, acts, h = self._forward(x, f, keep=True)
        return RefCache(
            onehot=x[0],
            features=f[0].copy(),
            z=[z_[0] for z_ in zs],
            a=[a[0] for a in acts],
            h=h[0],
            pred=float(pred[0]),
        )

    def predict_windows(self, cache: RefCache, alts: np.ndarray, shifts: Sequence[int] | None = None) -> np.ndarray:
        """Predict whole alternate windows (indels, complex alleles) of a prepared gene, reusing its first layer.

        See :func:`varxpress.models.shiftpath.predict_windows`: alts (n, L, 4); shifts, per window, ``len(ALT) - len(REF)``
        (a hint); returns (n,) float64 equal to a full forward pass.
        """
        from varxpress.models.shiftpath import predict_windows

        return predict_windows(self, cache, alts, shifts)

    # ------------------------------------------------------------------ local path
    def predict_substitutions(self, cache: RefCache, edits: Sequence[Sequence[Edit]]) -> np.ndarray:
        """Predict alternate windows that differ from the cached reference by substitutions only.

        Args:
            cache: from :meth:`prepare` for this gene window.
            edits: one edit-set per alternate window; an edit-set is a list of ``(window_index, base_index)``
                (0-based index into the oriented window; base 0-3 = A, C, G, T or -1 = N). An SNV is one edit,
                an MNV several; a later edit at the same index overrides an earlier one; an empty set is the reference.

        Returns:
            alternate predictions, shape (len(edits),) float64, equal to a full forward pass of each alternate
            window (to float32 rounding).

        Raises:
            ValueError: an index outside [0, L) or a base outside -1..3.
        """
        n = len(edits)
        out = np.full(n, cache.pred, dtype=np.float64)
        if n == 0:
            return out
        starts = np.empty(n, dtype=np.int64)
        spans = np.zeros(n, dtype=np.int64)
        for i, es in enumerate(edits):
            if len(es) == 0:
                continue
            idx = [int(e[0]) for e in es]
            lo, hi = min(idx), max(idx)
            if lo < 0 or hi >= self.length:
                raise ValueError(f"edit index out of the window [0, {self.length}): {list(es)!r}")
            starts[i], spans[i] = lo, hi - lo + 1
        with _one_blas_thread():
            for span in np.unique(spans[spans > 0]):
                members = np.flatnonzero(spans == span)
                step = max(1, _BATCH_ELEMENTS // max(self._edit_elements(int(span)), 1))
                for j in range(0, members.size, step):
                    sel = members[j : j + step]
                    dx = self._input_delta(cache, [edits[i] for i in sel], starts[sel], int(span))
                    out[sel] = self._local(cache, starts[sel], dx)
        return out

    def _edit_elements(self, span: int) -> int:
        """Largest per-edit float32 buffer of the local path for an edit-set spanning ``span`` bases."""
        w, biggest = span, 0
        for st in self.stages:
            w += st.pad
            npool = (w + 2 * st.pool - 2) // st.pool
            biggest = max(biggest, npool * w * st.cout, w * st.k * st.cout)
            w = npool
        return biggest

    @staticmethod
    def _input_delta(cache: RefCache, edit_sets: list, starts: np.ndarray, span: int) -> np.ndarray:
        """(B, span, 4) change of the one-hot input over [start, start + span)."""
        ref = cache.onehot[np.arange(span)[None, :] + starts[:, None]]  # (b, span, 4)
        alt = ref.copy()
        rows, cols, bases = [], [], []
        for i, es in enumerate(edit_sets):
            pairs = dict(es).items() if len(es) > 1 else es  # a later edit of the same index wins
            for pos, base in pairs:
                base = int(base)
                if not -1 <= base <= 3:
                    raise ValueError(f"base index {base} is not 0-3 (A, C, G, T) or -1 (N)")
                rows.append(i)
                cols.append(int(pos) - int(starts[i]))
                bases.append(base)
        r, c, bb = np.asarray(rows), np.asarray(cols), np.asarray(bases)
        alt[r, c] = 0.0
        ok = bb >= 0
        alt[r[ok], c[ok], bb[ok]] = 1.0
        return alt - ref

    @staticmethod
    def _pool_delta(
        st: _ConvStage, cache: RefCache, k: int, zstart: np.ndarray, dz: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Change of stage k's pooled, activated output, given its pre-activation changes by dz (B, wz, c) on
        [zstart, zstart + wz).

        Returns (delta (B, npool, c), pooled start (B,), need (B,)): positions outside the layer are 0, and only the
        first ``need[b]`` positions of edit b can be non-zero."""
        bsz, wz, c = dz.shape
        z_ref, a_ref = cache.z[k], cache.a[k]
        n, n_out, p = z_ref.shape[0], a_ref.shape[0], st.pool
        pos = zstart[:, None] + np.arange(wz)[None, :]  # (B, wz) positions in the layer
        znew = z_ref[np.clip(pos, 0, n - 1)] + dz  # garbage where pos is outside [0, n): masked below
        if p == 1:
            valid = (pos >= 0) & (pos < n_out)
            delta = st.activate(znew) - a_ref[np.clip(pos, 0, n_out - 1)]
            delta[~valid] = 0.0
            return delta, zstart, np.full(bsz, wz)
        q0 = zstart // p  # floor division, also for negative starts
        need = (zstart + wz - 1) // p - q0 + 1
        npool = int(need.max())
        qidx = q0[:, None] + np.arange(npool)[None, :]  # (B, npool) pooling windows
        # changed part of window q: [lo, hi] (layer positions), from the changed range [zstart, zstart + wz - 1]
        lo = np.maximum(zstart[:, None], qidx * p)
        hi = np.minimum((zstart + wz - 1)[:, None], qidx * p + p - 1)
        touched = (qidx >= 0) & (qidx < n_out) & (lo <= hi)
        eb, ej = np.nonzero(touched)  # the N touched (edit, window) pairs, edit-major, windows increasing
        delta = np.zeros((bsz, npool, c), dtype=np.float32)
        if eb.size == 0:  # every change fell in the dropped remainder of the layer
            return delta, q0, need
        q, lo, hi = qidx[eb, ej], lo[eb, ej], hi[eb, ej]
        # max of the unchanged positions of each touched window
        side = st.unchanged_max(z_ref, q, lo - q * p, hi - q * p)  # (N, c)
        # max of the changed positions in each touched window: rows seg .. seg + last of znew (B * wz, c)
        zf = znew.reshape(bsz * wz, c)
        seg, last = eb * wz + lo - zstart[eb], hi - lo
        mid = zf[seg]  # (N, c)
        for d in range(1, int(last.max()) + 1):  # at most min(pool, wz) - 1 steps; short segments repeat their last row
            np.maximum(mid, zf[seg + np.minimum(d, last)], out=mid)
        delta[eb, ej] = st.activate(np.maximum(side, mid)) - a_ref[q]
        return delta, q0, need

    def _local(self, cache: RefCache, start: np.ndarray, delta: np.ndarray, k0: int = 0) -> np.ndarray:
        """Propagate input changes delta (B, W, C) on [start, start + W) of stage k0's input -> (B,) predictions."""
        bsz = delta.shape[0]
        for k in range(k0, len(self.stages)):
            st = self.stages[k]
            w = delta.shape[1]
            # convolution, linear part: change of the pre-activation on [start - right, start + w - 1 + left]
            y = (delta.reshape(bsz * w, st.cin) @ st.kcat).reshape(bsz, w, st.k, st.cout)
            wz = w + st.pad
            dz = np.zeros((bsz, wz, st.cout), dtype=np.float32)
            for m in range(st.k):
                off = st.pad - st.dilation * m
                dz[:, off : off + w] += y[:, :, m]
            delta, start, need = self._pool_delta(st, cache, k, start - st.right, dz)
            if k + 1 < len(self.stages) and bsz >= _SPLIT_MIN and need.min() < delta.shape[1]:
                # most edits touch fewer pooling windows than the widest one: carry on with narrower groups (the
                # zero tail of a narrower edit would give the same result, at the cost of more arithmetic)
                out = np.empty(bsz)
                for g in np.unique(need):
                    sel = np.flatnonzero(need == g)
                    out[sel] = self._local(cache, start[sel], np.ascontiguousarray(delta[sel, :g]), k + 1)
                return out
        return self._dense(cache, start, delta)

    def _dense(self, cache: RefCache, start: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """First dense layer h = h_ref + W[changed flat rows]^T . delta (flat row of position q, channel c: q*C + c),
        then the rest of the head. delta (B, w, C) on [start, start + w) of the last pooled output."""
        bsz, w, c = delta.shape
        w_flat = self.head.w_flat  # (n_last, c, units)
        units = w_flat.shape[2]
        h = np.broadcast_to(cache.h, (bsz, units)).copy()
        uniq, inv = np.unique(start, return_inverse=True)  # edits with the same start use the same rows
        dense_cost = bsz * self.n_last * c * units  # multiply-adds of one dense product
        grouped_cost = uniq.size * _CALL_COST + bsz * w * c * units
        if dense_cost < grouped_cost and (self.n_last + 2 * w) * c <= _DENSE_SCATTER_MAX:
            # scatter into a zero-padded flat vector (out-of-layer positions land in the padding), one matmul
            flat = np.zeros((bsz, self.n_last + 2 * w, c), dtype=np.float32)
            flat[np.arange(bsz)[:, None], (start + w)[:, None] + np.arange(w)[None, :]] = delta
            h += flat[:, w : w + self.n_last].reshape(bsz, -1) @ w_flat.reshape(-1, units)
            return self.head.finish(h)
        for u, s in enumerate(uniq):
            s = int(s)
            lo, hi = max(s, 0), min(s + w, self.n_last)
            if lo < hi:
                sel = np.flatnonzero(inv == u)
                h[sel] += delta[sel, lo - s : hi - s].reshape(sel.size, -1) @ w_flat[lo:hi].reshape(-1, units)
        return self.head.finish(h)


def score_gene_substitutions(
    scorer: LocalScorer,
    ref_onehot: np.ndarray,
    features: np.ndarray | Sequence[float] | None,
    edits: Sequence[Sequence[Edit]],
) -> tuple[float, np.ndarray]:
    """Score all substitutions that fall in one gene's window.

    Args:
        scorer: the :class:`LocalScorer` of the model.
        ref_onehot: reference window, shape (L, 4), oriented as the network sees it (reverse-complemented on
            the minus strand, so edit indices and bases are in that orientation too).
        features: shape (F,); None -> the model's default features.
        edits: one edit-set per alternate window, see :meth:`LocalScorer.predict_substitutions`.

    Returns:
        (ref_pred, alt_preds): the reference prediction and alternate predictions of shape (len(edits),).
    """
    cache = scorer.prepare(ref_onehot, features)
    return cache.pred, scorer.predict_substitutions(cache, edits)


# ---------------------------------------------------------------------- several genes, several processes
class GeneJob(NamedTuple):
    """One gene's work: ``key`` is returned untouched; ref_onehot (L, 4); features (F,) or None; edit-sets;
    ``windows``: whole alternate windows (indels), ``(sequence, len(ALT) - len(REF))`` each, oriented as the
    network sees them (see :meth:`LocalScorer.predict_windows`)."""

    key: Any
    ref_onehot: np.ndarray
    features: np.ndarray | None
    edits: Sequence[Sequence[Edit]]
    windows: Sequence[tuple[str, int]] = ()


class GeneResult(NamedTuple):
    """``ref_pred`` float, ``alt_preds`` (len(edits),) and ``window_preds`` (len(windows),) float64 of one
    :class:`GeneJob`."""

    key: Any
    ref_pred: float
    alt_preds: np.ndarray
    window_preds: np.ndarray | None = None


def score_gene(scorer: LocalScorer, job: GeneJob) -> GeneResult:
    """Score one :class:`GeneJob`: its substitutions and its whole alternate windows, from one reference cache."""
    if not job.windows:
        ref, alt = score_gene_substitutions(scorer, job.ref_onehot, job.features, job.edits)
        return GeneResult(job.key, ref, alt)
    from varxpress.sequence.encode import one_hot

    cache = scorer.prepare(job.ref_onehot, job.features)
    alts = np.stack([one_hot(seq) for seq, _ in job.windows])
    windows = scorer.predict_windows(cache, alts, [shift for _, shift in job.windows])
    return GeneResult(job.key, cache.pred, scorer.predict_substitutions(cache, job.edits), windows)


_WORKER_SCORER: LocalScorer | None = None


def _worker_init(scorer: LocalScorer) -> None:
    global _WORKER_SCORER
    _WORKER_SCORER = scorer
    try:  # one BLAS thread per worker process: the processes are the parallelism
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


def _worker_score(job: GeneJob) -> GeneResult:
    assert _WORKER_SCORER is not None
    return score_gene(_WORKER_SCORER, job)


class ScoringPool:
    """Worker processes kept for many :meth:`map` calls (e.g. one per VCF chunk); a context manager.

    Args:
        scorer: the :class:`LocalScorer` (sent once to each worker).
        threads: worker processes (spawned, numpy only, one BLAS thread each); 1 = score in the calling process.
        max_pending: bound on jobs in flight (default ``4 * threads``), so memory stays bounded.
    """

    def __init__(self, scorer: LocalScorer, threads: int = 1, max_pending: int | None = None) -> None:
        self.scorer, self.threads = scorer, max(1, int(threads))
        self.max_pending = max_pending or 4 * self.threads
        self._pool: ProcessPoolExecutor | None = None
        if self.threads > 1:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold TensorFlow threads
            self._pool = ProcessPoolExecutor(self.threads, mp_context=ctx, initializer=_worker_init,
                                             initargs=(scorer,))

    def map(self, jobs: Iterable[GeneJob]) -> Iterator[GeneResult]:
        """Score each :class:`GeneJob` (consumed lazily); yields :class:`GeneResult` in the order of ``jobs``."""
        if self._pool is None:
            for job in jobs:
                yield score_gene(self.scorer, job)
            return
        pending: deque[Future] = deque()
        for job in jobs:
            pending.append(self._pool.submit(_worker_score, job))
            if len(pending) >= self.max_pending:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "ScoringPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def score_genes(
    scorer: LocalScorer, jobs: Iterable[GeneJob], threads: int | None = None, max_pending: int | None = None
) -> Iterator[GeneResult]:
    """Score many genes' substitutions, in input order, streaming (a one-off :class:`ScoringPool`).

    With ``threads > 1`` the genes are spread over that many worker processes (spawned, numpy only, one BLAS
    thread each; measured faster than BLAS threads or a thread pool, see docs/performance.md). At most
    ``max_pending`` jobs (default ``4 * threads``) are in flight, so memory stays bounded whatever the input size.
    Starting the workers takes about a second: to score in many calls, keep one :class:`ScoringPool`.

    Args:
        scorer: the :class:`LocalScorer` (sent once to each worker).
        jobs: an iterable of :class:`GeneJob` (consumed lazily).
        threads: worker processes; 1 = score in this process; None = ``scorer.threads``.
        max_pending: bound on queued jobs.

    Yields:
        one :class:`GeneResult` per job, in the order of ``jobs``.
    """
    with ScoringPool(scorer, scorer.threads if threads is None else threads, max_pending) as pool:
        yield from pool.map(jobs)


def default_threads() -> int:
    """Cores this process may use (``os.sched_getaffinity`` where available)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
