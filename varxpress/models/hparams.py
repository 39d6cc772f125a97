"""Hyperparameters of the expression network: a typed, validated record, and its plain-dict form.

:class:`Hyperparameters` holds the network's shape (window, conv layers, dense layers, features, how the last conv
layer joins the dense head) and its :class:`TrainingSettings`. :meth:`Hyperparameters.from_dict` checks a plain
mapping (a JSON/YAML file, a model's metadata, a hyperopt draw), filling missing keys from :data:`DEFAULT_HPARAMS`;
:meth:`Hyperparameters.to_dict` gives back the flat dict that model files and ``best_hparams.json`` store, key for
key and in the same order as before this record existed, so files written earlier still load and compare equal.

Optional keys (``global_pool``, ``rc_augment``) are absent from :data:`DEFAULT_HPARAMS` so models made before them
keep their hyperparameters unchanged; keys the network does not use are kept as given (and logged at debug level).
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varxpress.errors import ModelError

__all__ = ["DEFAULT_HPARAMS", "MAX_CONV", "MAX_DENSE", "OPTIMIZERS", "GLOBAL_POOLS", "ConvLayer", "DenseLayer",
           "TrainingSettings", "Hyperparameters", "validate_hparams", "flattened_length", "read_mapping_file",
           "read_hparams_file", "load_hparams", "check_keys"]

log = logging.getLogger(__name__)

#: The Xpresso human architecture (published model ``human_trainepoch.11-0.426.h5``) with training defaults.
DEFAULT_HPARAMS: dict[str, Any] = {
    "upstream": 7000,
    "downstream": 3500,
    "conv": [
        {"filters": 128, "kernel": 6, "dilation": 1, "pool": 30},
        {"filters": 32, "kernel": 9, "dilation": 1, "pool": 10},
    ],
    "dense": [
        {"units": 64, "dropout": 0.000992864149624538},
        {"units": 2, "dropout": 0.015461061523035332},
    ],
    "n_features": 6,
    "learning_rate": 0.0005,
    "batch_size": 128,
    "optimizer": "adam",
    "momentum": 0.9,
    "epochs": 10,
    "patience": 3,
    "seed": 0,
}

MAX_CONV, MAX_DENSE = 4, 2
OPTIMIZERS = ("adam", "sgd")
#: ``global_pool``: what joins the last conv layer to the dense head; ``none`` = Flatten (Xpresso), ``max``/``avg``
#: = GlobalMaxPooling1D/GlobalAveragePooling1D (position-free summary, few weights; suits short library sequences).
GLOBAL_POOLS = ("none", "max", "avg")
#: keys that may be absent (absent = off, and written back only when given, so older files round-trip unchanged):
#: ``global_pool``; ``rc_augment`` (train on both strands); ``batch_norm`` (``BatchNormalization`` between each
#: convolution and its ReLU); ``conv_dropout`` (``Dropout`` after each conv block, pooling included)
_OPTIONAL = ("global_pool", "rc_augment", "batch_norm", "conv_dropout")


def _as_int(value: Any, what: str, minimum: int) -> int:
    """``value`` as an int >= minimum; integral floats (hyperopt's quniform gives 6.0) are accepted."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelError(f"hyperparameter {what}={value!r} must be an integer >= {minimum}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            raise ModelError(f"hyperparameter {what}={value!r} must be an integer >= {minimum}")
    ivalue = int(value)
    if ivalue < minimum:
        raise ModelError(f"hyperparameter {what}={ivalue} must be >= {minimum}")
    return ivalue


def _as_float(value: Any, what: str, low: float, high: float, high_open: bool = True, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelError(f"hyperparameter {what}={value!r} must be a number")
    fvalue = float(value)
    bad = (
        not math.isfinite(fvalue)
        or (fvalue <= low if low_open else fvalue < low)
        or (fvalue >= high if high_open else fvalue > high)
    )
    if bad:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ModelError(f"hyperparameter {what}={value!r} must lie in {interval}")
    return fvalue


def _layer_list(value: Any, name: str, most: int) -> Sequence:
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or not 1 <= len(value) <= most:
        raise ModelError(f"hyperparameter {name} must be a list of 1 to {most} layers, got {value!r}")
    return value


@dataclass(frozen=True)
class ConvLayer:
    """One ``Conv1D(padding="same", activation="relu")``, then ``MaxPooling1D(pool)`` when ``pool > 1``."""

    filters: int
    kernel: int
    dilation: int = 1
    pool: int = 1

    @classmethod
    def from_dict(cls, layer: Any, where: str) -> ConvLayer:
        """Check ``{"filters", "kernel"[, "dilation", "pool"]}``; ``where`` names it in errors (``conv[0]``)."""
        if not isinstance(layer, Mapping):
            raise ModelError(f"hyperparameter {where} must be a mapping with filters/kernel/dilation/pool")
        extra = sorted(set(layer) - {"filters", "kernel", "dilation", "pool"})
        if extra:
            raise ModelError(f"hyperparameter {where} has unknown keys {extra}; allowed: filters, kernel, dilation, "
                             "pool")
        if "filters" not in layer or "kernel" not in layer:
            raise ModelError(f"hyperparameter {where} needs 'filters' and 'kernel'")
        return cls(_as_int(layer["filters"], f"{where}.filters", 1), _as_int(layer["kernel"], f"{where}.kernel", 1),
                   _as_int(layer.get("dilation", 1), f"{where}.dilation", 1),
                   _as_int(layer.get("pool", 1), f"{where}.pool", 1))

    def to_dict(self) -> dict[str, int]:
        return {"filters": self.filters, "kernel": self.kernel, "dilation": self.dilation, "pool": self.pool}


@dataclass(frozen=True)
class DenseLayer:
    """One ``Dense(units)`` + ReLU + ``Dropout(dropout)``; ``dropout`` in [0, 1)."""

    units: int
    dropout: float = 0.0

    @classmethod
    def from_dict(cls, layer: Any, where: str) -> DenseLayer:
        """Check ``{"units"[, "dropout"]}``; ``where`` names it in errors (``dense[1]``)."""
        if not isinstance(layer, Mapping) or "units" not in layer:
            raise ModelError(f"hyperparameter {where} must be a mapping with 'units' (and 'dropout')")
        extra = sorted(set(layer) - {"units", "dropout"})
        if extra:
            raise ModelError(f"hyperparameter {where} has unknown keys {extra}; allowed: units, dropout")
        return cls(_as_int(layer["units"], f"{where}.units", 1),
                   _as_float(layer.get("dropout", 0.0), f"{where}.dropout", 0.0, 1.0))

    def to_dict(self) -> dict[str, Any]:
        return {"units": self.units, "dropout": self.dropout}


@dataclass(frozen=True)
class TrainingSettings:
    """How the network is trained: optimizer (``adam``/``sgd``, ``momentum`` for sgd), learning rate, batch size,
    epochs, early-stopping patience, seed (also of the weight initialisation) and reverse-complement augmentation
    (None: not set, i.e. off)."""

    learning_rate: float
    batch_size: int
    optimizer: str
    momentum: float
    epochs: int
    patience: int
    seed: int
    rc_augment: bool | None = None


@dataclass(frozen=True)
class Hyperparameters:
    """The network's hyperparameters, validated (see :meth:`from_dict` for the rules).

    ``global_pool`` None means the key was not given (the network flattens, as ``"none"``). ``extra`` holds keys the
    network does not use, as given; ``key_order`` the order of the keys beyond :data:`DEFAULT_HPARAMS`' (optional
    and extra), so :meth:`to_dict` writes them back as they came.
    """

    upstream: int
    downstream: int
    conv: tuple[ConvLayer, ...]
    dense: tuple[DenseLayer, ...]
    n_features: int
    training: TrainingSettings
    global_pool: str | None = None
    batch_norm: bool | None = None
    conv_dropout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    key_order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def length(self) -> int:
        """Window length ``upstream + downstream``."""
        return self.upstream + self.downstream

    @classmethod
    def from_dict(cls, hparams: Mapping[str, Any]) -> Hyperparameters:
        """Check a hyperparameter mapping; missing keys come from :data:`DEFAULT_HPARAMS`.

        Rules: 1-4 conv layers and 1-2 dense layers with positive sizes (integral floats such as hyperopt's ``6.0``
        become ints), dropout and momentum in [0, 1), a positive learning rate, a known optimizer and
        ``global_pool``, booleans ``rc_augment`` and ``batch_norm``, ``conv_dropout`` in [0, 1), and a window that survives the pooling.

        Raises:
            ModelError: naming the bad value.
        """
        if not isinstance(hparams, Mapping):
            raise ModelError(f"hyperparameters must be a mapping (dict), not {type(hparams).__name__}")
        unknown = sorted(set(hparams) - set(DEFAULT_HPARAMS))
        if unknown:
            log.debug("hyperparameters carry keys the network does not use: %s", ", ".join(unknown))
        hp = {**DEFAULT_HPARAMS, **hparams}
        upstream = _as_int(hp["upstream"], "upstream", 0)
        downstream = _as_int(hp["downstream"], "downstream", 0)
        if upstream + downstream < 1:
            raise ModelError("hyperparameters upstream + downstream must be >= 1 (the window length)")
        conv = tuple(ConvLayer.from_dict(layer, f"conv[{i}]")
                     for i, layer in enumerate(_layer_list(hp["conv"], "conv", MAX_CONV)))
        dense = tuple(DenseLayer.from_dict(layer, f"dense[{i}]")
                      for i, layer in enumerate(_layer_list(hp["dense"], "dense", MAX_DENSE)))
        n_features = _as_int(hp["n_features"], "n_features", 0)
        learning_rate = _as_float(hp["learning_rate"], "learning_rate", 0.0, math.inf, low_open=True)
        batch_size = _as_int(hp["batch_size"], "batch_size", 1)
        if hp["optimizer"] not in OPTIMIZERS:
            raise ModelError(f"hyperparameter optimizer={hp['optimizer']!r} must be one of {', '.join(OPTIMIZERS)}")
        momentum = _as_float(hp["momentum"], "momentum", 0.0, 1.0)
        epochs, patience = _as_int(hp["epochs"], "epochs", 1), _as_int(hp["patience"], "patience", 0)
        seed = _as_int(hp["seed"], "seed", 0)
        global_pool = hp.get("global_pool")
        if "global_pool" in hp and global_pool not in GLOBAL_POOLS:
            raise ModelError(f"hyperparameter global_pool={global_pool!r} must be one of {', '.join(GLOBAL_POOLS)}")
        rc_augment = _flag(hp["rc_augment"], "rc_augment") if "rc_augment" in hp else None
        batch_norm = _flag(hp["batch_norm"], "batch_norm") if "batch_norm" in hp else None
        conv_dropout = _as_float(hp["conv_dropout"], "conv_dropout", 0.0, 1.0) if "conv_dropout" in hp else None
        training = TrainingSettings(learning_rate, batch_size, hp["optimizer"], momentum, epochs, patience, seed,
                                    rc_augment)
        _check_pooling(upstream + downstream, conv)
        extra = {k: copy.deepcopy(v) for k, v in hparams.items() if k not in DEFAULT_HPARAMS and k not in _OPTIONAL}
        order = tuple(k for k in hparams if k not in DEFAULT_HPARAMS)
        return cls(upstream, downstream, conv, dense, n_features, training, global_pool, batch_norm, conv_dropout,
                   extra, order)

    def to_dict(self) -> dict[str, Any]:
        """The flat dict stored in model metadata and hyperparameter files (the keys of :data:`DEFAULT_HPARAMS` in
        their order, then optional and extra keys in the order they were given)."""
        t = self.training
        out: dict[str, Any] = {
            "upstream": self.upstream, "downstream": self.downstream,
            "conv": [c.to_dict() for c in self.conv], "dense": [d.to_dict() for d in self.dense],
            "n_features": self.n_features, "learning_rate": t.learning_rate, "batch_size": t.batch_size,
            "optimizer": t.optimizer, "momentum": t.momentum, "epochs": t.epochs, "patience": t.patience,
            "seed": t.seed,
        }
        optional = {"global_pool": self.global_pool, "rc_augment": t.rc_augment, "batch_norm": self.batch_norm,
                    "conv_dropout": self.conv_dropout}
        for key in self.key_order:
            out[key] = optional[key] if key in optional else copy.deepcopy(self.extra[key])
        return out


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
        raise ModelError(f"hyperparameter {what}={value!r} must be true or false")
    return bool(value)


def _check_pooling(length: int, conv: Sequence[ConvLayer]) -> None:
    remaining = length
    for i, layer in enumerate(conv, 1):
        remaining //= layer.pool
        if remaining < 1:
            pools = "x".join(str(c.pool) for c in conv[:i])
            raise ModelError(
                f"window length {length} does not survive the pooling (pool sizes {pools} leave 0 positions after "
                f"conv layer {i}); use a longer window or smaller 'pool' values"
            )


def validate_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Check a hyperparameter dict and return a normalised copy (ints as int, missing keys from DEFAULT_HPARAMS):
    ``Hyperparameters.from_dict(hparams).to_dict()``.

    Raises:
        ModelError: naming the bad value (see :meth:`Hyperparameters.from_dict`).
    """
    return Hyperparameters.from_dict(hparams).to_dict()


def flattened_length(hparams: Mapping[str, Any]) -> int:
    """Number of values the Flatten layer yields (before the half-life features are appended).

    'same' convolutions keep the length; each pooling of size ``p`` maps length ``l`` to ``l // p``.
    Returns 0 when the window does not survive the pooling. ``hparams`` need not be validated.
    """
    length = int(hparams["upstream"]) + int(hparams["downstream"])
    for layer in hparams["conv"]:
        length //= int(layer.get("pool", 1))
    if hparams.get("global_pool", "none") != "none":
        return int(hparams["conv"][-1]["filters"]) if length >= 1 else 0
    return length * int(hparams["conv"][-1]["filters"])


def read_mapping_file(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A mapping from a JSON (``.json``) or YAML (other suffixes) file; ``what`` names the file in errors.

    Raises:
        ModelError: missing or unparseable file, or not a mapping (the file is named in the message).
    """
    import yaml  # PyYAML is imported only where a file is read

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ModelError(f"{what} {path} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{what} {path} must hold a mapping (key: value), not {type(data).__name__}")
    return data


def read_hparams_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Hyperparameters from a JSON (``.json``) or YAML (other suffixes) file *as written*, not validated.

    Raises:
        ModelError: missing or unparseable file, or not a mapping (the file is named in the message).
    """
    data = read_mapping_file(path, "hyperparameter file")
    check_keys(data, f"hyperparameter file {path}")
    return data


def check_keys(hparams: Mapping[str, Any], where: str) -> None:
    """Refuse a key that is a near miss of a hyperparameter (``learning_rte``: a misspelt key would leave the real
    one at its default without a word); warn about other keys the network does not read (they are kept in the
    model's metadata, e.g. a ``window_rule`` note).

    Raises:
        ModelError: naming the key and the hyperparameter it resembles.
    """
    known = [*DEFAULT_HPARAMS, *_OPTIONAL]
    unknown = [key for key in hparams if key not in known]
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
        if close:
            fate = (f"keep its default {DEFAULT_HPARAMS[close[0]]!r}" if close[0] in DEFAULT_HPARAMS else
                    "stay unset")
            raise ModelError(f"{where}: unknown key {key!r}: did you mean {close[0]!r}? (as written, {close[0]} would "
                             f"{fate})")
    if unknown:
        log.warning("%s: %s not read by the network (kept in the model's metadata): %s", where,
                    "key" if len(unknown) == 1 else "keys", ", ".join(map(str, unknown)))


def load_hparams(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate hyperparameters from a JSON or YAML file (missing keys from :data:`DEFAULT_HPARAMS`).

    Raises:
        ModelError: missing/unparseable file or invalid values (the file is named in the message).
    """
    data = read_hparams_file(path)
    try:
        return validate_hparams(data)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
