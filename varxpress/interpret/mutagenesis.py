"""In-silico saturation mutagenesis: every possible substitution in a stretch of a gene's promoter window.

``varxpress mutagenesis --gene TERT --start -500 --end 100`` scores the three alternative bases at every position
of ``[start, end)`` (offsets from the TSS in the direction of transcription, negative = upstream, 0 = the TSS
base; see docs/windows.md) and writes

* ``PREFIX.tsv``: one row per substitution (gene, 1-based genomic position, offset, REF and ALT on the genome's
  ``+`` strand as a VCF would write them, reference and alternate prediction, ``delta = alt - ref``);
* ``PREFIX.GENE.heatmap.{png,svg,pdf}``: position x base, colour = delta of mutating to that base;
* ``PREFIX.GENE.logo.{png,svg,pdf}``: a sequence logo of the reference bases, letter height = per-position importance
  ``-mean(delta over the three substitutions)`` (a tall letter above the axis: the model needs that base for
  expression; below the axis: the base holds expression down).

Plots read in the direction of transcription (upstream left), bases as the transcript's strand reads them (the
complement of the genome's ``+`` strand for a ``-`` strand gene); the TSS and any ``--vcf`` variants are marked.
Reference ``N`` positions have no substitutions (no TSV rows, blank plot columns).

Predictions come from the engine every subcommand shares (:class:`varxpress.scoring.engine.Predictor`: the incremental
engine where the network allows it, else batched full predictions; an ensemble's members averaged), so a substitution
scanned here has the reference prediction and delta ``varxpress score`` gives the same variant. The figures are drawn
by :mod:`varxpress.interpret.figures`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from varxpress.errors import AnnotationError, VarxpressError
from varxpress.io.outputs import open_output
from varxpress.io.tss import TSS
from varxpress.sequence.gene_index import TSSIndex
from varxpress.io.variants import record_pos
from varxpress.io.vcf import open_vcf
from varxpress.scoring import scores
from varxpress.scoring.engine import Predictor
from varxpress.sequence.encode import ALPHABET, reverse_complement
from varxpress.sequence.windows import Window, ref_window, tss_offset, window_index

log = logging.getLogger(__name__)

__all__ = ["MutagenesisError", "MutagenesisResult", "DEFAULT_RANGE", "saturation_mutagenesis", "scan_positions",
           "real_offsets", "find_gene", "vcf_marks", "write_tsv", "TSV_COLUMNS"]

TSV_COLUMNS = ("gene_id", "gene_name", "strand", "chrom", "pos", "offset", "ref", "alt", "ref_pred", "alt_pred",
               "delta")


class MutagenesisError(VarxpressError, ValueError):
    """A mutagenesis request that cannot be met (range outside the window, unknown gene)."""


# ---------------------------------------------------------------------------------------------------------------------
# the scan


@dataclass
class MutagenesisResult:
    """Every substitution at ``m`` positions of one gene's window.

    Attributes:
        tss: the gene's TSS record.
        window: its reference window (genomic coordinates, oriented sequence).
        offsets: shape (m,), signed offset of each position from the TSS in transcription direction (ascending).
        positions: shape (m,), 0-based genomic coordinate of each position.
        indices: shape (m,), index of each position in the oriented window.
        ref_bases: the m reference bases as the transcript's strand reads them.
        ref_pred: the reference prediction.
        alt_preds: shape (m, 4), prediction with the position mutated to A, C, G, T (transcript strand); NaN at the
            reference base and at ``N`` positions.
    """

    tss: Any
    window: Window
    offsets: np.ndarray
    positions: np.ndarray
    indices: np.ndarray
    ref_bases: str
    ref_pred: float
    alt_preds: np.ndarray

    @property
    def deltas(self) -> np.ndarray:
        """``alt - ref``, shape (m, 4) (NaN at the reference base and at ``N`` positions)."""
        return scores.delta(self.ref_pred, self.alt_preds)

    def importance(self) -> np.ndarray:
        """Per-position importance, shape (m,): ``-mean`` of the three substitutions' deltas (NaN at ``N``)."""
        d = self.deltas
        valid = ~np.isnan(d)
        total = np.where(valid, d, 0.0).sum(axis=1)
        count = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, -total / np.maximum(count, 1), np.nan)

    def rows(self) -> list[tuple]:
        """TSV rows (see :data:`TSV_COLUMNS`): genomic ``+`` strand REF/ALT, 1-based ``pos``, genomic order."""
        out = []
        minus = self.window.strand == "-"
        order = np.argsort(self.positions, kind="stable")
        for k in order:
            for b, base in enumerate(ALPHABET):
                alt = self.alt_preds[k, b]
                if np.isnan(alt):
                    continue
                ref_g = reverse_complement(self.ref_bases[k]) if minus else self.ref_bases[k]
                alt_g = reverse_complement(base) if minus else base
                out.append((self.tss.gene_id, self.tss.gene_name, self.tss.strand, self.window.chrom,
                            int(self.positions[k]) + 1, int(self.offsets[k]), ref_g, alt_g, self.ref_pred,
                            float(alt), float(alt - self.ref_pred)))
        return out


DEFAULT_RANGE = (-500, 100)  #: default offsets of ``--gene`` scans (half-open), before trimming N


def real_offsets(genome, tss, spec, offsets: np.ndarray) -> np.ndarray:
    """``offsets`` (ascending) trimmed to the first..last that is not ``N`` in the gene's reference window.

    A window of the example genome is mostly ``N`` around a few hundred real bases: a scan of the default range
    then covers that real stretch rather than a strip of blank columns. All ``N``: returned unchanged.
    """
    window = ref_window(genome, tss, spec)
    pos0 = tss.pos0 + offsets if tss.strand == "+" else tss.pos0 - offsets
    inside = (pos0 >= window.start) & (pos0 < window.end)
    real = np.zeros(len(offsets), dtype=bool)
    idx = window_index(window, pos0[inside])
    real[np.flatnonzero(inside)] = [window.seq[i] in "ACGT" for i in idx]
    if not real.any():
        return offsets
    k = np.flatnonzero(real)
    return offsets[k[0]:k[-1] + 1]


def saturation_mutagenesis(predictor: Predictor, tss: TSS, positions: Sequence[int] | np.ndarray) -> MutagenesisResult:
    """Score every substitution at the given genomic positions of one gene's window.

    Args:
        predictor: the :class:`~varxpress.scoring.engine.Predictor` (model or ensemble, genome, gene features):
            the same predictions as ``varxpress score`` makes.
        tss: the gene's :class:`~varxpress.io.tss.TSS`.
        positions: 0-based genomic coordinates, all inside the gene's window.

    Raises:
        MutagenesisError: a position lies outside the window.
    """
    window, onehot, ref_pred = predictor.reference(tss)
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    if pos.size and (pos.min() < window.start or pos.max() >= window.end):
        raise MutagenesisError(f"positions {pos.min() + 1}-{pos.max() + 1} reach outside gene {tss.gene_id}'s window "
                               f"{window.chrom}:{window.start + 1}-{window.end}")
    offsets = tss_offset(tss, pos)
    order = np.argsort(offsets, kind="stable")
    pos, offsets = pos[order], offsets[order]
    idx = window_index(window, pos)
    ref_bases = "".join(window.seq[i] for i in idx)
    edits, cells = [], []
    for k, i in enumerate(idx):
        rb = ALPHABET.find(ref_bases[k])
        if rb < 0:
            continue  # N: no substitution defined
        for b in range(4):
            if b != rb:
                edits.append([(int(i), b)])
                cells.append((k, b))
    alt = np.full((pos.size, 4), np.nan)
    if edits:
        preds = predictor.substitutions(tss, edits)
        ks, bs = np.array(cells).T
        alt[ks, bs] = preds
    return MutagenesisResult(tss, window, offsets, pos, idx, ref_bases, ref_pred, alt)


def find_gene(tss_list: list, name: str):
    """The TSS of a gene by exact gene id, else by gene name (case-insensitive).

    Raises:
        AnnotationError: no such gene, or a name shared by several gene ids.
    """
    for t in tss_list:
        if t.gene_id == name:
            return t
    hits = [t for t in tss_list if t.gene_name.upper() == name.upper()]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise AnnotationError(f"gene name {name!r} names {len(hits)} genes ({', '.join(t.gene_id for t in hits)}); "
                              f"give the gene id")
    raise AnnotationError(f"gene {name!r} is not in the TSS set (neither a gene id nor a gene name)")


def vcf_marks(vcf_path: str | None, genome, chrom: str, start: int, end: int) -> list[tuple[int, str, str, str]]:
    """Variants of a VCF whose REF span overlaps 0-based ``[start, end)`` of ``chrom``: ``(start0, label, ref, alt)``."""
    if not vcf_path:
        return []
    marks = []
    for rec in open_vcf(vcf_path):
        if genome.resolve(rec.CHROM) != chrom:
            continue
        s = record_pos(rec) - 1
        if s < end and s + len(rec.REF) > start:
            label = rec.ID or f"{rec.CHROM}:{s + 1}"
            marks.append((s, label, rec.REF.upper(), ",".join(rec.ALT).upper()))
    return marks


def scan_positions(tss_list: list[TSS], index: TSSIndex, genome, spec, gene: str | None = None,
                   region: tuple[str, int, int] | None = None, start: int | None = None,
                   end: int | None = None) -> list[tuple[TSS, np.ndarray]]:
    """What ``varxpress mutagenesis`` scans: ``(gene, 0-based genomic positions)`` pairs.

    With ``gene``: offsets ``[start, end)`` from its TSS (default :data:`DEFAULT_RANGE` within the window, trimmed
    to the part that is not ``N``). With ``region`` (``(chrom, start0, end)``): every gene whose window overlaps
    it, over the overlap.

    Raises:
        MutagenesisError: an empty or out-of-window range, an unknown contig, or no gene's window in the region.
        AnnotationError: an unknown or ambiguous gene.
    """
    up, down = spec.upstream, spec.downstream
    if gene:
        tss = find_gene(tss_list, gene)
        lo = max(DEFAULT_RANGE[0], -up) if start is None else start  # the defaults stay in the window
        hi = min(DEFAULT_RANGE[1], down) if end is None else end
        if hi <= lo:
            raise MutagenesisError(f"--start {lo} --end {hi}: need start < end (offsets, half-open)")
        if lo < -up or hi > down:
            raise MutagenesisError(f"--start {lo} --end {hi} reach outside the model window [-{up}, {down}) around "
                                   f"the TSS")
        offs = np.arange(lo, hi)
        if start is None and end is None:
            offs = real_offsets(genome, tss, spec, offs)
        return [(tss, tss.pos0 + offs if tss.strand == "+" else tss.pos0 - offs)]
    chrom, r0, r1 = region
    name = genome.resolve(chrom)
    if name is None:
        raise MutagenesisError(f"contig {chrom!r} of --region is not in {genome.path}")
    jobs = []
    for tss in index.overlapping(name, r0, r1):
        w0, w1 = index.window(tss)
        jobs.append((tss, np.arange(max(r0, w0), min(r1, w1))))
    if not jobs:
        raise MutagenesisError(f"no gene's window overlaps {chrom}:{r0 + 1}-{r1}")
    return jobs


def write_tsv(results: list[MutagenesisResult], path: str | os.PathLike, provenance: Sequence[str] = ()) -> None:
    """Write the substitutions of ``results`` as TSV (``## `` provenance lines, header, rows), atomically."""
    with open_output(path) as fh:
        for line in provenance:
            fh.write(f"## {line}\n")
        fh.write("\t".join(TSV_COLUMNS) + "\n")
        for res in results:
            for row in res.rows():
                fh.write("\t".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in row) + "\n")
