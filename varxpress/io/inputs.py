"""The one way ``varxpress score`` opens its input VCF: as a file that can be read more than once.

Scoring reads the input several times (the text pre-scan of :func:`varxpress.io.variants.scan_vcf_text`, then htslib,
and a region query seeks through an index). A regular file allows that; standard input (``-``), a named pipe
(``mkfifo``) or a process substitution (``<(zcat x.vcf.gz)``, a ``/dev/fd/N`` pipe) can be read only once, so
:func:`seekable_input` copies those, once, to a temporary file (in ``$TMPDIR``) that every later step reads and that
is removed at the end. The pre-scan therefore checks standard input exactly as it checks a file.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import stat
import tempfile
from typing import BinaryIO, Iterator

from varxpress.errors import VcfError

log = logging.getLogger(__name__)

#: How messages name standard input.
STDIN_NAME = "<stdin>"


def input_name(path: str) -> str:
    """How messages name the input ``path`` (``-`` is standard input)."""
    return STDIN_NAME if path == "-" else path


def is_regular_file(path: str) -> bool:
    """Whether ``path`` (followed through symlinks) is a regular file, which can be read many times and seeked."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def seekable_input(path: str) -> Iterator[str]:
    """A path to the contents of ``path`` that can be opened and read any number of times.

    ``path`` itself when it is a regular file; for ``-`` (standard input), a FIFO, a ``/dev/fd/N`` pipe or a
    character device, a temporary copy of everything it delivers, removed when the ``with`` block ends.

    Raises:
        VcfError: ``path`` cannot be opened or read (the message names it).
    """
    if path != "-" and is_regular_file(path):
        yield path
        return
    name = input_name(path)
    fd, spool = tempfile.mkstemp(prefix="varxpress-input-", suffix=".spool")
    try:
        with os.fdopen(fd, "wb") as dst:
            try:
                # file descriptor 0 itself, as htslib would read it (not a Python-level replacement of sys.stdin)
                with open(0 if path == "-" else path, "rb", closefd=path != "-") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except OSError as exc:
                raise VcfError(f"{name}: cannot read the input ({exc.strerror or exc})") from exc
        log.debug("%s is not a regular file: read once into %s (%d bytes)", name, spool, os.path.getsize(spool))
        yield spool
    finally:
        with contextlib.suppress(OSError):
            os.unlink(spool)


def open_bytes(path: str | os.PathLike) -> BinaryIO:
    """A file opened for reading bytes: decompressed if it is gzip (BGZF included), as is otherwise."""
    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def text_lines(handle: BinaryIO, encoding: str = "utf-8") -> Iterator[tuple[int, str | None]]:
    """``(line number, stripped line)`` of a file opened in binary mode; ``None`` for a line that is not text
    (not ``encoding``, or holding a NUL byte), so a reader can refuse a binary file naming its line."""
    for lineno, raw in enumerate(handle, start=1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError:
            yield lineno, None
            continue
        yield lineno, None if "\0" in line else line.strip()
