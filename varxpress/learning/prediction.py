"""Model predictions in label units: on a prepared set's genes, or on the sequences of a FASTA file.

Predictions are compared in label units: a model whose metadata says its output is standardised
(``output_scale`` ``standardized_*`` with ``label_mean``/``label_sd``) is mapped back with ``out * sd + mean``.
A model without that mapping (e.g. an imported Xpresso model evaluated on other labels) is calibrated with a
least-squares line ``a * out + b`` fitted on the set's training split; the table says so (``calibrated``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from varxpress.errors import DatasetError
from varxpress.io.tables import read_fasta_records, read_label_table
from varxpress.learning.dataset import fit_length
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.splits import SPLITS
from varxpress.models.network import ExpressionModel
from varxpress.sequence.encode import one_hot

__all__ = ["label_mapping", "check_label_transform", "model_predictions", "Prediction", "predict_fasta",
           "predict_dataset"]

log = logging.getLogger(__name__)


def label_mapping(model: ExpressionModel) -> tuple[float, float] | None:
    """``(scale, shift)`` mapping model output to label units, or None when the metadata does not tell."""
    meta = model.metadata
    scale = str(getattr(meta, "output_scale", "") or "")
    mean, sd = getattr(meta, "label_mean", None), getattr(meta, "label_sd", None)
    if scale.startswith("standardized"):
        if mean is None or sd is None:
            return None
        return float(sd), float(mean)
    return 1.0, 0.0


def _model_features(model, pset: PreparedSet, features: np.ndarray) -> np.ndarray | None:
    """Feature matrix for ``model`` from a set's standardised features; defaults where the set does not fit."""
    if not model.n_features:
        return None
    if pset.n_features == model.n_features:
        names = list(getattr(model.metadata, "feature_names", None) or [])
        if names and pset.feature_names and names != pset.feature_names:
            log.warning("feature names differ: model %s, set %s; using the set's columns in order",
                        names, pset.feature_names)
        return features
    log.warning("the model takes %d features but %s has %d: using the model's default features for every gene",
                model.n_features, pset.path, pset.n_features)
    return None


def model_predictions(model, pset: PreparedSet, split: str | Sequence[str], batch_size: int = 256):
    """Raw model outputs on a split of a prepared set (window cropped, or N-padded with a warning).

    Returns:
        ``(outputs (n,), Arrays)``.
    """
    spec = model.window_spec
    pad = spec.upstream > pset.upstream or spec.downstream > pset.downstream
    if pad:
        log.warning("model window (%d, %d) is wider than %s's stored window (%d, %d): the extra bases are N",
                    spec.upstream, spec.downstream, pset.path, pset.upstream, pset.downstream)
    arrays = pset.load(split, spec.upstream, spec.downstream, pad=pad)
    feats = _model_features(model, pset, arrays.features)
    out = model.predict(arrays.X.astype(np.float32), feats, batch_size=batch_size) if len(arrays.ids) else \
        np.zeros(0)
    return np.asarray(out, dtype=np.float64), arrays



class Prediction(NamedTuple):
    """Predictions in label units: ``ids``; ``prediction`` float64 ``(n,)``; ``observed`` float64 ``(n,)`` (NaN for an
    id without a label) or None; ``split``: each gene's split in a prepared set (``train``/``valid``/``test``), None
    for sequences."""

    ids: list[str]
    prediction: np.ndarray
    observed: np.ndarray | None
    split: list[str] | None = None


def _to_label_units(model, out: np.ndarray) -> np.ndarray:
    mapping = label_mapping(model)
    if mapping is None:
        log.warning("the model's metadata has no label mean/sd: predictions are the raw (standardised) output")
        return out
    return out * mapping[0] + mapping[1]


def predict_fasta(model, fasta: str | os.PathLike, labels: str | os.PathLike | None = None,
                  tss_index: int | None = None, align: str = "center", batch_size: int = 256,
                  id_column: str | None = None, label_column: str | None = None) -> Prediction:
    """Predictions for the sequences of a FASTA, in label units (see the module docstring).

    Each record is fitted to the model window: with ``tss_index`` (the record's TSS position, 0-based) the window
    ``[tss_index - upstream, tss_index + downstream)`` is cut out (N-padded past the ends); without it a record
    of exactly the window length is used as it is, others are N-padded/cropped by ``align``
    (:func:`varxpress.learning.dataset.fit_length`). Records are used as given (no reverse complement); features are the
    model's defaults. ``labels`` (a table of raw values) are put through the transform the model's training labels
    went through (``log10(value + pseudocount)``, from its metadata), so ``observed`` and the predictions share units;
    ``id_column``/``label_column`` pick the table's columns as ``prepare`` does (default: the first two).
    """
    if not isinstance(model, ExpressionModel):
        model = ExpressionModel.load(model)
    spec = model.window_spec
    records = read_fasta_records(fasta)
    seqs = []
    for _, seq in records:
        if tss_index is not None:
            a, b = tss_index - spec.upstream, tss_index + spec.downstream
            seq = "N" * max(-a, 0) + seq[max(a, 0):max(b, 0)] + "N" * max(b - len(seq), 0)
            seqs.append(seq[:spec.length].ljust(spec.length, "N"))
        else:
            seqs.append(fit_length(seq, spec.length, align))
    out = np.zeros(0)
    if seqs:
        out = np.concatenate([model.predict(one_hot(seqs[i:i + 4096]), None, batch_size=batch_size)
                              for i in range(0, len(seqs), 4096)])
    ids = [r[0] for r in records]
    observed = None
    if labels is not None:  # in the model's label units: its training labels' transform applied to the table's values
        transform = model.metadata.label_transform
        if transform is not None and transform[0] == "log10":
            table = read_label_table(labels, id_column, label_column, transform="log10", pseudocount=transform[1])
        else:
            table = read_label_table(labels, id_column, label_column)
        observed = np.array([table.values.get(i, np.nan) for i in ids], dtype=np.float64)
    return Prediction(ids, _to_label_units(model, np.asarray(out, np.float64)), observed)


def check_label_transform(model, pset: PreparedSet) -> None:
    """Refuse a set whose labels went through another transform than the model's training labels (raw FPKM
    against a model of log10(FPKM + 0.1): ``evaluate``'s metrics would compare different quantities, and
    ``predict`` would print them side by side). Either side not recording its transform (an imported model) is not
    checked."""
    mine = model.metadata.label_transform
    given = pset.attr("label_source")
    if mine is None or not isinstance(given, dict) or not given.get("transform"):
        return
    log10 = given["transform"] == "log10"
    theirs = (given["transform"], float(given.get("pseudocount") or 0.1) if log10 else None)
    if mine != theirs:
        raise DatasetError(f"the model was trained on labels transformed {_transform_text(mine)}, the set's are "
                           f"{_transform_text(theirs)}: predictions and labels would be different quantities; "
                           f"prepare the set with the model's --label-transform (and --pseudocount)")


def _transform_text(transform: tuple) -> str:
    return f"log10(value + {transform[1]})" if transform[0] == "log10" else str(transform[0])


def predict_dataset(model, dataset: str | os.PathLike, split: str = "all", batch_size: int = 256) -> Prediction:
    """Predictions for the genes of a prepared set (with their features), in label units, with observed labels and
    each gene's split."""
    if not isinstance(model, ExpressionModel):
        model = ExpressionModel.load(model)
    with PreparedSet(dataset) as pset:
        check_label_transform(model, pset)
        out, arrays = model_predictions(model, pset, split, batch_size)
        splits = [SPLITS[code] for code in pset.split[pset.indices(split)]]  # the rows load() read, in its order
    return Prediction(arrays.ids, _to_label_units(model, out), arrays.labels.astype(np.float64), splits)
