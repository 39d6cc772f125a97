"""Reference genome access: a plain or bgzip-compressed FASTA read through ``pysam.FastaFile``.

Coordinates: :meth:`Genome.fetch` takes 0-based half-open ``[start, end)``; parts outside ``[0, contig length)``
come back as ``N``, so a window that runs off a contig end keeps its length (the caller flags it).

Contig names are matched across FASTA, VCF and annotation by :meth:`Genome.resolve`, in this order:

1. the name exactly as in the FASTA;
2. the contig map (``read_contig_map``: a two-column TSV ``name_in_your_files<TAB>name_in_the_FASTA``;
   a name found in the second column maps to itself, so the map can be read in either direction);
3. the usual aliases: ``chr1 <-> 1``, ``chrX <-> X``, ``chrM <-> MT <-> M``.

Indexes: a missing ``.fai`` (and, for bgzip, ``.gzi``) is made beside the FASTA when its folder is writable;
otherwise :class:`~varxpress.errors.FastaIndexError` names the ``samtools faidx`` command that makes it. A stale
index (the FASTA rewritten after it was indexed) is refused the same way (:meth:`Genome._check_index`).
A gzip (not bgzip) FASTA cannot be indexed; the error says how to recompress it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import pysam

from varxpress.errors import FastaIndexError, GenomeError, UnknownContigError
from varxpress.io.inputs import text_lines

__all__ = ["Genome", "read_contig_map", "contig_aliases"]

log = logging.getLogger(__name__)

_MITO = ("chrM", "MT", "M", "chrMT")


def contig_aliases(chrom: str) -> list[str]:
    """Other spellings of a contig name, most likely first.

    ``chr1 -> [1]``, ``1 -> [chr1]``, ``MT -> [chrM, M, chrMT]``.
    """
    if chrom in _MITO:
        return [name for name in _MITO if name != chrom]
    if chrom.startswith("chr"):
        return [chrom[3:]] if len(chrom) > 3 else []
    return ["chr" + chrom]


def read_contig_map(path: str | os.PathLike) -> dict[str, str]:
    """Read a contig map: two tab- or space-separated columns ``name_in_your_files  name_in_the_FASTA``.

    Blank lines and lines starting with ``#`` are skipped.

    Raises:
        GenomeError: a line does not have exactly two columns, or a name is mapped twice to different contigs.
    """
    mapping: dict[str, str] = {}
    with open(path, "rb") as handle:
        for lineno, line in text_lines(handle):
            if line is None:
                raise GenomeError(f"{path}:{lineno}: not a text file (binary data); a contig map is a text file of "
                                  f"two columns, name_in_your_files name_in_the_FASTA")
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 2:
                raise GenomeError(
                    f"{path}:{lineno}: a contig map line needs 2 columns (name_in_your_files name_in_the_FASTA), "
                    f"got {len(fields)}: {line!r}"
                )
            src, dst = fields
            if mapping.get(src, dst) != dst:
                raise GenomeError(f"{path}:{lineno}: contig {src!r} is mapped to both {mapping[src]!r} and {dst!r}")
            mapping[src] = dst
    return mapping


def _compression(path: Path) -> str:
    """``"bgzip"``, ``"gzip"`` or ``"plain"``, from the file's first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != b"\x1f\x8b":
        return "plain"
    # BGZF: gzip with the FEXTRA flag and a "BC" subfield (SAM spec, section 4.1).
    if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzip"
    return "gzip"


def _fai_lines(fai: Path) -> list[tuple[str, int, int, int, int]]:
    """The ``.fai`` lines: (name, length, offset, line bases, line width) each.

    Raises:
        ValueError: ``line N is not NAME LENGTH OFFSET LINEBASES LINEWIDTH``.
    """
    lines = []
    with open(fai, encoding="utf-8", errors="replace") as index:
        for n, line in enumerate(index, 1):
            fields = line.rstrip("\r\n").split("\t")
            try:
                name, length, offset, bases, width = fields[0], *map(int, fields[1:5])
            except ValueError:  # too few fields, or one that is not a number
                raise ValueError(f"line {n} is not NAME LENGTH OFFSET LINEBASES LINEWIDTH") from None
            lines.append((name, length, offset, bases, width))
    return lines


def _fai_mismatch(fasta: Path, fai: Path) -> str | None:
    """Why the ``.fai`` lines (name, length, offset, line bases, line width) do not fit a plain FASTA, or None."""
    size = fasta.stat().st_size
    try:
        lines = _fai_lines(fai)
    except ValueError as exc:
        return str(exc)
    with open(fasta, "rb") as fh:
        for name, length, offset, bases, width in lines:
            if bases <= 0 or width < bases or offset > size:
                return f"contig {name}: offset {offset} or line layout {bases}/{width} impossible"
            fh.seek(max(0, offset - 1024))
            before = fh.read(offset - max(0, offset - 1024)).rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
            if before.split()[:1] != [b">" + name.encode()]:
                return f"no >{name} header line just before offset {offset}"
            end = offset + (length // bases) * width + length % bases
            fh.seek(end)
            after = fh.read(64).lstrip(b"\r\n")
            if end > size or (after and not after.startswith(b">")):
                return f"contig {name} is not {length} bases long"
    return None


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


class Genome:
    """A reference FASTA with contig aliases and N-padded fetches.

    Args:
        path: plain or bgzip-compressed FASTA.
        contig_map: extra name mapping ``{name_in_your_files: name_in_the_FASTA}`` (see :func:`read_contig_map`).
        create_index: make a missing ``.fai``/``.gzi`` beside the FASTA (needs a writable folder).

    Attributes:
        path: the FASTA path.
        contigs: ``{name: length}`` in FASTA order.

    Raises:
        GenomeError: the file is missing or gzip- (not bgzip-) compressed.
        FastaIndexError: the index is missing and cannot (or may not) be made.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        contig_map: dict[str, str] | None = None,
        create_index: bool = True,
    ) -> None:
        self.path = Path(path)
        self.contig_map = dict(contig_map or {})
        self.create_index = create_index
        if not self.path.is_file():
            raise GenomeError(f"reference FASTA {self.path} does not exist or is not a file")
        self.compression = _compression(self.path)
        if self.compression == "gzip":
            raise GenomeError(
                f"{self.path} is gzip- but not bgzip-compressed and cannot be indexed; recompress it with "
                f"`zcat {self.path} | bgzip > {self.path.with_suffix('')}.bgz` (or decompress it)"
            )
        self.fai_path = Path(f"{self.path}.fai")
        self.gzi_path = Path(f"{self.path}.gzi") if self.compression == "bgzip" else None
        self._ensure_index()
        self._check_index()
        self._open()
        self._resolved: dict[str, str | None] = {}

    # -- setup ---------------------------------------------------------------------------------------------------

    def _ensure_index(self) -> None:
        missing = [p for p in (self.fai_path, self.gzi_path) if p is not None and not p.exists()]
        if not missing:
            return
        names = " and ".join(str(p) for p in missing)
        command = f"samtools faidx {self.path}"
        if not self.create_index:
            raise FastaIndexError(f"FASTA index {names} is missing (index creation is off); make it with `{command}`")
        folder = self.path.resolve().parent
        if not _writable(folder):
            raise FastaIndexError(
                f"FASTA index {names} is missing and folder {folder} is not writable; make it with `{command}` "
                f"(or copy the FASTA to a writable folder)"
            )
        log.info("indexing %s (missing %s)", self.path, names)
        try:
            pysam.faidx(str(self.path))
        except (pysam.SamtoolsError, OSError) as exc:
            raise FastaIndexError(f"cannot index {self.path} ({exc}); check the file and run `{command}`") from exc

    def _check_index(self) -> None:
        """Refuse an index that does not describe the FASTA (the FASTA was rewritten after it was indexed).

        A stale ``.fai`` makes htslib read other bases than the FASTA holds, silently. A plain FASTA is checked
        against its ``.fai`` line by line (a ``>NAME`` header just before each contig's offset, and its last base
        followed by the next header or the end of the file), whatever the files' dates (copies reorder them).
        A bgzip FASTA cannot be checked without decompressing it, so there an index older than the FASTA is refused
        (as htslib does for BAM and VCF indexes).
        """
        indexes = [p for p in (self.fai_path, self.gzi_path) if p is not None]
        names = " and ".join(str(p) for p in indexes)
        fix = (f"the FASTA was changed after it was indexed: delete {names} (varxpress remakes "
               f"{'them' if len(indexes) > 1 else 'it'}) or run `samtools faidx {self.path}`")
        if self.compression == "plain":
            problem = _fai_mismatch(self.path, self.fai_path)
            if problem:
                raise FastaIndexError(f"FASTA index {self.fai_path} does not match {self.path} ({problem}): {fix}")
            return
        fasta_mtime = self.path.stat().st_mtime
        for index in indexes:
            if index.stat().st_mtime < fasta_mtime:
                raise FastaIndexError(f"FASTA index {index} is older than {self.path}: {fix}")

    def _open(self) -> None:
        try:
            self._fasta = pysam.FastaFile(
                str(self.path),
                filepath_index=str(self.fai_path),
                filepath_index_compressed=str(self.gzi_path) if self.gzi_path else None,
            )
        except (OSError, ValueError) as exc:
            raise GenomeError(f"cannot open reference FASTA {self.path}: {exc}") from exc
        self.contigs: dict[str, int] = dict(zip(self._fasta.references, self._fasta.lengths))
        self._raw: io.FileIO | None = None  # a plain FASTA's own unbuffered handle (see read_raw)
        self._layout: dict[str, tuple[int, int, int]] | None = None

    # -- names ---------------------------------------------------------------------------------------------------

    def resolve(self, chrom: str) -> str | None:
        """The FASTA's name for ``chrom`` (exact, then contig map, then ``chr``/``MT`` aliases); ``None`` if unknown."""
        try:
            return self._resolved[chrom]
        except KeyError:
            pass
        found: str | None = None
        if chrom in self.contigs:
            found = chrom
        else:
            candidates = [self.contig_map[chrom]] if chrom in self.contig_map else []
            if chrom in self.contig_map.values():
                candidates.append(chrom)
            for name in list(candidates) + [chrom]:
                candidates.extend(contig_aliases(name))
            found = next((name for name in candidates if name in self.contigs), None)
        self._resolved[chrom] = found
        return found

    def _require(self, chrom: str) -> str:
        name = self.resolve(chrom)
        if name is None:
            shown = ", ".join(list(self.contigs)[:5]) + (", ..." if len(self.contigs) > 5 else "")
            raise UnknownContigError(
                f"contig {chrom!r} is not in {self.path} (contigs: {shown}) nor an alias of one; "
                f"pass a contig map (two columns: name_in_your_files name_in_the_FASTA) if the names differ"
            )
        return name

    def __contains__(self, chrom: object) -> bool:
        return isinstance(chrom, str) and self.resolve(chrom) is not None

    def length(self, chrom: str) -> int:
        """Length of a contig (any alias accepted); raises :class:`UnknownContigError` if unknown."""
        return self.contigs[self._require(chrom)]

    # -- sequence ------------------------------------------------------------------------------------------------

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Uppercase sequence of ``chrom`` over 0-based half-open ``[start, end)``, ``N`` outside the contig.

        Raises:
            UnknownContigError: ``chrom`` resolves to no FASTA contig.
            GenomeError: ``end < start``.
        """
        name = self._require(chrom)
        if end < start:
            raise GenomeError(f"fetch {chrom}:{start}-{end}: end is before start")
        size = self.contigs[name]
        lo, hi = max(start, 0), min(end, size)
        core = self._fasta.fetch(name, lo, hi).upper() if lo < hi else ""
        if lo == start and hi == end:
            return core
        left = min(max(0, -start), end - start)
        return "N" * left + core + "N" * (end - start - left - len(core))

    def layout(self, name: str) -> tuple[int, int, int] | None:
        """Where the bases of FASTA contig ``name`` lie in a plain FASTA file: ``(offset, line bases, line width)``,
        its ``.fai`` line (checked against the file when the genome was opened); None for a bgzip FASTA. Base ``i``
        of the contig is byte ``offset + (i // line_bases) * line_width + i % line_bases``."""
        if self.compression != "plain":
            return None
        if self._layout is None:
            self._layout = {fai[0]: fai[2:] for fai in _fai_lines(self.fai_path)}
        return self._layout.get(name)

    def read_raw(self, offset: int, size: int) -> bytes:
        """``size`` bytes of a plain FASTA file from byte ``offset``, as stored (line ends and case included): one
        read for a stretch that :meth:`fetch` would copy, strip of its line ends and upper-case whole
        (:class:`varxpress.io.refspans.RefSpans` reads the few bases it compares out of it)."""
        if self._raw is None:
            self._raw = io.FileIO(self.path, "r")  # closed with the genome, or when it is garbage-collected
        return os.pread(self._raw.fileno(), size, offset)

    def fingerprint(self) -> str:
        """md5 of the ``.fai`` index contents (contig names, lengths and layout): a cheap identity for provenance."""
        return hashlib.md5(self.fai_path.read_bytes()).hexdigest()

    # -- lifetime ------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the FASTA handle (idempotent)."""
        fasta = getattr(self, "_fasta", None)
        if fasta is not None:
            fasta.close()
            self._fasta = None
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()
            self._raw = None

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:  # for multiprocessing: reopen the file in the child
        state = self.__dict__.copy()
        state["_fasta"] = None
        state["_raw"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, {len(self.contigs)} contigs)"
