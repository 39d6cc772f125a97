"""The fast path of scoring: many genes' substitutions and indels scored by local recomputation, in worker processes.

One gene's work is a :class:`GeneJob` (its reference window, features, substitutions and whole alternate windows);
:class:`ScoringPool` scores jobs in order, in this process or in spawned workers (numpy only, one BLAS thread each),
each holding a copy of the model's :class:`~varxpress.models.local_scorer.LocalScorer`. The engine itself is in
:mod:`varxpress.models.local_scorer` (substitutions) and :mod:`varxpress.models.shiftpath` (indels); the network is
read by :mod:`varxpress.models.keras_stages`, whose :func:`supports` tells whether a network can take the fast path.
Those names are imported here too, so callers need one module.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import re
import signal
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from varxpress.io.outputs import process_alive
from varxpress.lazy_keras import held_interrupts
from varxpress.models.keras_stages import supports
from varxpress.models.local_scorer import Edit, LocalScorer, RefCache, score_gene_substitutions
from varxpress.sequence.encode import one_hot

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
    "Batch",
    "default_threads",
]


class GeneJob(NamedTuple):
    """One gene's work: ``key`` is returned untouched; ``ref_onehot``: the reference window, one-hot (L, 4) or
    its sequence (encoded where the job is scored: a string is 16 times smaller to send to a worker); features (F,)
    or None; edit-sets; ``windows``: whole alternate windows (indels), ``(sequence, len(ALT) - len(REF))`` each,
    oriented as the network sees them (see :meth:`LocalScorer.predict_windows`)."""

    key: Any
    ref_onehot: np.ndarray | str
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
    ref_onehot = one_hot(job.ref_onehot) if isinstance(job.ref_onehot, str) else job.ref_onehot
    if not job.windows:
        ref, alt = score_gene_substitutions(scorer, ref_onehot, job.features, job.edits)
        return GeneResult(job.key, ref, alt)
    cache = scorer.prepare(ref_onehot, job.features)
    windows = scorer.predict_windows(cache, [seq for seq, _ in job.windows], [shift for _, shift in job.windows])
    return GeneResult(job.key, cache.pred, scorer.predict_substitutions(cache, job.edits), windows)


_WORKER_SCORER: LocalScorer | None = None


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    """In a worker, on a daemon thread: end the process once ``parent`` is gone. A ``kill -9`` of ``score`` gives
    its workers no signal, and they would wait on their job queue for ever (each holding its copy of the model)."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def _worker_init(state: str, parent: int) -> None:
    """``state``: the file holding the pickled :class:`LocalScorer` (see :class:`ScoringPool`); ``parent``: the
    pool's process id (given, not read here: it may be gone before this runs)."""
    global _WORKER_SCORER
    # started with the stop signals blocked (_starting_workers): Ctrl-C is the pool owner's to act on (it stops
    # its workers), and a SIGTERM or SIGHUP that arrived during the start now ends this worker without a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
    with open(state, "rb") as fh:
        _WORKER_SCORER = pickle.load(fh)
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True).start()
    try:  # one BLAS thread per worker process: the processes are the parallelism
        from threadpoolctl import threadpool_limits  # optional: a missing one only costs speed

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _starting_workers() -> Iterator[None]:
    """Around a submission, which may start workers: the stop signals are held for this process
    (:func:`held_interrupts`) and blocked in this thread, so a worker spawned meanwhile starts with them blocked,
    and one sent to the whole process group during its start (a scheduler cancelling the job) waits for
    :func:`_worker_init` instead of interrupting the worker's imports with a traceback."""
    with held_interrupts():
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # what arrived reaches the held handlers


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


_SCORER_FILE = re.compile(r"^varxpress-scorer-(\d+)-\w+\.pickle$")


def _sweep_scorer_files() -> None:
    """Remove the scorer files (see :class:`ScoringPool`) of pools whose process no longer runs: a ``score`` killed
    with -9 could not remove its own."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(tempfile.gettempdir()):
            match = _SCORER_FILE.match(entry.name)
            if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
                _remove(entry.path)


def _worker_score(job: GeneJob) -> GeneResult:
    assert _WORKER_SCORER is not None
    return score_gene(_WORKER_SCORER, job)


class ScoringPool:
    """Worker processes kept for many :meth:`map` calls (e.g. one per VCF chunk); a context manager.

    Args:
        scorer: the :class:`LocalScorer` (sent once to each worker).
        threads: worker processes (spawned, numpy only, one BLAS thread each); 1 = score in the calling process.
        max_pending: bound on jobs in flight (default ``4 * threads``), so memory stays bounded.

    The workers start while jobs are submitted, so jobs are submitted with Ctrl-C, SIGTERM and SIGHUP held
    (:func:`varxpress.lazy_keras.held_interrupts`). A signal handled in the middle of a worker's start once left that
    worker outside the pool's shutdown: the main process exited and removed the pool's semaphores, and the worker,
    still unpickling its start-up state, printed a ``FileNotFoundError`` traceback after ``score`` had reported a
    clean end.

    The scorer reaches the workers through a temporary file (removed by :meth:`close`, or by a later pool when its
    process was killed with -9), not through the pipe a
    spawned worker reads its start-up state from: multiprocessing writes that state whole while it still holds the
    pipe's reading end itself, so a worker killed before reading it all (Ctrl-C or a scheduler's SIGTERM sent to the
    whole process group while the worker imports numpy) left the write, and ``score``, blocked for ever on the
    scorer's megabyte. What goes through the pipe now fits in its buffer.
    """

    def __init__(self, scorer: LocalScorer, threads: int = 1, max_pending: int | None = None) -> None:
        self.scorer, self.threads = scorer, max(1, int(threads))
        self.max_pending = max_pending or 4 * self.threads
        self._pool: ProcessPoolExecutor | None = None
        self._state: str | None = None
        if self.threads > 1:
            _sweep_scorer_files()
            fd, self._state = tempfile.mkstemp(prefix=f"varxpress-scorer-{os.getpid()}-", suffix=".pickle")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(scorer, fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._remove_state = weakref.finalize(self, _remove, self._state)  # also at exit, if close() is missed
            ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold TensorFlow threads
            self._pool = ProcessPoolExecutor(self.threads, mp_context=ctx, initializer=_worker_init,
                                             initargs=(self._state, os.getpid()))

    def map(self, jobs: Iterable[GeneJob]) -> Iterator[GeneResult]:
        """Score each :class:`GeneJob` (consumed lazily); yields :class:`GeneResult` in the order of ``jobs``."""
        if self._pool is None:
            for job in jobs:
                yield score_gene(self.scorer, job)
            return
        pending: deque[Future] = deque()
        for job in jobs:
            with _starting_workers():  # a worker's start is complete or not begun (see ScoringPool)
                pending.append(self._pool.submit(_worker_score, job))
            if len(pending) >= self.max_pending:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def submit(self, jobs: Iterable[GeneJob]) -> "Batch":
        """Start scoring all of ``jobs`` and return at once; :meth:`Batch.results` waits for them. The caller
        prepares its next batch meanwhile (``score`` reads and classifies the next VCF chunk while the workers score
        this one). Unlike :meth:`map`, nothing bounds the jobs in flight but the batch: keep batches small. In this
        process (``threads`` 1) the jobs are scored when their results are asked for."""
        jobs = list(jobs)
        if self._pool is None:
            return Batch([], lambda: [score_gene(self.scorer, job) for job in jobs])
        with _starting_workers():  # a worker's start is complete or not begun (see ScoringPool)
            return Batch([self._pool.submit(_worker_score, job) for job in jobs])

    def close(self) -> None:
        """Stop the workers; jobs not started are cancelled."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            self._remove_state()

    def __enter__(self) -> "ScoringPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Batch:
    """Jobs started by :meth:`ScoringPool.submit`: :meth:`results` gives their :class:`GeneResult` in order."""

    def __init__(self, futures: list[Future], compute: Callable[[], list[GeneResult]] | None = None) -> None:
        self._futures, self._compute = futures, compute

    def results(self) -> list[GeneResult]:
        """Wait for every job (a worker's exception is raised here)."""
        if self._compute is not None:
            return self._compute()
        return [f.result() for f in self._futures]


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
