"""The checks of :func:`varxpress.io.variants.scan_vcf_text` on a block of data lines at once, with numpy and
whole-block regular expressions instead of a Python loop per line.

:func:`check_block` is conservative: it says a block is clean only when every line passes every check of the
line-by-line scan, and collects the same undeclared names; when in doubt it returns ``None`` and the caller runs the
line-by-line checks on that block, which find the problem and name its line. So the messages are those of the
line-by-line scan, and only clean blocks (all of them, in a good file) take the fast way.
"""

from __future__ import annotations

import functools
import re
from typing import Iterator

import numpy as np

__all__ = ["check_block", "column", "line_blocks", "INT", "FLOAT"]

_TAB, _NL, _HASH = 9, 10, ord("#")
_TWO_DOTS = re.compile(rb"\.[0-9]*\.")  # a QUAL value with two dots (values are separated by newlines)
#: a number as the VCF text of an Integer / Float value or of QUAL (also used by the line-by-line scan)
INT = re.compile(rb"[+-]?[0-9]+")
FLOAT = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)


@functools.lru_cache(maxsize=256)
def _bad_value(key: bytes, integer: bool) -> re.Pattern:
    """Matches an item ``KEY=VALUES`` of INFO columns (one per line, each line ending in a newline, the text starting
    with a newline too) whose values are not all ``.`` or numbers of the declared type. The pattern starts with the
    literal ``KEY=`` (the item boundary before it is asserted after it), so the regex engine jumps from one
    occurrence to the next instead of trying every position: about 3x faster on genome-shaped INFO columns."""
    value = rb"\.|" + (INT.pattern if integer else rb"(?i:" + FLOAT.pattern + rb")")
    item = re.escape(key) + rb"="
    return re.compile(item + rb"(?<=[;\n]" + item + rb")(?!(?:" + value + rb")(?:,(?:" + value + rb"))*[;\n])")


def line_blocks(fh, size: int) -> Iterator[bytes]:
    """The rest of the binary file ``fh`` as blocks of whole lines (about ``size`` bytes each), every line ending
    in ``\\n`` (one is added to a last line without it)."""
    rest = b""
    while True:
        data = fh.read(size)
        block = rest + data
        if not data and block and not block.endswith(b"\n"):
            block += b"\n"
        cut = block.rfind(b"\n") + 1
        block, rest = block[:cut], block[cut:]
        if block:
            yield block
        if not data:
            return


def column(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bytes:
    """The spans ``arr[starts[i]:ends[i]]``, each followed by a newline, as one bytes object."""
    lengths = ends - starts + 1
    offsets = np.cumsum(lengths)
    idx = np.arange(offsets[-1]) - np.repeat(offsets - lengths - starts, lengths)
    out = arr[idx]
    out[offsets - 1] = _NL
    return out.tobytes()


def _distinct(column: bytes) -> set[bytes]:
    return set(column.split(b"\n")[:-1])


def check_block(block: bytes, columns: int, numeric: dict[bytes, bool], declared: dict[bytes, set[bytes]],
                used: dict[bytes, set[bytes]]) -> int | None:
    """Check the data lines of ``block`` (complete lines, each ending in ``\\n``) as the line-by-line scan does.

    Args:
        block: the lines.
        columns: the number of columns of the ``#CHROM`` line.
        numeric: INFO keys declared ``Type=Integer`` (True) or ``Float`` (False).
        declared: ``{b"contig"|b"INFO"|b"FORMAT"|b"FILTER": names}`` of the header.
        used: the undeclared names found so far (``b"FLAG"``: INFO keys without a value); updated only when the
            block is clean.

    Returns:
        The number of lines when all are clean, else ``None`` (run the line-by-line checks on the block).
    """
    if b"\r" in block:  # line ends of another system: left to the line-by-line scan
        return None
    arr = np.frombuffer(block, dtype=np.uint8)
    nl = np.flatnonzero(arr == _NL)
    n = nl.size
    tabs = np.flatnonzero(arr == _TAB)
    if n == 0 or tabs.size != n * (columns - 1):
        return None
    line_start = np.concatenate(([0], nl[:-1] + 1))
    tabs = tabs.reshape(n, columns - 1)
    if not (np.all(tabs[:, 0] > line_start) and np.all(tabs[:, -1] < nl)):  # each line holds its row of tabs
        return None
    starts = np.column_stack((line_start, tabs + 1))  # field k of line i: [starts[i, k], ends[i, k])
    ends = np.column_stack((tabs, nl))
    if np.any(starts == ends) or np.any(arr[line_start] == _HASH):  # an empty field, a '#' line
        return None
    if column(arr, starts[:, 1], ends[:, 1]).translate(None, b"0123456789\n"):  # POS not all digits
        return None
    if not _qual_ok(column(arr, starts[:, 5], ends[:, 5])):
        return None
    info = column(arr, starts[:, 7], ends[:, 7])
    if numeric:
        items = b"\n" + info  # every item then follows a ';' or a newline
        if any(_bad_value(key, integer).search(items) for key, integer in numeric.items()):
            return None
    _collect(arr, info, starts, ends, columns, declared, used)
    return n


def _qual_ok(quals: bytes) -> bool:
    """QUAL is ``.`` or a number, for the QUAL column of a block (each value followed by a newline): when every
    value is digits and dots with at most one dot (``.`` alone being missing), at once; else value by value by
    the regex."""
    if not quals.translate(None, b"0123456789.\n") and not _TWO_DOTS.search(quals):
        return True
    return all(FLOAT.fullmatch(v) or v == b"." for v in quals.split(b"\n")[:-1])


def _collect(arr: np.ndarray, info: bytes, starts: np.ndarray, ends: np.ndarray, columns: int,
             declared: dict[bytes, set[bytes]], used: dict[bytes, set[bytes]]) -> None:
    """Add the contigs, FILTERs, INFO keys and FORMAT keys of a clean block that the header does not declare."""
    used[b"contig"].update(_distinct(column(arr, starts[:, 0], ends[:, 0])) - declared[b"contig"])
    for value in _distinct(column(arr, starts[:, 6], ends[:, 6])) - declared[b"FILTER"] - {b"."}:
        used[b"FILTER"].update(set(value.split(b";")) - declared[b"FILTER"])
    for keys in _distinct(re.sub(rb"=[^;\n]*", b"=", info)) - {b"."}:  # the INFO columns without their values
        for item in keys.split(b";"):
            key, eq, _ = item.partition(b"=")
            if key not in declared[b"INFO"]:
                used[b"INFO" if eq else b"FLAG"].add(key)
    if columns > 8:
        for value in _distinct(column(arr, starts[:, 8], ends[:, 8])) - {b"."}:
            used[b"FORMAT"].update(set(value.split(b":")) - declared[b"FORMAT"])
