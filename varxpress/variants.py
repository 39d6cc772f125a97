"""Pure pieces for turning VCF records into scoreable alleles (the cyvcf2 streaming lives in ``pipeline.py``).

Coordinates: ``pos`` is the 1-based VCF position; :attr:`Allele.start`/:attr:`Allele.end` are the 0-based
half-open span of the REF allele.

Allele classes (:func:`classify_allele`), decided on the alleles as written (nothing is trimmed):

* ``SNV``: REF and ALT one base each; ``MNV``: same length > 1 (``AC>AT`` stays an MNV unless you
  :func:`trim_allele` first);
* ``INS``: REF one base, ALT longer; ``DEL``: ALT one base, REF longer;
* ``COMPLEX``: REF and ALT both longer than one base and of different lengths.

Alleles that cannot be scored get a :class:`SkipReason` instead (symbolic ``<DEL>``, breakends, ``*``, missing
``.``, longer than ``max_allele_len``, bases other than ``ACGTN``, or ALT equal to REF: ``INVALID_ALLELE``).

REF check (:func:`check_ref`): case-insensitive; an ``N`` in either the REF allele or the genome matches any
base (an unknown base is not evidence of a mismatch); a REF running past the contig end never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .genome import Genome

__all__ = [
    "AlleleKind",
    "SkipReason",
    "Allele",
    "classify_allele",
    "iter_alleles",
    "trim_allele",
    "check_ref",
]


class AlleleKind(str, Enum):
    """What kind of change an ALT allele makes (see the module docstring)."""

    SNV = "SNV"
    MNV = "MNV"
    INS = "INS"
    DEL = "DEL"
    COMPLEX = "COMPLEX"


class SkipReason(str, Enum):
    """Why an allele (or a record) was not scored; the value is the name used in reports."""

    SYMBOLIC = "symbolic_allele"
    BREAKEND = "breakend"
    SPANNING_DELETION = "spanning_deletion"
    MISSING_ALT = "missing_alt"
    TOO_LONG = "allele_too_long"
    UNKNOWN_CONTIG = "unknown_contig"
    REF_MISMATCH = "ref_mismatch"
    INVALID_ALLELE = "invalid_allele"
    NO_GENE = "no_gene_in_range"  # informational: the allele is valid but no gene window overlaps it


@dataclass(frozen=True)
class Allele:
    """One ALT allele of a VCF record.

    Attributes:
        chrom: contig name as written in the VCF.
        pos: 1-based VCF position of the first REF base.
        ref: REF allele (uppercase as given by the caller).
        alt: this ALT allele.
        alt_index: 0-based index of ``alt`` among the record's ALTs.
        kind: the :class:`AlleleKind`.
    """

    chrom: str
    pos: int
    ref: str
    alt: str
    alt_index: int
    kind: AlleleKind

    @property
    def start(self) -> int:
        """0-based start of the REF span."""
        return self.pos - 1

    @property
    def end(self) -> int:
        """0-based exclusive end of the REF span (``start + len(ref)``)."""
        return self.pos - 1 + len(self.ref)


_BASES = re.compile(r"[ACGTNacgtn]+")


def classify_allele(ref: str, alt: str | None, max_allele_len: int = 1000) -> AlleleKind | SkipReason:
    """Classify one REF/ALT pair; pure, trims nothing.

    Args:
        ref: the REF allele.
        alt: one ALT allele; ``None`` or ``"."`` means missing.
        max_allele_len: longest REF or ALT allowed (longer gives ``SkipReason.TOO_LONG``).

    Returns:
        An :class:`AlleleKind` for a scoreable allele, else the :class:`SkipReason`.
    """
    if alt is None or alt in (".", ""):
        return SkipReason.MISSING_ALT
    if alt == "*":
        return SkipReason.SPANNING_DELETION
    if alt.startswith("<") and alt.endswith(">"):
        return SkipReason.SYMBOLIC
    if "[" in alt or "]" in alt or (len(alt) > 1 and (alt[0] == "." or alt[-1] == ".")):
        return SkipReason.BREAKEND
    if not ref or _BASES.fullmatch(ref) is None or _BASES.fullmatch(alt) is None:
        return SkipReason.INVALID_ALLELE
    if len(ref) > max_allele_len or len(alt) > max_allele_len:
        return SkipReason.TOO_LONG
    if ref.upper() == alt.upper():
        return SkipReason.INVALID_ALLELE
    if len(ref) == len(alt):
        return AlleleKind.SNV if len(ref) == 1 else AlleleKind.MNV
    if len(ref) == 1:
        return AlleleKind.INS
    if len(alt) == 1:
        return AlleleKind.DEL
    return AlleleKind.COMPLEX


def iter_alleles(
    chrom: str, pos: int, ref: str, alts: list[str] | tuple[str, ...], max_allele_len: int = 1000
) -> list[tuple[int, str, AlleleKind | SkipReason]]:
    """Split a (possibly multi-allelic) record into its ALT alleles and classify each.

    Args:
        chrom: contig as in the VCF (unused for classification; kept so callers pass whole records).
        pos: 1-based VCF position; below 1 makes every allele ``INVALID_ALLELE``.
        ref: REF allele.
        alts: the ALT alleles (cyvcf2's ``record.ALT``); an empty list (ALT ``.``) gives one ``MISSING_ALT`` entry.
        max_allele_len: see :func:`classify_allele`.

    Returns:
        ``[(alt_index, alt, kind_or_reason), ...]`` in ALT order; ``alt`` is ``"."`` for a missing ALT.
    """
    if not alts:
        return [(0, ".", SkipReason.MISSING_ALT)]
    out: list[tuple[int, str, AlleleKind | SkipReason]] = []
    for i, alt in enumerate(alts):
        if alt is None:
            out.append((i, ".", SkipReason.MISSING_ALT))
        elif pos < 1:
            out.append((i, alt, SkipReason.INVALID_ALLELE))
        else:
            out.append((i, alt, classify_allele(ref, alt, max_allele_len)))
    return out


def trim_allele(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim bases REF and ALT share, keeping at least one base in each (VCF style).

    The shared suffix is trimmed first, then the shared prefix (moving ``pos`` right), so ``ACG>ATG`` at 10
    becomes ``C>T`` at 11 and ``AT>ATT`` becomes ``A>AT``. Comparison is case-insensitive. This is not full
    left-alignment (that needs the genome): an indel in a repeat keeps its place.

    Returns:
        ``(pos, ref, alt)``, 1-based ``pos``.
    """
    r, a = ref.upper(), alt.upper()
    suffix = 0
    while suffix < min(len(r), len(a)) - 1 and r[-1 - suffix] == a[-1 - suffix]:
        suffix += 1
    if suffix:
        ref, alt, r, a = ref[:-suffix], alt[:-suffix], r[:-suffix], a[:-suffix]
    prefix = 0
    while prefix < min(len(r), len(a)) - 1 and r[prefix] == a[prefix]:
        prefix += 1
    return pos + prefix, ref[prefix:], alt[prefix:]


def check_ref(genome: Genome, chrom: str, pos: int, ref: str) -> bool:
    """Whether ``ref`` matches the genome at 1-based ``pos`` (see the module docstring for ``N``).

    Raises:
        UnknownContigError: ``chrom`` is not in the genome (resolve it first to skip instead).
    """
    start = pos - 1
    end = start + len(ref)
    if start < 0 or end > genome.length(chrom):
        return False
    seq = genome.fetch(chrom, start, end)
    ref = ref.upper()
    if seq == ref:
        return True
    return all(g == r or g == "N" or r == "N" for g, r in zip(seq, ref))
