"""The prepared training set on disk: :func:`write_prepared_set` writes it, :class:`PreparedSet` reads it back.

A prepared set is one HDF5 file (suffix ``.vxd.h5`` by convention) holding, per gene or sequence, a one-hot window
*wider* than any model window, so the window bounds can be tuned without preparing the set again:

==================  ===========================  ==================================================================
dataset             dtype, shape                 meaning
==================  ===========================  ==================================================================
``onehot``          uint8 ``(n, W, 4)``          columns A, C, G, T; ``N`` = all-zero row; transcription direction
``labels``          float32 ``(n,)``             the label (after ``--label-transform``), e.g. log10(TPM + 0.1)
``ids``             str ``(n,)``                 gene id (genomic mode) or FASTA record id (sequence mode)
``split``           uint8 ``(n,)``               0 = train, 1 = valid, 2 = test
``features``        float32 ``(n, F)``           half-life features standardised with *training-split* mean/sd;
                                                 missing values are 0 (= the training mean)
``features_raw``    float32 ``(n, F)``           the same before standardisation (NaN where missing)
``chrom``,          str / int64 / int8 ``(n,)``  genomic mode only: contig, 0-based TSS base, strand (+1/-1) and the
``tss_pos0``,                                    0-based half-open genomic window ``[start, end)``; ``off_contig``
``strand``,                                      marks windows padded with N past a contig end
``start``, ``end``,
``off_contig``
==================  ===========================  ==================================================================

Root attributes: ``format`` (``"varxpress-dataset"``), ``format_version``, ``kind`` (``genomic`` | ``sequences``),
``upstream`` and ``downstream`` (the stored window: window index ``tss_index == upstream`` is the TSS base, so the
window covers TSS-relative positions ``[-upstream, downstream)``), ``window_length``, ``feature_names``,
``feature_mean``/``feature_sd`` (training-split statistics used for ``features``), ``label_source``,
``feature_source``, ``genome``, ``tss_source`` (JSON: path, sha256 or fingerprint, columns), ``label_transform``,
``label_units``, ``split_method``, ``split_seed``, ``test_chroms``/``valid_chroms``, ``counts`` (JSON: what was
dropped and why), ``varxpress_version`` and ``created``.

``onehot`` is chunked by rows (``chunk_rows`` windows per chunk) and gzip-compressed, so a reader pulls batches
without decompressing the whole file; :meth:`PreparedSet.load` crops to a model window on the way.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from varxpress import __version__
from varxpress.errors import DatasetError
from varxpress.io.outputs import atomic_path
from varxpress.learning.splits import SPLITS
from varxpress.models.metadata import sha256_file

__all__ = ["FORMAT", "FORMAT_VERSION", "SPLITS", "Arrays", "PreparedSet", "write_prepared_set"]

log = logging.getLogger(__name__)

FORMAT = "varxpress-dataset"
FORMAT_VERSION = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")



def _standardize(raw: np.ndarray, split: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise columns with training-split mean/sd (NaN ignored; sd 0 -> 1); missing -> 0."""
    if raw.shape[1] == 0:
        empty = np.zeros(0, dtype=np.float64)
        return raw.astype(np.float32), empty, empty
    train = raw[split == 0]
    with np.errstate(all="ignore"):
        mean = np.nanmean(train, axis=0) if len(train) else np.zeros(raw.shape[1])
        sd = np.nanstd(train, axis=0) if len(train) else np.ones(raw.shape[1])
    mean = np.where(np.isfinite(mean), mean, 0.0)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    std = (raw - mean) / sd
    return np.where(np.isnan(std), 0.0, std).astype(np.float32), mean, sd


def write_prepared_set(path: Path, onehot: np.ndarray, labels: np.ndarray, ids: Sequence[str], split: np.ndarray,
               features_raw: np.ndarray, attrs: dict, columns: dict, chunk_rows: int = 16) -> None:
    """Write a prepared set through :func:`varxpress.io.outputs.atomic_path` (a partial file, renamed when complete).

    ``onehot`` uint8 ``(n, W, 4)``; ``labels`` ``(n,)``; ``split`` codes ``(n,)``; ``features_raw`` ``(n, F)`` (NaN
    where missing; standardised here with the training split's mean and sd); ``attrs`` root attributes (dicts and
    lists stored as JSON); ``columns`` extra per-row datasets (e.g. ``chrom``).
    """
    features, mean, sd = _standardize(features_raw, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, width = onehot.shape[:2]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("onehot", data=onehot, dtype=np.uint8, chunks=(max(1, min(n, chunk_rows)), width, 4),
                          compression="gzip", compression_opts=4, shuffle=True)
        h5.create_dataset("labels", data=labels.astype(np.float32))
        h5.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype())
        h5.create_dataset("split", data=split.astype(np.uint8))
        h5.create_dataset("features", data=features, dtype=np.float32)
        h5.create_dataset("features_raw", data=features_raw.astype(np.float32), dtype=np.float32)
        for name, values in columns.items():
            values = np.asarray(values)
            if values.dtype.kind in "OUS":
                h5.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
            else:
                h5.create_dataset(name, data=values)
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["feature_mean"] = mean
        h5.attrs["feature_sd"] = sd
        h5.attrs["varxpress_version"] = __version__
        h5.attrs["created"] = _now()
        for key, value in attrs.items():
            h5.attrs[key] = json.dumps(value) if isinstance(value, (dict, list, tuple)) or value is None else value
    counts = {name: int((split == code).sum()) for code, name in enumerate(SPLITS)}
    log.info("wrote %s: %d items (train %d, valid %d, test %d), window %d bp, %d features", path, n,
             counts["train"], counts["valid"], counts["test"], width, features_raw.shape[1])



class Arrays(NamedTuple):
    """Rows of a prepared set. ``X`` uint8 ``(n, L, 4)``; ``features`` float32 ``(n, F)``; ``labels`` float32
    ``(n,)``; ``ids`` list of str; ``index`` int64 ``(n,)`` row numbers in the file."""

    X: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    ids: list[str]
    index: np.ndarray


class PreparedSet:
    """Read access to a prepared set (see the module docstring for the layout).

    Args:
        path: the HDF5 file written by ``varxpress prepare``.

    Raises:
        DatasetError: missing file, or not a varxpress dataset / unknown format version.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"prepared set {self.path} does not exist; make it with `varxpress prepare`")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DatasetError(f"{self.path} is not an HDF5 file: {exc}") from exc
        attrs = self._h5.attrs
        if attrs.get("format") != FORMAT:
            self._h5.close()
            raise DatasetError(f"{self.path} is not a varxpress prepared set (no format={FORMAT!r} attribute)")
        if int(attrs["format_version"]) > FORMAT_VERSION:
            self._h5.close()
            raise DatasetError(f"{self.path} has format version {attrs['format_version']}, newer than this "
                               f"varxpress reads ({FORMAT_VERSION}); upgrade varxpress")
        self.upstream = int(attrs["upstream"])
        self.downstream = int(attrs["downstream"])
        self.tss_index = int(attrs["tss_index"])
        self.kind = str(attrs["kind"])
        self.split = self._h5["split"][:]
        self.n = int(self.split.shape[0])
        self.ids = [s.decode() if isinstance(s, bytes) else str(s) for s in self._h5["ids"][:]]
        self.labels = self._h5["labels"][:].astype(np.float32)
        self.features = self._h5["features"][:].astype(np.float32)

    # metadata -------------------------------------------------------------------------------------------------
    def attr(self, name: str, default=None):
        """A root attribute, JSON-decoded where it was stored as JSON."""
        if name not in self._h5.attrs:
            return default
        value = self._h5.attrs[name]
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "[{n\"":
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value.tolist() if isinstance(value, np.ndarray) else value

    @property
    def feature_names(self) -> list[str]:
        return list(self.attr("feature_names", []) or [])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def feature_mean(self) -> np.ndarray:
        return np.asarray(self._h5.attrs["feature_mean"], dtype=np.float64)

    @property
    def feature_sd(self) -> np.ndarray:
        return np.asarray(self._h5.attrs["feature_sd"], dtype=np.float64)

    @property
    def window_length(self) -> int:
        return self.upstream + self.downstream

    @property
    def sha256(self) -> str:
        """SHA-256 of the set's file, read once (a set can be gigabytes; the file is not written while open)."""
        if getattr(self, "_sha256", None) is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    def fingerprint(self) -> dict:
        """Provenance for model metadata: the set's path and sha256, and the label source it records."""
        return {"path": str(self.path.resolve()), "sha256": self.sha256, "kind": self.kind,
                "labels": self.attr("label_source"), "upstream": self.upstream, "downstream": self.downstream,
                "split_method": self.attr("split_method"), "split_seed": self.attr("split_seed"),
                "test_chroms": self.attr("test_chroms"), "valid_chroms": self.attr("valid_chroms"),
                "genome_build": self.attr("genome_build"), "genome": self.attr("genome"),
                "tss_source": self.attr("tss_source"),
                "n": {name: int((self.split == code).sum()) for code, name in enumerate(SPLITS)}}

    # rows ------------------------------------------------------------------------------------------------------
    def indices(self, split: str | Sequence[str] = "train") -> np.ndarray:
        """Sorted row numbers of a split name (``train``/``valid``/``test``/``all``) or a list of names."""
        names = SPLITS if split == "all" else ([split] if isinstance(split, str) else list(split))
        for name in names:
            if name not in SPLITS:
                raise DatasetError(f"split {name!r} is not one of {', '.join(SPLITS)}, all")
        codes = [SPLITS.index(name) for name in names]
        return np.flatnonzero(np.isin(self.split, codes)).astype(np.int64)

    def crop(self, upstream: int, downstream: int, pad: bool = False) -> tuple[int, int, int, int]:
        """Column range ``[a, b)`` of the stored window for a model window, plus N padding ``(left, right)``.

        Raises:
            DatasetError: the model window is wider than the stored one and ``pad`` is false.
        """
        a, b = self.tss_index - upstream, self.tss_index + downstream
        if (a < 0 or b > self.window_length) and not pad:
            raise DatasetError(
                f"model window upstream={upstream}, downstream={downstream} does not fit in {self.path}'s "
                f"stored window upstream={self.upstream}, downstream={self.downstream}; prepare the set with "
                f"--upstream >= {upstream} --downstream >= {downstream}")
        return max(a, 0), min(b, self.window_length), max(-a, 0), max(b - self.window_length, 0)

    def read_onehot(self, rows: np.ndarray, upstream: int, downstream: int, pad: bool = False,
                    block: int = 1024) -> np.ndarray:
        """uint8 ``(len(rows), upstream + downstream, 4)`` windows of sorted ``rows``, cropped (and N-padded)."""
        a, b, left, right = self.crop(upstream, downstream, pad)
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), upstream + downstream, 4), dtype=np.uint8)
        data = self._h5["onehot"]
        if len(rows) == 0:
            return out
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        done = 0
        while done < len(sorted_rows):
            lo = int(sorted_rows[done])
            hi = min(lo + block, self.n)
            stop = int(np.searchsorted(sorted_rows, hi))
            chunk = data[lo:hi, a:b, :]
            out[order[done:stop], left:left + (b - a)] = chunk[sorted_rows[done:stop] - lo]
            done = stop
        return out

    def load(self, split: str | Sequence[str] = "train", upstream: int | None = None,
             downstream: int | None = None, pad: bool = False) -> Arrays:
        """All rows of a split in memory, windows cropped to ``[-upstream, downstream)`` around the TSS.

        ``upstream``/``downstream`` default to the stored window. Memory: ``n * (upstream + downstream) * 4`` bytes.
        """
        upstream = self.upstream if upstream is None else int(upstream)
        downstream = self.downstream if downstream is None else int(downstream)
        rows = self.indices(split)
        X = self.read_onehot(rows, upstream, downstream, pad)
        return Arrays(X, self.features[rows], self.labels[rows], [self.ids[i] for i in rows], rows)

    def read_rows(self, rows: np.ndarray, upstream: int, downstream: int, pad: bool = False) -> Arrays:
        """Arbitrary rows (any order), for batch readers."""
        rows = np.asarray(rows, dtype=np.int64)
        X = self.read_onehot(rows, upstream, downstream, pad)
        return Arrays(X, self.features[rows], self.labels[rows], [self.ids[i] for i in rows], rows)

    def leak_groups(self, rows: np.ndarray) -> np.ndarray | None:
        """The leak group of each of ``rows`` (a sequence set split by groups), None for a set without groups: the
        unit the evaluation's bootstrap resamples."""
        if "group" not in self._h5:
            return None
        return np.asarray(self._h5["group"][:])[np.asarray(rows, dtype=np.int64)]

    def column(self, name: str) -> np.ndarray:
        """A per-row dataset (e.g. ``chrom``, ``off_contig``) as a numpy array."""
        if name not in self._h5:
            raise DatasetError(f"{self.path} has no column {name!r} (kind {self.kind})")
        values = self._h5[name][:]
        return np.array([v.decode() for v in values]) if values.dtype.kind == "O" else values

    def close(self) -> None:
        if getattr(self, "_h5", None) is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> PreparedSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"PreparedSet({str(self.path)!r}, kind={self.kind}, n={self.n}, upstream={self.upstream}, "
                f"downstream={self.downstream}, features={self.n_features})")
