"""Reading VCF/BCF records with cyvcf2: opening, region queries, header repairs and messages that locate a record.

The pure pieces (allele classification, REF checks, the text pre-scan) are in :mod:`varxpress.io.variants`; this
module is the streaming side that every subcommand reading a VCF goes through (``score``, ``explain --vcf``,
``mutagenesis --vcf``).
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import os
import re
import shlex
import warnings
from typing import Iterable, Iterator

import cyvcf2
import pysam

from varxpress.errors import VcfError
from varxpress.io.inputs import open_bytes
from varxpress.io.variants import check_bgzf_end, line_locus, record_pos

log = logging.getLogger(__name__)

__all__ = ["open_vcf", "count_header_lines", "check_region_index", "iter_records", "declare_undeclared", "locate",
           "read_checked", "unparsable", "merge_regions"]


def open_vcf(path: str, name: str | None = None):
    """Open a VCF/VCF.gz/BCF with cyvcf2; a :class:`VcfError` names the file (``name``, default ``path``) when
    htslib cannot."""
    name = name or path
    if path != "-" and not os.path.exists(path):
        raise VcfError(f"{name}: no such VCF/BCF file")
    try:
        return cyvcf2.VCF(path, lazy=True)
    except (OSError, ValueError, Exception) as exc:  # cyvcf2 raises bare Exception for unreadable headers
        raise VcfError(f"{name}: not a readable VCF/BCF ({exc})") from exc


def count_header_lines(path: str) -> int:
    """Number of header lines of a text VCF (plain or bgzip), so messages can give file line numbers; 0 for BCF/stdin."""
    if path == "-" or path.endswith(".bcf"):
        return 0
    n = 0
    with open_bytes(path) as fh:
        for line in fh:
            if not line.startswith(b"#"):
                break
            n += 1
    return n


def check_region_index(path: str, name: str | None = None) -> None:
    """Refuse a region query on ``path`` that has no index, saying how to make one (``name`` names it)."""
    name = name or path
    if any(os.path.exists(path + suffix) for suffix in (".tbi", ".csi")):
        check_bgzf_end(path, name)  # an index beside a file cut short answers queries from what is left
        return
    if name != path:  # standard input or a pipe, read into a temporary file
        raise VcfError(f"{name}: region queries need an indexed file (bgzipped VCF with .tbi/.csi, or BCF with "
                       f".csi); standard input and pipes have no index: write the VCF to a file and index it")
    with open(path, "rb") as fh:
        magic = fh.read(14)
    q = shlex.quote(name)
    if magic[:2] != b"\x1f\x8b":
        raise VcfError(f"{name}: region queries need an index, and tabix indexes only bgzipped files: run "
                       f"`bgzip {q}` then `tabix -p vcf {q}.gz`, and score {name}.gz")
    if not (len(magic) == 14 and magic[3] & 4 and magic[12:14] == b"BC"):  # BGZF: the FEXTRA "BC" subfield
        stem = shlex.quote(re.sub(r"(\.vcf)?\.gz$", "", name) + ".bgz.vcf.gz")
        raise VcfError(f"{name}: region queries need an index, and this file is gzip, not bgzip (tabix cannot index "
                       f"it): run `zcat {q} | bgzip > {stem}` then `tabix -p vcf {stem}`, and score {stem}")
    with gzip.open(path, "rb") as fh:  # BGZF: the first bytes of the data say BCF or VCF text
        bcf = fh.read(3) == b"BCF"
    if bcf:
        raise VcfError(f"{name}: region queries need an index: run `bcftools index {q}` (a .csi; tabix does not "
                       f"index BCF)")
    raise VcfError(f"{name}: region queries need an index (.tbi or .csi): run `tabix -p vcf {q}` "
                   f"(or `bcftools index {q}`)")


def iter_records(vcf, path: str, regions: list[tuple[str, int, int]] | None, name: str | None = None) -> Iterator:
    """All records, or those whose POS lies in one of ``regions`` (each record once, in region order)."""
    if not regions:
        return iter(vcf)  # htslib's own iterator: no Python frame per record
    return _region_records(vcf, _RegionCount(path, name or path), name or path, regions)


class _RegionCount:
    """The records of a region counted a second way, through pysam: cyvcf2's region iterator ends quietly at a
    damaged compressed block (htslib only prints an error), pysam's raises. Counting text lines is cheap
    (about 1.5 µs a record, against about 6 for cyvcf2's parse); a BCF's records are decoded."""

    def __init__(self, source: str, path: str) -> None:
        with gzip.open(source, "rb") as fh:
            self.bcf = fh.read(3) == b"BCF"
        index = next((source + s for s in (".tbi", ".csi") if os.path.exists(source + s)), None)
        try:  # TabixFile looks for a .tbi only: a .csi (bcftools index's default) is named
            self.file = pysam.VariantFile(source) if self.bcf else pysam.TabixFile(source, index=index)
        except (OSError, ValueError) as exc:
            raise VcfError(f"{path}: cannot read it with its index {index} ({exc}); re-index it with `bcftools "
                           f"index -f {path}`") from exc
        self.contigs = set(self.file.index.keys() if self.bcf else self.file.contigs)

    def close(self) -> None:
        """Close the file; a damaged one's error on closing is the one already reported."""
        with contextlib.suppress(OSError):
            self.file.close()

    def __call__(self, chrom: str, start: int, end: int) -> int:
        if chrom not in self.contigs:
            return 0
        if self.bcf:  # BCF positions are 32-bit: pysam refuses a region end past them
            return sum(1 for rec in self.file.fetch(chrom, start, min(end, 2 ** 31 - 1))
                       if start <= max(rec.pos - 1, 0) < end)
        return sum(1 for line in self.file.fetch(chrom, start, end)
                   if start <= max(int(line.split("\t", 2)[1]) - 1, 0) < end)


def _region_records(vcf, check: _RegionCount, path: str, regions: list[tuple[str, int, int]]) -> Iterator:
    try:
        yield from _counted_regions(vcf, path, regions, check)
    finally:
        check.close()


def _counted_regions(vcf, path: str, regions: list[tuple[str, int, int]], check: _RegionCount) -> Iterator:
    known = set(vcf.seqnames)  # the header's contigs, or the index's
    for chrom, start, end in merge_regions(regions):
        if known and chrom not in known:
            other = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
            hint = f"; did you mean {other!r}?" if other in known else ""
            log.warning("%s: no contig %r in this VCF: region %s:%d-%d selects no record%s", path, chrom, chrom,
                        start + 1, end, hint)
            continue
        try:
            with warnings.catch_warnings():  # an empty region is normal for a shard, not worth a warning
                warnings.filterwarnings("ignore", message="no intervals found")
                records = iter(vcf(f"{chrom}:{start + 1}-{end}"))
                first = next(records, None)
        except (AssertionError, OSError, ValueError) as exc:  # cyvcf2's refusal of an unusable index
            raise VcfError(f"{path}: cannot query region {chrom}:{start + 1}-{end} ({exc}); re-index with "
                           f"`tabix -f -p vcf {path}`") from exc
        n = 0
        for rec in itertools.chain([first], records) if first is not None else ():
            if start <= max(record_pos(rec) - 1, 0) < end:  # POS 0 (telomere) belongs to the region starting at 0
                n += 1
                yield rec
        where = chrom if start == 0 and end >= 2 ** 40 else f"{chrom}:{start + 1}-{end}"  # a whole contig
        try:
            expected = check(chrom, start, end)
        except (OSError, ValueError) as exc:
            raise VcfError(f"{path}: reading region {where} failed ({exc}): the file is damaged (see htslib's "
                           f"message above); check it with `bcftools view {path}`, re-create it or re-download it"
                           ) from exc
        if n != expected:
            raise VcfError(f"{path}: region {where} gave {n} records, but the file holds {expected} there: the file "
                           f"is damaged (see htslib's message above); check it with `bcftools view {path}`")


def declare_undeclared(vcf, undeclared: dict[str, list[str]], path: str) -> None:
    """Declare in ``vcf``'s header the contigs, FILTERs and INFO/FORMAT tags its records use without a header line.

    htslib reads such records (assuming ``Type=String``) but refuses to write them back; declaring them keeps the
    record, and its values, unchanged in the output (with a warning naming them).
    """
    described = "Not declared in the input header; declared by varxpress so the record can be written back"
    for kind, names in undeclared.items():
        log.warning("%s: %s %s used by records but not declared in the header: declared in the output as %s",
                    path, {"contig": "contigs", "FORMAT": "FORMAT tags", "FILTER": "FILTERs"}.get(kind, "INFO tags"),
                    ", ".join(names), {"contig": "contigs of unknown length", "FLAG": "Number=0,Type=Flag",
                                       "FILTER": "FILTERs"}.get(kind, "Number=.,Type=String"))
        for name in names:
            if kind == "contig":
                vcf.add_to_header(f"##contig=<ID={name}>")
            elif kind == "FILTER":
                vcf.add_filter_to_header({"ID": name, "Description": described})
            elif kind == "FORMAT":
                vcf.add_format_to_header({"ID": name, "Number": ".", "Type": "String", "Description": described})
            else:
                vcf.add_info_to_header({"ID": name, "Number": "0" if kind == "FLAG" else ".",
                                        "Type": "Flag" if kind == "FLAG" else "String", "Description": described})


def locate(path: str, header_lines: int, ordinal: int) -> str:
    """Where a record is, for messages: ``path: line N`` when the whole text file is read (``header_lines`` > 0),
    else ``path: record N`` (BCF, stdin, a region selection); ``ordinal`` is 0-based."""
    return f"{path}: line {header_lines + ordinal + 1}" if header_lines else f"{path}: record {ordinal + 1}"


def unparsable(path: str, header_lines: int, ordinal: int, exc: Exception, line: bytes | None = None) -> VcfError:
    """The error for a record htslib refuses (``exc``: cyvcf2's exception; ``line``: the record's text, where it
    was read as text); see :func:`locate`. cyvcf2 echoes the whole line in its message, samples and all: only its
    CHROM:POS is named."""
    reason = re.sub(r"^error parsing: .*\((vcf_parse returned -?\d+)\)$", r"\1", str(exc), flags=re.S)
    locus = line_locus(line.split(b"\t", 2)) if line is not None else None
    at = f"{locus}; " if locus else ""
    return VcfError(f"{locate(path, header_lines, ordinal)}: htslib cannot parse this record ({at}{reason}); see "
                    f"the message above, or check the file with `bcftools view {path}`")


def read_checked(records: Iterator, path: str, header_lines: int) -> Iterator:
    """``records``, with htslib's parse errors (cyvcf2 raises a bare ``Exception``) turned into a :class:`VcfError`
    naming the file and line (see :func:`locate`), and phantom records refused."""
    n = 0
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except VcfError:
            raise
        except Exception as exc:  # noqa: BLE001 - cyvcf2 gives no narrower class
            raise unparsable(path, header_lines, n, exc) from exc
        if not rec.CHROM:
            raise VcfError(f"{locate(path, header_lines, n)}: a record without CHROM (a blank line?); remove it")
        n += 1
        yield rec


def merge_regions(regions: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Merge overlapping regions of the same contig, keeping the contigs in their first-seen order."""
    order: dict[str, list[tuple[int, int]]] = {}
    for chrom, start, end in regions:
        order.setdefault(chrom, []).append((start, end))
    merged = []
    for chrom, spans in order.items():
        spans.sort()
        cur_s, cur_e = spans[0]
        for s, e in spans[1:]:
            if s <= cur_e:
                cur_e = max(cur_e, e)
            else:
                merged.append((chrom, cur_s, cur_e))
                cur_s, cur_e = s, e
        merged.append((chrom, cur_s, cur_e))
    return merged
