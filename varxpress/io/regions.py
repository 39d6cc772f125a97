"""Genomic regions as users write them: ``CHROM:START-END`` (1-based, inclusive) or BED lines (0-based).

Every region becomes ``(chrom, start, end)``, 0-based half-open, in the VCF's contig names. A bare ``CHROM`` is
the whole contig, ``[0, CONTIG_END)``. ``score --region/--regions`` and the workflow's ``--regions`` shard list read
regions through these functions, so the two accept the same text.
"""

from __future__ import annotations

import os

from varxpress.errors import VarxpressError

__all__ = ["CONTIG_END", "Region", "RegionError", "parse_region", "parse_bed_fields", "read_regions"]

CONTIG_END = 2**62  #: the end of "the whole contig" (beyond any real contig, within a 64-bit position)

Region = tuple[str, int, int]


class RegionError(VarxpressError, ValueError):
    """A region that cannot be read; the message names the text (and the file and line, for a file)."""


def parse_region(text: str) -> Region:
    """``CHROM:START-END`` (1-based, inclusive, commas allowed) or ``CHROM`` -> ``(chrom, start0, end)``.

    Raises:
        RegionError: not of that form, or ``START < 1`` or ``END < START``.
    """
    chrom, sep, span = text.replace(",", "").rpartition(":")
    if not sep:
        return text, 0, CONTIG_END
    try:
        start, end = (int(x) for x in span.split("-"))
    except ValueError:
        raise RegionError(f"region {text!r}: expected CHROM:START-END (1-based, inclusive)") from None
    if start < 1 or end < start:
        raise RegionError(f"region {text!r}: need 1 <= START <= END")
    return chrom, start - 1, end


def parse_bed_fields(fields: list[str]) -> Region:
    """The first three fields of a BED line -> ``(chrom, start, end)`` (0-based half-open, as BED is).

    Raises:
        RegionError: non-integer coordinates, or not ``0 <= START < END``.
    """
    try:
        region = (fields[0], int(fields[1]), int(fields[2]))
    except (ValueError, IndexError):
        raise RegionError(f"not a BED line: {' '.join(fields)!r}") from None
    if region[1] < 0 or region[2] <= region[1]:
        raise RegionError(f"need 0 <= START < END (BED is 0-based, half-open): {' '.join(fields)!r}")
    return region


def _skip(line: str) -> bool:
    return not line or line.startswith(("#", "track", "browser"))


def read_regions(path: str | os.PathLike) -> list[Region]:
    """Regions from a BED file (tab-separated, 0-based) or one ``CHROM:START-END`` per line, in file order.

    Raises:
        RegionError: a line that is neither, naming ``path`` and the line number.
    """
    regions = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if _skip(line):
                continue
            fields = line.split("\t")
            try:
                regions.append(parse_bed_fields(fields) if len(fields) >= 3 else parse_region(line))
            except RegionError as exc:
                raise RegionError(f"{path}:{n}: not a BED line or CHROM:START-END ({exc}): {line!r}") from None
    return regions
