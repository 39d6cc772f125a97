"""Predicting with a combination of models that read different windows (:mod:`varxpress.models.combination`).

:func:`load_combination` loads a manifest's members and reads, from each member's background file, the standard
deviation of its background deltas that scales it. :class:`CombinedPredictor` has the interface of
:class:`~varxpress.scoring.engine.Predictor` that ``score`` and ``background`` use: one
:class:`~varxpress.scoring.engine.Engine` per member, each asked only about the (allele, gene) pairs its own window
holds, and :func:`~varxpress.models.combination.combination_stats` for the combined delta. A combination has deltas
but no predictions of its own: its scores carry no RefPred, AltPred or Log2FC.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from varxpress.errors import ModelError
from varxpress.interpret.background import Background, BackgroundError, default_path
from varxpress.io.tss import TSS
from varxpress.models.combination import Combination, CombinationMember, combination_stats, read_manifest
from varxpress.models.local_scorer import Edit
from varxpress.models.network import ExpressionModel
from varxpress.scoring import scores
from varxpress.scoring.engine import Engine, Pending, Prediction, Scored, Task
from varxpress.scoring.scores import GeneScore, allele_flags, quality_flags
from varxpress.sequence.encode import one_hot
from varxpress.sequence.windows import Window, WindowSpec, distance_to_tss, ref_window

__all__ = ["load_combination", "member_sd", "CombinedPredictor", "holds"]


def member_sd(background: str | Path, model: Any, member: str) -> float:
    """The standard deviation of a member's background SNV deltas, as its background file records it.

    Raises:
        BackgroundError: the file is missing, made for another model file, or does not record ``delta_sd``.
    """
    path = Path(background)
    if not path.is_file():
        raise BackgroundError(f"combination member {member}: no background {path}, whose spread scales its deltas; "
                              f"build one with `varxpress background --model {model.path} --out {path}`")
    bg = Background.load(path)
    bg.check_model(model.sha256)
    sd = bg.provenance.get("delta_sd")
    if sd is None or not math.isfinite(float(sd)):
        raise BackgroundError(f"combination member {member}: background {path} does not record the SD of its deltas "
                              f"(delta_sd); rebuild it with `varxpress background`")
    return float(sd)


def load_combination(path: str | Path) -> Combination:
    """Load a combination manifest: each member's model and the SD of its background deltas.

    Raises:
        ModelError: a bad manifest, a member file missing or not the one the manifest records.
        BackgroundError: a member without a usable background.
    """
    name, entries, source = read_manifest(path)
    members = []
    for e in entries:
        model = ExpressionModel.load(e.model_path)
        if e.sha256 and model.sha256 != e.sha256:
            raise ModelError(f"combination member {e.name}: {e.model_path} has sha256 {model.sha256}, but {path} "
                             f"records {e.sha256}: the file was replaced")
        background = e.background or str(default_path(e.model_path))
        members.append(CombinationMember(e.name, model, e.weight, member_sd(background, model, e.name), background))
    return Combination(members, name, path, source)


def holds(spec: WindowSpec, tss: TSS, start: int, end: int) -> bool:
    """Whether the window ``spec`` cuts around ``tss`` overlaps the 0-based half-open span ``[start, end)``
    (the rule of :meth:`varxpress.sequence.gene_index.TSSIndex.overlapping`)."""
    left, right = spec.sides(tss.strand)
    return tss.pos0 - left < end and start < tss.pos0 + right


class CombinedPredictor:
    """The members of a :class:`~varxpress.models.combination.Combination` with their engines and the background
    of combined deltas.

    Args:
        combination: the loaded combination.
        genome: the reference.
        background: a background of combined deltas (``varxpress background`` with the combination), or None.
        fast, batch_size, threads: as for :class:`~varxpress.scoring.engine.Engine`.
    """

    def __init__(self, combination: Combination, genome, background=None, fast: bool = True, batch_size: int = 32,
                 threads: int = 1):
        self.combination = combination
        self.genome = genome
        self.background = background
        self.engines = [Engine(m, genome, fast=fast, batch_size=batch_size, threads=threads)
                        for m in combination.models]
        self._bg_max_n = None if background is None else background.provenance.get("max_n_fraction")

    @property
    def model(self) -> Combination:
        """The combination (window: the union of the members' windows)."""
        return self.combination

    @property
    def members(self) -> list[Any]:
        return self.combination.models

    @property
    def fast(self) -> bool:
        """Whether every member's engine is the incremental one."""
        return all(e.fast for e in self.engines)

    @property
    def genes_predicted(self) -> int:
        """Reference windows predicted, over all members (cache misses)."""
        return sum(e.genes_predicted for e in self.engines)

    def close(self) -> None:
        """Stop the engines' worker processes (idempotent)."""
        for engine in self.engines:
            engine.close()

    def __enter__(self) -> "CombinedPredictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score(self, tasks: Sequence[Task]) -> list[Scored]:
        """Every task's :class:`~varxpress.scoring.engine.Scored`, in the order of ``tasks``; its
        ``member_deltas`` are NaN for members whose window does not hold the variant."""
        return self.submit(tasks).result()

    def submit(self, tasks: Sequence[Task]) -> Pending:
        """Start scoring every task (each member's engine on the tasks its window holds); the
        :class:`~varxpress.scoring.engine.Pending`'s result is :meth:`score`'s."""
        started = []
        for engine in self.engines if tasks else ():
            mine = [i for i, t in enumerate(tasks) if holds(engine.spec, t.tss, t.allele.start, t.allele.end)]
            started.append((mine, engine.submit([tasks[i] for i in mine])))
        return Pending(lambda: self._scored(tasks, [(mine, p.result()) for mine, p in started]))

    def _scored(self, tasks: Sequence[Task], member_preds: list[tuple[list[int], list[Prediction]]]
                ) -> list[Scored]:
        """Each task's :class:`Scored` from each member's predictions of the tasks it holds."""
        if not tasks:
            return []
        n, k = len(tasks), len(self.engines)
        deltas = np.full((n, k), np.nan)
        off = np.zeros(n, dtype=bool)
        n_fraction = np.zeros(n)
        fast = np.ones(n, dtype=bool)
        for j, (mine, preds) in enumerate(member_preds):
            for i, p in zip(mine, preds):
                deltas[i, j] = scores.delta(p.ref_pred, p.alt_pred)
                off[i] |= p.off_contig
                n_fraction[i] = max(n_fraction[i], p.n_fraction)  # the least complete window that was read
                fast[i] &= p.fast
        stats = combination_stats(deltas, self.combination.weights, self.combination.sds)
        pct = self.background.percentile(np.abs(stats.combined)) if self.background is not None else None
        out = []
        for i, task in enumerate(tasks):
            allele, tss = task.allele, task.tss
            p = None if pct is None else float(pct[i])
            score = GeneScore(
                record=task.record, alt_index=allele.alt_index, alt=allele.alt, gene_id=tss.gene_id,
                gene_name=tss.gene_name, strand=tss.strand, tss_pos=tss.pos0 + 1,
                distance=distance_to_tss(allele, tss), ref_pred=None, alt_pred=None,
                delta=float(stats.combined[i]), log2fc=None,
                flags=quality_flags(bool(off[i]), float(n_fraction[i]), p, self._bg_max_n)
                + allele_flags(self.genome, allele, tss), percentile=p,
                n_fraction=float(n_fraction[i]), sign_agreement=float(stats.sign_agreement[i]),
                member_deltas=tuple(None if np.isnan(x) else float(x) for x in deltas[i]),
            )
            out.append(Scored(task, score, tuple(float(x) for x in deltas[i]), bool(fast[i])))
        return out

    # ---- substitutions of one gene's window (background) ---------------------------------------------------------
    def reference(self, tss: TSS) -> tuple[Window, np.ndarray, float]:
        """``(window, one-hot, NaN)``: the union window of a gene; a combination has no reference prediction."""
        window = ref_window(self.genome, tss, self.combination.window_spec)
        return window, one_hot(window.seq), float("nan")

    def substitutions(self, tss: TSS, edits: Sequence[Sequence[Edit]]) -> np.ndarray:
        """Refused: a combination has deltas, not predictions (see :meth:`substitution_deltas`)."""
        raise ModelError(f"{self.combination.name} is a combination of models that read different windows: it "
                         f"gives combined deltas, not predictions; use one of its members "
                         f"({', '.join(self.combination.names)}) for predictions")

    def substitution_deltas(self, tss: TSS, edits: Sequence[Sequence[Edit]]) -> np.ndarray:
        """Combined delta of each edit set of the gene's union window, shape (len(edits),).

        ``edits`` index the union window (:meth:`reference`). A member takes the edits that fall in its own window
        (an edit outside it does not change what it reads); an edit set with none there does not reach it.
        """
        upstream = self.combination.window_spec.upstream
        deltas = np.full((len(edits), len(self.engines)), np.nan)
        for j, engine in enumerate(self.engines):
            shift, length = engine.spec.upstream - upstream, engine.spec.length
            moved = [[(i + shift, b) for i, b in es if 0 <= i + shift < length] for es in edits]
            rows = [r for r, es in enumerate(moved) if es]
            if not rows:
                continue
            ref = engine.gene_ref(tss)
            deltas[rows, j] = scores.delta(ref.pred, engine.predict_edits(ref, [moved[r] for r in rows]))
        return combination_stats(deltas, self.combination.weights, self.combination.sds).combined
