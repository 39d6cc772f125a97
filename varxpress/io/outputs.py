"""Opening outputs: the one place where every subcommand's output files are created, replaced and checked.

What an output name means (as for coreutils and bcftools):

* ``-``: standard output, written as the run goes.
* a regular file, or a name that does not exist yet: written into a hidden *partial* file beside the destination,
  ``.NAME.PID-HOST.XXXXXXXX.partial.EXT``, flushed to disk (``fsync``) and renamed over ``NAME`` only when complete,
  so an error, a crash, Ctrl-C or SIGTERM leaves the previous file (or none) and never half a file. Index files
  (``.tbi``, ``.csi``) of the destination are replaced with it: a new one is renamed in after the file, an old one
  that the new file does not get is removed before, so no stale index is ever left beside a new file.
* a symbolic link: followed; its final target is replaced as above and the link stays a link.
* a character device (``/dev/null``, a terminal), a FIFO, a socket, ``/dev/stdout``, ``/dev/fd/N`` (process
  substitution ``>(gzip > x)``): written in place; never renamed over, removed or truncated by rename.
* an existing directory, a block device: refused with a one-line :class:`~varxpress.errors.OutputError`.

Stale partial files: a run that was killed (``kill -9``, a node crash) cannot remove its partial file. A later
successful run of the same output removes partial files of that same output name that follow the naming above
and either were written on this machine (``HOST`` is a hash of the host name) by a process that no longer exists,
or were last modified more than :data:`STALE_AFTER_S` seconds ago (a run on another machine sharing the folder).
Nothing else is ever removed.

:func:`varxpress.io.distinct.check_distinct` refuses, before anything is opened, an output that is the same file as
an input or as another output.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import select
import shutil
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from varxpress.errors import OutputError

__all__ = ["STALE_AFTER_S", "process_alive", "atomic_path", "atomic_folder", "open_output", "in_place", "sweep_partials",
           "partial_pattern", "discard_stdout", "discard_pipe", "pipe_reader_gone", "reader_probe", "PipedOutput",
           "save_figure", "gzip_output"]

log = logging.getLogger(__name__)

STALE_AFTER_S = 24 * 3600  #: a partial file untouched this long is stale even if its writer's state is unknown
_FD_PATHS = ("/dev/fd/", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/proc/self/fd/", "/proc/thread-self/fd/")


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def partial_pattern(name: str) -> re.Pattern:
    """Names of partial files of an output called ``name`` (with their index side files).

    The ``PID-HOST.`` part is optional: older versions named partials ``.NAME.XXXXXXXX.partial.EXT``.
    """
    return re.compile(rf"^\.{re.escape(name)}\.(?:(?P<pid>\d+)-(?P<host>[0-9a-f]{{8}})\.)?[a-z0-9_]{{8}}\.partial")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: it exists and is not a zombie (a killed writer that its parent has not
    reaped yet, as happens in a container without an init process, can write nothing more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[:1]  # the field after the command's name
    except OSError:  # no /proc (not Linux), or the process ended meanwhile
        return True
    return state not in ([b"Z"], [b"X"])


def sweep_partials(dest: str | os.PathLike, now: float | None = None) -> list[str]:
    """Remove stale partial files of ``dest`` (see the module docstring for the rule); return their names."""
    dest = Path(dest)
    folder = dest.parent
    pattern = partial_pattern(dest.name)
    now = time.time() if now is None else now
    host = _host_tag()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = pattern.match(entry.name)
            folder_of_outputs = entry.is_dir(follow_symlinks=False)  # atomic_folder's
            if not match or not (folder_of_outputs or entry.is_file(follow_symlinks=False)):
                continue
            try:
                old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            except OSError:
                continue
            pid = match.group("pid")
            dead = pid is not None and match.group("host") == host and int(pid) != os.getpid() and not process_alive(int(pid))
            if old or dead:
                with contextlib.suppress(OSError):
                    shutil.rmtree(entry.path) if folder_of_outputs else os.unlink(entry.path)
                    removed.append(entry.name)
    if removed:
        log.info("removed %d stale partial file(s) of %s left by an earlier run: %s", len(removed), dest,
                 ", ".join(sorted(removed)))
    return removed


def _fd_path(text: str) -> bool:
    return text.startswith(_FD_PATHS) or re.match(r"^/proc/\d+/fd/", text) is not None


def in_place(path: str | os.PathLike) -> bool:
    """True when ``path`` is written in place: ``-``, ``/dev/fd/N``, a character device, FIFO or socket.

    Raises:
        OutputError: ``path`` is an existing directory, a block device or another special file.
    """
    text = os.fspath(path)
    if text == "-" or _fd_path(text):
        return True
    try:
        st = os.stat(text)  # follows symbolic links
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OutputError(f"cannot write {text}: {exc.strerror or exc}") from exc
    if stat.S_ISREG(st.st_mode):
        return False
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {text}: it is a directory; give a file name inside it")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return True
    raise OutputError(f"cannot write {text}: it is a block device or another special file; varxpress writes only "
                      f"regular files, character devices, FIFOs and standard output")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, extra_suffixes: Iterable[str] = (), stream: bool = False) -> Iterator[str]:
    """Yield the name to write ``path`` through; on success the output is in place (see the module docstring).

    Args:
        path: the output as the user named it (``-`` for standard output).
        extra_suffixes: index suffixes (``.tbi``, ``.csi``) of the output: ``tmp + suffix`` files written beside the
            yielded name are renamed in with it, and old ``path + suffix`` files are removed.
        stream: the caller's writer can write ``-`` and device/FIFO names itself (cyvcf2, open()); the name is
            then yielded as given for in-place outputs. Otherwise (HDF5, figures) the output is written into a
            temporary file and copied into the stream when complete.

    On any exception, KeyboardInterrupt and SIGTERM included, the partial files are removed and a regular
    destination is untouched.

    Raises:
        OutputError: the folder is missing or not writable, the destination is a directory or a block device.
    """
    text = os.fspath(path)
    if in_place(text):
        if stream:
            yield text
        else:
            with _via_temporary(text) as tmp:
                yield tmp
        return
    dest = Path(os.path.realpath(text))  # through symbolic links: their target is replaced, the link stays
    folder = dest.parent
    if not folder.is_dir():
        raise OutputError(_missing_folder(text, dest))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}-{_host_tag()}.",
                                   suffix=".partial" + "".join(dest.suffixes[-2:]), dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {text}: {exc.strerror} (is {Path(text).parent or '.'} writable?)") from exc
    os.close(fd)
    extras = list(extra_suffixes)
    try:
        yield tmp
        try:
            mode = stat.S_IMODE(os.stat(dest).st_mode)  # a replaced file keeps its permissions
        except FileNotFoundError:
            mode = 0o666 & ~_umask()  # mkstemp makes 0600 files; new outputs get the usual permissions
        os.chmod(tmp, mode)
        _fsync(tmp)
        for suffix in extras:  # an old index must never outlive the file it indexed
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(dest) + suffix)
        os.replace(tmp, dest)
        for suffix in extras:
            if os.path.exists(tmp + suffix):
                os.replace(tmp + suffix, str(dest) + suffix)
    except BaseException:
        for p in [tmp] + [tmp + s for s in extras]:
            with contextlib.suppress(OSError):
                os.unlink(p)
        raise
    sweep_partials(dest)


def _missing_folder(text: str, dest: Path) -> str:
    """The message for an output whose folder is missing; through a symbolic link, the link's target's folder."""
    if os.path.islink(text):
        return (f"cannot write {text}: it is a symbolic link to {os.readlink(text)}, whose folder {dest.parent} "
                f"does not exist")
    return f"cannot write {text}: folder {Path(text).parent} does not exist"


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A folder of outputs (``explain``'s pages and their index) that appears complete or not at all.

    The files are written into a hidden partial folder beside ``path``, named as partial files are. When the block
    ends without an error, a new ``path`` is that folder renamed; an existing one gets its files moved in (replacing
    those of the same names, leaving the others). On any exception, KeyboardInterrupt and SIGTERM included, the
    partial folder is removed and ``path`` is as it was.

    Raises:
        OutputError: ``path`` exists and is not a folder, or the folder it goes in is missing or not writable.
    """
    text = os.fspath(path)
    dest = Path(os.path.realpath(text))
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"cannot write the folder {text}: it exists and is not a folder")
    if not dest.parent.is_dir():
        raise OutputError(_missing_folder(text, dest))
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}-{_host_tag()}.", suffix=".partial",
                                    dir=dest.parent))
    except OSError as exc:
        raise OutputError(f"cannot write {text}: {exc.strerror} (is {Path(text).parent or '.'} writable?)") from exc
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes a private folder; outputs get the usual permissions
        if dest.is_dir():
            for entry in sorted(tmp.iterdir()):
                os.replace(entry, dest / entry.name)
            tmp.rmdir()
        else:
            os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sweep_partials(dest)


@contextlib.contextmanager
def _via_temporary(target: str) -> Iterator[str]:
    """A temporary file whose bytes are copied into ``target`` (``-`` = standard output) when complete."""
    fd, tmp = tempfile.mkstemp(prefix=".varxpress.", suffix=".partial")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as src:
            if target == "-":
                sys.stdout.flush()
                shutil.copyfileobj(src, sys.stdout.buffer)
                sys.stdout.buffer.flush()
            else:
                with open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def open_output(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open an output for writing (``mode`` ``"w"``/``"wt"``/``"wb"``) through :func:`atomic_path`.

    ``-`` is standard output (left open); a name ending in ``.gz`` is gzip-compressed.
    """
    text = os.fspath(path)
    binary = "b" in mode
    if text == "-":
        out = sys.stdout.buffer if binary else sys.stdout
        yield out
        out.flush()
        return
    with atomic_path(text, stream=True) as tmp:
        with gzip_output(tmp, binary, **kwargs) if text.lower().endswith(".gz") else open(tmp, mode, **kwargs) as fh:
            yield fh


@contextlib.contextmanager
def gzip_output(path: str, binary: bool = False, **kwargs) -> Iterator[IO]:
    """A gzip stream into ``path`` whose header carries no file name and no time (``gzip.open`` would record the
    temporary file's name and the clock): the same content gives the same bytes on every run. ``kwargs`` go to the
    text layer (``encoding``, ``newline``)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        if binary:
            yield gz
        else:
            with io.TextIOWrapper(gz, **kwargs) as fh:
                yield fh


def pipe_reader_gone(fd: int) -> bool:
    """Whether ``fd`` is the write end of a pipe whose reader went away (``| head`` after its lines): ``poll`` reports
    an error (Linux) or a hang-up (BSD, macOS, a socket) on it. For a writer that cannot see its own failed writes
    (htslib's, through cyvcf2); False for a file, a terminal, a pipe still read, or where ``poll`` is missing."""
    if not hasattr(select, "poll"):  # pragma: no cover - not on Linux or macOS
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    with contextlib.suppress(OSError):
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    return False


def reader_probe(path: str) -> int | None:
    """A descriptor that :func:`pipe_reader_gone` can ask about the reader of the output ``path``: standard output's
    for ``-``, else, for a FIFO or a pipe (``/dev/fd/N``), a second write end of it, opened without waiting (call this
    after the output itself is open: its reader is there then); the caller closes it. None for a file, a device, or
    a pipe that has no reader any more."""
    if path == "-":
        with contextlib.suppress(OSError, ValueError):  # a standard output without a descriptor cannot be asked
            return sys.stdout.fileno()
        return None
    try:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            return None
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: no reader (any more)
        return None


def discard_stdout() -> None:
    """Point standard output at ``/dev/null`` after its reader went away, so later flushes (at exit) cannot fail."""
    with contextlib.suppress(OSError, ValueError):  # a standard output without a descriptor has nothing to point
        _discard([sys.stdout.fileno()])


def discard_pipe(path: str, keep: int | None = None) -> None:
    """After the reader of the output ``path`` went away: point every descriptor of this process open on that pipe
    (a writer's that cannot be told, htslib's, which it still flushes at close) but ``keep`` at ``/dev/null``, so the
    close neither fails nor complains; standard output for ``-``."""
    if path == "-":
        discard_stdout()
        return
    with contextlib.suppress(OSError):
        pipe = os.stat(path)
        fds = [int(name) for name in os.listdir("/dev/fd") if name.isdigit() and int(name) != keep]
        _discard([fd for fd in fds if _same_file(fd, pipe)])


def _same_file(fd: int, st: os.stat_result) -> bool:
    with contextlib.suppress(OSError):
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)
    return False


def _discard(fds: list[int]) -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in fds:
            os.dup2(devnull, fd)
        os.close(devnull)


class PipedOutput:
    """What the streamed writers (the TSV, the VCF text) share: a write that a reader going away (``| head``) stops,
    setting :attr:`reader_gone` (the caller finishes its other outputs, then says so), and that a full disk turns
    into an :class:`~varxpress.errors.OutputError` naming :attr:`path`, the output as the user named it."""

    path: str
    reader_gone: bool = False

    def _write_to(self, fh, data) -> None:
        if self.reader_gone:
            return
        try:
            fh.write(data)
        except BrokenPipeError:
            self._reader_went_away()
        except OSError as exc:
            raise self._failed(exc) from exc

    def _closing(self, close: Callable[[], None]) -> None:
        """Run ``close`` (the last flush and close of this output) as a write: a broken pipe means the reader went
        away, another failure a full disk; an :class:`~varxpress.errors.OutputError` of ours passes as it is."""
        try:
            close()
        except OutputError:
            raise
        except BrokenPipeError:
            self._reader_went_away()
        except OSError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write {self.path}: {exc.strerror or exc} (is the disk full?)")

    def _reader_went_away(self) -> None:
        self.reader_gone = True
        if self.path == "-":
            discard_stdout()


def save_figure(fig, path: str | os.PathLike, **kwargs) -> None:
    """``fig.savefig`` through :func:`atomic_path`; the format comes from the output's extension (PNG by default)."""
    fmt = Path(os.fspath(path)).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)
