"""A text VCF's records as lines: read in blocks, split into the few columns ``score`` needs, and written back as
read.

Most records of a whole genome lie outside every model window and are written through unchanged. Parsing each one
with htslib (samples included) and formatting it again costs more than everything else ``score`` does with it;
:func:`line_chunks` instead finds CHROM, POS, REF and ALT of a block of lines with numpy, and :class:`LineWriter`
writes the unchanged lines, and the text of the records that were annotated, into a plain or BGZF-compressed VCF.
Only the records that ``score`` classifies are parsed by htslib (:meth:`cyvcf2.Writer.variant_from_string`).

The caller makes sure the lines are what htslib would read: :func:`varxpress.io.variants.scan_vcf_text` has
checked every line's columns, POS, QUAL and INFO values and its text (ASCII, so a line's bytes and its ``str`` are
the same), and the header's line count. The sample columns, which htslib also checks (a ``GT`` that is not allele
numbers, a letter in an ``Integer`` value, more values than FORMAT keys), are checked here (:class:`SampleCheck`),
conservatively: a line whose samples it cannot vouch for is left to htslib, which refuses it or reads it.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Iterator

import numpy as np

from varxpress.io.blockscan import column, line_blocks
from varxpress.io.inputs import open_bytes
from varxpress.io.outputs import PipedOutput

__all__ = ["Lines", "SampleCheck", "line_chunks", "LineWriter"]

_BLOCK = 1 << 20  #: bytes read at once
_NL, _TAB = 10, 9

# What htslib reads as written, as regular expressions for one value of a sample column (never matching a tab, a
# colon or a line end). Narrower than htslib where that is simpler (no ``nan`` in a Float): such a line is parsed.
_INT = rb"(?:[+-]?[0-9]++|\.)?"  # htslib reads an empty value as missing
_FLOAT = rb"(?:[+-]?(?:[0-9]++\.?[0-9]*+|\.[0-9]++)(?:[eE][+-]?[0-9]++)?|\.)?"
_VALUES = {"Integer": _INT + rb"(?:," + _INT + rb")*+", "Float": _FLOAT + rb"(?:," + _FLOAT + rb")*+"}
_GT = rb"(?:[0-9]++|\.)(?:[/|](?:[0-9]++|\.))*+"
_TEXT = rb"[^:\t\n]*+"
_MOST_FORMATS = 64  #: FORMAT columns matched together; a file with more checks the others line by line


class SampleCheck:
    """Whether the sample columns of data lines are ones htslib reads as they are written.

    For each FORMAT column (``GT:AD:DP``) a regular expression for a line's samples: each sample holds at most as
    many ``:``-separated values as there are keys, a ``GT`` value is allele numbers or ``.`` separated by ``/`` or
    ``|``, ``Integer`` and ``Float`` values are comma-separated numbers, ``.`` or empty, anything else is text.
    A block of lines is matched in one call (the FORMAT columns seen so far as alternatives); only a block that
    does not match is checked line by line.

    Args:
        types: ``Type`` of each declared FORMAT key (``Integer``, ``Float``, ``String``, ``Character``).
        samples: sample columns per line (at least 1).
    """

    def __init__(self, types: dict[str, str], samples: int) -> None:
        self.types = types
        self.samples = samples
        self._lines: dict[bytes, re.Pattern | None] = {}  # per FORMAT: one whole line
        self._block: re.Pattern | None = None  # any number of lines, each with one of the FORMATs seen

    @classmethod
    def of_header(cls, vcf, columns: int) -> SampleCheck | None:
        """The check for the lines of a cyvcf2 VCF with ``columns`` columns; None without sample columns."""
        if columns < 10:
            return None
        types = {}
        for rec in vcf.header_iter():
            if rec.type == "FORMAT":
                info = rec.info()
                types[info["ID"]] = info["Type"]
        return cls(types, columns - 9)

    def _tail(self, fmt: bytes) -> bytes | None:
        """The pattern of ``FORMAT\\tsample...`` for one FORMAT column; None if a key is undeclared (or ``.``)."""
        keys = fmt.decode("ascii").split(":")
        if not all(key in self.types for key in keys):
            return None
        values = [_GT if key == "GT" else _VALUES.get(self.types[key], _TEXT) for key in keys]
        sample = values[-1]
        for value in reversed(values[:-1]):  # trailing values may be left out
            sample = value + rb"(?::" + sample + rb")?"
        return re.escape(fmt) + (rb"\t" + sample) * self.samples

    def _learn(self, fmt: bytes) -> re.Pattern | None:
        if fmt not in self._lines:
            tail = self._tail(fmt)
            self._lines[fmt] = None if tail is None else re.compile(rb"(?:[^\t\n]*+\t){8}" + tail + rb"\n")
            tails = [t for t in map(self._tail, list(self._lines)[:_MOST_FORMATS]) if t is not None]
            self._block = re.compile(rb"(?:(?:[^\t\n]*+\t){8}(?:" + rb"|".join(tails) + rb")\n)*+") if tails \
                else None
        return self._lines[fmt]

    def vouch(self, text: bytes, formats: list[bytes], ends: np.ndarray) -> np.ndarray:
        """bool per line of ``text`` (lines ending at ``ends``, whose FORMAT columns are ``formats``): True where
        htslib reads the samples as written."""
        if self._block is not None and self._block.fullmatch(text):
            return np.ones(ends.size, dtype=bool)
        new = set(formats).difference(self._lines)
        for fmt in new:
            self._learn(fmt)
        if new and self._block is not None and self._block.fullmatch(text):
            return np.ones(ends.size, dtype=bool)
        ok = np.zeros(ends.size, dtype=bool)
        starts = [0] + ends[:-1].tolist()
        for k, (fmt, a, b) in enumerate(zip(formats, starts, ends.tolist())):
            pattern = self._learn(fmt)
            ok[k] = pattern is not None and pattern.fullmatch(text, a, b) is not None
        return ok


class Lines:
    """Consecutive data lines of a VCF and the columns ``score`` triages them by.

    Attributes:
        text: the lines, each ending in ``\\n`` (a ``\\r`` before it removed, as htslib does).
        ends: where each line ends in ``text`` (after its ``\\n``), int64.
        chroms: CHROM of each line.
        starts: POS - 1 of each line, int64.
        refs: REF of each line.
        alts: the ALT column of each line, as written (``A,T``, ``.``).
        vouched: bool per line: its sample columns are ones htslib reads as written (:class:`SampleCheck`), so the
            line may be written through without htslib parsing it.
    """

    def __init__(self, text: bytes, ends: np.ndarray, columns: int, check: SampleCheck | None) -> None:
        self.text, self.ends = text, ends
        arr = np.frombuffer(text, dtype=np.uint8)
        first = np.concatenate(([0], ends[:-1]))
        tabs = np.flatnonzero(arr == _TAB).reshape(ends.size, columns - 1)  # the scan checked the columns
        self.chroms = column(arr, first, tabs[:, 0]).decode("ascii").split("\n")[:-1]
        self.starts = np.array(column(arr, tabs[:, 0] + 1, tabs[:, 1]).split(b"\n")[:-1]).astype(np.int64) - 1
        self.refs = column(arr, tabs[:, 2] + 1, tabs[:, 3]).decode("ascii").split("\n")[:-1]
        self.alts = column(arr, tabs[:, 3] + 1, tabs[:, 4]).decode("ascii").split("\n")[:-1]
        if check is None:
            self.vouched = np.ones(ends.size, dtype=bool)
        else:
            formats = column(arr, tabs[:, 7] + 1, tabs[:, 8]).split(b"\n")[:-1]
            self.vouched = check.vouch(text, formats, ends)

    def __len__(self) -> int:
        return int(self.ends.size)

    def line(self, k: int) -> bytes:
        """Line ``k`` without its line end."""
        return self.text[(int(self.ends[k - 1]) if k else 0):int(self.ends[k]) - 1]

    def with_lines(self, replaced: dict[int, bytes]) -> bytes:
        """The text with line ``k`` replaced by ``replaced[k]`` (without its line end) for each key."""
        pieces, at = [], 0
        for k in sorted(replaced):
            pieces += [self.text[at:(int(self.ends[k - 1]) if k else 0)], replaced[k], b"\n"]
            at = int(self.ends[k])
        pieces.append(self.text[at:])
        return b"".join(pieces)


def line_chunks(path: str, header_lines: int, columns: int, size: int, check: SampleCheck | None
                ) -> Iterator[Lines]:
    """The data lines of a plain, gzip or BGZF text VCF, at most ``size`` at a time.

    Args:
        path: the file.
        header_lines: lines before the first record (the ``#CHROM`` line included).
        columns: tab-separated columns of every data line.
        size: most lines per chunk.
        check: the sample columns' check; None for a VCF without samples.
    """
    with open_bytes(path) as fh:
        for _ in range(header_lines):
            fh.readline()
        for block in line_blocks(fh, _BLOCK):
            if b"\r" in block:
                block = block.replace(b"\r\n", b"\n")
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == _NL) + 1
            for lo in range(0, ends.size, size):
                a = int(ends[lo - 1]) if lo else 0
                part = ends[lo:lo + size]
                yield Lines(block[a:int(part[-1])], part - a, columns, check)


class LineWriter(PipedOutput):
    """Writes a VCF's text into ``path``: BGZF-compressed (``compressed``, as htslib writes ``.vcf.gz``; tabix
    indexes it; at BGZF compression ``level`` 0-9, None for htslib's default) or plain; ``-`` is standard output.
    A failing write (a full disk) raises
    :class:`~varxpress.errors.OutputError` naming ``name``, the output as the user gave it. When the reader of a
    pipe goes away (``-o - | head``) the text stops there and :attr:`reader_gone` is set: the caller finishes its
    other outputs, then says so (:class:`~varxpress.errors.ReaderGone`)."""

    def __init__(self, path: str, compressed: bool, name: str, level: int | None = None) -> None:
        self.path = name
        if compressed:
            from pysam.libcbgzf import BGZFile  # pysam's htslib BGZF writer; only compressed outputs need it

            self._fh = BGZFile(path, "wb" if level is None else f"wb{level}")
        elif path == "-":
            self._fh = open(sys.stdout.fileno(), "wb", closefd=False)
        else:
            self._fh = open(path, "wb")

    def write(self, text: bytes) -> None:
        self._write_to(self._fh, text)

    def close(self) -> None:
        """Finish the file (the BGZF end-of-file block); idempotent."""
        if not self._fh.closed:
            self._closing(self._fh.close)

    def abort(self) -> None:
        """Close the file of a run that failed (it is about to be removed): a second error of a full disk would
        only hide the first."""
        with contextlib.suppress(OSError):
            self.close()
