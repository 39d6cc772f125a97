"""Prepared sets from tables of sequences and measured values (MPRA libraries): ``varxpress prepare --sequence-table``.

A sequence table is a TSV/CSV/whitespace file (gzip allowed, ``#`` comments) with one row per measured sequence:
a sequence column (only ``ACGTN``), a value column and, optionally, an id column. The lentiMPRA files of Agarwal et
al. (Nature 2025) come in two shapes, both read as they are:

* ``seq mean_value`` (WTC11): no ids; rows are named ``<file stem>:<line>`` (1-based line of the file);
* ``seq_id seq mean_value`` (HepG2): ``seq_id`` names the element; ``…_Reversed:`` / ``…_Reversed`` / ``…_R`` is the
  same element in the other orientation.

Several tables can be pooled (e.g. the published validation and test folds) and re-split.

**Adapters.** Library sequences carry constant flanks that a genomic window never has. ``adapters="auto"`` strips
the longest prefix and suffix common to every row (recorded in the set's ``sequence_source``); an explicit
``"PREFIX,SUFFIX"`` strips those and refuses a row that lacks them; ``"none"`` keeps them.

**Leak-free split** (``split_method="group"``). Rows are joined into groups that must stay on one side of the split:
two rows share a group when they name the same element (id with the orientation suffix removed) or when their
sequences are identical or reverse complements of each other (canonical sequence ``min(seq, revcomp(seq))``, after
adapter stripping). Whole groups, in a seeded random order, fill the test split, then the validation split, until
each reaches its size; the rest is training.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varxpress.errors import DatasetError
from varxpress.io.tables import is_number
from varxpress.learning.dataset import SequenceSetOptions, fit_windows
from varxpress.learning.prepared import write_prepared_set
from varxpress.learning.splits import group_split, make_split
from varxpress.models.metadata import sha256_file
from varxpress.sequence.encode import reverse_complement

__all__ = ["SequenceTable", "read_sequence_table", "strip_adapters", "element_of", "canonical", "leak_groups",
           "prepare_sequence_tables"]

log = logging.getLogger(__name__)

_DNA = re.compile(r"^[ACGTN]+$")
_ORIENTATION_SUFFIX = re.compile(r"(_Reversed:?|_R)$")


@dataclass
class SequenceTable:
    """Rows of one or more sequence tables. ``seqs`` upper-case; ``values`` float64; ``source`` provenance."""

    ids: list[str]
    seqs: list[str]
    values: np.ndarray
    source: list[dict] = field(default_factory=list)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".tsv", ".csv", ".txt"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name


def _column(names: list[str], want: str | int | None, what: str, path: Path) -> int | None:
    if want is None:
        return None
    if str(want) in names:
        return names.index(str(want))
    if str(want).isdigit() and 1 <= int(want) <= len(names):
        return int(want) - 1
    raise DatasetError(f"sequence table {path} has no {what} column {want!r}; columns: {', '.join(names)}")


def read_sequence_table(path: str | os.PathLike, id_column: str | int | None = None,
                        label_column: str | int | None = None) -> SequenceTable:
    """Read one sequence table.

    The sequence column is the one headed ``seq`` or ``sequence``, else the one whose first data row is DNA
    (``ACGTN``, any case). The value column is
    ``label_column`` (name or 1-based number), else the last column. The id column is ``id_column``, else the one
    remaining column when there is exactly one, else none (rows are named ``<file stem>:<line>``).

    Rows with an ``NA``/empty value are dropped and counted (``source["rows_without_value"]``).

    Raises:
        DatasetError: missing file, no DNA column, a non-DNA sequence or non-number value (file and line named),
            a duplicated id.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"sequence table {path} does not exist or is not a file")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = [(n, line.rstrip("\n\r")) for n, line in enumerate(handle, 1)
                 if line.strip() and not line.startswith("#")]
    if not lines:
        raise DatasetError(f"sequence table {path} holds no rows")
    sep = "\t" if "\t" in lines[0][1] else ("," if "," in lines[0][1] else None)
    rows = [(n, [c.strip() for c in line.split(sep)]) for n, line in lines]
    width = len(rows[0][1])
    first_is_data = any(_DNA.match(c.upper()) for c in rows[0][1]) and len(rows[0][1][0]) > 0
    header = not (first_is_data and any(is_number(c) for c in rows[0][1]))
    names = rows[0][1] if header else [str(i + 1) for i in range(width)]
    body = rows[1:] if header else rows
    if not body:
        raise DatasetError(f"sequence table {path} has a header but no rows")
    named = [i for i, name in enumerate(names) if header and name.lower() in ("seq", "sequence")]
    seq_col = named[0] if named else next(
        (i for i, c in enumerate(body[0][1]) if _DNA.match(c.upper()) and not is_number(c)), None)
    if seq_col is None:
        raise DatasetError(f"sequence table {path}, line {body[0][0]}: no column holds a DNA sequence (ACGTN)")
    value_col = _column(names, label_column, "value", path)
    value_col = width - 1 if value_col is None else value_col
    id_col = _column(names, id_column, "id", path)
    if id_col is None:
        rest = [i for i in range(width) if i not in (seq_col, value_col)]
        id_col = rest[0] if len(rest) == 1 else None
    ids, seqs, values, dropped = [], [], [], 0
    stem = _stem(path)
    for n, cells in body:
        if len(cells) != width:
            raise DatasetError(f"sequence table {path}, line {n}: {len(cells)} columns, the first row has {width}")
        seq, raw = cells[seq_col].upper(), cells[value_col]
        if not _DNA.match(seq):
            raise DatasetError(f"sequence table {path}, line {n}: sequence holds letters other than ACGTN")
        if raw.upper() in ("", "NA", "NAN"):
            dropped += 1
            continue
        if not is_number(raw):
            raise DatasetError(f"sequence table {path}, line {n}: value {raw!r} is not a number")
        ids.append(cells[id_col] if id_col is not None else f"{stem}:{n}")
        seqs.append(seq)
        values.append(float(raw))
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise DatasetError(f"sequence table {path}: id {dup!r} appears twice")
    if dropped:
        log.warning("sequence table %s: %d rows without a value dropped", path, dropped)
    source = {"path": str(path.resolve()), "sha256": sha256_file(path), "rows": len(ids),
              "rows_without_value": dropped, "id_column": names[id_col] if id_col is not None else None,
              "sequence_column": names[seq_col], "value_column": names[value_col]}
    return SequenceTable(ids, seqs, np.asarray(values, dtype=np.float64), [source])


def _common_prefix(seqs: Sequence[str]) -> str:
    return os.path.commonprefix(list(seqs))


def strip_adapters(seqs: Sequence[str], adapters: str = "none") -> tuple[list[str], str, str]:
    """Remove constant flanks. Returns ``(stripped, prefix, suffix)``.

    Args:
        adapters: ``none``; ``auto`` (the longest prefix and suffix shared by every sequence, which never
            overlap); or ``PREFIX,SUFFIX`` (either may be empty), which every sequence must carry.

    Raises:
        DatasetError: an explicit adapter is missing from a sequence (its index is named), or nothing is left.
    """
    if adapters == "none":
        return list(seqs), "", ""
    if adapters == "auto":
        prefix = _common_prefix(seqs)
        suffix = _common_prefix([s[len(prefix):][::-1] for s in seqs])[::-1]
    else:
        parts = adapters.split(",")
        if len(parts) != 2 or not all(re.match(r"^[ACGTN]*$", p.upper()) for p in parts):
            raise DatasetError(f"adapters {adapters!r}: give none, auto or PREFIX,SUFFIX (DNA letters)")
        prefix, suffix = parts[0].upper(), parts[1].upper()
        for i, s in enumerate(seqs):
            if not (s.startswith(prefix) and s.endswith(suffix)) or len(s) < len(prefix) + len(suffix):
                raise DatasetError(f"sequence {i + 1} does not carry the adapters {prefix!r} ... {suffix!r}")
    out = [s[len(prefix):len(s) - len(suffix)] for s in seqs]
    if any(not s for s in out):
        raise DatasetError("stripping the adapters leaves an empty sequence; use --adapters none")
    return out, prefix, suffix


def element_of(row_id: str) -> str:
    """The element an id names: the id without an orientation suffix (``_Reversed:``, ``_Reversed``, ``_R``)."""
    return _ORIENTATION_SUFFIX.sub("", row_id)


def canonical(seq: str) -> str:
    """``min(seq, reverse complement)``: equal for a sequence and its reverse complement."""
    return min(seq, reverse_complement(seq))


def leak_groups(ids: Sequence[str], seqs: Sequence[str]) -> np.ndarray:
    """Group number of each row: rows naming the same element or with identical / reverse-complementary
    sequences share a group (transitively; union-find). int64, shape ``(n,)``, numbered by first appearance."""
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, (row_id, seq) in enumerate(zip(ids, seqs)):
        for key in (("element", element_of(row_id)), ("sequence", canonical(seq))):
            j = first.setdefault(key, i)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    roots = [find(i) for i in range(len(ids))]
    numbering: dict[int, int] = {}
    return np.asarray([numbering.setdefault(r, len(numbering)) for r in roots], dtype=np.int64)


#: the defaults of :func:`prepare_sequence_tables`: a leak-free group split of 10 % / 10 % of the rows
TABLE_DEFAULTS = SequenceSetOptions(split_method="group", test_size=0.1, valid_size=0.1,
                                    label_units="measured activity")


def prepare_sequence_tables(
    paths: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    adapters: str = "none",
    id_column: str | int | None = None,
    label_column: str | int | None = None,
    value_log_base: float | None = None,
    options: SequenceSetOptions = TABLE_DEFAULTS,
) -> Path:
    """Pool sequence tables, strip adapters, split without leaks and write a prepared set (``kind = sequences``).

    ``options`` (:class:`~varxpress.learning.dataset.SequenceSetOptions`; default :data:`TABLE_DEFAULTS`) lay out
    the windows as for :func:`varxpress.learning.dataset.prepare_sequences` (length: the longest stripped sequence
    by default). ``options.split_method``: ``group``
    (:func:`leak_groups` + :func:`varxpress.learning.splits.group_split`) or ``random`` (rows drawn at random, which
    can leak).
    ``value_log_base``: the values are logarithms to this base (e.g. 2 for a log2 RNA/DNA ratio); they are stored
    as log10 (``value * log10(base)``) so a model trained on the set reports deltas in log10 units like every other
    varxpress model (``label_transform`` records it). None: stored as they are.

    Raises:
        DatasetError: bad tables, adapters, sizes or ``tss_index``.
    """
    tables = [read_sequence_table(p, id_column, label_column) for p in paths]
    ids = [i for t in tables for i in t.ids]
    if len(set(ids)) != len(ids):
        raise DatasetError("the pooled sequence tables share row ids; pool tables with distinct ids")
    seqs, prefix, suffix = strip_adapters([s for t in tables for s in t.seqs], adapters)
    values = np.concatenate([t.values for t in tables])
    transform = "none"
    if value_log_base is not None:
        if not value_log_base > 0 or value_log_base == 1:
            raise DatasetError(f"--value-log-base {value_log_base} must be a positive number other than 1")
        values = values * np.log10(value_log_base)
        transform = f"log{value_log_base:g} to log10 (x {np.log10(value_log_base):.6f})"
    o = options
    fitted = fit_windows(seqs, o.length, o.tss_index, o.align)
    counts = {"rows": len(ids), **fitted.counts,
              "rows_without_value": sum(t.source[0]["rows_without_value"] for t in tables)}
    groups = leak_groups(ids, seqs)
    counts["groups"] = int(groups.max()) + 1 if len(groups) else 0
    if o.split_method == "group":
        split = group_split(groups, o.test_size, o.valid_size, o.seed)
    elif o.split_method == "random":
        split = make_split(len(ids), "random", o.test_size, o.valid_size, o.seed)
    else:
        raise DatasetError(f"split method {o.split_method!r} for sequence tables is not one of group, random")
    attrs = {
        **fitted.attrs(),
        "label_source": {"tables": [t.source[0] for t in tables], "transform": transform},
        "feature_source": None, "feature_names": [], "label_transform": transform, "label_units": o.label_units,
        "split_method": o.split_method, "split_seed": o.seed, "counts": counts,
        "sequence_source": {"tables": [t.source[0]["path"] for t in tables], "adapters": adapters,
                            "stripped_prefix": prefix, "stripped_suffix": suffix},
    }
    log.info("%d rows from %d tables in %d leak groups; stripped adapters %r ... %r", len(ids), len(tables),
             counts["groups"], prefix, suffix)
    write_prepared_set(Path(out_path), fitted.onehot, values, ids, split, np.zeros((len(ids), 0)), attrs,
                       {"group": groups}, o.chunk_rows)
    return Path(out_path)
