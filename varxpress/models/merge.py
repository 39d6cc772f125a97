"""Several trained networks of one architecture as one network that predicts their mean.

A merged file is an ensemble that every subcommand reads as one ordinary model (one window, one engine, one
``.vxm.h5``), used by the recipes to ship several seeds of a model. Member ``m``'s conv filters and dense units
become block ``m`` of layers ``k`` times wider:

* the first conv layer's kernels are concatenated along the filter axis; later conv and dense kernels are
  block-diagonal (zero between members), so no member sees another's channels;
* batch normalisation is per channel, so its four weight vectors are concatenated;
* the first dense layer takes member ``m``'s flattened rows where the merged Flatten (row-major over position,
  channel) or global pooling (one row per channel) puts them, and every member's rows of the per-gene features;
* the output layer averages the members (kernels stacked and divided by ``k``, biases averaged).

Dropout is inactive at prediction, so the merged output equals the members' mean output up to float rounding.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from varxpress.errors import ModelError
from varxpress.models.hparams import validate_hparams
from varxpress.models.network import ExpressionModel, build_network

__all__ = ["merge_members"]

log = logging.getLogger(__name__)


def _block_diagonal(blocks: Sequence[np.ndarray]) -> np.ndarray:
    k = len(blocks)
    rows, cols = blocks[0].shape[-2:]
    out = np.zeros(blocks[0].shape[:-2] + (rows * k, cols * k), dtype=np.float32)
    for m, b in enumerate(blocks):
        out[..., m * rows:(m + 1) * rows, m * cols:(m + 1) * cols] = b
    return out


def merge_members(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], name: str) -> Path:
    """Write the mean of the models in ``paths`` as one model file ``out`` named ``name`` (weights compressed).

    The members must share hyperparameters (the seed aside), label scale and features. The merged metadata keeps
    the first member's, with no metrics of its own (measure the merged network with ``evaluate``) and the members
    listed under ``source.ensemble``.

    Raises:
        ModelError: fewer than two members, or members that differ in architecture, label scale or features.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ModelError("merging needs at least two member models")
    members = [ExpressionModel.load(p) for p in paths]
    first = members[0].metadata
    shape = lambda m: {k: v for k, v in m.metadata.hparams.items() if k != "seed"}  # noqa: E731
    for p, m in zip(paths[1:], members[1:]):
        if (shape(m) != shape(members[0]) or m.metadata.label_mean != first.label_mean
                or m.metadata.label_sd != first.label_sd or m.metadata.feature_names != first.feature_names):
            raise ModelError(f"{p}: not the architecture, label scale and features of {paths[0]}; cannot merge")
    k = len(members)
    hp = dict(first.hparams)
    hp["conv"] = [dict(c, filters=c["filters"] * k) for c in hp["conv"]]
    hp["dense"] = [dict(d, units=d["units"] * k) for d in hp["dense"]]
    merged = build_network(hp)
    weights = [{layer.name: layer.get_weights() for layer in m.keras_model.layers if layer.weights} for m in members]

    for i in range(1, len(hp["conv"]) + 1):
        kernels, biases = zip(*(w[f"conv_{i}"] for w in weights))
        kernel = np.concatenate(kernels, axis=-1) if i == 1 else _block_diagonal(kernels)
        merged.get_layer(f"conv_{i}").set_weights([kernel, np.concatenate(biases)])
        if hp.get("batch_norm"):
            stats = zip(*(w[f"bn_{i}"] for w in weights))  # gamma, beta, moving mean, moving variance
            merged.get_layer(f"bn_{i}").set_weights([np.concatenate(v) for v in stats])
    channels = first.hparams["conv"][-1]["filters"]
    n_feat = int(hp["n_features"])
    kernel0 = weights[0]["dense_1"][0]
    positions = (kernel0.shape[0] - n_feat) // channels  # 1 with global pooling
    units = kernel0.shape[1]
    kernel = np.zeros((positions * channels * k + n_feat, units * k), dtype=np.float32)
    for m, w in enumerate(weights):
        member = w["dense_1"][0]
        cols = slice(m * units, (m + 1) * units)
        for pos in range(positions):
            kernel[pos * channels * k + m * channels:pos * channels * k + (m + 1) * channels, cols] = \
                member[pos * channels:(pos + 1) * channels]
        kernel[positions * channels * k:, cols] = member[positions * channels:]
    merged.get_layer("dense_1").set_weights([kernel, np.concatenate([w["dense_1"][1] for w in weights])])
    for j in range(2, len(hp["dense"]) + 1):
        kernels, biases = zip(*(w[f"dense_{j}"] for w in weights))
        merged.get_layer(f"dense_{j}").set_weights([_block_diagonal(kernels), np.concatenate(biases)])
    kernels, biases = zip(*(w["output"] for w in weights))
    merged.get_layer("output").set_weights([np.concatenate(kernels) / k, np.mean(biases, axis=0)])

    meta = copy.deepcopy(first)
    meta.name, meta.hparams = name, validate_hparams(hp)
    meta.metrics = {}
    meta.source = {**first.source, "ensemble": {
        "members": [{"file": p.name, "seed": m.metadata.hparams.get("seed"),
                     "valid": m.metadata.metrics.get("model", {}).get("valid")} for p, m in zip(paths, members)],
        "rule": "the mean of the members' outputs, as one network with the members side by side"}}
    saved = ExpressionModel(merged, meta).save(out, compress=True)
    log.info("merged %d members into %s", k, saved)
    return saved
