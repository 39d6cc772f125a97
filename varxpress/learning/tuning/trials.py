"""The record of finished trials: ``trials.json`` (plain JSON, never a pickle) and its ``trials.tsv`` summary."""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from hyperopt import JOB_STATE_DONE, JOB_STATE_ERROR, Trials

from varxpress.errors import DatasetError

__all__ = ["STORE_FORMAT", "TrialStore", "jsonable"]

log = logging.getLogger(__name__)

STORE_FORMAT = "varxpress-hyperopt-trials"


def jsonable(obj: Any) -> Any:
    """``obj`` through JSON: numpy scalars as numbers, anything else unknown as its text."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


class TrialStore:
    """Finished trials on disk: ``trials.json`` (one JSON record per trial) and ``trials.tsv`` (summary).

    The trial state is plain data: loading it never runs code, unlike a pickle (a ``trials.pkl`` written by an
    earlier varxpress is refused, not unpickled). Each record is a hyperopt trial document (``tid``, ``state``,
    ``spec``, ``result``, ``misc`` with the sampled ``vals``...), times as ISO-8601 strings; :meth:`load` rebuilds
    a ``hyperopt.Trials`` from them. Writes are atomic (temporary file in the same folder, then ``os.replace``), so
    a kill at any moment leaves either the previous or the new file, never a torn one.
    """

    LEGACY = "trials.pkl"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "trials.json"
        self.tsv = self.folder / "trials.tsv"

    @staticmethod
    def finished_docs(trials) -> list[dict]:
        """Deep copies of the finished (done or error) trial documents of ``trials``."""
        return [copy.deepcopy(d) for d in list(trials._dynamic_trials)
                if d["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR)]

    @staticmethod
    def rebuild(docs: list[dict], ids: list[int] = ()) -> Any:
        """A plain ``hyperopt.Trials`` holding ``docs``; ``ids``: trial ids already handed out (kept unused)."""
        out = Trials()
        if docs:
            out._insert_trial_docs(docs)
        out.refresh()
        out._ids.update(int(i) for i in ids)
        out._ids.update(int(d["tid"]) for d in docs)
        return out

    def save(self, trials, config: dict | None = None) -> int:
        """Persist the finished trials; returns how many."""
        docs = self.finished_docs(trials)
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"format": STORE_FORMAT, "version": 2, "config": jsonable(config or {}),
                   "ids": sorted(int(d["tid"]) for d in list(trials._dynamic_trials)),
                   "trials": [_encode_doc(d) for d in docs]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as handle:
            json.dump(payload, handle, indent=1, allow_nan=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._write_tsv(docs)
        return len(docs)

    def _write_tsv(self, docs: list[dict]) -> None:
        tmp = self.tsv.with_name(f".{self.tsv.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as handle:
            handle.write("tid\tstatus\tloss\tval_r2\tepochs_run\thparams\n")
            for t in sorted(docs, key=lambda d: d["tid"]):
                r = t.get("result", {})
                handle.write(f"{t['tid']}\t{r.get('status', 'error')}\t{r.get('loss', 'NA')}\t"
                             f"{r.get('val_r2', 'NA')}\t{r.get('epochs_run', 'NA')}\t"
                             f"{json.dumps(jsonable(r.get('hparams', {})), sort_keys=True)}\n")
        os.replace(tmp, self.tsv)

    def load(self) -> tuple[Any, dict] | None:
        """``(Trials, config)`` from ``trials.json``, or None when there is none.

        Raises:
            DatasetError: the file is not a varxpress trials record, or only a legacy ``trials.pkl`` is there.
        """
        legacy = self.folder / self.LEGACY
        if not self.path.exists():
            if legacy.exists():
                raise DatasetError(f"{legacy} is a pickle written by an older varxpress; it is not loaded, since "
                                   f"unpickling a file can run any code. Move it away to start the search afresh "
                                   f"in {self.folder} (trials are now kept in {self.path.name})")
            return None
        try:
            with open(self.path) as handle:
                payload = json.load(handle)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot resume from {self.path}: {exc}; move it away to start afresh") from exc
        if not isinstance(payload, dict) or payload.get("format") != STORE_FORMAT \
                or not isinstance(payload.get("trials"), list):
            raise DatasetError(f"{self.path} is not a varxpress hyperopt trials file; move it away to start afresh")
        try:
            docs = [_decode_doc(d) for d in payload["trials"]]
            trials = self.rebuild(docs, payload.get("ids", []))
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise DatasetError(f"{self.path}: a trial record is malformed ({exc!r}); move the file away to start "
                               f"afresh") from exc
        if legacy.exists():
            log.warning("%s is ignored (a pickle of an older varxpress; never loaded): trials come from %s",
                        legacy, self.path)
        return trials, payload.get("config", {})


_TIME_KEYS = ("book_time", "refresh_time")


def _encode_doc(doc: dict) -> dict:
    """A hyperopt trial document as JSON data (times as ISO-8601 strings, numpy scalars as numbers)."""
    out = jsonable({k: v for k, v in doc.items() if k not in _TIME_KEYS})
    for key in _TIME_KEYS:
        value = doc.get(key)
        out[key] = value.isoformat() if hasattr(value, "isoformat") else None
    return out


def _decode_doc(doc: dict) -> dict:
    """The inverse of :func:`_encode_doc`."""
    out = dict(doc)
    for key in _TIME_KEYS:
        if out.get(key) is not None:
            out[key] = datetime.datetime.fromisoformat(out[key])
    return out
