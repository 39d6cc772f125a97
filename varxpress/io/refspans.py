"""REF checks of many records against a few fetched stretches of the genome.

:func:`varxpress.io.variants.check_ref` fetches the genome under each record's REF; a chunk of a sorted VCF asks
for thousands of nearby spans. :class:`RefSpans` fetches each cluster of spans (spans less than ``gap`` bases
apart) once and serves the records' REF bases from it. It stands in for the :class:`~varxpress.io.genome.Genome`
that ``check_ref`` reads (``length``, ``fetch``), so the rule of that function (case, ``N``, the contig end) stays in
one place.

From a plain FASTA a cluster is read as the file stores it (:meth:`Genome.read_raw`: line ends, lower case) and
only the bases compared are located in it (:meth:`Genome.layout`); a bgzip FASTA is fetched through pysam. At one
record per ~620 bases the REF bases are a few thousandths of a cluster: reading the bytes, rather than having pysam
strip and copy the whole stretch and upper-casing it, took the loading and comparison of a 2,000-record chunk from
about 6 ms to 1.5 (docs/performance.md).

Coordinates: 0-based half-open ``[start, end)``, as :meth:`Genome.fetch`.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from varxpress.io.genome import Genome

__all__ = ["RefSpans"]

#: spans closer than this share one fetch (bases); a genome-shaped VCF has one record per few hundred bases
GAP = 1 << 16

#: byte -> the byte upper-cased (ASCII letters; anything else as it is)
_UPPER = np.frombuffer(bytes(range(256)).upper(), dtype=np.uint8)


class RefSpans:
    """The genome over the spans a chunk of records will ask for, fetched once per cluster of spans.

    Args:
        genome: the reference.
        gap: spans less than ``gap`` bases apart are fetched together.
    """

    def __init__(self, genome: Genome, gap: int = GAP) -> None:
        self.genome = genome
        self.gap = gap
        self._spans: dict[str, tuple[list[int], list[int], list]] = {}  # per contig: starts, ends, stretches
        self._bases: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # see _bases_of
        self._layouts: dict[str, tuple[int, int, int] | None] = {}  # per contig: Genome.layout (None: as text)

    def load(self, chrom: str, starts: np.ndarray, ends: np.ndarray) -> None:
        """Fetch the stretches of ``chrom`` (a FASTA name or alias) that cover ``[starts[i], ends[i])``, clipped
        to the contig; replaces what was loaded for ``chrom``.

        Args:
            starts, ends: int arrays of shape (n,), any order.
        """
        length = self.genome.length(chrom)
        starts = np.clip(np.asarray(starts, dtype=np.int64), 0, length)
        ends = np.clip(np.asarray(ends, dtype=np.int64), 0, length)
        self._spans.pop(chrom, None)
        self._bases.pop(chrom, None)
        if not starts.size:
            return
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], np.maximum.accumulate(ends[order])  # ends[k]: furthest end so far
        cut = np.flatnonzero(starts[1:] > ends[:-1] + self.gap) + 1  # a cluster starts after each big gap
        lo = starts[np.concatenate(([0], cut))].tolist()
        hi = ends[np.concatenate((cut - 1, [starts.size - 1]))].tolist()
        layout = self._layouts[chrom] = self.genome.layout(chrom)
        if layout is None:
            self._spans[chrom] = (lo, hi, [self.genome.fetch(chrom, a, b) for a, b in zip(lo, hi)])
        else:  # the stored bytes from base a to base b - 1
            first = [self._byte(layout, a) for a in lo]
            self._spans[chrom] = (lo, hi, [self.genome.read_raw(layout[0] + f, self._byte(layout, b - 1) + 1 - f)
                                           if a < b else b"" for a, b, f in zip(lo, hi, first)])

    @staticmethod
    def _byte(layout: tuple[int, int, int], base: np.ndarray | int) -> np.ndarray | int:
        """Where base(s) of a contig lie in its plain FASTA, from the contig's first base."""
        _, bases, width = layout
        return (base // bases) * width + base % bases

    def matches(self, chrom: str, starts: np.ndarray, alleles: list[str]) -> np.ndarray:
        """Whether each allele, upper-cased, is exactly the genome from ``starts[i]`` on, all compared in one
        vectorised step (a VCF chunk's REF alleles); shape (n,) bool.

        False means only "not identical": an allele outside what :meth:`load` fetched, empty, or differing in some
        base (``N``, a non-ASCII character); the rules for those are ``check_ref``'s, to be asked one by one.
        """
        n = len(alleles)
        loaded = self._spans.get(chrom)
        if loaded is None or n == 0:
            return np.zeros(n, dtype=bool)
        lo = np.asarray(loaded[0], dtype=np.int64)
        hi = np.asarray(loaded[1], dtype=np.int64)
        bases, offset = self._bases_of(chrom)
        starts = np.asarray(starts, dtype=np.int64)
        lens = np.fromiter(map(len, alleles), dtype=np.int64, count=n)
        span = np.maximum(np.searchsorted(lo, starts, side="right") - 1, 0)  # the loaded stretch of each start
        inside = (lens > 0) & (starts >= lo[span]) & (starts + lens <= hi[span])
        text = np.frombuffer("".join(alleles).encode("ascii", "replace").upper(), dtype=np.uint8)  # 1 byte/char
        first = np.cumsum(lens) - lens  # where each allele starts in ``text``
        layout = self._layouts.get(chrom)
        if layout is None:  # the loaded text: the genome bases of a stretch follow each other
            source = np.where(inside, offset[span] + starts - lo[span], 0)  # where its bases start in ``bases``
            where = np.repeat(source - first, lens) + np.arange(text.size)
        else:  # the stored bytes: each base located past the line ends
            base = np.repeat(np.where(inside, starts, lo[span]) - first, lens) + np.arange(text.size)
            owner = np.repeat(span, lens)
            where = offset[owner] + self._byte(layout, base) - self._byte(layout, lo[owner])
        differ = _UPPER[bases[np.clip(where, 0, bases.size - 1)]] != text
        counts = np.concatenate(([0], np.cumsum(differ)))
        return inside & (counts[first + lens] == counts[first])

    def _bases_of(self, chrom: str) -> tuple[np.ndarray, np.ndarray]:
        """The loaded stretches of ``chrom`` end to end as bytes (uint8), and where each starts in them."""
        got = self._bases.get(chrom)
        if got is None:
            seqs = self._spans[chrom][2]
            offset = np.cumsum([0] + [len(q) for q in seqs[:-1]]).astype(np.int64)
            joined = b"".join(seqs) if self._layouts.get(chrom) else "".join(seqs).encode("ascii", "replace")
            got = self._bases[chrom] = (np.frombuffer(joined, dtype=np.uint8), offset)
        return got

    def length(self, chrom: str) -> int:
        """Length of a contig (as :meth:`Genome.length`)."""
        return self.genome.length(chrom)

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Uppercase sequence over ``[start, end)``, from a loaded stretch when one holds it, else from the genome
        (as :meth:`Genome.fetch`)."""
        loaded = self._spans.get(chrom)
        if loaded is not None:
            lo, hi, seqs = loaded
            i = bisect_right(lo, start) - 1  # one call per record: plain lists beat numpy here
            if i >= 0 and start <= end <= hi[i]:
                layout = self._layouts.get(chrom)
                if layout is None:
                    return seqs[i][start - lo[i]:end - lo[i]]
                if start == end:
                    return ""
                skip = self._byte(layout, lo[i])
                raw = seqs[i][self._byte(layout, start) - skip:self._byte(layout, end - 1) - skip + 1]
                return raw.replace(b"\n", b"").replace(b"\r", b"").decode("ascii", "replace").upper()
        return self.genome.fetch(chrom, start, end)
