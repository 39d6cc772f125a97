"""Output = input: the check every subcommand makes, before anything is opened, that no output is one of its inputs
(or another output).

Files are compared by device and inode where they exist (so hard and symbolic links and ``./`` spellings are one
file), by resolved path otherwise. Standard streams count where the shell opened them on a file: ``score - -o x.vcf
< x.vcf`` and ``score x.vcf >> x.vcf`` name one file twice. Character devices (``/dev/null``, a terminal) destroy
nothing and are never compared.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Iterable, Mapping

from varxpress.errors import UsageError

__all__ = ["check_distinct"]


def _identity(path: str, stream=None) -> tuple | None:
    """(device, inode) of an existing file, else its resolved path; None for a character device (``/dev/null``).

    ``-`` is the standard stream ``stream`` (standard output by default): what it is open on (``score x.vcf >>
    x.vcf``, ``score - < x.vcf``), None where it is not open.
    """
    try:
        st = os.fstat((stream or sys.stdout).fileno()) if path == "-" else os.stat(path)
    except (OSError, ValueError, AttributeError):
        return None if path == "-" else ("path", os.path.realpath(path))
    if stat.S_ISCHR(st.st_mode):
        return None  # writes to /dev/null or a terminal destroy nothing; two of them are fine
    return ("inode", st.st_dev, st.st_ino)


def _is_file(stream) -> bool:
    """Whether a standard stream is open on a regular file (a redirection, not a pipe, terminal or socket)."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def check_distinct(inputs: Mapping[str, Iterable[str]], outputs: Mapping[str, Iterable[str]]) -> None:
    """Refuse an output that is the same file as an input or as another output, before anything is opened.

    Args:
        inputs: option name (``--fasta``) -> the paths it reads (``-`` = standard input: compared where it is a
            file, as in ``score - -o x.vcf < x.vcf``).
        outputs: option name -> the paths it writes (``-`` = standard output: compared with the inputs where it is
            a file, as in ``score x.vcf >> x.vcf``).

    Raises:
        UsageError: one line naming both options and the path.
    """
    seen: dict[tuple, tuple[str, str]] = {}
    for option, paths in inputs.items():
        for p in paths:
            if p is None:
                continue
            if p == "-":  # standard input: only a file can be destroyed (a pipe or socket may be stdout's too)
                ident = _identity("-", sys.stdin) if _is_file(sys.stdin) else None
                p = "- (standard input)"
            else:
                ident = _identity(os.fspath(p))
            if ident is not None:
                seen.setdefault(ident, (option, os.fspath(p)))
    taken: dict[tuple, tuple[str, str]] = {}
    stdout_by = None
    for option, paths in outputs.items():
        for p in paths:
            if p is None:
                continue
            p = os.fspath(p)
            if p == "-":
                if stdout_by is not None:
                    raise UsageError(f"{stdout_by} and {option} both write to standard output (-); send one of "
                                     f"them to a file")
                stdout_by = option
            ident = _identity(p)
            if ident is None:
                continue
            if ident in seen and (p != "-" or _is_file(sys.stdout)):
                other, where = seen[ident]
                p = "- (standard output)" if p == "-" else p
                raise UsageError(f"output {option} {p} is the input {other} {where}: writing it would destroy the "
                                 f"input; choose another output name")
            if ident in taken:
                other, where = taken[ident]
                raise UsageError(f"outputs {other} {where} and {option} {p} are the same file; give them different "
                                 f"names")
            taken[ident] = (option, p)
