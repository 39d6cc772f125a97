"""The search space: read from a file, clipped to a prepared set, turned into hyperopt distributions, and a draw
turned back into nested hyperparameters (the syntax is in the package docstring, :mod:`varxpress.learning.tuning`).
"""

from __future__ import annotations

import copy
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from hyperopt import hp as distributions
from hyperopt.pyll import scope

from varxpress.errors import DatasetError, ModelError
from varxpress.learning.prepared import PreparedSet
from varxpress.models.hparams import MAX_CONV, MAX_DENSE

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SPACE", "read_space", "clip_space", "build_space", "flat_to_hparams"]

#: The Xpresso search space (Agarwal & Shendure 2020, STAR Methods), window bounds clipped to the prepared set.
DEFAULT_SPACE: dict[str, Any] = {
    "upstream": ["quniform", 1000, 10000, 500],
    "downstream": ["quniform", 1000, 10000, 500],
    "n_conv": ["choice", 1, 2, 3, 4],
    "conv_filters": ["pow2", 5, 7],
    "conv_kernel": ["quniform", 4, 20, 1],
    "conv_dilation": ["quniform", 1, 4, 1],
    "conv_pool": ["quniform", 1, 30, 1],
    "n_dense": ["choice", 1, 2],
    "dense_units": ["pow2", 1, 7],
    "dense_dropout": ["uniform", 0.0, 0.5],
    "learning_rate": ["loguniform", 1e-4, 1e-2],
    "batch_size": ["pow2", 5, 8],
    "optimizer": ["choice", "adam", "sgd"],
    "momentum": ["uniform", 0.8, 0.99],
    "epochs": 20,
    "patience": 4,
    "seed": 0,
}

_FIXED_ONLY = ("epochs", "patience", "seed", "n_features")
_LAYER_PARAMS = {"conv": ("filters", "kernel", "dilation", "pool"), "dense": ("units", "dropout")}
_TOP_PARAMS = ("upstream", "downstream", "n_conv", "n_dense", "learning_rate", "batch_size", "optimizer",
               "momentum", "global_pool", "rc_augment", "batch_norm", "conv_dropout") + _FIXED_ONLY


def read_space(path: str | os.PathLike) -> dict[str, Any]:
    """Read a search-space file (YAML or JSON mapping; see the module docstring)."""
    import yaml  # PyYAML is imported only where a file is read

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelError(f"cannot read search space {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"search space {path} must be a mapping of parameter -> value or [distribution, ...]")
    return data


def _known(name: str) -> bool:
    if name in _TOP_PARAMS:
        return True
    for kind, params in _LAYER_PARAMS.items():
        limit = MAX_CONV if kind == "conv" else MAX_DENSE
        for p in params:
            if name == f"{kind}_{p}" or any(name == f"{kind}{i}_{p}" for i in range(1, limit + 1)):
                return True
    return False


def _is_dist(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) >= 2 and isinstance(value[0], str)


def _dist(label: str, spec: Any):
    """A hyperopt expression for ``[name, args...]``, or the constant itself."""
    if not _is_dist(spec):
        return spec
    name, args = spec[0], list(spec[1:])
    try:
        if name == "choice":
            return distributions.choice(label, args)
        if name == "uniform":
            return distributions.uniform(label, float(args[0]), float(args[1]))
        if name == "quniform":
            return distributions.quniform(label, float(args[0]), float(args[1]), float(args[2]))
        if name == "loguniform":
            return distributions.loguniform(label, math.log(float(args[0])), math.log(float(args[1])))
        if name == "qloguniform":
            return distributions.qloguniform(label, math.log(float(args[0])), math.log(float(args[1])),
                                             float(args[2]))
        if name == "pow2":
            return scope.int(2 ** distributions.quniform(label, float(args[0]), float(args[1]), 1))
    except (IndexError, ValueError) as exc:
        raise ModelError(f"search space {label}: bad arguments {args} for {name}: {exc}") from exc
    raise ModelError(f"search space {label}: unknown distribution {name!r}; use choice, uniform, quniform, "
                     "loguniform, qloguniform or pow2")


def _max_layers(spec: Any, limit: int, label: str) -> int:
    values = spec[1:] if _is_dist(spec) and spec[0] == "choice" else [spec]
    if _is_dist(spec) and spec[0] != "choice":
        raise ModelError(f"search space {label}: use a constant or [choice, ...]")
    try:
        top = max(int(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"search space {label}: {spec!r} is not a layer count") from exc
    if not 1 <= top <= limit or min(int(v) for v in values) < 1:
        raise ModelError(f"search space {label}: layer counts must lie in 1..{limit}")
    return top


def clip_space(space: dict[str, Any], pset: PreparedSet) -> dict[str, Any]:
    """Clip the window bounds of a space to what the prepared set stores (a range clipped to one value becomes it)."""
    space = copy.deepcopy(space)
    for key, limit in (("upstream", pset.upstream), ("downstream", pset.downstream)):
        spec = space.get(key, limit)
        if _is_dist(spec) and spec[0] in ("quniform", "uniform", "qloguniform", "loguniform"):
            lo, hi = float(spec[1]), min(float(spec[2]), float(limit))
            spec = [spec[0], lo, hi, *spec[3:]] if lo < hi else int(hi)  # nothing left to search
        elif _is_dist(spec) and spec[0] == "choice":
            kept = [v for v in spec[1:] if int(v) <= limit] or [limit]
            spec = ["choice", *kept]
        elif not _is_dist(spec) and int(spec) > limit:
            raise DatasetError(f"search space {key}={spec} exceeds the prepared set's stored {key} ({limit})")
        space[key] = spec
    return space


def build_space(space: dict[str, Any]) -> dict[str, Any]:
    """The hyperopt space (a dict of expressions and constants) for a flat space mapping."""
    unknown = sorted(k for k in space if not _known(k))
    if unknown:
        raise ModelError(f"search space has unknown parameters {unknown}; see `varxpress hyperopt --help`")
    for key in _FIXED_ONLY:
        spec = space.get(key)
        if _is_dist(spec) and not (key == "n_features" and spec[0] == "choice"):
            raise ModelError(f"search space {key} must be a fixed value"
                             + (" or [choice, 0, N] (without / with the set's N features)"
                                if key == "n_features" else ""))
    out: dict[str, Any] = {}
    for key in _TOP_PARAMS:
        if key in space:
            out[key] = _dist(key, space[key])
    n_layers = {"conv": _max_layers(space.get("n_conv", 1), MAX_CONV, "n_conv"),
                "dense": _max_layers(space.get("n_dense", 1), MAX_DENSE, "n_dense")}
    for kind, params in _LAYER_PARAMS.items():
        for i in range(1, n_layers[kind] + 1):
            for p in params:
                spec = space.get(f"{kind}{i}_{p}", space.get(f"{kind}_{p}"))
                if spec is not None:
                    out[f"{kind}{i}_{p}"] = _dist(f"{kind}{i}_{p}", spec)
    return out


def flat_to_hparams(flat: dict[str, Any]) -> dict[str, Any]:
    """Nested hyperparameters (``conv``/``dense`` lists) from one flat sample of :func:`build_space`.

    Integral floats (hyperopt's ``quniform`` yields ``6.0``) become ints; numpy scalars become Python ones.
    """
    def clean(v: Any) -> Any:
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    flat = {k: clean(v) for k, v in flat.items()}
    hp = {k: flat[k] for k in _TOP_PARAMS if k in flat and k not in ("n_conv", "n_dense")}
    for kind, params in _LAYER_PARAMS.items():
        n = int(flat.get(f"n_{kind}", 1))
        layers = []
        for i in range(1, n + 1):
            layer = {p: flat[f"{kind}{i}_{p}"] for p in params if f"{kind}{i}_{p}" in flat}
            layers.append(layer)
        if any(layers):
            hp[kind] = layers
    _fit_pools(hp)
    return hp


def _fit_pools(hp: dict[str, Any]) -> None:
    """Cap each conv layer's drawn pool at the positions that layer receives, in place.

    A space's pools are drawn independently (the Xpresso space: up to 30 for each of up to 4 layers), so on a short
    window a draw may pool more positions than are left, which the network refuses. Such a layer pools all that is
    left instead (one position, as a global max pool would), and the trial records the pool it trained with. A draw
    that does not say its window is left as it is.
    """
    if "upstream" not in hp or "downstream" not in hp:
        return
    length = int(hp["upstream"]) + int(hp["downstream"])
    for i, layer in enumerate(hp.get("conv", []), 1):
        pool = layer.get("pool", 1)
        if isinstance(pool, int) and pool > length >= 1:
            log.info("conv layer %d: pool %d capped at the %d position%s it receives", i, pool, length,
                     "" if length == 1 else "s")
            layer["pool"] = pool = length
        if isinstance(pool, int) and pool >= 1:
            length //= pool
