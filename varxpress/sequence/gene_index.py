"""Which genes' windows hold a position: an interval index of the model windows around every TSS.

This is the step ``variants -> (variant, TSS) pairs`` of the flow: ``score``, ``explain`` and ``mutagenesis
--region`` ask :meth:`TSSIndex.overlapping` for the genes whose window ``[t - U, t + D)`` (strand-aware, see
:mod:`varxpress.sequence.windows`) overlaps a REF span.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from varxpress.errors import AnnotationError
from varxpress.io.tss import TSS

if TYPE_CHECKING:
    from varxpress.io.genome import Genome

log = logging.getLogger(__name__)

__all__ = ["TSSIndex", "canonical_contig"]


def canonical_contig(chrom: str) -> str:
    """Spelling-independent contig key: a ``chr`` prefix dropped in any case, ``M`` -> ``MT`` (``chr1``, ``1`` ->
    ``1``; ``chrM``, ``ChrMT`` -> ``MT``; ``ChrIV`` -> ``IV``). The rest keeps its case."""
    if len(chrom) > 3 and chrom[:3].lower() == "chr":
        chrom = chrom[3:]
    return "MT" if chrom == "M" else chrom


class TSSIndex:
    """Gene windows around each TSS, searchable by genomic interval.

    Args:
        tss: the TSSs (gene ids must be unique).
        upstream: bases upstream of the TSS in the window (``U``).
        downstream: bases downstream, TSS included (``D``).
        genome: if given, contig names are resolved through it (``1`` in the annotation matches ``chr1`` in the
            FASTA and VCF); otherwise names are matched up to the ``chr`` prefix and ``chrM``/``MT``.

    Queries (:meth:`overlapping`) bisect a per-contig list of window starts; every window has length ``U + D``,
    so a query costs ``O(log n + k)``.
    """

    def __init__(self, tss: list[TSS], upstream: int, downstream: int, genome: Genome | None = None) -> None:
        if upstream < 0 or downstream < 0 or upstream + downstream <= 0:
            raise ValueError(f"upstream={upstream}, downstream={downstream}: need non-negative values, not both 0")
        self.upstream = upstream
        self.downstream = downstream
        self.genome = genome
        self._keys: dict[str, str] = {}
        self._by_gene: dict[str, TSS] = {}
        grouped: dict[str, list[tuple[int, TSS]]] = {}
        unknown = 0
        absent: dict[str, None] = {}  # contigs, in order of first use
        for t in tss:
            if t.gene_id in self._by_gene:
                raise AnnotationError(f"gene {t.gene_id!r} appears twice in the TSS list")
            self._by_gene[t.gene_id] = t
            if genome is not None and genome.resolve(t.chrom) is None:
                unknown += 1
                absent[t.chrom] = None
            grouped.setdefault(self._key(t.chrom), []).append((self.window(t)[0], t))
        if unknown:
            names = ", ".join(list(absent)[:3]) + (", ..." if len(absent) > 3 else "")
            most = ("; that is most of the set: is the FASTA the genome (build) the TSS set and the model were made "
                    "for?" if 2 * unknown > len(tss) else "")
            log.warning("%d of %d TSSs lie on contigs absent from the genome (%s); their genes cannot be scored%s",
                        unknown, len(tss), names, most)
        self._starts: dict[str, list[int]] = {}
        self._tss: dict[str, list[TSS]] = {}
        for key, items in grouped.items():
            items.sort(key=lambda item: (item[0], item[1].gene_id))
            self._starts[key] = [start for start, _ in items]
            self._tss[key] = [t for _, t in items]
        self.width = upstream + downstream
        self._unions: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _key(self, chrom: str) -> str:
        try:
            return self._keys[chrom]
        except KeyError:
            pass
        name = self.genome.resolve(chrom) if self.genome is not None else None
        key = canonical_contig(name if name is not None else chrom)
        self._keys[chrom] = key
        return key

    def window(self, tss: TSS) -> tuple[int, int]:
        """Genomic window ``(start, end)``, 0-based half-open, of a gene (may reach below 0 or past the contig)."""
        if tss.strand == "+":
            return tss.pos0 - self.upstream, tss.pos0 + self.downstream
        return tss.pos0 - self.downstream, tss.pos0 + self.upstream

    def overlapping(self, chrom: str, start: int, end: int) -> list[TSS]:
        """Genes whose window overlaps 0-based half-open ``[start, end)``, sorted by ``(pos0, gene_id)``.

        ``chrom`` may be any alias of the annotation's contig name. An empty interval (``end <= start``) overlaps
        nothing. Pass an allele's REF span (:attr:`Allele.start`, :attr:`Allele.end`) to get every gene
        whose alternate window can differ from its reference window (a window clear of the REF span is unchanged).
        """
        key = self._keys.get(chrom)
        if key is None:
            key = self._key(chrom)
        starts = self._starts.get(key)
        if starts is None or end <= start:
            return []
        lo = bisect_right(starts, start - self.width)  # window end = window start + width > start
        hi = bisect_left(starts, end)  # window start < end
        if hi <= lo:
            return []
        found = self._tss[key][lo:hi]
        if len(found) > 1:
            found.sort(key=lambda t: (t.pos0, t.gene_id))
        return found

    def any_overlapping(self, chrom: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Whether some gene's window overlaps each 0-based half-open ``[starts[i], ends[i])``: the vectorised
        ``bool(overlapping(chrom, start, end))`` for many intervals of one contig (empty intervals overlap nothing).

        Args:
            chrom: any alias of the annotation's contig name.
            starts, ends: int arrays of shape (n,).

        Returns:
            bool array, shape (n,).
        """
        union = self._union(self._keys.get(chrom) or self._key(chrom))
        starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
        if union is None:
            return np.zeros(starts.shape, dtype=bool)
        lo, hi = union
        i = np.searchsorted(hi, starts, side="right")  # first merged window ending after the interval's start
        found = i < hi.size
        found[found] = lo[i[found]] < ends[found]
        return found & (ends > starts)

    def _union(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The windows of one contig merged where they overlap or touch: sorted (starts, ends), disjoint."""
        if key not in self._unions:
            starts = self._starts.get(key)
            if not starts:
                return None
            lo = np.asarray(starts, dtype=np.int64)  # sorted; every window has length `width`
            gap = lo[1:] > lo[:-1] + self.width  # a gap between window k and k + 1
            keep = np.concatenate(([True], gap))
            self._unions[key] = (lo[keep], np.concatenate((lo[:-1][gap], lo[-1:])) + self.width)
        return self._unions[key]

    def get(self, gene_id: str) -> TSS | None:
        """The TSS of a gene id, or ``None``."""
        return self._by_gene.get(gene_id)

    def __len__(self) -> int:
        return len(self._by_gene)

    def __iter__(self) -> Iterator[TSS]:
        return iter(self._by_gene.values())
