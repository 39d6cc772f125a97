"""The numpy stages the incremental engines compute with: a convolution stage (:class:`ConvStage`: Conv1D 'same'
-> activations -> max pooling, with the arithmetic of a full pass and of a changed stretch), the dense head
(:class:`Head`), the activations they support, and the two rewritings that let other layers be read as these
(:func:`fold_normalisation`, :func:`average_rows`). :mod:`varxpress.models.keras_stages` fills them from a network.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from varxpress.sequence.encode import CODE_ROWS, onehot_codes

__all__ = ["ACTIVATIONS", "ConvStage", "Head", "Unsupported", "one_blas_thread", "fold_normalisation",
           "average_rows"]

# Up to this many gathered elements, :meth:`ConvStage.unchanged_max` masks whole windows instead of a running max.
_DIRECT_MAX = 1 << 17

# The largest table of pre-activations by k-mer (:meth:`ConvStage.preact`) a stage keeps, in bytes: 8 MB for the
# Xpresso network's first layer (5**6 k-mers x 128 filters).
_TABLE_BYTES = 16 << 20

# From this many input channels on, :meth:`ConvStage.preact` sums every tap's product (one matmul with ``kcat``)
# instead of building im2col rows: copying k shifted rows of a wide input costs more than the product itself.
_TAPS_MIN_CIN = 16


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
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_table"] = None  # rebuilt where it is used: worker processes need not receive it
        return state

    def __post_init__(self) -> None:
        k, cin, cout = self.kernel.shape
        self.k, self.cin, self.cout = k, cin, cout
        self.pad = self.dilation * (k - 1)
        self.left = self.pad // 2
        self.right = self.pad - self.left
        # kcat[c, m*cout + o] = kernel[m, c, o]: one matmul gives every tap's contribution
        self.kcat = np.ascontiguousarray(self.kernel.transpose(1, 0, 2).reshape(cin, k * cout))
        self.kcat_t = np.ascontiguousarray(self.kcat.T)
        # kaug: kernel.reshape(k*cin, cout) with the bias as a last row (for im2col rows ending in a 1)
        self.kaug = np.concatenate([self.kernel.reshape(k * cin, cout), self.bias[None, :]]).astype(np.float32)

    def activate(self, z: np.ndarray) -> np.ndarray:
        for name in self.acts:
            z = ACTIVATIONS[name](z)
        return z

    def _kmer_table(self) -> np.ndarray | None:
        """The pre-activation of every k-mer of A, C, G, T and N (digit 4, also the zero padding), bias included,
        summed in float64: shape (5**k, cout) float32, row ``sum_t digit_t * 5**(k-1-t)``. None unless the input has
        4 channels and the table is small (the first layer of an Xpresso-like network)."""
        if self._table is None and self.cin == 4 and self.k > 1 and 5**self.k * self.cout * 4 <= _TABLE_BYTES:
            rows = np.concatenate([self.kernel, np.zeros((self.k, 1, self.cout), np.float32)], axis=1)
            digits = np.indices((5,) * self.k).reshape(self.k, -1)
            table = np.repeat(self.bias.astype(np.float64)[None], digits.shape[1], axis=0)
            for t in range(self.k):
                table += rows[t].astype(np.float64)[digits[t]]
            self._table = table.astype(np.float32)
        return self._table

    def _preact_by_table(self, x: np.ndarray) -> np.ndarray | None:
        """:meth:`preact` of one-hot windows by looking each position's k-mer up in :meth:`_kmer_table` (one
        gather instead of an im2col product; the same sums to float32 rounding). None when there is no table or
        ``x`` is not exactly one-hot (rows of one 1, or all zero for N)."""
        table = self._kmer_table()
        if table is None:
            return None
        codes = onehot_codes(x)  # 1-4 for A-T, 0 for N
        if codes is None:
            return None
        return np.take(table, self._kmer_keys(codes), axis=0)

    def _kmer_keys(self, codes: np.ndarray) -> np.ndarray:
        """Base codes (n, length) -> each position's row of :meth:`_kmer_table` (n, length) int64, the zero
        padding beyond the ends read as N."""
        n, length = codes.shape
        digits = np.full((n, length + self.pad), 4, dtype=np.int64)
        digits[:, self.left : self.left + length] = (codes + 4) % 5  # N -> 4, A -> 0, ..., T -> 3
        key = np.zeros((n, length), dtype=np.int64)
        for t in range(self.k):
            key *= 5
            key += digits[:, t * self.dilation : t * self.dilation + length]
        return key

    def preact_at_codes(self, codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """:meth:`preact_at` of one window given as its base codes (length,) int8
        (:func:`varxpress.sequence.encode.seq_codes`): each row's k-mer looked up in :meth:`_kmer_table`, as
        :meth:`preact` computes a one-hot window; without a table, the one-hot rows of the stretch the rows read."""
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        a, b = max(0, lo - self.left), min(codes.shape[0], hi + self.right)  # the stretch the rows read
        table = self._kmer_table()
        if table is None:  # at the window's ends the part's zero padding is the window's
            return self.preact_at(np.take(CODE_ROWS, codes[a:b], axis=0), rows - a)
        return np.take(table, self._kmer_keys(codes[None, a:b])[0, rows - a], axis=0)

    def preact(self, x: np.ndarray) -> np.ndarray:
        """Full 'same' convolution. x: (n, length, cin) float32 -> (n, length, cout) float32 pre-activation.

        One-hot input to a small first layer: each position's k-mer looked up in a table (:meth:`_kmer_table`). A
        wide input: every tap's product summed (:meth:`preact_rows`). Otherwise im2col with a trailing column of
        ones, (n * length, k*cin + 1) @ kaug (k*cin + 1, cout): the bias is added by the same product (saves a pass
        over the (n * length, cout) result).
        """
        if self.cin == 4:
            z = self._preact_by_table(x)
            if z is not None:
                return z
        if self.by_taps:
            return self.preact_rows(x.reshape(-1, self.cin), None, x.shape[0])
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

    @property
    def by_taps(self) -> bool:
        """Whether the input is wide enough for :meth:`preact_rows` to beat im2col rows."""
        return self.cin >= _TAPS_MIN_CIN

    def preact_at(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The pre-activation of one input ``x`` (length, cin) at the sorted positions ``rows`` only -> (len(rows),
        cout), computed as :meth:`preact` computes it, over the stretch of ``x`` the rows read (zero-padded at the
        input's ends as a full pass is): every tap's product for a wide input whose rows fill their stretch (the
        product covers the whole stretch, wanted or not), else im2col rows of just those positions."""
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        a, b = lo - self.left, hi + self.right  # the input the rows read, in x's coordinates
        part = np.zeros((b - a, self.cin), dtype=np.float32)
        part[max(0, -a) : (b - a) - max(0, b - x.shape[0])] = x[max(0, a) : min(b, x.shape[0])]
        if self.by_taps and rows.size * 5 >= (b - a) * 4:
            if rows.size == hi - lo:  # a run of positions: all of the part's, summed by slices, then the run's
                return self.preact_rows(part, None)[0, self.left : self.left + rows.size]
            return self.preact_rows(part, rows - a)
        taps = (rows - lo)[:, None] + self.dilation * np.arange(self.k)[None, :]  # (r, k) rows of part
        cols = np.empty((rows.size, self.k * self.cin + 1), dtype=np.float32)
        cols[:, :-1] = part[taps].reshape(rows.size, -1)
        cols[:, -1] = 1.0
        return cols @ self.kaug

    def preact_rows(self, x: np.ndarray, rows: np.ndarray | None, n: int = 1) -> np.ndarray:
        """Pre-activations from every tap's product: ``x @ kcat`` gives each position's contribution to each tap,
        and a position's pre-activation is the bias plus the k contributions that reach it (the zero padding adds
        none). No im2col rows are built.

        Args:
            x: ``n`` inputs stacked, shape (n * length, cin) float32.
            rows: sorted positions wanted (of a single input, ``n`` = 1), or None for every position of each input.
            n: how many inputs ``x`` stacks.

        Returns:
            (n, length, cout) float32 for ``rows`` None, else (len(rows), cout).
        """
        length = x.shape[0] // n
        # x @ kcat, computed as (kcat.T @ x.T).T (a view): with the OpenBLAS that numpy wheels ship, one thread, the
        # Xpresso network's second layer, (350, 128) @ (128, 288) float32, takes 2.0-2.2 ms the first way in a fresh
        # process and 0.7 ms this way (benchmarks/bench_blas.py measures both). The same products and sums.
        taps = (self.kcat_t @ x.T).T.reshape(n, length, self.k, self.cout)
        if rows is None:
            z = np.empty((n, length, self.cout), dtype=np.float32)
            z[:] = self.bias
            for t in range(self.k):
                off = t * self.dilation - self.left  # position j reads input j + off through tap t
                lo, hi = max(0, -off), min(length, length - off)
                if lo < hi:
                    z[:, lo:hi] += taps[:, lo + off : hi + off, t]
            return z
        z = np.empty((rows.size, self.cout), dtype=np.float32)
        z[:] = self.bias
        for t in range(self.k):
            src = rows + (t * self.dilation - self.left)
            ok = (src >= 0) & (src < length)
            z[ok] += taps[0, src[ok], t]
        return z

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


def fold_normalisation(stage: ConvStage, gamma: Any, beta: Any, mean: Any, var: Any, epsilon: float) -> ConvStage:
    """The convolution followed by an (inference-mode) batch normalisation, as one convolution: per output channel
    ``gamma * (z - mean) / sqrt(var + eps) + beta`` is affine in ``z``, so it scales the kernel and moves the bias."""
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, var))
    factor = gamma / np.sqrt(var + float(epsilon))
    kernel = (stage.kernel.astype(np.float64) * factor).astype(np.float32)
    bias = ((stage.bias.astype(np.float64) - mean) * factor + beta).astype(np.float32)
    return ConvStage(kernel, bias, stage.dilation, [], stage.pool)


def average_rows(w: np.ndarray, n: int) -> np.ndarray:
    """A Dense layer's rows ``w`` (c, units) after a global average over ``n`` positions, as the rows of the same
    Dense after a Flatten, (n, c, units): the average is linear, so ``mean_p(x[p]) @ w == flatten(x) @ (w / n
    repeated n times)``, and the engines need no other head."""
    return np.ascontiguousarray(np.broadcast_to((w.astype(np.float64) / n).astype(np.float32), (n, *w.shape)))
