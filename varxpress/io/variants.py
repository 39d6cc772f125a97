"""Pure pieces for turning VCF records into scoreable alleles (the cyvcf2 streaming is :mod:`varxpress.io.vcf`).

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
base (an unknown base is not evidence of a mismatch), and so does an IUPAC code of the genome for the bases it
stands for (``A`` or ``G`` under ``R``; :data:`IUPAC_BASES`); a REF running past the contig end never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from varxpress.errors import VcfError
from varxpress.io.blockscan import FLOAT as _FLOAT
from varxpress.io.blockscan import INT as _INT
from varxpress.io.blockscan import check_block, line_blocks
from varxpress.io.inputs import open_bytes

if TYPE_CHECKING:
    from varxpress.io.genome import Genome

__all__ = [
    "AlleleKind",
    "SkipReason",
    "Allele",
    "classify_allele",
    "iter_alleles",
    "trim_allele",
    "check_ref",
    "record_pos",
    "VcfScan",
    "scan_vcf_text",
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
    NO_GENE = "no_gene_in_window"  # informational: the allele is valid but no gene's window holds it
    BEYOND_CONTIG = "beyond_contig_end"  # the REF span ends past the contig's last base (POS of any size)


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

    def minimal(self) -> Allele:
        """The same change with the bases REF and ALT share trimmed, the end first, then the start, keeping at least
        one base of each (``CGTCA>CTCA`` is ``CG>C``, ``AGT>CGT`` is ``A>C``). Callers joint-calling pads alleles
        to a shared REF; the windows, distances and flags are computed on this form, so one change gives one score
        however it is written (the VCF and the TSV keep the alleles as given)."""
        ref, alt, pos = self.ref, self.alt, self.pos
        while len(ref) > 1 and len(alt) > 1 and ref[-1].upper() == alt[-1].upper():
            ref, alt = ref[:-1], alt[:-1]
        while len(ref) > 1 and len(alt) > 1 and ref[0].upper() == alt[0].upper():
            ref, alt, pos = ref[1:], alt[1:], pos + 1
        return self if (ref, alt) == (self.ref, self.alt) else replace(self, pos=pos, ref=ref, alt=alt)


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


def record_pos(rec) -> int:
    """The 1-based POS of a cyvcf2 record, exact at any size.

    cyvcf2's ``POS`` is a 32-bit C int: a POS of 2^31 or more wraps (4296262409 reads as 1295113, 3000000000 as
    -1294967296) while htslib, and so the written VCF, keeps the true 64-bit value. ``start`` (0-based) is 64-bit,
    so every position varxpress reads from a record comes from here.
    """
    return int(rec.start) + 1


def check_ref(genome: Genome, chrom: str, pos: int, ref: str) -> bool:
    """Whether ``ref`` matches the genome at 1-based ``pos`` (see the module docstring for ``N``).

    Raises:
        UnknownContigError: ``chrom`` is not in the genome (resolve it first to skip instead).
    """
    start = pos - 1
    end = start + len(ref)
    if start < 0 or end > genome.length(chrom):
        return False
    seq = genome.fetch(chrom, start, end).upper()
    ref = ref.upper()
    if seq == ref:
        return True
    return all(g == r or r == "N" or r in IUPAC_BASES.get(g, "") for g, r in zip(seq, ref))


# -- text VCF pre-scan ---------------------------------------------------------------------------------------------

_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_DECLARED = re.compile(rb"##(contig|INFO|FORMAT|FILTER)=<ID=([^,>]+)[,>]")
_BLOCK = 1 << 20  #: bytes of data lines checked at once
_INFO_TYPE = re.compile(rb"##INFO=<ID=([^,>]+),.*?Type=(Integer|Float)[,>]")


#: the bases a genome's ambiguity code stands for: a REF base among them agrees with the genome (which the model
#: reads as unknown there, all-zero one-hot; the score is flagged ``ref_n``)
IUPAC_BASES = {"N": "ACGTN", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC", "B": "CGT",
               "D": "AGT", "H": "ACT", "V": "ACG"}


@dataclass(frozen=True)
class VcfScan:
    """What :func:`scan_vcf_text` learnt about a text VCF.

    Attributes:
        header_lines: number of header lines, the ``#CHROM`` line included (record ``k``, 0-based, is on file
            line ``header_lines + k + 1``).
        records: number of data lines (each is exactly one record).
        columns: number of tab-separated columns of every line (8, or 9 + number of samples).
        undeclared: ``{"contig"|"INFO"|"FORMAT"|"FILTER"|"FLAG": names}`` used by records but not declared in the header
            (``FLAG``: INFO keys only ever written without a value). htslib parses them but refuses to write the
            record back, so the caller declares them.
        ascii: the whole file is ASCII text (the lines can then be handled as text, see :mod:`varxpress.io.vcflines`).
    """

    header_lines: int
    records: int
    columns: int
    undeclared: dict[str, list[str]] = field(default_factory=dict)
    ascii: bool = True


def scan_vcf_text(path: str, name: str | None = None) -> VcfScan | None:
    """Check the structure of a plain, gzip or bgzip text VCF line by line, before htslib parses it.

    htslib reads some malformed lines wrongly instead of refusing them: a blank line or a ``#`` line inside the
    body becomes a phantom record (and can crash the process), extra columns are dropped, a non-numeric QUAL
    becomes 0 and a non-numeric value of an Integer/Float INFO field becomes missing. This scan refuses those
    files up front, naming the file, the line and the fix, so that no record is silently lost or changed.

    Checked: the first line is ``##fileformat=VCF...``; a ``#CHROM`` line with >= 8 tab-separated columns ends the
    header; every data line has exactly as many tab-separated columns, none empty; POS is an integer >= 0; QUAL
    is ``.`` or a number; values of INFO fields declared ``Type=Integer``/``Float`` are numbers or ``.``; a
    compressed file is complete (gzip stream intact, BGZF end-of-file marker present). ``\\r\\n`` line endings
    are accepted (htslib strips the ``\\r``). FORMAT/sample values are left to htslib, which refuses bad ones.

    Args:
        path: the file to read.
        name: how messages name it (default ``path``; e.g. ``<stdin>`` for a copy of standard input).

    Returns:
        A :class:`VcfScan`, or ``None`` for a BCF file (binary: htslib checks it).

    Raises:
        VcfError: ``"NAME:LINE: cause; fix"`` for the first problem found.
    """
    import gzip
    import zlib

    source, path = path, name or path
    check_bgzf_end(source, path)
    done = [0]  # lines read so far, for the message of a decompression error
    try:
        with open_bytes(source) as fh:
            if fh.read(3) == b"BCF":
                return None
            fh.seek(0)
            return _scan_lines(path, fh, done)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise VcfError(f"{path}:{done[0] + 1}: the compressed file is truncated or corrupt after line {done[0]} "
                       f"({exc}); re-create or re-download it") from exc


def check_bgzf_end(source: str, path: str) -> None:
    """Refuse a BGZF file (``path`` names it) without the end-of-file block: it was cut short."""
    with open(source, "rb") as fh:
        magic = fh.read(18)
        if magic[:2] == b"\x1f\x8b" and len(magic) >= 14 and magic[3] & 4 and magic[12:14] == b"BC":  # BGZF
            fh.seek(0, 2)
            if fh.tell() >= 28:
                fh.seek(-28, 2)
            if fh.read(28) != _BGZF_EOF:
                raise VcfError(f"{path}: the BGZF end-of-file marker is missing: the file is truncated (an "
                               f"interrupted copy or download?); re-create or re-download it")


def _scan_lines(path: str, fh, done: list[int]) -> VcfScan:
    numeric: dict[bytes, re.Pattern] = {}
    declared: dict[bytes, set[bytes]] = {b"contig": set(), b"INFO": set(), b"FORMAT": set(), b"FILTER": {b"PASS"}}
    used: dict[bytes, set[bytes]] = {b"contig": set(), b"INFO": set(), b"FORMAT": set(), b"FLAG": set(),
                                     b"FILTER": set()}
    columns = 0
    lineno = 0
    ascii_text = True
    for lineno, raw in enumerate(iter(fh.readline, b""), 1):  # the header, line by line
        done[0] = lineno - 1
        ascii_text = ascii_text and raw.isascii()
        line = raw.rstrip(b"\n").rstrip(b"\r")
        where = f"{path}:{lineno}"
        if lineno == 1 and not line.startswith(b"##fileformat=VCF"):
            raise VcfError(f"{where}: not a VCF: the first line must be ##fileformat=VCFv4.x (found "
                           f"{line[:40].decode('latin-1')!r})")
        if line.startswith(b"##"):
            m = _INFO_TYPE.match(line)
            if m:
                numeric[m.group(1)] = _INT if m.group(2) == b"Integer" else _FLOAT
            m = _DECLARED.match(line)
            if m:
                declared[m.group(1)].add(m.group(2))
            continue
        fields = line.split(b"\t")
        if not line.startswith(b"#CHROM") or len(fields) < 8:
            raise VcfError(f"{where}: expected the tab-separated header line #CHROM POS ID REF ALT QUAL FILTER "
                           f"INFO [FORMAT samples...] here, found {line[:40].decode('latin-1')!r}")
        columns = len(fields)
        break
    if not columns:
        if lineno == 0:
            raise VcfError(f"{path}: the file is empty: a VCF needs at least the ##fileformat and #CHROM header "
                           f"lines")
        raise VcfError(f"{path}: no #CHROM header line (the file ends after {lineno} header lines)")
    header = lineno
    kinds = {key: pattern is _INT for key, pattern in numeric.items()}
    records = 0
    done[0] = header
    for block in line_blocks(fh, _BLOCK):  # the records, a block of lines at a time (see varxpress.io.blockscan)
        ascii_text = ascii_text and block.isascii()
        n = check_block(block, columns, kinds, declared, used)
        if n is None:
            n = _scan_records(path, block.split(b"\n")[:-1], header + records, columns, numeric, declared, used)
        records += n
        done[0] = header + records
    used[b"FLAG"] -= used[b"INFO"]
    undeclared = {kind.decode(): sorted(name.decode("latin-1") for name in names) for kind, names in used.items()
                  if names}
    return VcfScan(header, records, columns, undeclared, ascii_text)


def _scan_records(path: str, lines: list[bytes], before: int, columns: int, numeric: dict[bytes, re.Pattern],
                  declared: dict[bytes, set[bytes]], used: dict[bytes, set[bytes]]) -> int:
    """The checks of :func:`scan_vcf_text` on data lines, one by one (``before``: file lines before them);
    returns their number."""
    for lineno, raw in enumerate(lines, before + 1):
        line = raw.rstrip(b"\r")
        where = f"{path}:{lineno}"
        if not line.strip():
            raise VcfError(f"{where}: blank line inside the records; remove it (e.g. `grep -v '^$'`)")
        if line.startswith(b"#"):
            raise VcfError(f"{where}: a '#' line after the #CHROM header line; header lines must come first")
        fields = line.split(b"\t")
        if len(fields) != columns:
            hint = " (columns separated by spaces, not tabs?)" if len(fields) < 8 and b" " in line else ""
            raise VcfError(f"{where}: {len(fields)} tab-separated columns, the #CHROM header line has "
                           f"{columns}{hint}{_record_at(fields)}")
        if b"" in fields:
            col = fields.index(b"")
            raise VcfError(f"{where}: column {col + 1} is empty (write '.' for a missing value){_record_at(fields)}")
        if not fields[1].isdigit():
            raise VcfError(f"{where}: POS {fields[1][:20].decode('latin-1')!r} is not a non-negative integer"
                           f"{_record_at(fields)}")
        if fields[5] != b"." and not _FLOAT.fullmatch(fields[5]):
            raise VcfError(f"{where}: QUAL {fields[5][:20].decode('latin-1')!r} is not a number or '.'"
                           f"{_record_at(fields)}")
        if numeric and fields[7] != b".":
            _check_info(where, fields[7], numeric, fields)
        if fields[0] not in declared[b"contig"]:
            used[b"contig"].add(fields[0])
        if fields[6] != b"." and fields[6] not in declared[b"FILTER"]:
            used[b"FILTER"].update(set(fields[6].split(b";")) - declared[b"FILTER"])
        if fields[7] != b".":
            for item in fields[7].split(b";"):
                key, eq, _ = item.partition(b"=")
                if key not in declared[b"INFO"]:
                    used[b"INFO" if eq else b"FLAG"].add(key)
        if columns > 8 and fields[8] != b".":
            used[b"FORMAT"].update(set(fields[8].split(b":")) - declared[b"FORMAT"])
    return len(lines)


def line_locus(fields: list[bytes]) -> str | None:
    """``CHROM:POS`` of a data line's tab-separated fields, for messages (each cut to 40 characters), or None."""
    if len(fields) < 2:
        return None
    return f"{fields[0][:40].decode('latin-1')}:{fields[1][:40].decode('latin-1')}"


def _record_at(fields: list[bytes]) -> str:
    """`` (record CHROM:POS)`` of a data line's fields for its messages, or ``""``."""
    locus = line_locus(fields)
    return f" (record {locus})" if locus else ""


def _check_info(where: str, info: bytes, numeric: dict[bytes, re.Pattern], fields: list[bytes]) -> None:
    for item in info.split(b";"):
        key, eq, value = item.partition(b"=")
        pattern = numeric.get(key)
        if pattern is None or not eq:
            continue
        for v in value.split(b","):
            if v != b"." and not pattern.fullmatch(v):
                kind = "an integer" if pattern is _INT else "a number"
                raise VcfError(f"{where}: INFO/{key.decode('latin-1')} value {v[:20].decode('latin-1')!r} is not "
                               f"{kind} as its header declares (htslib would silently drop it){_record_at(fields)}")
