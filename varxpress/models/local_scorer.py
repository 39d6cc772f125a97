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

Only the layer types :func:`varxpress.models.network.build_network` produces are handled;
:func:`varxpress.models.keras_stages.supports` tells whether a network fits. Indels shift the window and are not
substitutions: :meth:`LocalScorer.predict_windows` (module :mod:`varxpress.models.shiftpath`) scores them by reusing
the reference's first layer, shifted, and recomputing the rest.

Predictions are on the network's own output scale (as ``keras_model.predict`` returns them), as float64.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from varxpress.errors import ModelError
from varxpress.models.keras_stages import keras_model_of, parse_model
from varxpress.models.stages import ConvStage, Unsupported, one_blas_thread
from varxpress.models.shiftpath import predict_windows

logger = logging.getLogger(__name__)

__all__ = ["Edit", "RefCache", "LocalScorer", "score_gene_substitutions"]

Edit = tuple[int, int]
"""One substituted base: ``(window_index, base_index)``; window index 0-based in the (oriented) window, base index
0-3 for A, C, G, T (``varxpress.sequence.encode.ALPHABET``) or -1 for N (an all-zero one-hot row)."""

# Largest float32 array (elements) one batch step may allocate; batches of edits are cut to stay below it.
_BATCH_ELEMENTS = 1 << 22
# Flattened conv outputs up to this size take the first dense update as one dense matmul per batch.
_DENSE_SCATTER_MAX = 1 << 13
# Rough cost of one small numpy call, in multiply-adds (for choosing between one big product and many small ones).
_CALL_COST = 200_000
# Up to this many gathered elements, :meth:`ConvStage.unchanged_max` masks whole windows instead of a running max.
# Batches of fewer edits continue through the next stages whole rather than split by the pooled width they need.
_SPLIT_MIN = 64


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



class LocalScorer:
    """Numpy copy of a network that scores substitutions by local recomputation.

    Holds only numpy arrays (picklable; no TensorFlow needed after construction).

    Args:
        model: ``varxpress.models.network.ExpressionModel`` (its hyperparameters, numpy weights and
            ``.metadata.default_features`` are used; its Keras network is not built) or a plain ``keras.Model``.
        threads: worker processes :func:`score_genes` uses by default. The methods of this class run in the
            calling thread with one BLAS thread (the batched products are small: more BLAS threads or a thread
            pool were measured slower, see docs/performance.md); use processes to use more cores.

    Raises:
        ModelError: the network has a layer the local rule does not cover (see :func:`supports`).
    """

    def __init__(self, model: Any, threads: int = 1) -> None:
        self.threads = max(1, int(threads))
        try:
            stages, head, n_last, n_features, _, _ = parse_model(model)
        except Unsupported as exc:
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
        spec = getattr(model, "window_spec", None)
        if spec is not None:  # an ExpressionModel: its window, without building its Keras network
            return int(spec.length)
        for inp in keras_model_of(model).inputs:
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
        with one_blas_thread():
            pred, zs, acts, h = self._forward(x, f, keep=True)
        return RefCache(
            onehot=x[0],
            features=f[0].copy(),
            z=[z_[0] for z_ in zs],
            a=[a[0] for a in acts],
            h=h[0],
            pred=float(pred[0]),
        )

    def predict_windows(self, cache: RefCache, alts: np.ndarray | Sequence[str], shifts: Sequence[int] | None = None
                        ) -> np.ndarray:
        """Predict whole alternate windows (indels, complex alleles) of a prepared gene, reusing its first layer.

        See :func:`varxpress.models.shiftpath.predict_windows`: alts (n, L, 4) or n sequences of length L; shifts, per
        window, ``len(ALT) - len(REF)`` (a hint); returns (n,) float64 equal to a full forward pass.
        """
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
        with one_blas_thread():
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
        st: ConvStage, cache: RefCache, k: int, zstart: np.ndarray, dz: np.ndarray
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
            return self._finish(cache, h)
        for u, s in enumerate(uniq):
            s = int(s)
            lo, hi = max(s, 0), min(s + w, self.n_last)
            if lo < hi:
                sel = np.flatnonzero(inv == u)
                h[sel] += delta[sel, lo - s : hi - s].reshape(sel.size, -1) @ w_flat[lo:hi].reshape(-1, units)
        return self._finish(cache, h)

    def _finish(self, cache: RefCache, h: np.ndarray, unchanged: np.ndarray | None = None) -> np.ndarray:
        """The rest of the head for first-dense pre-activations ``h`` (n, units); the rows ``unchanged`` marks (their
        input to the head is the reference's; by default, those whose ``h`` is the reference's) get the reference
        prediction itself. The head's products round differently by batch shape (about 1e-16), and a variant that
        changes nothing the network sees must have a delta of exactly 0 (its percentile then is that of 0)."""
        out = self.head.finish(h)
        out[(h == cache.h).all(axis=1) if unchanged is None else unchanged] = cache.pred
        return out


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
