"""Convert the published Xpresso models (Keras 2.0.5 HDF5) into varxpress ``.vxm.h5`` models.

Source: Agarwal V, Shendure J. Predicting mRNA abundance directly from genomic sequence using deep convolutional
neural networks. Cell Reports 31:107663 (2020); models from github.com/vagarwal87/Xpresso (MIT licence).

The conversion reads the architecture from the file's ``model_config`` attribute (nothing about it is hard-coded),
maps it to varxpress hyperparameters, builds the network with :func:`varxpress.models.network.build_network`, copies the
weights, and verifies the result: the converted network must reproduce, within ``atol`` (1e-5), the predictions of
an independent pure-numpy forward pass (:func:`varxpress.models.keras2.numpy_forward`, which also reads the file)
driven by the original file's ``model_config`` and weights, on random one-hot windows (with some N rows) and random
half-life features.

Output scale: Xpresso z-scored its labels, log10(median RPKM + 0.1), over all training genes
(``preprocessing.scale`` in the repository's ``setup_training_files.py``) and its own figure code maps predictions
back with a linear fit (``Fig2/Fig2BC.R``). For the human model the map estimated from published predictions and
labels is recorded as ``label_mean``/``label_sd``; see ``docs/model-format.md``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from varxpress.errors import ModelError
from varxpress.models.hparams import validate_hparams
from varxpress.models.keras2 import config_layers, inbound_names, numpy_forward, read_keras2_h5
from varxpress.models.metadata import ModelMetadata, sha256_file
from varxpress.models.network import ExpressionModel, build_network

log = logging.getLogger(__name__)

__all__ = [
    "CITATION",
    "XPRESSO_FEATURE_NAMES",
    "KNOWN_MODELS",
    "hparams_from_config",
    "import_xpresso",
]

CITATION = ("Agarwal V, Shendure J. Predicting mRNA abundance directly from genomic sequence using deep convolutional "
            "neural networks. Cell Reports 31:107663 (2020). doi:10.1016/j.celrep.2020.107663. "
            "Model files: github.com/vagarwal87/Xpresso (MIT licence).")

#: Names given to the 6 ``halflife`` inputs of the published models. The files do not name them. The Xpresso
#: repository's current code (Fig1_S2/generate_training_input.pl, setup_training_files.py) builds 8 features
#: (UTR5LEN, CDSLEN, INTRONLEN, UTR3LEN, UTR5GC, CDSGC, UTR3GC, ORFEXONDENSITY; lengths log10(x+0.1), all z-scored),
#: but the published models take 6; we assume the 6 are the lengths and GC contents of 5' UTR, ORF and 3' UTR (the
#: 8 minus the two whose computation looks added later). This is an inference, recorded in the metadata; Kipoi and
#: the Xpresso website feed zeros (= the training mean of z-scored features), which is what varxpress does by default.
XPRESSO_FEATURE_NAMES = ["UTR5LEN", "CDSLEN", "UTR3LEN", "UTR5GC", "CDSGC", "UTR3GC"]

_FEATURE_NOTE = (
    "The model files do not name their 6 half-life inputs. Xpresso's code (Fig1_S2/generate_training_input.pl) "
    "builds 8 z-scored features (UTR5LEN, CDSLEN, INTRONLEN, UTR3LEN [log10(x+0.1)], UTR5GC, CDSGC, UTR3GC, "
    "ORFEXONDENSITY [log10(x+0.1)]); the names here assume the published 6 are the 5'UTR/ORF/3'UTR lengths and GC "
    "contents - an inference, not verifiable from the file. Zeros (= training mean) are the default, as in Kipoi."
)

#: Facts about the published files that the files themselves do not hold, keyed by SHA-256.
KNOWN_MODELS: dict[str, dict[str, Any]] = {
    "15a383648008df5f843ec8651e78be5faf82609c88fb068da890aa7a89387bb0": {
        "species": "human",
        "file": "human_trainepoch.11-0.426.h5",
        "kipoi": "Xpresso/human_median (zenodo 4075690 humanMedian_trainepoch.11-0.426.h5)",
        "training_labels": "log10(median RPKM + 0.1) across 57 Roadmap epigenomes, z-scored over training genes",
        "test_r2": 0.59,
        # least-squares fit log10 = out * sd + mean of the 15,348 human genes in 1to1_orthologs_expression.txt
        # (column 4) on the published Kipoi predictions (half-life inputs 0); see docs/model-format.md
        "label_mean": 0.2959,
        "label_sd": 0.8405,
        "label_note": (
            "label_mean/label_sd estimated by regressing log10(median RPKM+0.1) (1to1_orthologs_expression.txt "
            "column 4, n=15,348) on the published Kipoi predictions (half-life inputs 0): slope 0.8405, intercept "
            "0.2959, r=0.701. The exact training scaler (mean/sd over all ~18k training genes) is not published."
        ),
    },
    "e2a48e994aa6e6d9c619ba2865cd76804433d63620f8f82b044389ea78239d37": {
        "species": "mouse",
        "file": "mouse_trainepoch.05-0.278.h5",
        "kipoi": "Xpresso/mouse_median (zenodo 4075690 mouseMedian_trainepoch.05-0.278.h5)",
        "training_labels": "log10(median expression + 0.1) across mouse tissues, z-scored over training genes",
        "test_r2": 0.71,
        # moments of the mouse label before scaling (1to1_orthologs_expression.txt column 5, n=15,348): no published
        # mouse predictions or mm10 sequence exist here to fit a map as for the human model; see docs/model-format.md
        "label_mean": 0.4201,
        "label_sd": 0.8857,
        "label_note": (
            "label_mean/label_sd are the mean and sd (ddof=0) of the mouse label log10(median expression+0.1) "
            "(1to1_orthologs_expression.txt column 5, n=15,348 one-to-one orthologs): an estimate of the training "
            "scaler (mean/sd over all mouse training genes, not published). No least-squares map as for the human "
            "model is derivable here (no published mouse predictions, no mm10 sequence); for the human model the "
            "same moments (0.5406/0.9117) differ from the fitted map (0.2959/0.8405) by 0.24 in the mean and 8% in "
            "the sd, a fair guide to this estimate's uncertainty."
        ),
    },
}

_SUPPORTED = {"InputLayer", "Conv1D", "MaxPooling1D", "Flatten", "Concatenate", "Dense", "Activation", "Dropout"}


def hparams_from_config(config: dict[str, Any], training_config: dict[str, Any] | None = None,
                        upstream: int = 7000) -> dict[str, Any]:
    """Map a Keras 2 ``model_config`` of the Xpresso family to varxpress hyperparameters.

    The promoter branch is followed from the input named ``promoter`` (or the 3-D input) through the chain of
    layers; ``downstream = input length - upstream``.

    Raises:
        ModelError: a layer type or setting the varxpress architecture cannot express.
    """
    layers = config_layers(config)
    by_name = {layer["name"]: layer for layer in layers}
    consumers: dict[str, list[str]] = {}
    for layer in layers:
        for src in inbound_names(layer):
            consumers.setdefault(src, []).append(layer["name"])
    for layer in layers:
        if layer["class_name"] not in _SUPPORTED:
            raise ModelError(f"layer {layer['name']!r} of type {layer['class_name']} cannot be converted "
                             f"(supported: {', '.join(sorted(_SUPPORTED))})")

    inputs = [layer for layer in layers if layer["class_name"] == "InputLayer"]
    seq_inputs = [i for i in inputs if len(i["config"]["batch_input_shape"]) == 3]
    feat_inputs = [i for i in inputs if len(i["config"]["batch_input_shape"]) == 2]
    if len(seq_inputs) != 1 or len(feat_inputs) > 1:
        raise ModelError("expected one sequence input (None, L, 4) and at most one feature input (None, F)")
    _, length, channels = seq_inputs[0]["config"]["batch_input_shape"]
    if channels != 4:
        raise ModelError(f"sequence input has {channels} channels, not 4 (one-hot ACGT)")
    n_features = int(feat_inputs[0]["config"]["batch_input_shape"][1]) if feat_inputs else 0
    if not 0 <= upstream <= length:
        raise ModelError(f"upstream={upstream} does not fit the model's input length {length}")

    def only_next(name: str) -> dict[str, Any] | None:
        nxt = consumers.get(name, [])
        if len(nxt) > 1:
            raise ModelError(f"layer {name!r} feeds {len(nxt)} layers; only a chain can be converted")
        return by_name[nxt[0]] if nxt else None

    conv: list[dict[str, int]] = []
    dense: list[dict[str, float]] = []
    node = only_next(seq_inputs[0]["name"])
    stage = "conv"
    while node is not None:
        cls, cfg = node["class_name"], node["config"]
        if stage == "conv" and cls == "Conv1D":
            if cfg.get("padding") != "same" or list(cfg.get("strides", [1])) != [1] or cfg.get("activation") != "relu":
                raise ModelError(f"{node['name']}: only Conv1D(padding='same', strides=1, activation='relu') converts")
            if not cfg.get("use_bias", True):
                raise ModelError(f"{node['name']}: Conv1D without bias cannot be converted")
            conv.append({"filters": int(cfg["filters"]), "kernel": int(cfg["kernel_size"][0]),
                         "dilation": int(cfg.get("dilation_rate", [1])[0]), "pool": 1})
        elif stage == "conv" and cls == "MaxPooling1D":
            pool, strides = int(cfg["pool_size"][0]), int((cfg.get("strides") or cfg["pool_size"])[0])
            if not conv or conv[-1]["pool"] != 1 or pool != strides or cfg.get("padding", "valid") != "valid":
                raise ModelError(f"{node['name']}: only one MaxPooling1D(pool, strides=pool, 'valid') per conv layer")
            conv[-1]["pool"] = pool
        elif stage == "conv" and cls == "Flatten":
            stage = "flat"
        elif stage == "flat" and cls == "Concatenate":
            srcs = inbound_names(node)
            if len(srcs) != 2 or not feat_inputs or srcs[1] != feat_inputs[0]["name"]:
                raise ModelError(f"{node['name']}: expected Concatenate([flatten, halflife])")
            stage = "dense"
        elif stage in ("flat", "dense") and cls == "Dense":
            if cfg.get("activation", "linear") != "linear" or not cfg.get("use_bias", True):
                raise ModelError(f"{node['name']}: only Dense(activation='linear', use_bias=True) converts")
            if feat_inputs and stage == "flat":
                raise ModelError(f"{node['name']}: half-life input is not concatenated before the dense layers")
            stage = "dense"
            dense.append({"units": int(cfg["units"]), "dropout": None, "_act": False})
        elif stage == "dense" and cls == "Activation":
            if cfg.get("activation") != "relu" or not dense or dense[-1]["_act"]:
                raise ModelError(f"{node['name']}: only one relu Activation after each Dense converts")
            dense[-1]["_act"] = True
        elif stage == "dense" and cls == "Dropout":
            if not dense or not dense[-1]["_act"] or dense[-1]["dropout"] is not None:
                raise ModelError(f"{node['name']}: Dropout must follow Dense -> Activation(relu)")
            dense[-1]["dropout"] = float(cfg["rate"])
        else:
            raise ModelError(f"{node['name']} ({cls}) is out of place for the Xpresso architecture "
                             f"(Conv1D/MaxPooling1D..., Flatten, Concatenate, [Dense, relu, Dropout]..., Dense(1))")
        node = only_next(node["name"])

    if not dense or dense[-1]["units"] != 1 or dense[-1]["_act"] or dense[-1]["dropout"] is not None:
        raise ModelError("the network must end in a linear Dense(1)")
    hidden = dense[:-1]
    for d in hidden:
        if not d["_act"]:
            raise ModelError("every hidden Dense layer must be followed by a relu Activation")
        d["dropout"] = 0.0 if d["dropout"] is None else d["dropout"]
        del d["_act"]
    hp: dict[str, Any] = {
        "upstream": int(upstream), "downstream": int(length) - int(upstream),
        "conv": conv, "dense": hidden, "n_features": n_features,
    }
    opt = (training_config or {}).get("optimizer_config") or {}
    ocfg = opt.get("config") or {}
    if opt.get("class_name", "").lower() in ("adam", "sgd"):
        hp["optimizer"] = opt["class_name"].lower()
    lr = ocfg.get("lr", ocfg.get("learning_rate"))
    if lr is not None:
        hp["learning_rate"] = float(lr)
    if "momentum" in ocfg:
        hp["momentum"] = float(ocfg["momentum"])
    return validate_hparams(hp)


def _random_inputs(length: int, n_features: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random one-hot windows (about 2% N rows) and standard-normal features."""
    rng = np.random.default_rng(seed)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    X[rng.random((n, length)) < 0.02] = 0.0
    F = rng.standard_normal((n, n_features)).astype(np.float32)
    return X, F


# --------------------------------------------------------------------------------------------------------------------
# conversion


def import_xpresso(
    h5_path: str | Path,
    out_path: str | Path,
    name: str | None = None,
    genome_build: str = "hg38",
    upstream: int = 7000,
    downstream: int = 3500,
    feature_names: Sequence[str] | None = None,
    label_mean: float | None = None,
    label_sd: float | None = None,
    n_check: int = 8,
    atol: float = 1e-5,
    seed: int = 0,
) -> ExpressionModel:
    """Convert a published Xpresso Keras 2 HDF5 model into a varxpress model file and verify it.

    Args:
        h5_path: the Keras 2.0.5 file (e.g. ``human_trainepoch.11-0.426.h5``).
        out_path: where to write the ``.vxm.h5`` (atomically).
        name: model name; default from the file name (``xpresso_human_trainepoch.11-0.426``).
        genome_build: assembly the windows are to be cut from (metadata only).
        upstream, downstream: the window; must add up to the file's input length (Xpresso: 7000 + 3500 = 10500).
        feature_names: names of the half-life inputs; default :data:`XPRESSO_FEATURE_NAMES` when 6 inputs.
        label_mean, label_sd: output -> log10 map; default from :data:`KNOWN_MODELS` for a known file, else None.
        n_check: random windows used for the verification.
        atol: largest allowed |converted - numpy reference|.

    Returns:
        the converted model, re-loaded from ``out_path``.

    Raises:
        ModelError: unreadable file, unsupported architecture, window not matching the input length, or the
            converted predictions differ from the reference by more than ``atol`` (nothing is written then).
    """
    h5_path, out_path = Path(h5_path), Path(out_path)
    config, weights, attrs = read_keras2_h5(h5_path)
    sha = sha256_file(h5_path)
    known = KNOWN_MODELS.get(sha, {})
    inputs = [l for l in config_layers(config) if l["class_name"] == "InputLayer"]
    seq_in = next(l for l in inputs if len(l["config"]["batch_input_shape"]) == 3)
    length = int(seq_in["config"]["batch_input_shape"][1])
    if upstream + downstream != length:
        raise ModelError(f"{h5_path}: the model's input length is {length} but upstream {upstream} + downstream "
                         f"{downstream} = {upstream + downstream}; pass --upstream/--downstream that add up to {length}")
    try:
        hp = hparams_from_config(config, attrs.get("training_config"), upstream=upstream)
    except ModelError as exc:
        raise ModelError(f"{h5_path}: {exc}") from exc

    net = build_network(hp)
    feat_name = next((l["name"] for l in inputs if len(l["config"]["batch_input_shape"]) == 2), None)
    # map original layers with weights, in config order, onto ours in forward order
    orig = [l["name"] for l in config_layers(config) if weights.get(l["name"])]
    ours = [layer for layer in net.layers if layer.weights]
    if len(orig) != len(ours):
        raise ModelError(f"{h5_path}: {len(orig)} weighted layers in the file but {len(ours)} in the converted network")
    for oname, layer in zip(orig, ours):
        values = weights[oname]
        shapes = [tuple(v.shape) for v in layer.weights]
        if [tuple(v.shape) for v in values] != shapes:
            raise ModelError(f"{h5_path}: weights of {oname} have shapes {[v.shape for v in values]}, "
                             f"{layer.name} needs {shapes}")
        layer.set_weights([np.asarray(v, dtype=np.float32) for v in values])

    n_features = hp["n_features"]
    if feature_names is None:
        feature_names = XPRESSO_FEATURE_NAMES if n_features == len(XPRESSO_FEATURE_NAMES) else \
            [f"halflife_{i}" for i in range(1, n_features + 1)]
    feature_names = list(feature_names)
    if len(feature_names) != n_features:
        raise ModelError(f"{len(feature_names)} feature names given but the model takes {n_features} features")
    if label_mean is None and label_sd is None:
        label_mean, label_sd = known.get("label_mean"), known.get("label_sd")

    m = re.search(r"trainepoch\.(\d+)-(\d+(?:\.\d+)?)\.h5$", h5_path.name)
    metrics: dict[str, Any] = {}
    if m:
        metrics["epoch"] = int(m.group(1))
        metrics["val_mse"] = float(m.group(2))
        metrics["val_mse_note"] = "validation MSE on z-scored labels, from the file name (Keras checkpoint)"
    if "test_r2" in known:
        metrics["test_r2"] = known["test_r2"]
        metrics["test_r2_note"] = ("r^2 on 1,000 held-out genes with half-life features, reported in Agarwal & "
                                   "Shendure 2020")
    species = known.get("species", "unknown")
    source = {
        "format": f"Keras {attrs.get('keras_version') or '?'} HDF5 ({attrs.get('backend') or '?'} backend)",
        "file": h5_path.name,
        "sha256": sha,
        "citation": CITATION,
        "licence": "MIT (Copyright 2018 Vikram Agarwal); see NOTICE",
        "species": species,
        "feature_names_note": _FEATURE_NOTE,
        "original_layers": [l["name"] for l in config_layers(config)],
    }
    if known.get("kipoi"):
        source["kipoi"] = known["kipoi"]
    if known.get("label_note"):
        source["label_note"] = known["label_note"]
    training = {"labels": known.get("training_labels", "z-scored log10 expression"),
                "genome_build": genome_build}
    default_name = "xpresso_" + re.sub(r"\.h5$", "", h5_path.name)
    meta = ModelMetadata(
        name=name or default_name,
        upstream=upstream, downstream=downstream, genome_build=genome_build, alphabet="ACGT",
        output=("predicted steady-state mRNA level: z-scored log10(median RPKM + 0.1) "
                "(log10 = out * label_sd + label_mean)"),
        output_scale="standardized_log10", label_mean=label_mean, label_sd=label_sd,
        feature_names=feature_names, default_features=[0.0] * n_features,
        hparams=hp, metrics=metrics, training_data=training, source=source,
    )
    model = ExpressionModel(net, meta)

    # verify against the independent numpy network
    X, F = _random_inputs(length, n_features, n_check, seed)
    ref_inputs = {seq_in["name"]: X}
    if feat_name is not None:
        ref_inputs[feat_name] = F
    ref = numpy_forward(config, weights, ref_inputs)
    got = model.predict(X, F if n_features else None)
    ref0 = None
    if n_features:  # default (zero) features too, the way the model is used by default
        ref0 = numpy_forward(config, weights, {**ref_inputs, feat_name: np.zeros_like(F)})
        got0 = model.predict(X)
    diff = float(np.max(np.abs(got - ref)))
    if ref0 is not None:
        diff = max(diff, float(np.max(np.abs(got0 - ref0))))
    if not diff <= atol:
        raise ModelError(f"{h5_path}: converted network differs from the original by up to {diff:.3g} (> {atol}) "
                         f"on random inputs; the conversion is wrong - nothing written")
    log.info("converted %s: max |difference| to the original network %.2g on %d random windows",
             h5_path.name, diff, n_check)
    meta.source["verification"] = {"n_random_windows": n_check, "max_abs_diff": diff, "atol": atol,
                                   "reference": "pure-numpy forward pass of the original model_config + weights"}

    model.save(out_path)
    loaded = ExpressionModel.load(out_path)
    again = loaded.predict(X, F if n_features else None)
    if not np.array_equal(again, got):
        raise ModelError(f"{out_path}: the saved model does not reproduce the converted predictions")
    return loaded
