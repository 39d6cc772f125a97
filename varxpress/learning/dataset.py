"""Building training sets (``varxpress prepare``): genomic TSS windows, or sequences given directly.

Labels and features come from :mod:`varxpress.io.tables`; the split from :mod:`varxpress.learning.splits`; the
result is written by :func:`varxpress.learning.prepared.write_prepared_set` and read back with
:class:`varxpress.learning.prepared.PreparedSet` (its module documents the file layout). Sets built from tables of
sequences and measured values (MPRA libraries) are made by :mod:`varxpress.learning.seqtable`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from varxpress.errors import DatasetError
from varxpress.io.genome import Genome
from varxpress.io.tables import FeatureTable, LabelTable, read_fasta_records
from varxpress.learning.prepared import write_prepared_set
from varxpress.learning.splits import make_split
from varxpress.models.metadata import sha256_file
from varxpress.models.registry import load_tss_set
from varxpress.sequence.encode import one_hot
from varxpress.sequence.windows import WindowSpec, ref_window

__all__ = ["prepare_genomic", "prepare_sequences", "SequenceSetOptions", "FittedWindows", "fit_length",
           "fit_windows"]

log = logging.getLogger(__name__)

_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*[GT]\d+)\.\d+$")


def _strip_version(gene_id: str) -> str:
    match = _ENSEMBL_VERSION.match(gene_id)
    return match.group(1) if match else gene_id



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



def _features_for(ids: Sequence[str], table: FeatureTable | None, counts: dict) -> tuple[np.ndarray, list[str]]:
    if table is None:
        return np.zeros((len(ids), 0), dtype=np.float64), []
    keys, n_version = _match_ids(ids, table.values)
    rows = [table.values[k] if k is not None else np.full(len(table.names), np.nan) for k in keys]
    counts["feature_rows_missing"] = sum(k is None for k in keys)
    counts["feature_ids_matched_without_version"] = n_version
    if ids and counts["feature_rows_missing"] == len(ids):
        raise DatasetError(f"no gene has a row in the feature table {table.source.get('path')} (its ids look like "
                           f"{', '.join(map(str, list(table.values)[:3]))}; the genes' like {', '.join(ids[:3])}): "
                           f"check the id column (--id-column) and the id spelling")
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
        tss_path: TSS annotation read by :func:`varxpress.models.registry.load_tss_set` (BED/GTF/GFF3/TSV), as ``score`` reads it.
        labels: from :func:`varxpress.io.tables.read_label_table`; genes without a label are left out (counted).
        out_path: the HDF5 file to write.
        features: optional per-gene features (:func:`varxpress.io.tables.read_feature_table`).
        upstream, downstream: stored window bounds; models may use any window inside them.
        tss_offset, tss_format: passed to ``load_tss_set``; ``None`` (default) is the BED convention (start on ``+``,
            end - 1 on ``-``), the same default as ``score``'s.
        split_method, test_size, valid_size, test_chroms, valid_chroms, seed: see
            :func:`varxpress.learning.splits.make_split`.
        label_units: what the labels are, recorded for model metadata.
        genome_build: assembly name (e.g. ``hg38``), recorded for model metadata.

    Returns:
        ``out_path`` as a Path.

    Raises:
        DatasetError: no gene has both a TSS and a label, or the split is impossible.
    """
    if upstream < 0 or downstream < 1:
        raise DatasetError(f"window bounds upstream={upstream}, downstream={downstream}: need upstream >= 0, "
                           "downstream >= 1 (the TSS base is downstream position 0)")
    genome = Genome(genome_path, contig_map=contig_map)
    tss_list = load_tss_set(None, tss_path, tss_offset, tss_format).tss
    counts: dict[str, int] = {"tss_records": len(tss_list), "labels": len(labels.values)}
    keys, n_version = _match_ids([t.gene_id for t in tss_list], labels.values)
    counts["label_ids_matched_without_version"] = n_version
    kept, unknown, absent, beyond = [], 0, set(), []
    for tss, key in zip(tss_list, keys):
        if key is None:
            continue
        chrom = genome.resolve(tss.chrom)
        if chrom is None:
            unknown += 1
            absent.add(tss.chrom)
            continue
        if not 0 <= tss.pos0 < genome.length(chrom):  # a TSS file of another assembly with the same contig names
            beyond.append(f"{tss.gene_id} at {tss.chrom}:{tss.pos0 + 1:,} ({chrom} has {genome.length(chrom):,} bp)")
            continue
        kept.append((tss, key))
    counts["tss_beyond_contig"] = len(beyond)
    if beyond:
        what = (f"{len(beyond)} labelled genes have their TSS past the end of its contig in {genome_path} (e.g. "
                f"{beyond[0]}): is {tss_path} for another assembly?")
        if len(beyond) > len(kept):
            raise DatasetError(what + " Most genes are: give the TSS file of the genome's assembly")
        log.warning("%s They are left out", what)
    counts["tss_without_label"] = sum(k is None for k in keys)
    counts["labels_without_tss"] = len(labels.values) - len({k for k in keys if k is not None})
    counts["unknown_contig"] = unknown
    contigs = (f"the TSS file names {', '.join(sorted(absent)[:8])}{' ...' if len(absent) > 8 else ''}; the genome "
               f"has {', '.join(list(genome.contigs)[:8])}{' ...' if len(genome.contigs) > 8 else ''}")
    if unknown:
        log.warning("%d labelled genes lie on contigs absent from %s and are left out (%s)", unknown, genome_path,
                    contigs)
    if counts["labels_without_tss"]:
        missing = sorted(set(labels.values) - {k for k in keys if k is not None})
        log.warning("%d labelled ids have no TSS in %s and are left out: %s%s", len(missing), tss_path,
                    ", ".join(missing[:10]), f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    if not kept and unknown:
        raise DatasetError(f"every labelled gene of {tss_path} lies on a contig absent from {genome_path} under any "
                           f"alias ({contigs}): give --contig-map to name them as the genome does")
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
    write_prepared_set(Path(out_path), onehot, label_values, ids, split, raw, attrs, cols, chunk_rows)
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



@dataclass(frozen=True)
class SequenceSetOptions:
    """How a prepared set of given sequences (``kind = sequences``) is laid out and split.

    Attributes:
        length: window length (None: the longest sequence); shorter sequences are padded with N, longer ones
            cropped (:func:`fit_length`).
        tss_index: the window index that counts as the TSS (None: ``length // 2``): a model trained on the set puts
            this base on the TSS when it scores genomic variants (``upstream = tss_index``).
        align: ``center``, ``left`` or ``right`` (:func:`fit_length`).
        split_method, test_size, valid_size, seed: the split (:func:`varxpress.learning.splits.make_split`;
            sequence tables also take ``group``).
        label_units: what the labels measure, recorded in the set.
        chunk_rows: rows per HDF5 chunk.
    """

    length: int | None = None
    tss_index: int | None = None
    align: str = "center"
    split_method: str = "random"
    test_size: float = 1000
    valid_size: float = 1000
    seed: int = 0
    label_units: str = "log10 expression"
    chunk_rows: int = 16


class FittedWindows(NamedTuple):
    """Sequences brought to one window: uint8 one-hot ``(n, length, 4)``, the length and TSS index used, and how
    many were ``padded`` / ``cropped``."""

    onehot: np.ndarray
    length: int
    tss_index: int
    align: str
    counts: dict[str, int]

    def attrs(self) -> dict:
        """The set attributes that say how its windows were made (the same for every kind of sequence set)."""
        return {"kind": "sequences", "upstream": self.tss_index, "downstream": self.length - self.tss_index,
                "tss_index": self.tss_index, "window_length": self.length, "align": self.align,
                "test_chroms": [], "valid_chroms": []}


def fit_windows(seqs: Sequence[str], length: int | None = None, tss_index: int | None = None,
                align: str = "center") -> FittedWindows:
    """One-hot windows of one length from sequences of any length (:func:`fit_length`), as
    :class:`SequenceSetOptions` describes them; the sequences are used as they are (no reverse complement).

    Raises:
        DatasetError: ``tss_index`` outside the window.
    """
    length = int(length or max(len(s) for s in seqs))
    tss_index = length // 2 if tss_index is None else int(tss_index)
    if not 0 <= tss_index < length:
        raise DatasetError(f"--tss-index {tss_index} lies outside the sequence length {length}")
    counts = {"padded": sum(len(s) < length for s in seqs), "cropped": sum(len(s) > length for s in seqs)}
    onehot = np.zeros((len(seqs), length, 4), dtype=np.uint8)
    for i, seq in enumerate(seqs):
        onehot[i] = one_hot(fit_length(seq, length, align))
    return FittedWindows(onehot, length, tss_index, align, counts)


def prepare_sequences(
    fasta_path: str | os.PathLike,
    labels: LabelTable,
    out_path: str | os.PathLike,
    features: FeatureTable | None = None,
    options: SequenceSetOptions = SequenceSetOptions(),
) -> Path:
    """Build a prepared set from sequences given directly (FASTA records whose ids are in the label table).

    Every sequence is brought to one window as ``options`` says (:class:`SequenceSetOptions`: length, TSS index,
    alignment), so ``upstream = tss_index`` and ``downstream = length - tss_index``; ``options`` also gives the split. Sequences are used as
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
    o = options
    fitted = fit_windows([s for _, s, _ in kept], o.length, o.tss_index, o.align)
    counts.update(fitted.counts)
    if counts["padded"] or counts["cropped"]:
        log.info("%d sequences padded with N and %d cropped to %d bp (%s-aligned)", counts["padded"],
                 counts["cropped"], fitted.length, o.align)
    split = make_split(len(kept), o.split_method, o.test_size, o.valid_size, o.seed)
    ids = [rid for rid, _, _ in kept]
    raw, _ = _features_for(ids, features, counts)
    attrs = _common_attrs(labels, features, o.label_units, o.split_method, o.seed, counts)
    attrs.update(fitted.attrs())
    attrs["sequence_source"] = {"path": str(Path(fasta_path).resolve()), "sha256": sha256_file(fasta_path)}
    label_values = np.array([labels.values[key] for _, _, key in kept], dtype=np.float64)
    write_prepared_set(Path(out_path), fitted.onehot, label_values, ids, split, raw, attrs, {}, o.chunk_rows)
    return Path(out_path)
