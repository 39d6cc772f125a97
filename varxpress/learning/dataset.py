"""Training sets: build them (``varxpress prepare``) and read them back (:class:`PreparedSet`).

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

import argparse
import datetime as _dt
import gzip
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import pandas as pd

from varxpress import __version__
from varxpress.cli.types import existing_path
from varxpress.sequence.encode import one_hot
from varxpress.errors import DatasetError
from varxpress.models.network import sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SPLITS",
    "LabelTable",
    "FeatureTable",
    "read_label_table",
    "read_feature_table",
    "read_fasta_records",
    "make_split",
    "prepare_genomic",
    "prepare_sequences",
    "PreparedSet",
    "Arrays",
    "sha256_file",
    "add_arguments",
    "run",
]

log = logging.getLogger(__name__)

FORMAT = "varxpress-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*[GT]\d+)\.\d+$")


# -- small helpers -----------------------------------------------------------------------------------------------



def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _strip_version(gene_id: str) -> str:
    match = _ENSEMBL_VERSION.match(gene_id)
    return match.group(1) if match else gene_id


def _read_table(path: Path, what: str) -> tuple[pd.DataFrame, bool]:
    """Read a TSV/CSV/whitespace table as strings; returns ``(frame, had_header)``.

    A first row with no number after its first field is taken as a header.
    """
    if not Path(path).is_file():
        raise DatasetError(f"{what} {path} does not exist or is not a file")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    if not lines:
        raise DatasetError(f"{what} {path} holds no rows")
    sep = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else None)
    rows = [line.rstrip("\n\r").split(sep) for line in lines]
    width = len(rows[0])
    if width < 2:
        raise DatasetError(f"{what} {path}: need at least two columns (id, value), line 1 has {width}")
    bad = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        raise DatasetError(f"{what} {path}: line {bad + 1} has {len(rows[bad])} columns, line 1 has {width}")
    header = not any(_is_strict_number(field) for field in rows[0][1:])
    names = [c.strip() for c in rows[0]] if header else [str(i + 1) for i in range(width)]
    body = rows[1:] if header else rows
    frame = pd.DataFrame([[c.strip() for c in row] for row in body], columns=names, dtype=str)
    return frame, header


def _is_strict_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pick_column(frame: pd.DataFrame, column: str | int | None, default: int, what: str, path: Path) -> str:
    """Column by name, by 1-based number, or the ``default`` (0-based) position."""
    if column is None:
        return frame.columns[default]
    if str(column) in frame.columns:
        return str(column)
    if str(column).isdigit() and 1 <= int(column) <= len(frame.columns):
        return frame.columns[int(column) - 1]
    raise DatasetError(f"{what} {path} has no column {column!r}; columns: {', '.join(map(str, frame.columns))}")


def _to_float(values: pd.Series, what: str, path: Path) -> np.ndarray:
    numeric = pd.to_numeric(values.str.strip().replace({"NA": "nan", "": "nan", "NaN": "nan"}), errors="coerce")
    bad = numeric.isna() & ~values.str.strip().str.upper().isin(["NA", "NAN", ""])
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{what} {path}: value {values.iloc[first]!r} (row {first + 1}) is not a number")
    return numeric.to_numpy(dtype=np.float64)


# -- label and feature tables ------------------------------------------------------------------------------------

@dataclass
class LabelTable:
    """Labels by id. ``values`` are after the transform; ``source`` is provenance (path, sha256, column, transform)."""

    values: dict[str, float]
    source: dict = field(default_factory=dict)


@dataclass
class FeatureTable:
    """Per-gene numeric features (raw, NaN where missing), ``names`` in column order."""

    values: dict[str, np.ndarray]
    names: list[str]
    source: dict = field(default_factory=dict)


def read_label_table(
    path: str | os.PathLike,
    id_column: str | int | None = None,
    label_column: str | int | None = None,
    transform: str = "none",
    pseudocount: float = 0.1,
) -> LabelTable:
    """Read a per-gene label table (TSV, CSV or whitespace; gzip ok; optional header; ``#`` comments).

    Args:
        path: the table.
        id_column: name or 1-based number of the id column (default: the first).
        label_column: name or 1-based number of the label column (default: the second).
        transform: ``none`` (use the values as they are) or ``log10`` (``log10(value + pseudocount)``).
        pseudocount: added before ``log10``.

    Rows with a missing label (``NA``/empty) are dropped and counted in the log.

    Raises:
        DatasetError: missing file/column, a non-numeric label, a duplicated id, negative values under ``log10``.
    """
    path = Path(path)
    frame, _ = _read_table(path, "label table")
    id_col = _pick_column(frame, id_column, 0, "label table", path)
    label_col = _pick_column(frame, label_column, 1, "label table", path)
    values = _to_float(frame[label_col], "label table", path)
    ids = frame[id_col].to_numpy()
    if transform == "log10":
        if np.nanmin(values) + pseudocount <= 0:
            raise DatasetError(f"label table {path}: log10 transform needs values > -pseudocount ({pseudocount})")
        values = np.log10(values + pseudocount)
    elif transform != "none":
        raise DatasetError(f"label transform {transform!r} is not one of none, log10")
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        raise DatasetError(f"label table {path}: id {ids[int(np.flatnonzero(duplicated)[0])]!r} appears twice")
    keep = ~np.isnan(values)
    if not keep.all():
        log.warning("label table %s: %d rows without a label dropped", path, int((~keep).sum()))
    source = {"path": str(path.resolve()), "sha256": sha256_file(path), "id_column": id_col,
              "label_column": label_col, "transform": transform,
              "pseudocount": pseudocount if transform == "log10" else None}
    return LabelTable(dict(zip(ids[keep], values[keep].tolist())), source)


def read_feature_table(path: str | os.PathLike, id_column: str | int | None = None,
                       columns: Sequence[str] | None = None) -> FeatureTable:
    """Read a per-gene feature table: an id column and numeric columns (``NA``/empty = missing).

    Args:
        path: TSV/CSV with a header row naming the features.
        id_column: name or 1-based number of the id column (default: the first).
        columns: feature columns to keep, in this order (default: every other column).

    Raises:
        DatasetError: missing file/column, a non-numeric value, a duplicated id.
    """
    path = Path(path)
    frame, header = _read_table(path, "feature table")
    id_col = _pick_column(frame, id_column, 0, "feature table", path)
    names = list(columns) if columns else [c for c in frame.columns if c != id_col]
    for name in names:
        _pick_column(frame, name, 0, "feature table", path)
    matrix = np.column_stack([_to_float(frame[n], "feature table", path) for n in names])
    ids = frame[id_col].to_numpy()
    if pd.Series(ids).duplicated().any():
        raise DatasetError(f"feature table {path}: an id appears twice")
    if not header:
        log.warning("feature table %s has no header; features are named by column number", path)
    source = {"path": str(path.resolve()), "sha256": sha256_file(path), "id_column": id_col, "columns": names}
    return FeatureTable({i: row for i, row in zip(ids, matrix)}, [str(n) for n in names], source)


def read_fasta_records(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(id, sequence)`` pairs of a (gzip ok) FASTA; the id is the header up to the first whitespace."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"FASTA {path} does not exist or is not a file")
    with open(path, "rb") as handle:
        opener = gzip.open if handle.read(2) == b"\x1f\x8b" else open
    records: list[tuple[str, str]] = []
    name, parts = None, []
    from varxpress.io.inputs import text_lines

    with opener(path, "rb") as handle:
        for lineno, line in text_lines(handle, "ascii"):
            if line is None:
                raise DatasetError(f"FASTA {path}:{lineno}: not a text FASTA (binary data); give a plain or "
                                   f"gzip-compressed FASTA")
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(parts).upper()))
                name, parts = (line[1:].split() or [""])[0], []
            elif line:
                if name is None:
                    raise DatasetError(f"FASTA {path}: sequence before the first '>' header")
                parts.append(line)
    if name is not None:
        records.append((name, "".join(parts).upper()))
    if not records:
        raise DatasetError(f"FASTA {path} holds no records")
    return records


def _match_ids(ids: Sequence[str], table: dict) -> tuple[list, int]:
    """For each id the table key it matches (exact, else Ensembl id without ``.version``), or None."""
    stripped = {}
    for key in table:
        stripped.setdefault(_strip_version(key), key)
    out, n_version = [], 0
    for gene_id in ids:
        if gene_id in table:
            out.append(gene_id)
        elif _strip_version(gene_id) in stripped:
            out.append(stripped[_strip_version(gene_id)])
            n_version += 1
        else:
            out.append(None)
    return out, n_version


# -- split ----------------------------------------------------------------------------------------------------------

def _size(size: float, n: int, what: str) -> int:
    if size < 0:
        raise DatasetError(f"{what} size {size} is negative")
    return int(round(size * n)) if 0 < size < 1 else int(size)


def make_split(
    n: int,
    method: str = "random",
    test_size: float = 1000,
    valid_size: float = 1000,
    seed: int = 0,
    chroms: Sequence[str] | None = None,
    test_chroms: Iterable[str] = (),
    valid_chroms: Iterable[str] = (),
) -> np.ndarray:
    """Assign each of ``n`` items to train (0), valid (1) or test (2).

    Args:
        n: number of items.
        method: ``random`` (``test_size`` and ``valid_size`` items drawn at random) or ``chrom`` (items on
            ``test_chroms`` are test, on ``valid_chroms`` valid; with no ``valid_chroms``, ``valid_size`` items
            drawn at random from the rest).
        test_size, valid_size: counts, or fractions of ``n`` when strictly between 0 and 1.
        seed: seed of the draw.
        chroms: the contig of each item (``method="chrom"``).

    Returns:
        uint8 array, shape ``(n,)``.

    Raises:
        DatasetError: the sizes leave no training items, an unknown method, or chrom split without ``chroms``.
    """
    rng = np.random.default_rng(seed)
    split = np.zeros(n, dtype=np.uint8)
    if method == "random":
        n_test, n_valid = _size(test_size, n, "test"), _size(valid_size, n, "validation")
        if n_test + n_valid >= n:
            raise DatasetError(f"test ({n_test}) + validation ({n_valid}) sizes leave no training items of {n}; "
                               "lower --test-size/--valid-size (fractions like 0.1 are accepted)")
        order = rng.permutation(n)
        split[order[:n_test]] = 2
        split[order[n_test:n_test + n_valid]] = 1
        return split
    if method != "chrom":
        raise DatasetError(f"split method {method!r} is not one of random, chrom")
    if chroms is None:
        raise DatasetError("a chromosome split needs contigs: use it with genomic windows, not --sequences")
    test_set, valid_set = set(test_chroms), set(valid_chroms)
    if not test_set:
        raise DatasetError("--split chrom needs --test-chroms")
    chroms = np.asarray(chroms)
    split[np.isin(chroms, list(test_set))] = 2
    split[np.isin(chroms, list(valid_set))] = 1
    if not valid_set:
        rest = np.flatnonzero(split == 0)
        n_valid = _size(valid_size, len(rest), "validation")
        split[rng.permutation(rest)[:n_valid]] = 1
    if not (split == 2).any():
        raise DatasetError(f"no item lies on the test chromosomes {sorted(test_set)}")
    if not (split == 0).any():
        raise DatasetError("the chromosome split leaves no training items")
    return split


# -- writing ----------------------------------------------------------------------------------------------------------

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


def _write_set(path: Path, onehot: np.ndarray, labels: np.ndarray, ids: Sequence[str], split: np.ndarray,
               features_raw: np.ndarray, attrs: dict, columns: dict, chunk_rows: int = 16) -> None:
    """Write a prepared set through :func:`varxpress.io.outputs.atomic_path` (a partial file, renamed when complete)."""
    from varxpress.io.outputs import atomic_path

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


def _features_for(ids: Sequence[str], table: FeatureTable | None, counts: dict) -> tuple[np.ndarray, list[str]]:
    if table is None:
        return np.zeros((len(ids), 0), dtype=np.float64), []
    keys, n_version = _match_ids(ids, table.values)
    rows = [table.values[k] if k is not None else np.full(len(table.names), np.nan) for k in keys]
    counts["feature_rows_missing"] = sum(k is None for k in keys)
    counts["feature_ids_matched_without_version"] = n_version
    if counts["feature_rows_missing"]:
        log.warning("%d of %d genes have no row in the feature table: their features are set to the training mean",
                    counts["feature_rows_missing"], len(ids))
    matrix = np.vstack(rows) if rows else np.zeros((0, len(table.names)))
    n_missing = int(np.isnan(matrix).sum())
    if n_missing:
        log.info("%d missing feature values are set to the training mean (0 after standardisation)", n_missing)
    return matrix, table.names


def _common_attrs(labels: LabelTable, features: FeatureTable | None, label_units: str, split_method: str,
                  seed: int, counts: dict) -> dict:
    return {
        "label_source": labels.source,
        "feature_source": features.source if features else None,
        "feature_names": features.names if features else [],
        "label_transform": labels.source.get("transform", "none"),
        "label_units": label_units,
        "split_method": split_method,
        "split_seed": seed,
        "counts": counts,
    }


# -- prepare: genomic windows ---------------------------------------------------------------------------------------

def prepare_genomic(
    genome_path: str | os.PathLike,
    tss_path: str | os.PathLike,
    labels: LabelTable,
    out_path: str | os.PathLike,
    features: FeatureTable | None = None,
    upstream: int = 10000,
    downstream: int = 10000,
    tss_offset: int | None = None,
    tss_format: str = "auto",
    contig_map: dict[str, str] | None = None,
    split_method: str = "random",
    test_size: float = 1000,
    valid_size: float = 1000,
    test_chroms: Sequence[str] = (),
    valid_chroms: Sequence[str] = (),
    seed: int = 0,
    label_units: str = "log10 expression",
    chunk_rows: int = 16,
    genome_build: str = "unknown",
) -> Path:
    """Build a prepared set of TSS-centred genomic windows for the genes that have a label.

    Each gene's window is built by :func:`varxpress.sequence.windows.ref_window` with ``WindowSpec(upstream, downstream)``,
    i.e. exactly the reference window ``score`` builds for a model with these bounds (transcription direction,
    reverse-complemented on ``-``, N-padded and flagged past a contig end). A model window ``(U, D)`` with
    ``U <= upstream`` and ``D <= downstream`` is the column range ``[upstream - U, upstream + D)`` of it.

    Args:
        genome_path: reference FASTA (plain or bgzip).
        tss_path: TSS annotation read by :func:`varxpress.io.tss.load_tss` (BED/GTF/GFF3/TSV), as ``score`` reads it.
        labels: from :func:`read_label_table`; genes without a label are left out (counted).
        out_path: the HDF5 file to write.
        features: optional per-gene features (:func:`read_feature_table`).
        upstream, downstream: stored window bounds; models may use any window inside them.
        tss_offset, tss_format: passed to ``load_tss``; ``None`` (default) is the BED convention (start on ``+``,
            end - 1 on ``-``), the same default as ``score``'s.
        split_method, test_size, valid_size, test_chroms, valid_chroms, seed: see :func:`make_split`.
        label_units: what the labels are, recorded for model metadata.
        genome_build: assembly name (e.g. ``hg38``), recorded for model metadata.

    Returns:
        ``out_path`` as a Path.

    Raises:
        DatasetError: no gene has both a TSS and a label, or the split is impossible.
    """
    from varxpress.io.genome import Genome
    from varxpress.io.tss import load_tss
    from varxpress.sequence.windows import WindowSpec, ref_window

    if upstream < 0 or downstream < 1:
        raise DatasetError(f"window bounds upstream={upstream}, downstream={downstream}: need upstream >= 0, "
                           "downstream >= 1 (the TSS base is downstream position 0)")
    genome = Genome(genome_path, contig_map=contig_map)
    _, tss_list = load_tss(tss_path, tss_offset, tss_format)
    counts: dict[str, int] = {"tss_records": len(tss_list), "labels": len(labels.values)}
    keys, n_version = _match_ids([t.gene_id for t in tss_list], labels.values)
    counts["label_ids_matched_without_version"] = n_version
    kept, unknown = [], 0
    for tss, key in zip(tss_list, keys):
        if key is None:
            continue
        if genome.resolve(tss.chrom) is None:
            unknown += 1
            continue
        kept.append((tss, key))
    counts["tss_without_label"] = sum(k is None for k in keys)
    counts["labels_without_tss"] = len(labels.values) - len({k for k in keys if k is not None})
    counts["unknown_contig"] = unknown
    if unknown:
        log.warning("%d labelled genes lie on contigs absent from %s and are left out", unknown, genome_path)
    if counts["labels_without_tss"]:
        log.warning("%d labelled ids have no TSS in %s and are left out", counts["labels_without_tss"], tss_path)
    if not kept:
        raise DatasetError(f"no gene of {tss_path} has a label in {labels.source.get('path')}: check the id column "
                           "(--id-column) and the id spelling (Ensembl versions are matched either way)")
    spec = WindowSpec(upstream, downstream)
    n, width = len(kept), upstream + downstream
    onehot = np.zeros((n, width, 4), dtype=np.uint8)
    cols = {k: [] for k in ("chrom", "tss_pos0", "strand", "start", "end", "off_contig")}
    for i, (tss, _) in enumerate(kept):
        window = ref_window(genome, tss, spec)
        onehot[i] = one_hot(window.seq)
        for key, value in (("chrom", genome.resolve(tss.chrom)), ("tss_pos0", tss.pos0),
                           ("strand", 1 if tss.strand == "+" else -1), ("start", window.start),
                           ("end", window.end), ("off_contig", window.off_contig)):
            cols[key].append(value)
    counts["off_contig"] = int(sum(cols["off_contig"]))
    if counts["off_contig"]:
        log.warning("%d windows run off a contig end and are padded with N (flagged in 'off_contig')",
                    counts["off_contig"])
    resolved_test = [genome.resolve(c) or c for c in test_chroms]
    resolved_valid = [genome.resolve(c) or c for c in valid_chroms]
    split = make_split(n, split_method, test_size, valid_size, seed, cols["chrom"], resolved_test, resolved_valid)
    ids = [tss.gene_id for tss, _ in kept]
    label_values = np.array([labels.values[key] for _, key in kept], dtype=np.float64)
    raw, _ = _features_for(ids, features, counts)
    attrs = _common_attrs(labels, features, label_units, split_method, seed, counts)
    attrs.update({
        "kind": "genomic", "genome_build": genome_build, "upstream": upstream, "downstream": downstream, "tss_index": upstream,
        "window_length": width, "test_chroms": resolved_test, "valid_chroms": resolved_valid,
        "genome": {"path": str(Path(genome_path).resolve()), "fingerprint": genome.fingerprint()},
        "tss_source": {"path": str(Path(tss_path).resolve()), "sha256": sha256_file(tss_path),
                       "offset": tss_offset, "format": tss_format},
    })
    cols = {k: np.asarray(v, dtype=object if k == "chrom" else (bool if k == "off_contig" else np.int64))
            for k, v in cols.items()}
    cols["strand"] = cols["strand"].astype(np.int8)
    _write_set(Path(out_path), onehot, label_values, ids, split, raw, attrs, cols, chunk_rows)
    genome.close()
    return Path(out_path)


# -- prepare: sequences given directly ------------------------------------------------------------------------------

def fit_length(seq: str, length: int, align: str = "center") -> str:
    """Pad with ``N`` or crop ``seq`` to ``length``: ``center`` keeps the middle (extra base on the right),
    ``left`` keeps the start, ``right`` keeps the end."""
    diff = length - len(seq)
    if diff == 0:
        return seq
    if align == "left":
        return seq[:length] + "N" * max(diff, 0)
    if align == "right":
        return "N" * max(diff, 0) + seq[max(-diff, 0):]
    if align != "center":
        raise DatasetError(f"align {align!r} is not one of center, left, right")
    if diff > 0:
        return "N" * (diff // 2) + seq + "N" * (diff - diff // 2)
    cut = -diff // 2
    return seq[cut:cut + length]


def prepare_sequences(
    fasta_path: str | os.PathLike,
    labels: LabelTable,
    out_path: str | os.PathLike,
    features: FeatureTable | None = None,
    length: int | None = None,
    tss_index: int | None = None,
    align: str = "center",
    split_method: str = "random",
    test_size: float = 1000,
    valid_size: float = 1000,
    seed: int = 0,
    label_units: str = "log10 expression",
    chunk_rows: int = 16,
) -> Path:
    """Build a prepared set from sequences given directly (FASTA records whose ids are in the label table).

    Every sequence is brought to ``length`` bases (default: the longest record) by :func:`fit_length` (N padding
    or cropping, ``align`` = center/left/right). ``tss_index`` (default ``length // 2``) is the window index that
    counts as the TSS, so ``upstream = tss_index`` and ``downstream = length - tss_index``. Sequences are used as
    they are (no reverse complement). Records without a label are left out (counted); a label without a record
    too.

    Raises:
        DatasetError: no record has a label, duplicated record ids, a bad ``tss_index``.
    """
    records = read_fasta_records(fasta_path)
    ids_all = [r[0] for r in records]
    if len(set(ids_all)) != len(ids_all):
        dup = pd.Series(ids_all)[pd.Series(ids_all).duplicated()].iloc[0]
        raise DatasetError(f"FASTA {fasta_path}: record id {dup!r} appears twice")
    keys, _ = _match_ids(ids_all, labels.values)
    kept = [(rid, seq, key) for (rid, seq), key in zip(records, keys) if key is not None]
    counts = {"records": len(records), "labels": len(labels.values),
              "records_without_label": sum(k is None for k in keys),
              "labels_without_record": len(labels.values) - len({k for k in keys if k is not None})}
    if not kept:
        raise DatasetError(f"no record of {fasta_path} has a label in {labels.source.get('path')}")
    for what in ("records_without_label", "labels_without_record"):
        if counts[what]:
            log.warning("%d %s are left out", counts[what], what.replace("_", " "))
    length = int(length or max(len(s) for _, s, _ in kept))
    tss_index = length // 2 if tss_index is None else int(tss_index)
    if not 0 <= tss_index < length:
        raise DatasetError(f"--tss-index {tss_index} lies outside the sequence length {length}")
    counts["padded"] = sum(len(s) < length for _, s, _ in kept)
    counts["cropped"] = sum(len(s) > length for _, s, _ in kept)
    if counts["padded"] or counts["cropped"]:
        log.info("%d sequences padded with N and %d cropped to %d bp (%s-aligned)", counts["padded"],
                 counts["cropped"], length, align)
    onehot = np.zeros((len(kept), length, 4), dtype=np.uint8)
    for i, (_, seq, _) in enumerate(kept):
        onehot[i] = one_hot(fit_length(seq, length, align))
    split = make_split(len(kept), split_method, test_size, valid_size, seed)
    ids = [rid for rid, _, _ in kept]
    raw, _ = _features_for(ids, features, counts)
    attrs = _common_attrs(labels, features, label_units, split_method, seed, counts)
    attrs.update({
        "kind": "sequences", "upstream": tss_index, "downstream": length - tss_index, "tss_index": tss_index,
        "window_length": length, "align": align, "test_chroms": [], "valid_chroms": [],
        "sequence_source": {"path": str(Path(fasta_path).resolve()), "sha256": sha256_file(fasta_path)},
    })
    label_values = np.array([labels.values[key] for _, _, key in kept], dtype=np.float64)
    _write_set(Path(out_path), onehot, label_values, ids, split, raw, attrs, {}, chunk_rows)
    return Path(out_path)


# -- reading ----------------------------------------------------------------------------------------------------------

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

    def fingerprint(self) -> dict:
        """Provenance for model metadata: the set's path and sha256, and the label source it records."""
        return {"path": str(self.path.resolve()), "sha256": sha256_file(self.path), "kind": self.kind,
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


# -- CLI --------------------------------------------------------------------------------------------------------------

def _size_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a count nor a fraction") from exc
    if value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: give a count (integer) or a fraction between 0 and 1")
    return value


def _chroms_arg(text: str) -> list[str]:
    return [c for c in re.split(r"[,\s]+", text) if c]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress prepare``."""
    from varxpress.cli.types import non_negative_int, positive_float, positive_int

    src = parser.add_argument_group("input")
    src.add_argument("--labels", type=existing_path,
                     help="per-gene label table (TSV/CSV, optional header): id and expression value")
    src.add_argument("--sequence-table", type=existing_path, action="append", default=None,
                     help="table of sequences and measured values (`seq value` or `id seq value`, e.g. an MPRA "
                          "library), instead of --labels; repeat to pool tables (see docs/training.md)")
    src.add_argument("--adapters", default="none",
                     help="--sequence-table: constant flanks to strip: none (default), auto (the longest prefix "
                          "and suffix every row shares) or PREFIX,SUFFIX")
    src.add_argument("--value-log-base", type=float, default=None,
                     help="--sequence-table: the values are logarithms to this base (2 for a log2 RNA/DNA ratio); "
                          "they are stored as log10 so deltas come out in log10 units (default: as they are)")
    src.add_argument("--genome", type=existing_path, help="reference FASTA (plain or bgzip), with --tss")
    src.add_argument("--tss", type=existing_path, help="TSS annotation: BED, GTF, GFF3 or TSV (as for `score`)")
    src.add_argument("--sequences", type=existing_path,
                     help="FASTA of sequences to use directly instead of --genome/--tss (ids as in --labels)")
    src.add_argument("--features", type=existing_path,
                     help="optional per-gene feature table with a header (e.g. mRNA half-life features)")
    src.add_argument("--feature-columns", type=_chroms_arg, default=None,
                     help="comma-separated feature columns to use (default: all but the id column)")
    src.add_argument("--id-column", default=None, help="id column of the label/feature table (name or 1-based)")
    src.add_argument("--label-column", default=None, help="label column (name or 1-based number; default: 2nd)")
    src.add_argument("--label-transform", choices=("none", "log10"), default="none",
                     help="transform labels: log10(value + --pseudocount) (default: none)")
    src.add_argument("--pseudocount", type=positive_float, default=0.1, help="pseudocount for --label-transform log10")
    src.add_argument("--label-units", default="log10 expression",
                     help="what the labels are, recorded in the set and in models trained on it")
    src.add_argument("--tss-offset", type=int, default=None,
                     help="TSS = BED start + OFFSET on both strands (10000 for the Xpresso TSS +- 10 kb BED); "
                          "default: BED convention, start on + and end-1 on -, as for `score`")
    src.add_argument("--tss-format", default="auto", help="TSS file format: auto, bed, gtf, gff3, tsv")
    src.add_argument("--contig-map", type=existing_path, help="two-column TSV of contig name aliases")
    src.add_argument("--genome-build", default="unknown", help="assembly name recorded in the set, e.g. hg38")
    win = parser.add_argument_group("window")
    win.add_argument("--upstream", type=non_negative_int, default=10000,
                     help="stored bases upstream of the TSS (default 10000; models may use fewer)")
    win.add_argument("--downstream", type=non_negative_int, default=10000,
                     help="stored bases from the TSS on, TSS included (default 10000)")
    win.add_argument("--length", type=positive_int, default=None,
                     help="--sequences: window length (default: longest record); shorter ones are N-padded")
    win.add_argument("--tss-index", type=non_negative_int, default=None,
                     help="--sequences: window index of the TSS (default: length // 2)")
    win.add_argument("--align", choices=("center", "left", "right"), default="center",
                     help="--sequences: how records of another length are padded/cropped (default: center)")
    spl = parser.add_argument_group("split")
    spl.add_argument("--split", choices=("random", "chrom", "group"), default=None,
                     help="random genes, held-out chromosomes (--test-chroms/--valid-chroms), or, for "
                          "--sequence-table, whole leak groups (same element in either orientation, identical or "
                          "reverse-complementary sequence) (default: group for --sequence-table, else random)")
    spl.add_argument("--test-size", type=_size_arg, default=1000.0,
                     help="test items: a count or a fraction (default 1000, as Xpresso)")
    spl.add_argument("--valid-size", type=_size_arg, default=1000.0,
                     help="validation items: a count or a fraction (default 1000)")
    spl.add_argument("--test-chroms", type=_chroms_arg, default=[], help="--split chrom: e.g. chr8,chr9")
    spl.add_argument("--valid-chroms", type=_chroms_arg, default=[],
                     help="--split chrom: validation chromosomes (default: --valid-size random genes)")
    spl.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random split (default 0)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output prepared set (.vxd.h5)")


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress prepare``; returns the exit status."""
    if args.sequence_table:
        from varxpress.learning.seqtable import prepare_sequence_tables

        if args.labels or args.sequences or args.genome or args.tss or args.features:
            raise DatasetError("--sequence-table carries its own values: give it without --labels, --sequences, "
                               "--genome, --tss or --features")
        prepare_sequence_tables(args.sequence_table, args.out, adapters=args.adapters, id_column=args.id_column,
                                label_column=args.label_column, length=args.length, tss_index=args.tss_index,
                                align=args.align, split_method=args.split or "group", test_size=args.test_size,
                                valid_size=args.valid_size, seed=args.seed, label_units=args.label_units,
                                value_log_base=args.value_log_base)
        return 0
    split = args.split or "random"
    if split == "group":
        raise DatasetError("--split group needs --sequence-table (groups come from sequences and element ids)")
    if not args.labels:
        raise DatasetError("give --labels (with --genome/--tss or --sequences) or --sequence-table")
    if bool(args.sequences) == bool(args.genome or args.tss):
        raise DatasetError("give either --genome and --tss (genomic windows) or --sequences (a FASTA), not both")
    labels = read_label_table(args.labels, args.id_column, args.label_column, args.label_transform,
                              args.pseudocount)
    features = (read_feature_table(args.features, args.id_column, args.feature_columns)
                if args.features else None)
    common = dict(features=features, split_method=split, test_size=args.test_size,
                  valid_size=args.valid_size, seed=args.seed, label_units=args.label_units)
    if args.sequences:
        prepare_sequences(args.sequences, labels, args.out, length=args.length, tss_index=args.tss_index,
                          align=args.align, **common)
    else:
        if not (args.genome and args.tss):
            raise DatasetError("genomic windows need both --genome and --tss")
        contig_map = None
        if args.contig_map:
            from varxpress.io.genome import read_contig_map
            contig_map = read_contig_map(args.contig_map)
        prepare_genomic(args.genome, args.tss, labels, args.out, upstream=args.upstream,
                        downstream=args.downstream, tss_offset=args.tss_offset, tss_format=args.tss_format,
                        contig_map=contig_map, genome_build=args.genome_build, test_chroms=args.test_chroms, valid_chroms=args.valid_chroms,
                        **common)
    return 0
