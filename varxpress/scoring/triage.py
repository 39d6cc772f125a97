"""Which records of a chunk ``score`` must classify, and which it only counts.

Most records of a whole genome lie outside every model window. Such a record whose REF is the genome's and whose
alleles are valid would only be marked ``no_gene_in_window``: it is *plain*, counted and written through as read
(docs/output.md, "Records outside every window"). :func:`triage` finds them for a whole chunk at once, with numpy;
every other record goes through the pipeline's classification one by one, which says what is wrong with it.
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable, NamedTuple

import numpy as np

from varxpress.io.refspans import RefSpans
from varxpress.io.variants import SkipReason, check_ref, classify_allele
from varxpress.io.vcflines import Lines

__all__ = ["Columns", "record_columns", "triage"]


class Columns(NamedTuple):
    """What the triage reads of a chunk's records.

    Attributes:
        chroms: CHROM of each record.
        starts: POS - 1 of each record, int64.
        refs: REF of each record.
        alt_text: ``alt_text(k)``: the ALT column of record ``k`` as written (``A,T``; ``.`` for none).
        vouched: for lines, which may be written as read (:attr:`varxpress.io.vcflines.Lines.vouched`); None for
            cyvcf2 records (any may).
    """

    chroms: list[str]
    starts: np.ndarray
    refs: list[str]
    alt_text: Callable[[int], str]
    vouched: np.ndarray | None


def record_columns(chunk: list | Lines) -> Columns:
    """The :class:`Columns` of a chunk of cyvcf2 records or of :class:`~varxpress.io.vcflines.Lines`."""
    if isinstance(chunk, Lines):
        return Columns(chunk.chroms, chunk.starts, chunk.refs, chunk.alts.__getitem__, chunk.vouched)
    starts = np.fromiter((rec.start for rec in chunk), dtype=np.int64, count=len(chunk))
    return Columns([rec.CHROM for rec in chunk], starts, [rec.REF for rec in chunk],
                   lambda k: ",".join(chunk[k].ALT) or ".", None)


@functools.lru_cache(maxsize=1 << 14)
def _plain_alleles(ref: str, alts: str, max_allele_len: int) -> int:
    """The number of ALT alleles of ``alts`` (an ALT column) when each is one ``score`` would score (no skip reason
    of its own), else 0; pure in its arguments, and most records repeat a handful of (REF, ALT) pairs."""
    alleles = alts.split(",")
    if alts == "." or any(isinstance(classify_allele(ref, alt, max_allele_len), SkipReason) for alt in alleles):
        return 0
    return len(alleles)


def triage(genome, index, cols: Columns, max_allele_len: int, classify_all: bool = False
           ) -> tuple[list[int], RefSpans]:
    """Which records of a chunk are *plain*, and the genome under all of them.

    Args:
        genome: the :class:`~varxpress.io.genome.Genome`.
        index: the :class:`~varxpress.io.tss.TSSIndex` of the model windows.
        cols: the chunk's records.
        max_allele_len: longer alleles are not scored (a skip reason of their own).
        classify_all: no record is plain (``--mark-outside-windows``).

    Returns:
        ``(plain, refs)``: ``plain[k]`` is the number of ALT alleles of a record each of which would only be marked
        ``no_gene_in_window`` (its REF span ``[start, start + max(len(REF), 1))`` overlaps no window, lies on a
        contig of the FASTA and within it, its REF is the genome's, its alleles are valid and, for lines, htslib
        would read it as written): such a record is counted and written through; 0 for a record to classify. The
        window union is queried and the REF alleles compared once per contig, vectorised; only the few REF alleles
        that differ from the genome are checked one by one (the rule for ``N`` and lower case is ``check_ref``'s).
        ``refs`` holds the genome under every REF on a known contig, fetched once per cluster of records.
    """
    starts, ref_alleles = cols.starts, cols.refs
    n = len(cols.chroms)
    ends = starts + np.fromiter(map(len, ref_alleles), dtype=np.int64, count=n)
    candidate = np.zeros(n, dtype=bool)  # outside every window, REF as in the genome
    refs = RefSpans(genome)
    runs: dict[str, list[np.ndarray]] = {}
    i = 0
    for chrom, run in itertools.groupby(cols.chroms):  # a sorted VCF: one run per contig
        j = i + sum(1 for _ in run)
        runs.setdefault(chrom, []).append(np.arange(i, j))
        i = j
    for chrom, parts in runs.items():
        name = genome.resolve(chrom)
        if name is None:  # an unknown contig: each record is marked so
            continue
        idx = np.concatenate(parts)
        s, e = starts[idx], ends[idx]
        refs.load(name, s, e)
        if classify_all:
            continue
        # before or past the contig: classified, so warned about one by one
        outside = idx[~index.any_overlapping(chrom, s, np.maximum(e, s + 1)) & (s >= 0) & (e > s)
                      & (e <= genome.length(name))]
        same = refs.matches(name, starts[outside], [ref_alleles[k] for k in outside.tolist()])
        for m in np.flatnonzero(~same).tolist():  # N against a base, lower case, or a true mismatch
            k = int(outside[m])
            same[m] = check_ref(refs, name, int(starts[k]) + 1, ref_alleles[k])
        candidate[outside[same]] = True
    if cols.vouched is not None:
        candidate &= cols.vouched
    plain = [0] * n
    alt_text = cols.alt_text
    for k in np.flatnonzero(candidate).tolist():
        plain[k] = _plain_alleles(ref_alleles[k], alt_text(k), max_allele_len)
    return plain, refs
