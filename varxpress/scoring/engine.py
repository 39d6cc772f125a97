"""The prediction engine: reference and alternate predictions of (allele, gene) pairs, for one model or an ensemble.

Every subcommand that predicts from a genome goes through here: ``score`` (whole VCFs), ``explain`` (one variant's
page), ``mutagenesis`` (every substitution of a stretch) and ``background`` (random substitutions).

* :class:`Engine` holds one model. A gene's reference window is cut once (:mod:`varxpress.sequence.windows`),
  encoded and predicted, and kept in a small LRU cache. Substitutions go through the incremental engine
  (:mod:`varxpress.models.fastpath`) where the network allows it, indels through the shifted first layer
  (:mod:`varxpress.models.shiftpath`), anything else through batched full predictions; ``threads > 1`` spreads
  genes over worker processes.
* :class:`Predictor` holds the members of an ensemble (one :class:`Engine` each; a single model is an ensemble of
  one), the gene features, already on the model's input scale (:mod:`varxpress.scoring.resources`), and the
  background. It turns :class:`Task` s into :class:`Scored` records whose :class:`~varxpress.scoring.scores.GeneScore`
  carries the member mean, the spread, the fold change, the percentile and the quality flags: the numbers every
  output shows, computed here once.
"""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from varxpress.io.tss import TSS
from varxpress.io.variants import Allele, AlleleKind
from varxpress.models import fastpath
from varxpress.models.ensemble import ensemble_stats
from varxpress.models.local_scorer import Edit
from varxpress.scoring import scores
from varxpress.scoring.scores import GeneScore, allele_flags, mean_log2_fold_change, quality_flags
from varxpress.sequence.encode import one_hot
from varxpress.sequence.windows import Window, alt_window, distance_to_tss, ref_window, substitution_edits

log = logging.getLogger(__name__)

__all__ = ["Task", "Prediction", "Scored", "Pending", "GeneRef", "Engine", "Predictor", "gene_features"]

class Task(NamedTuple):
    """One ALT allele of one record on one gene whose window holds it."""

    record: int  #: 0-based ordinal of the record in its input
    allele: Allele
    tss: TSS


class Prediction(NamedTuple):
    """One model's predictions for one :class:`Task`."""

    task: Task
    ref_pred: float
    alt_pred: float
    off_contig: bool  #: the reference or the alternate window runs off the contig (N padding)
    fast: bool  #: predicted by the incremental substitution engine
    n_fraction: float  #: fraction of N in the gene's reference window


class Scored(NamedTuple):
    """A task's score over every member: the :class:`GeneScore` and each member's own delta."""

    task: Task
    score: GeneScore
    member_deltas: tuple[float, ...]
    fast: bool


def gene_features(model: Any, features: dict[str, np.ndarray], gene_id: str) -> np.ndarray | None:
    """A gene's feature vector for ``model``, shape (F,): its row of ``features``, else the model's defaults;
    None for a model without features. ``features`` must already be on the model's input scale."""
    if not model.n_features:
        return None
    f = features.get(gene_id)
    return np.asarray(model.metadata.default_features if f is None else f, dtype=np.float32)


class Pending:
    """Predictions started by a ``submit`` method; :meth:`result` waits for them and gives them."""

    __slots__ = ("_finish",)

    def __init__(self, finish: Callable[[], Any]) -> None:
        self._finish = finish

    def result(self) -> Any:
        return self._finish()


class GeneRef:
    """A gene's reference window, its encoding and prediction, and the fast path's cache of its activations."""

    __slots__ = ("window", "onehot", "features", "pred", "cache")

    def __init__(self, window: Window, onehot: np.ndarray, features: np.ndarray | None):
        self.window, self.onehot, self.features = window, onehot, features
        self.pred: float = float("nan")
        self.cache = None


def _length_change(allele: Allele) -> int:
    return len(allele.alt) - len(allele.ref)


class Engine:
    """Reference and alternate predictions of one model.

    Args:
        model: a loaded :class:`varxpress.models.network.ExpressionModel`.
        genome: the reference.
        features: gene id -> feature vector on the model's input scale; genes absent use the model's defaults.
        fast: use the incremental engines where the model supports them.
        batch_size: windows per model call on the full-recomputation path.
        cache_genes: how many genes' reference data to keep (each costs the size of the network's activations).
        threads: worker processes for :meth:`score` (1: none).
    """

    def __init__(self, model, genome, features: dict[str, np.ndarray] | None = None, fast: bool = True,
                 batch_size: int = 32, cache_genes: int = 32, threads: int = 1):
        self.model, self.genome = model, genome
        self.spec = model.window_spec
        self.features = features or {}
        self.batch_size = batch_size
        self.cache_genes = cache_genes
        self._refs: collections.OrderedDict[str, GeneRef] = collections.OrderedDict()
        self.genes_predicted = 0  #: reference windows predicted (cache misses; with workers, one per gene job)
        self.local = None
        self.pool = None
        if fast:
            if fastpath.supports(model):
                self.local = fastpath.LocalScorer(model, threads=threads)
                if threads > 1:  # measured faster than BLAS threads for these small products (docs/performance.md)
                    self.pool = fastpath.ScoringPool(self.local, threads)
            else:
                log.info("model layers not supported by the incremental engine: full recomputation for every allele")

    @property
    def fast(self) -> bool:
        """Whether the incremental engine is in use."""
        return self.local is not None

    def close(self) -> None:
        """Stop worker processes, if any (idempotent)."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def gene_ref(self, tss: TSS) -> GeneRef:
        """The cached reference data of a gene (window, one-hot, prediction)."""
        ref = self._refs.get(tss.gene_id)
        if ref is not None:
            self._refs.move_to_end(tss.gene_id)
            return ref
        self.genes_predicted += 1
        window = ref_window(self.genome, tss, self.spec)
        ref = GeneRef(window, one_hot(window.seq), gene_features(self.model, self.features, tss.gene_id))
        if self.local is not None:
            ref.cache = self.local.prepare(ref.onehot, ref.features)
            ref.pred = float(self.local.ref_prediction(ref.cache))
        else:
            feats = None if ref.features is None else ref.features[None, :]
            ref.pred = float(self.model.predict(ref.onehot[None], feats)[0])
        self._refs[tss.gene_id] = ref
        if len(self._refs) > self.cache_genes:
            self._refs.popitem(last=False)
        return ref

    def predict_edits(self, ref: GeneRef, edits: Sequence[Sequence[Edit]]) -> np.ndarray:
        """Predictions of the reference window changed by each edit set, shape (len(edits),) float64.

        ``edits``: one list of ``(window index, base index)`` per alternate window (0-based index in the oriented
        window; base 0-3 = A, C, G, T, -1 = N), as :func:`varxpress.sequence.windows.substitution_edits` makes them.
        """
        if self.local is not None:
            return np.asarray(self.local.predict_substitutions(ref.cache, edits), dtype=np.float64)
        out = np.empty(len(edits), dtype=np.float64)
        rows = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])
        for lo in range(0, len(edits), self.batch_size):
            chunk = edits[lo:lo + self.batch_size]
            X = np.repeat(ref.onehot[None], len(chunk), axis=0)
            for k, es in enumerate(chunk):
                for index, base in es:
                    X[k, index] = rows[base]  # base -1 selects the zero row
            F = None if ref.features is None else np.broadcast_to(ref.features, (len(chunk), len(ref.features)))
            out[lo:lo + len(chunk)] = self.model.predict(X, F, batch_size=self.batch_size)
        return out

    def score(self, tasks: Sequence[Task]) -> list[Prediction]:
        """Predict every task; one :class:`Prediction` per task, in the order of ``tasks``."""
        return self.submit(tasks).result()

    def submit(self, tasks: Sequence[Task]) -> Pending:
        """Start predicting every task; the :class:`Pending`'s result is :meth:`score`'s. With worker processes the
        genes are scored while the caller goes on (``score`` reads its next chunk meanwhile); without, right here."""
        by_gene: dict[str, list[int]] = collections.defaultdict(list)
        for i, task in enumerate(tasks):
            by_gene[task.tss.gene_id].append(i)
        parts = []
        for indices in by_gene.values():
            subs = [i for i in indices if self.local is not None
                    and tasks[i].allele.kind in (AlleleKind.SNV, AlleleKind.MNV)]
            parts.append((subs, sorted(set(indices) - set(subs))))
        if self.pool is not None:  # each job's worker predicts the gene's reference window
            self.genes_predicted += len(parts)
            batch = self.pool.submit(self._gene_job(tasks, subs, others) for subs, others in parts)
            return Pending(lambda: self._collect(tasks, batch.results()))
        results: list = [None] * len(tasks)
        pending: list[tuple[int, np.ndarray, np.ndarray | None, float, bool, float]] = []
        for subs, others in parts:
            ref = self.gene_ref(tasks[(subs or others)[0]].tss)
            off = ref.window.off_contig
            if subs:
                alt_preds = self.predict_edits(ref, [substitution_edits(tasks[i].allele, ref.window) for i in subs])
                for i, alt_pred in zip(subs, alt_preds):
                    results[i] = Prediction(tasks[i], ref.pred, float(alt_pred), off, True, ref.window.n_fraction)
            alts = [alt_window(self.genome, tasks[i].tss, self.spec, tasks[i].allele) for i in others]
            if self.local is not None and others:  # indels: the reference's first layer, shifted (shiftpath)
                preds = self.local.predict_windows(ref.cache, [a.seq for a in alts],
                                                   [_length_change(tasks[i].allele) for i in others])
                for i, alt, alt_pred in zip(others, alts, preds):
                    results[i] = Prediction(tasks[i], ref.pred, float(alt_pred), off or alt.off_contig, False,
                                            ref.window.n_fraction)
                continue
            for i, alt in zip(others, alts):
                pending.append((i, one_hot(alt.seq), ref.features, ref.pred, off or alt.off_contig,
                                ref.window.n_fraction))
            if len(pending) >= self.batch_size:
                self._flush(tasks, pending, results)
        self._flush(tasks, pending, results)
        return Pending(lambda: results)

    @staticmethod
    def _collect(tasks: Sequence[Task], gene_results: Sequence[fastpath.GeneResult]) -> list[Prediction]:
        """The workers' :class:`~varxpress.models.fastpath.GeneResult` s as one :class:`Prediction` per task."""
        results: list = [None] * len(tasks)
        for res in gene_results:
            subs, others, alt_off, off, n_fraction = res.key
            for i, alt_pred in zip(subs, res.alt_preds):
                results[i] = Prediction(tasks[i], float(res.ref_pred), float(alt_pred), off, True, n_fraction)
            for i, alt_pred, a_off in zip(others, res.window_preds if others else (), alt_off):
                results[i] = Prediction(tasks[i], float(res.ref_pred), float(alt_pred), off or a_off, False,
                                        n_fraction)
        return results

    def _gene_job(self, tasks: Sequence[Task], subs: list[int], others: list[int]) -> fastpath.GeneJob:
        """A worker job for one gene: its substitutions as edits, its other alleles as whole alternate windows."""
        tss = tasks[(subs or others)[0]].tss
        window = ref_window(self.genome, tss, self.spec)
        edits = [substitution_edits(tasks[i].allele, window) for i in subs]
        alts, alt_off = [], []
        for i in others:
            alt = alt_window(self.genome, tasks[i].tss, self.spec, tasks[i].allele)
            alts.append((alt.seq, _length_change(tasks[i].allele)))
            alt_off.append(alt.off_contig)
        return fastpath.GeneJob((subs, others, alt_off, window.off_contig, window.n_fraction), window.seq,
                                gene_features(self.model, self.features, tss.gene_id), edits, alts)

    def _flush(self, tasks, pending, results) -> None:
        for lo in range(0, len(pending), self.batch_size):
            batch = pending[lo:lo + self.batch_size]
            X = np.stack([b[1] for b in batch])
            F = None if batch[0][2] is None else np.stack([b[2] for b in batch])
            preds = self.model.predict(X, F, batch_size=self.batch_size)
            for (i, _, _, ref_pred, off, n_fraction), alt_pred in zip(batch, preds):
                results[i] = Prediction(tasks[i], ref_pred, float(alt_pred), off, False, n_fraction)
        pending.clear()


class Predictor:
    """The members of a model (one, or an ensemble's ``k``) with their engines, the gene features and the background.

    Args:
        members: the :class:`~varxpress.models.network.ExpressionModel` s (they share window, features and output
            scale; :class:`~varxpress.models.ensemble.EnsembleModel` checks that).
        genome: the reference.
        features: gene id -> feature vector on the models' input scale (see :mod:`varxpress.scoring.resources`).
        background: a :class:`~varxpress.interpret.background.Background` for percentiles, or None.
        fast, batch_size, threads: as for :class:`Engine`.
    """

    def __init__(self, members: Sequence[Any], genome, features: dict[str, np.ndarray] | None = None,
                 background=None, fast: bool = True, batch_size: int = 32, threads: int = 1):
        self.members = list(members)
        self.genome = genome
        self.features = features or {}
        self.background = background
        self.engines = [Engine(m, genome, self.features, fast=fast, batch_size=batch_size, threads=threads)
                        for m in self.members]
        self._scales = [(m.metadata.output_scale, m.metadata.label_sd) for m in self.members]
        self._bg_max_n = None if background is None else background.provenance.get("max_n_fraction")

    @property
    def model(self):
        """The first member: window, features and output scale are common to all."""
        return self.members[0]

    @property
    def fast(self) -> bool:
        """Whether the incremental engine is in use (for every member)."""
        return all(e.fast for e in self.engines)

    @property
    def genes_predicted(self) -> int:
        """Reference windows predicted by the first member's engine (cache misses)."""
        return self.engines[0].genes_predicted

    def close(self) -> None:
        """Stop the engines' worker processes (idempotent)."""
        for engine in self.engines:
            engine.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- (allele, gene) pairs ------------------------------------------------------------------------------------
    def score(self, tasks: Sequence[Task]) -> list[Scored]:
        """Every task's :class:`Scored`, in the order of ``tasks``."""
        return self.submit(tasks).result()

    def submit(self, tasks: Sequence[Task]) -> Pending:
        """Start scoring every task (see :meth:`Engine.submit`); the :class:`Pending`'s result is :meth:`score`'s."""
        started = [engine.submit(tasks) for engine in self.engines] if tasks else []
        return Pending(lambda: self._scored([p.result() for p in started]))

    def _scored(self, member_preds: list[list[Prediction]]) -> list[Scored]:
        """Each task's :class:`Scored` from every member's predictions of it."""
        if not member_preds or not member_preds[0]:
            return []
        ref = np.array([[p.ref_pred for p in preds] for preds in member_preds]).T  # (n, k)
        alt = np.array([[p.alt_pred for p in preds] for preds in member_preds]).T
        ens = ensemble_stats(ref, alt)
        pct = self.background.percentile(np.abs(ens.mean_delta)) if self.background is not None else None
        fcs = mean_log2_fold_change(ref, alt, self._scales)
        single = len(self.members) == 1
        n = len(member_preds[0])
        # Python floats of every column at once (the same values as float() of each element)
        ref_mean, alt_mean, delta = ens.ref_mean.tolist(), ens.alt_mean.tolist(), ens.mean_delta.tolist()
        pcts = [None] * n if pct is None else np.asarray(pct, dtype=np.float64).tolist()
        fc = [None] * n if fcs is None else np.asarray(fcs, dtype=np.float64).tolist()
        sd = [None] * n if single else ens.sd_delta.tolist()
        agree = [None] * n if single else ens.sign_agreement.tolist()
        member_deltas = (alt - ref).tolist()
        out = []
        for i, first in enumerate(member_preds[0]):
            task = first.task
            p = pcts[i]
            off = any(preds[i].off_contig for preds in member_preds)
            allele, tss = task.allele, task.tss
            score = GeneScore(
                record=task.record, alt_index=allele.alt_index, alt=allele.alt, gene_id=tss.gene_id,
                gene_name=tss.gene_name, strand=tss.strand, tss_pos=tss.pos0 + 1,
                distance=distance_to_tss(allele, tss), ref_pred=ref_mean[i], alt_pred=alt_mean[i], delta=delta[i],
                log2fc=fc[i], percentile=p,
                flags=quality_flags(off, first.n_fraction, p, self._bg_max_n) + allele_flags(self.genome, allele, tss),
                n_fraction=first.n_fraction, delta_sd=sd[i], sign_agreement=agree[i],
                member_deltas=None if single else tuple(member_deltas[i]),
            )
            out.append(Scored(task, score, tuple(member_deltas[i]), first.fast))
        return out

    # ---- substitutions of one gene's window (mutagenesis, background) -------------------------------------------
    def gene_refs(self, tss: TSS) -> list[GeneRef]:
        """Each member's reference data of a gene."""
        return [engine.gene_ref(tss) for engine in self.engines]

    def reference(self, tss: TSS) -> tuple[Window, np.ndarray, float]:
        """``(window, one-hot, reference prediction)`` of a gene: the members' mean prediction."""
        refs = self.gene_refs(tss)
        return refs[0].window, refs[0].onehot, float(np.mean([r.pred for r in refs]))

    def substitutions(self, tss: TSS, edits: Sequence[Sequence[Edit]]) -> np.ndarray:
        """The members' mean prediction of the gene's reference window changed by each edit set, shape (len(edits),)."""
        refs = self.gene_refs(tss)
        return np.mean([engine.predict_edits(ref, edits) for engine, ref in zip(self.engines, refs)], axis=0)

    def substitution_deltas(self, tss: TSS, edits: Sequence[Sequence[Edit]]) -> np.ndarray:
        """Delta of each edit set of the gene's window, shape (len(edits),): :meth:`substitutions` minus the
        :meth:`reference` prediction (what ``score`` reports for those substitutions)."""
        return scores.delta(self.reference(tss)[2], self.substitutions(tss, edits))
