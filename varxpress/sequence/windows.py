"""Reference and alternate sequence windows around a gene's TSS.

Coordinates: ``t`` is the 0-based TSS base (:attr:`TSS.pos0`); alleles carry a 0-based half-open REF span
``[s, e)``; windows are 0-based half-open genomic intervals.

Reference window, upstream ``U`` / downstream ``D`` (:class:`WindowSpec`):

* plus strand: ``[t-U, t+D)``, TSS at window index ``U``;
* minus strand: ``[t-D, t+U)``, then reverse-complemented (the mirror used by the published Kipoi/Xpresso windows).

In general the window is ``L`` bases left of ``t`` plus ``R`` bases from ``t`` (``t`` included), ``L, R = U, D``
on ``+`` and ``D, U`` on ``-``.

Alternate window: the allele is applied to the contig (the alternate haplotype ``hap = ref[:s] + alt + ref[e:]``)
and the window is cut around the TSS's new place ``t'``, so it always has length ``L + R`` and an indel upstream
shifts upstream sequence, never the TSS:

* REF span entirely left of ``t`` (``e <= t``): ``t' = t + len(alt) - len(ref)``;
* REF span entirely right of ``t`` (``s > t``): ``t' = t``;
* **REF span containing the TSS base** (``s <= t < e``): ``t' = s + min(t - s, len(alt) - 1)``. The TSS keeps its
  offset into the allele while the ALT is long enough, else it moves to the last ALT base. So an SNV/MNV at
  ``t`` keeps ``t' = t``; an insertion anchored at ``t`` (``REF = ref[t]``) keeps ``t`` and puts the inserted bases
  right of it (downstream on ``+``, upstream on ``-``); a deletion removing ``t`` anchors the TSS on the deletion's
  last kept base (the VCF anchor base of a plain deletion).

Then ``alt window = hap[t'-L, t'+R)``, reverse-complemented on ``-``.

Contig edges: positions outside the contig (or the alternate haplotype) are ``N`` and the window is flagged
``off_contig=True``; it is never dropped here.

Window quality: :attr:`Window.n_fraction` is the fraction of ``N`` (unknown) bases the model reads, padding included.
Reported for the reference window as ``NFrac``; above :data:`N_RICH_FRACTION` a score is flagged ``n_rich``
(:func:`varxpress.scoring.scores.quality_flags`).

Distance (:func:`distance_to_tss`): signed, in the direction of transcription, positive = downstream of the TSS:
``s - t`` on ``+`` and ``t - (e - 1)`` on ``-`` (the REF base that comes first in transcription direction).
:func:`tss_offset` gives the same for single genomic positions.

Window indices (:func:`window_index`): a 0-based genomic position ``p`` of a window ``[a, b)`` is at index ``p - a``
on ``+`` and ``b - 1 - p`` on ``-`` (the window is read in transcription direction). :func:`substitution_edits`
turns an SNV/MNV into the ``(index, base)`` edits of the window the incremental engine applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from varxpress.sequence.encode import reverse_complement

if TYPE_CHECKING:
    from varxpress.io.genome import Genome
    from varxpress.io.tss import TSS
    from varxpress.io.variants import Allele

__all__ = ["N_RICH_FRACTION", "WindowSpec", "Window", "ref_window", "alt_window", "alt_tss", "distance_to_tss",
           "tss_offset", "window_index", "substitution_edits"]

#: A window with more than this fraction of ``N`` is flagged ``n_rich``: 5 %, the default ``--max-n-fraction`` of
#: ``varxpress background`` (the bundled background leaves such windows out), so a window above it is one the
#: model's background holds nothing like, and 5 % of a 10.5 kb Xpresso window is ~500 bp, the size of a core promoter.
N_RICH_FRACTION = 0.05


@dataclass(frozen=True)
class WindowSpec:
    """Window size around the TSS: ``upstream`` bases before it, ``downstream`` bases from it (TSS included)."""

    upstream: int
    downstream: int

    def __post_init__(self) -> None:
        if self.upstream < 0 or self.downstream < 0 or self.upstream + self.downstream <= 0:
            raise ValueError(
                f"WindowSpec(upstream={self.upstream}, downstream={self.downstream}): "
                "need non-negative sizes, not both 0"
            )

    @property
    def length(self) -> int:
        """Window length ``upstream + downstream``."""
        return self.upstream + self.downstream

    def sides(self, strand: str) -> tuple[int, int]:
        """``(L, R)``: bases left of the TSS and from the TSS rightwards, in genomic orientation."""
        if strand == "+":
            return self.upstream, self.downstream
        if strand == "-":
            return self.downstream, self.upstream
        raise ValueError(f"strand {strand!r} is not '+' or '-'")


@dataclass(frozen=True)
class Window:
    """A model-ready sequence window.

    Attributes:
        seq: the sequence in transcription direction (reverse-complemented on ``-``), length ``spec.length``.
        chrom: the FASTA contig name.
        start, end: 0-based half-open genomic window of the *reference* (the same for a gene's ref and alt windows).
        strand: the gene's strand.
        off_contig: some positions lay outside the contig (or alternate haplotype) and are ``N``.
    """

    seq: str
    chrom: str
    start: int
    end: int
    strand: str
    off_contig: bool

    @property
    def n_fraction(self) -> float:
        """Fraction of the window's bases that are ``N`` (unknown sequence or off-contig padding), 0..1."""
        return (self.seq.count("N") + self.seq.count("n")) / len(self.seq) if self.seq else 0.0


def ref_window(genome: Genome, tss: TSS, spec: WindowSpec) -> Window:
    """Reference window of a gene (see the module docstring)."""
    left, right = spec.sides(tss.strand)
    chrom = genome.resolve(tss.chrom) or tss.chrom  # fetch raises UnknownContigError on an unknown name
    start, end = tss.pos0 - left, tss.pos0 + right
    seq = genome.fetch(chrom, start, end)
    off = start < 0 or end > genome.length(chrom)
    if tss.strand == "-":
        seq = reverse_complement(seq)
    return Window(seq, chrom, start, end, tss.strand, off)


def alt_tss(tss_pos0: int, start: int, end: int, alt_len: int) -> int:
    """Where the TSS base ``t`` lands on the alternate haplotype of an allele with REF span ``[start, end)``."""
    if end <= tss_pos0:
        return tss_pos0 + alt_len - (end - start)
    if start > tss_pos0:
        return tss_pos0
    return start + min(tss_pos0 - start, alt_len - 1)


def alt_window(genome: Genome, tss: TSS, spec: WindowSpec, allele: Allele) -> Window:
    """Alternate window of a gene carrying ``allele`` (see the module docstring for the anchoring rule).

    Raises:
        ValueError: the allele and the TSS are on different contigs, or the ALT allele is empty.
        UnknownContigError: the contig is not in the genome.
    """
    left, right = spec.sides(tss.strand)
    chrom = genome.resolve(tss.chrom) or tss.chrom
    if genome.resolve(allele.chrom) != genome.resolve(tss.chrom):
        raise ValueError(f"allele on {allele.chrom!r} cannot change gene {tss.gene_id} on {tss.chrom!r}")
    if not allele.alt:
        raise ValueError(f"allele {allele.chrom}:{allele.pos} has an empty ALT")
    allele = allele.minimal()  # shared bases trimmed: one haplotype, one window, however the VCF pads it
    alt = allele.alt.upper()
    size = genome.length(chrom)
    s, e = allele.start, allele.end
    delta = len(alt) - (e - s)
    t_alt = alt_tss(tss.pos0, s, e, len(alt))
    a, b = t_alt - left, t_alt + right  # window on the alternate haplotype
    alt_end = s + len(alt)  # end of the ALT bases on the haplotype
    parts = []
    if a < s:  # haplotype == reference left of the allele
        parts.append(genome.fetch(chrom, a, min(b, s)))
    lo, hi = max(a, s), min(b, alt_end)
    if lo < hi:
        parts.append(alt[lo - s : hi - s])
    if b > alt_end:  # haplotype position p is reference position p - delta right of the allele
        parts.append(genome.fetch(chrom, max(a, alt_end) - delta, b - delta))
    seq = "".join(parts)
    off = a < 0 or b > size + delta
    if tss.strand == "-":
        seq = reverse_complement(seq)
    ref_start, ref_end = tss.pos0 - left, tss.pos0 + right
    return Window(seq, chrom, ref_start, ref_end, tss.strand, off)


def distance_to_tss(allele: Allele, tss: TSS) -> int:
    """Signed distance of the allele from the TSS in transcription direction; positive = downstream.

    ``allele.start - t`` on ``+``; ``t - (allele.end - 1)`` on ``-``, of the allele with the bases REF and ALT share
    trimmed (:meth:`~varxpress.io.variants.Allele.minimal`).
    """
    allele = allele.minimal()
    if tss.strand == "+":
        return allele.start - tss.pos0
    return tss.pos0 - (allele.end - 1)


def tss_offset(tss: TSS, pos0: np.ndarray) -> np.ndarray:
    """Signed offset from the TSS in transcription direction of 0-based genomic positions (negative = upstream)."""
    pos0 = np.asarray(pos0, dtype=np.int64)
    return pos0 - tss.pos0 if tss.strand == "+" else tss.pos0 - pos0


def window_index(window: Window, pos0: np.ndarray) -> np.ndarray:
    """Index in the oriented window of 0-based genomic positions (``pos0 - start`` on ``+``, ``end-1-pos0`` on ``-``)."""
    pos0 = np.asarray(pos0, dtype=np.int64)
    return pos0 - window.start if window.strand == "+" else window.end - 1 - pos0


_BASE_INDEX = {"A": 0, "C": 1, "G": 2, "T": 3}
_COMPLEMENT_INDEX = {"A": 3, "C": 2, "G": 1, "T": 0}


def substitution_edits(allele: Allele, window: Window) -> list[tuple[int, int]]:
    """The ``(window index, base index)`` edits an SNV/MNV makes to a reference window, in the window's orientation.

    Base indices are 0-3 for A, C, G, T as the window reads them (complemented on ``-``) and -1 for ``N``; bases
    where ALT equals REF and bases outside the window give no edit.
    """
    edits = []
    table = _BASE_INDEX if window.strand == "+" else _COMPLEMENT_INDEX
    for offset, (r, a) in enumerate(zip(allele.ref.upper(), allele.alt.upper())):
        p = allele.start + offset
        if r == a or not window.start <= p < window.end:
            continue
        index = p - window.start if window.strand == "+" else window.end - 1 - p
        edits.append((index, table.get(a, -1)))
    return edits
