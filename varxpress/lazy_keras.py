"""Keras (and TensorFlow), imported on first use, with Ctrl-C and SIGTERM held until the import is done.

:func:`held_interrupts` is also what the scoring pool submits jobs under (its workers start then).

TensorFlow takes seconds to start, so nothing imports it before a network is built or trained; that first import
can therefore happen in the middle of a run (``score --no-fast-path``, after its output was opened). A signal
handler that raises (``KeyboardInterrupt``, :class:`varxpress.errors.Terminated`) while TensorFlow's C++ start-up
is running has its exception printed and dropped there, and the import is retried: a ``kill`` of such a run ended
with status 0 and a complete output. :func:`import_keras` holds SIGINT and SIGTERM for the length of the import and
delivers them afterwards, to the handlers they had, so the run stops as it should.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Any, Iterator

__all__ = ["import_keras", "held_interrupts"]

_HELD = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs and deliver them, once each, when it ends.

    Only signals with a Python handler are held (a default or ignored disposition stays as it was: such a signal
    raises nothing that could be dropped). Outside the main thread, where handlers cannot be set, a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {}
    for signum in _HELD:
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = signal.signal(signum, lambda s, _frame: arrived.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):  # in order of arrival, each once
            signal.raise_signal(signum)


def import_keras() -> Any:
    """The ``keras`` module, imported with interrupts held the first time (see the module docstring)."""
    module = sys.modules.get("keras")
    if module is not None and hasattr(module, "Model"):  # already imported (not a half-imported module)
        return module
    with held_interrupts():
        import keras  # TensorFlow starts here, seconds: only when a network is built or trained

    return keras
