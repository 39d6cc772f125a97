"""Fast scoring of indels (and other alternate windows) by reusing the reference's first layer, shifted.

An insertion or deletion shifts the sequence on one side of it: the alternate window is made of stretches that are
the reference window moved by some offset ``s`` (0 on the unshifted side), and a few *fresh* bases (the inserted
ones, and the bases a shift pulls in at the window edge). The first convolution's pre-activation at position ``j``
only reads the bases ``[j - left, j + right]``, so wherever those all come from one stretch it equals the
reference's pre-activation at ``j + s``, already cached by :meth:`varxpress.models.fastpath.LocalScorer.prepare`.

:func:`predict_windows` therefore, per alternate window and conv stage (the same rule applies to a later stage,
whose input is the previous stage's output: the part of the window that did not move, or moved by a multiple of the
pooling so far, is again a copy of the reference's input):

1. finds the stretches: in the first stage, for each candidate offset (0 and ``±shift``), the prefix and the
   suffix of the window whose bases equal the reference's moved by that offset (an exact comparison of base codes,
   or of the rows' bits where rows are not exactly one-hot, so any window is handled correctly; a copy the search
   does not look for only saves less work); in a later stage, the pooling windows the stage before copied whole
   from the reference's output (offsets that are multiples of the pooling so far), known without comparing;
2. recomputes the convolution only at the positions whose receptive field is not inside one stretch (the indel's
   neighbourhood, the window edges, where the zero padding matches only for offset 0, and in a later stage the part
   whose pooling phase changed): in the first stage by k-mer from the bases, as a full pass computes it;
3. max-pools: a pooling window whose positions all come from one stretch with offset ``s`` is the maximum of the
   reference pre-activations ``[q p + s, q p + s + p)``, i.e. the reference pooled at phase ``s mod p``: the
   windows inside one stretch are one run, pooled as one slice (phase 0 is the cached output; another phase is
   pooled over the rows needed, or once per gene and phase, kept in the
   :class:`~varxpress.models.fastpath.RefCache`, the second time it is needed); the few other windows take the
   maximum of their positions (cached or recomputed), then the activation (non-decreasing, so pooling first is
   exact);
4. runs the dense head in full, all windows of a gene in one product.

The windows may be given as one-hot rows or as their sequences (as ``score``'s worker processes receive them: they
are compared and looked up by base code, never one-hot encoded whole). The result equals a full forward pass (to
float32 rounding). See docs/performance.md for the measured rates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from varxpress.errors import ModelError
from varxpress.models.stages import ConvStage, one_blas_thread
from varxpress.sequence.encode import CODE_ROWS, onehot_codes, seq_codes

__all__ = ["stretches", "predict_windows"]

_BAD = np.iinfo(np.int64).min  # offset of a position whose first-layer pre-activation must be recomputed


def _edge_runs(same: np.ndarray, lo: int, min_len: int) -> list[tuple[int, int]]:
    """The True runs of the boolean vector ``same`` that reach either of its ends, at least ``min_len`` long, as
    ``(start, end)`` moved by ``lo``: all of it if it is all True, else its True prefix and its True suffix."""
    n = same.size
    if n == 0:
        return []
    first = int(np.argmin(same))  # the first False (0 if there is none: checked below)
    if same[first]:
        return [(lo, lo + n)] if n >= min_len else []
    last = n - 1 - int(np.argmin(same[::-1]))
    return [(lo + a, lo + b) for a, b in ((0, first), (last + 1, n)) if b - a >= min_len]


def stretches(ref: np.ndarray, alt: np.ndarray, shift: int, most: int = 3, min_len: int = 1
              ) -> list[tuple[int, int, int]]:
    """Stretches of ``alt`` copied from ``ref``: ``[(lo, hi, s), ...]`` with ``alt[j] == ref[j + s]`` for every
    ``j`` in ``[lo, hi)``, non-overlapping, longest first (at most ``most``; a run overlapping a longer one is cut
    to its longest uncovered piece).

    For each offset only the runs that reach an end of the compared range are taken (the copied prefix and
    suffix): an indel, or any one edited block, leaves the reference on both sides of it, each side moved by 0 or
    by the shift, so those are the copies. A copy in the middle of the window is not looked for; it would only save
    work, never change a result (every stretch returned is checked base by base).

    Args:
        ref, alt: one-hot windows, shape (L, 4), or their base codes, shape (L,) (see
            :func:`varxpress.sequence.encode.seq_codes`), or any arrays whose rows compare equal exactly when the
            inputs do.
        shift: the allele's length change (``len(ALT) - len(REF)``); offsets 0, ``shift`` and ``-shift`` are tried.
        min_len: shorter runs are ignored.
    """
    length = ref.shape[0]
    found = []
    for s in sorted({0, int(shift), -int(shift)}):
        if abs(s) >= length:
            continue
        lo, hi = max(0, -s), min(length, length - s)  # j such that j + s is in the window
        same = alt[lo:hi] == ref[lo + s : hi + s]
        if same.ndim > 1:
            same = same.all(axis=1)
        found.extend((b - a, a, b, s) for a, b in _edge_runs(same, lo, min_len))
    found.sort(reverse=True)
    taken: list[tuple[int, int, int]] = []
    for _, a, b, s in found:
        pieces = [(a, b)]
        for lo, hi, _ in taken:  # the part of the run no longer stretch covers (chance matches extend runs)
            pieces = [p for x, y in pieces for p in ((x, min(y, lo)), (max(x, hi), y)) if p[0] < p[1]]
        if pieces:
            x, y = max(pieces, key=lambda p: p[1] - p[0])
            taken.append((x, y, s))
            if len(taken) == most:
                break
    return taken


def _phase_pool(cache, st, k: int, phase: int, r0: int, r1: int) -> np.ndarray:
    """Stage ``k``'s reference output pooled from ``phase`` (0 <= phase < pool): for rows ``r0 <= r < r1``, the
    activated max of the pre-activation over ``[phase + r p, phase + (r + 1) p)``. Phase 0 is the cached output
    itself; another phase is pooled over the rows asked for only the first time it is asked for (a gene meets few
    indels, and an indel's shifted part is part of the window), and over the whole layer, kept for the gene's next
    indels, the second time (several indels of one length, or lengths that differ by multiples of the pooling)."""
    if phase == 0:
        return cache.a[k][r0:r1]
    z, p = cache.z[k], st.pool
    pooled = cache.shifted.get((k, phase))
    if pooled is not None:
        return pooled[r0:r1]
    asked = ("asked", k, phase)
    if not cache.shifted.get(asked):
        cache.shifted[asked] = True
        return st.activate(z[phase + r0 * p : phase + r1 * p].reshape(r1 - r0, p, z.shape[1]).max(axis=1))
    n = (z.shape[0] - phase) // p
    pooled = cache.shifted[(k, phase)] = st.activate(z[phase : phase + n * p].reshape(n, p, z.shape[1]).max(axis=1))
    return pooled[r0:r1]


def _spans(st, found: list[tuple[int, int, int]], length: int) -> list[tuple[int, int, int]]:
    """The positions ``[a, b)`` of each found stretch ``(lo, hi, s)`` whose receptive field lies inside it, as
    ``(a, b, s)``: their pre-activation is the reference's at ``j + s``. At the window's ends the zero padding
    matches only without a shift."""
    spans = []
    for lo, hi, s in found:
        a = 0 if (lo == 0 and s == 0) else lo + st.left
        b = length if (hi == length and s == 0) else hi - st.right
        if a < b:
            spans.append((a, b, s))
    return spans


def _stage(st, cache, k: int, x: np.ndarray, found: list[tuple[int, int, int]], preact_at
           ) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Pooled, activated output of conv stage ``k`` for one alternate input ``x`` (n, c_in) -> (n // p, c_out),
    given the ``found`` stretches of ``x`` copied from the reference's input of that stage; ``preact_at(st, x,
    rows)`` computes the pre-activations of the other positions.

    Also returns the stretches of that output copied from the reference's output (pooling windows wholly inside
    one stretch whose offset is a multiple of the pooling: the next stage's ``found``), as ``(lo, hi, s)``."""
    length, p = x.shape[0], st.pool
    n_out = length // p
    spans = _spans(st, found, length)
    out = np.empty((n_out, st.cout), dtype=np.float32)
    rest = np.ones(n_out, dtype=bool)  # pooling windows not wholly inside one span
    copies = []
    for a, b, s in spans:  # every position from one stretch: the reference pooled at that stretch's phase
        q0, q1 = -(-a // p), min(b // p, n_out)
        if q0 < q1:
            rest[q0:q1] = False
            phase = s % p
            r0 = q0 + (s - phase) // p
            out[q0:q1] = _phase_pool(cache, st, k, phase, r0, r0 + q1 - q0)
            if phase == 0:
                copies.append((q0, q1, s // p))
    q = np.flatnonzero(rest)
    if q.size:  # the other windows: cached pre-activations where copied, recomputed elsewhere
        pos = (q[:, None] * p + np.arange(p)[None, :]).ravel()  # their positions, window by window
        off = np.full(pos.size, _BAD, dtype=np.int64)  # per position: the reference offset it copies, or _BAD
        for a, b, s in spans:
            off[(pos >= a) & (pos < b)] = s
        bad = off == _BAD
        z = np.empty((pos.size, st.cout), dtype=np.float32)
        good = np.flatnonzero(~bad)
        z[good] = cache.z[k][pos[good] + off[good]]
        bad = np.flatnonzero(bad)
        if bad.size:
            z[bad] = preact_at(st, x, pos[bad])
        out[q] = st.activate(z.reshape(q.size, p, st.cout).max(axis=1))
    return out, copies


def _bits(x: np.ndarray) -> np.ndarray:
    """(n, c) float32 -> (n, c) int32 of the same bits: rows compare equal exactly when every bit does (a float
    comparison would call 0.0 and -0.0 equal and NaN unequal to itself)."""
    return np.ascontiguousarray(x, dtype=np.float32).view(np.int32)


def _window(scorer, cache, alt: np.ndarray, shift: int) -> np.ndarray:
    """The last conv stage's output for one alternate window, given as its one-hot rows (L, 4) or its base codes
    (L,): stage by stage, each reusing the reference wherever its input is a copy of the reference's input.

    The first stage's copies are found by comparing bases (:func:`stretches`) and its other positions computed
    from the bases (by k-mer, as a full pass computes them); where the reference's or this window's rows are not
    all exactly one-hot (e.g. probabilities), rows are compared bit by bit and recomputed from the rows. A later
    stage's copies are the pooling windows the stage before it copied whole (an exact copy by construction; a copy
    that only happens to match is not looked for, which costs speed, never correctness)."""
    if "codes" not in cache.shifted:
        cache.shifted["codes"] = onehot_codes(cache.onehot)
    ref = cache.shifted["codes"]
    codes = alt if alt.ndim == 1 else None if ref is None else onehot_codes(alt)
    first = scorer.stages[0]
    if ref is not None and codes is not None:
        found = stretches(ref, codes, shift, min_len=first.pad + 1)
        x, preact_at = codes, ConvStage.preact_at_codes
    else:
        x = alt if alt.ndim == 2 else np.take(CODE_ROWS, alt, axis=0)
        found = stretches(_bits(cache.onehot), _bits(x), shift, min_len=first.pad + 1)
        preact_at = ConvStage.preact_at
    for k, st in enumerate(scorer.stages):
        x, found = _stage(st, cache, k, x, found, preact_at if k == 0 else ConvStage.preact_at)
    return x


def predict_windows(scorer, cache, alts: np.ndarray | Sequence[str], shifts: Sequence[int] | None = None
                    ) -> np.ndarray:
    """Predict whole alternate windows of one gene from its reference cache.

    Args:
        scorer: the :class:`varxpress.models.fastpath.LocalScorer` of the model.
        cache: from ``scorer.prepare`` for this gene's reference window.
        alts: alternate windows, oriented as the network sees them: one-hot, shape (n, L, 4), or their sequences
            (n strings of length L; N and other letters as all-zero rows, as :func:`varxpress.sequence.encode.one_hot`
            encodes them), which are never one-hot encoded whole.
        shifts: per window, the allele's length change ``len(ALT) - len(REF)`` (0 for substitutions); None: all 0.
            Only a hint for finding the shifted stretches: a wrong value costs speed, never correctness.

    Returns:
        predictions, shape (n,) float64, equal to a full forward pass of each window (to float32 rounding).

    Raises:
        ModelError: windows of another length or shape than the network's.
    """
    if isinstance(alts, np.ndarray) or not all(isinstance(a, str) for a in alts):
        alts = scorer._check_onehot(alts)
    else:
        alts = [seq_codes(a) for a in alts]
        wrong = next((a.size for a in alts if a.size != scorer.length), None)
        if wrong is not None:
            raise ModelError(f"an alternate window has {wrong} bases, the network reads {scorer.length}")
    n = len(alts)
    if n == 0:
        return np.empty(0, dtype=np.float64)
    shifts = [0] * n if shifts is None else list(shifts)
    with one_blas_thread():
        last = np.stack([_window(scorer, cache, alts[i], int(shifts[i])) for i in range(n)])
        head = scorer.head
        h = last.reshape(n, -1) @ head.w_flat.reshape(-1, head.w_flat.shape[2])
        h = h.astype(np.float64) + scorer._features(cache.features, n) @ head.w_feat + head.bias
        unchanged = (_bits(last) == _bits(cache.a[-1])[None]).reshape(n, -1).all(axis=1)
        return scorer._finish(cache, h, unchanged)
