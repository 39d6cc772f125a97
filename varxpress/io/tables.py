"""Tables a training set is built from: per-gene label and feature tables, and the records of a FASTA file.

Label and feature tables are TSV, CSV or whitespace-separated (gzip ok), with an optional header row and ``#``
comments; a first row with no number after its first field is taken as a header. Every reader checks what it reads
and raises :class:`~varxpress.errors.DatasetError` naming the file, the row and the value.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from varxpress.errors import DatasetError
from varxpress.io.inputs import open_bytes, text_lines
from varxpress.models.metadata import sha256_file

__all__ = ["LabelTable", "FeatureTable", "read_label_table", "read_feature_table", "read_fasta_records",
           "is_number"]

log = logging.getLogger(__name__)


def _read_table(path: Path, what: str) -> tuple[pd.DataFrame, bool]:
    """Read a TSV/CSV/whitespace table as strings; returns ``(frame, had_header)``.

    A first row with no number after its first field is taken as a header.
    """
    if not Path(path).is_file():
        raise DatasetError(f"{what} {path} does not exist or is not a file")
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        numbered = [(n, line) for n, line in enumerate(handle, 1) if line.strip() and not line.startswith("#")]
    if not numbered:
        raise DatasetError(f"{what} {path} holds no rows")
    first_line = numbered[0][1]
    sep = "\t" if "\t" in first_line else ("," if "," in first_line else None)
    rows = [line.rstrip("\n\r").split(sep) for _, line in numbered]
    width = len(rows[0])
    if width < 2:
        raise DatasetError(f"{what} {path}: need at least two columns (id, value), line {numbered[0][0]} has {width}")
    bad = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if bad is not None:
        raise DatasetError(f"{what} {path}: line {numbered[bad][0]} has {len(rows[bad])} columns, line "
                           f"{numbered[0][0]} has {width}")
    header = not any(is_number(field) for field in rows[0][1:])
    names = [c.strip() for c in rows[0]] if header else [str(i + 1) for i in range(width)]
    body, lines = (rows[1:], [n for n, _ in numbered[1:]]) if header else (rows, [n for n, _ in numbered])
    # indexed by file line, so every message can say where
    frame = pd.DataFrame([[c.strip() for c in row] for row in body], columns=names, dtype=str, index=lines)
    return frame, header


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a number (``float``: ``1e-3``, ``nan`` and ``inf`` included)."""
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
    """The values as floats, missing (``NA``, empty, ``NaN``) as NaN; anything else that is not a finite number is
    an error naming its file line (an infinite label would train to a NaN loss)."""
    numeric = pd.to_numeric(values.str.strip().replace({"NA": "nan", "": "nan", "NaN": "nan"}), errors="coerce")
    bad = (numeric.isna() & ~values.str.strip().str.upper().isin(["NA", "NAN", ""])) | np.isinf(numeric)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{what} {path}, line {values.index[first]}: value {values.iloc[first]!r} is not a "
                           f"finite number")
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
        low = np.flatnonzero(values + pseudocount <= 0)  # NaN compares False: missing values pass
        if low.size:
            raise DatasetError(f"label table {path}, line {frame.index[low[0]]}: id {ids[low[0]]!r} has "
                               f"{values[low[0]]:g}; the log10 transform needs values > -pseudocount ({pseudocount}) "
                               f"({low.size} such value{'s' if low.size > 1 else ''})")
        values = np.log10(values + pseudocount)
    elif transform != "none":
        raise DatasetError(f"label transform {transform!r} is not one of none, log10")
    _refuse_repeated(ids, frame, "label table", path)
    keep = ~np.isnan(values)
    if not keep.all():
        log.warning("label table %s: %d rows without a label dropped", path, int((~keep).sum()))
    source = {"path": str(path.resolve()), "sha256": sha256_file(path), "id_column": id_col,
              "label_column": label_col, "transform": transform,
              "pseudocount": pseudocount if transform == "log10" else None}
    return LabelTable(dict(zip(ids[keep], values[keep].tolist())), source)


def _refuse_repeated(ids: np.ndarray, frame: pd.DataFrame, what: str, path: Path) -> None:
    """DatasetError naming the first id of a table that appears twice, and both its lines."""
    duplicated = pd.Series(ids).duplicated()
    if duplicated.any():
        second = int(np.flatnonzero(duplicated)[0])
        first = int(np.flatnonzero(ids == ids[second])[0])
        raise DatasetError(f"{what} {path}: id {ids[second]!r} appears twice (lines {frame.index[first]} and "
                           f"{frame.index[second]})")


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
    _refuse_repeated(ids, frame, "feature table", path)
    if not header:
        log.warning("feature table %s has no header; features are named by column number", path)
    source = {"path": str(path.resolve()), "sha256": sha256_file(path), "id_column": id_col, "columns": names}
    return FeatureTable({i: row for i, row in zip(ids, matrix)}, [str(n) for n in names], source)


def read_fasta_records(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(id, sequence)`` pairs of a (gzip ok) FASTA; the id is the header up to the first whitespace."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"FASTA {path} does not exist or is not a file")
    records: list[tuple[str, str]] = []
    name, parts = None, []
    with open_bytes(path) as handle:
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
