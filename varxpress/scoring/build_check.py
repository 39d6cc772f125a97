"""Signs that a VCF was called on another genome build than the FASTA it is scored against.

A VCF of GRCh37 scored against GRCh38 is mostly not refused record by record: where the two builds happen to have
the same base at a position the REF matches and the variant is scored, on the wrong gene or at the wrong distance,
with nothing to say so. Two checks make that visible without stopping a run (some VCFs carry sloppy headers):

* the lengths the VCF header declares for its contigs (``##contig=<ID=chr5,length=...>``) against the FASTA's
  (every GRCh37 and GRCh38 chromosome differs in length): a warning naming the contigs, at the start;
* the share of records whose REF disagrees with the genome: the first :data:`SHOWN` are warned one by one (file,
  line, both alleles), the rest counted, and a run where at least :data:`MOST` of the checked records disagree ends
  with one warning saying the VCF was probably called on another build.
"""

from __future__ import annotations

import logging
import warnings

from varxpress.errors import RefMismatchWarning

__all__ = ["BuildCheck", "SHOWN", "MOST"]

log = logging.getLogger("varxpress")

SHOWN = 10  #: REF mismatches warned one by one; the rest are counted (``--stats``: ``skipped.ref_mismatch``)
MOST = 0.1  #: a share of mismatching records (of at least ``SHOWN``) that points to another build


class BuildCheck:
    """One run's checks (see the module docstring)."""

    def __init__(self, genome, path: str) -> None:
        self.genome, self.path = genome, path
        self.mismatches = 0
        self.unknown: dict[str, int] = {}  #: records per contig absent from the FASTA, in order of first use

    def unknown_contig(self, chrom: str) -> None:
        """Count a record on a contig the FASTA has under no alias."""
        self.unknown[chrom] = self.unknown.get(chrom, 0) + 1

    def contig_lengths(self, vcf) -> list[tuple[str, int, int]]:
        """Warn once about contigs whose declared length differs from the FASTA's; returns them as ``(name,
        declared, FASTA length)``. Contigs without a declared length, or absent from the FASTA, are not compared."""
        declared_lengths = []
        if "\n##contig=" in "\n" + vcf.raw_header:  # without them cyvcf2 looks for an index, and htslib complains
            try:
                declared_lengths = list(zip(vcf.seqnames, vcf.seqlens))
            except AttributeError:  # cyvcf2: no contig lengths after all
                pass
        conflicts = []
        for name, declared in declared_lengths:
            chrom = self.genome.resolve(name) if declared > 0 else None
            if chrom is not None and self.genome.length(chrom) != declared:
                conflicts.append((name, declared, self.genome.length(chrom)))
        if conflicts:
            shown = ", ".join(f"{n} {d:,} bp (FASTA {f:,})" for n, d, f in conflicts[:3])
            more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
            log.warning("%s: the header declares contig lengths that differ from the FASTA's: %s%s; was the VCF "
                        "called on another genome build? Its scores would be for the wrong bases and genes",
                        self.path, shown, more)
        return conflicts

    def ref_mismatch(self, message: str) -> None:
        """Warn about one record's REF (the first :data:`SHOWN` of a run); count every one."""
        self.mismatches += 1
        if self.mismatches <= SHOWN:
            warnings.warn(message, RefMismatchWarning, stacklevel=3)
        elif self.mismatches == SHOWN + 1:
            log.warning("%s: further REF mismatches are counted, not shown (--stats: skipped.ref_mismatch)",
                        self.path)

    def summary(self, records: int) -> None:
        """At the end of a run of ``records`` records: the count of mismatches not shown, and whether they point to
        another build."""
        if self.mismatches > SHOWN:
            log.warning("%s: %d records in all have a REF that disagrees with the genome (%d shown above)",
                        self.path, self.mismatches, SHOWN)
        unknown = sum(self.unknown.values())
        if unknown and 2 * unknown > records:
            names = ", ".join(list(self.unknown)[:3]) + (", ..." if len(self.unknown) > 3 else "")
            log.warning("%s: %d of %d records lie on contigs the FASTA does not have under any alias (%s): is the "
                        "FASTA the VCF's genome? Other names for its contigs go in --contig-map", self.path,
                        unknown, records, names)
        if self.mismatches >= SHOWN and self.mismatches >= MOST * records:
            log.warning("%s: %d of %d records (%.0f %%) have a REF that disagrees with the FASTA: the VCF was "
                        "probably called on another genome build; score it against the FASTA of its build",
                        self.path, self.mismatches, records, 100 * self.mismatches / max(records, 1))
