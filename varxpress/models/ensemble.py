"""Ensembles of models: the spread of a prediction across members as its uncertainty.

An ensemble is ``k`` :class:`~varxpress.models.network.ExpressionModel` s that read the same window and take the same
features (the best ``k`` trials of ``varxpress hyperopt``, or the folds of a cross-validation from
``varxpress train``). On disk it is a folder of ``.vxm.h5`` member files with a manifest ``ensemble.json``::

    {"format": "varxpress-ensemble", "version": 1,
     "members": [{"file": "member_01.vxm.h5", "sha256": "..."}, ...],   # paths relative to the manifest
     "source": {...}}                                                   # free-form provenance (trials, folds)

:meth:`EnsembleModel.load` takes the manifest, its folder, or a folder without a manifest (then every
``*.vxm.h5`` in it, in name order). :func:`ensemble_stats` turns per-member reference and alternate predictions
into the mean delta, its standard deviation and the members' agreement on its sign.

Members must share their output scale. Standardised members may have been trained on different labels (the
bundled human-mouse ensemble): each member's delta is then in its own label-SD units, the mean delta averages
those, and ``varxpress.scoring.scores.mean_log2_fold_change`` converts each member's delta with its own ``label_sd``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from varxpress.scoring import scores
from varxpress.errors import ModelError
from varxpress.io.outputs import atomic_path, open_output
from varxpress.models.network import ExpressionModel

log = logging.getLogger(__name__)

__all__ = ["EnsembleModel", "EnsembleStats", "ensemble_stats", "export_ensemble", "MANIFEST"]

MANIFEST = "ensemble.json"
FORMAT = "varxpress-ensemble"
FORMAT_VERSION = 1


class EnsembleStats(NamedTuple):
    """Per-row summary of ``k`` members' deltas (every field shape (n,)).

    Attributes:
        ref_mean, alt_mean: mean reference and alternate prediction over members.
        mean_delta: mean over members of ``alt - ref`` (= ``alt_mean - ref_mean``).
        sd_delta: sample standard deviation (``ddof=1``) of the members' deltas; NaN for a single member.
        sign_agreement: fraction of members whose delta has the sign of ``mean_delta`` (signs -1, 0, +1; a member
            with delta exactly 0 agrees only with a mean of exactly 0).
        all_agree: True where every member's delta is strictly positive, or every one strictly negative.
    """

    ref_mean: np.ndarray
    alt_mean: np.ndarray
    mean_delta: np.ndarray
    sd_delta: np.ndarray
    sign_agreement: np.ndarray
    all_agree: np.ndarray


def ensemble_stats(ref_preds: np.ndarray, alt_preds: np.ndarray) -> EnsembleStats:
    """Mean delta, its spread and sign agreement across members.

    Args:
        ref_preds: shape (n, k), each member's reference prediction.
        alt_preds: shape (n, k), each member's alternate prediction.

    Returns:
        :class:`EnsembleStats` of shape-(n,) arrays.
    """
    ref = np.asarray(ref_preds, dtype=np.float64)
    alt = np.asarray(alt_preds, dtype=np.float64)
    if ref.ndim != 2 or ref.shape != alt.shape or ref.shape[1] < 1:
        raise ValueError(f"ref_preds {ref.shape} and alt_preds {alt.shape} must both have shape (n, k), k >= 1")
    d = scores.delta(ref, alt)
    k = d.shape[1]
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1) if k > 1 else np.full(d.shape[0], np.nan)
    agreement = (np.sign(d) == np.sign(mean)[:, None]).mean(axis=1)
    all_agree = (d > 0).all(axis=1) | (d < 0).all(axis=1)
    return EnsembleStats(ref.mean(axis=1), alt.mean(axis=1), mean, sd, agreement, all_agree)


def _combined_sha256(shas: Sequence[str | None]) -> str:
    h = hashlib.sha256()
    for s in shas:
        h.update((s or "unsaved").encode() + b"\n")
    return h.hexdigest()


class EnsembleModel:
    """``k`` models with identical windows and features, predicted together.

    Args:
        members: the models (at least one).
        path: the manifest or folder it was loaded from.
        source: provenance from the manifest.

    Raises:
        ModelError: the members disagree on window, number of features or output scale.
    """

    def __init__(self, members: Sequence[Any], path: str | os.PathLike | None = None,
                 source: dict[str, Any] | None = None) -> None:
        if not members:
            raise ModelError("an ensemble needs at least one member model")
        first = members[0]
        for i, m in enumerate(members[1:], 2):
            if m.window_spec != first.window_spec:
                raise ModelError(f"ensemble member {i} reads window {m.window_spec} but member 1 reads "
                                 f"{first.window_spec}; every member must read the same window")
            if m.n_features != first.n_features:
                raise ModelError(f"ensemble member {i} takes {m.n_features} features, member 1 {first.n_features}")
            if m.metadata.output_scale != first.metadata.output_scale:
                raise ModelError(f"ensemble member {i} outputs {m.metadata.output_scale}, member 1 "
                                 f"{first.metadata.output_scale}; deltas would not be comparable")
            a, b = m.metadata.label_sd, first.metadata.label_sd
            if a is not None and b is not None and not np.isclose(a, b, rtol=1e-6):
                log.info("ensemble member %d has label_sd %.6g, member 1 %.6g: deltas are averaged in each "
                         "member's own label-SD units, log2 fold changes with each member's own label_sd", i, a, b)
        self.members = list(members)
        self.path = Path(path) if path is not None else None
        self.source = dict(source or {})

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"EnsembleModel(k={len(self)}, window={self.window_spec}, path={str(self.path) if self.path else None!r})"

    @property
    def window_spec(self):
        """The members' common :class:`~varxpress.sequence.windows.WindowSpec`."""
        return self.members[0].window_spec

    @property
    def n_features(self) -> int:
        """Number of features every member takes."""
        return self.members[0].n_features

    @property
    def metadata(self):
        """The first member's metadata (window, output scale and label scale are shared)."""
        return self.members[0].metadata

    @property
    def sha256(self) -> str:
        """SHA-256 over the members' SHA-256s in member order (identifies the ensemble)."""
        return _combined_sha256([m.sha256 for m in self.members])

    def predict(self, X: np.ndarray, features: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
        """Every member's prediction.

        Args:
            X: shape (n, L, 4) one-hot windows in transcription direction.
            features: shape (n, F) or (F,); None: each member's default features.

        Returns:
            shape (n, k) float64: column j is member j's :meth:`~varxpress.models.network.ExpressionModel.predict`.
        """
        return np.stack([m.predict(X, features, batch_size=batch_size) for m in self.members], axis=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EnsembleModel":
        """Load from a manifest JSON, a folder holding ``ensemble.json``, or a folder of ``*.vxm.h5`` files.

        Raises:
            ModelError: nothing to load, a listed member missing, or a member's SHA-256 not the one recorded.
        """
        path = Path(path)
        manifest = path / MANIFEST if path.is_dir() else path
        source: dict[str, Any] = {}
        if manifest.is_file():
            try:
                spec = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise ModelError(f"ensemble manifest {manifest} is not readable JSON: {exc}") from exc
            if not isinstance(spec, dict) or spec.get("format") != FORMAT or not spec.get("members"):
                raise ModelError(f"{manifest} is not a varxpress ensemble manifest (needs \"format\": \"{FORMAT}\" "
                                 f"and a non-empty \"members\" list)")
            if int(spec.get("version", 1)) > FORMAT_VERSION:
                raise ModelError(f"{manifest} uses ensemble format {spec['version']}; upgrade varxpress")
            entries = [e if isinstance(e, dict) else {"file": e} for e in spec["members"]]
            files = [(manifest.parent / e["file"], e.get("sha256")) for e in entries]
            source = spec.get("source") or {}
        elif path.is_dir():
            files = [(f, None) for f in sorted(path.glob("*.vxm.h5"))]
            if not files:
                raise ModelError(f"{path} holds neither {MANIFEST} nor any *.vxm.h5 model file")
        else:
            raise ModelError(f"ensemble {path} does not exist; give a folder of .vxm.h5 files or its {MANIFEST}")
        members = []
        for f, sha in files:
            if not f.is_file():
                raise ModelError(f"ensemble member {f} (listed in {manifest}) does not exist")
            m = ExpressionModel.load(f)
            if sha and m.sha256 != sha:
                raise ModelError(f"ensemble member {f} has sha256 {m.sha256}, but {manifest} records {sha}: the file "
                                 f"was replaced; re-export the ensemble")
            members.append(m)
        log.info("loaded an ensemble of %d models from %s", len(members), path)
        return cls(members, path, source)


def export_ensemble(models: Sequence[Any], out_dir: str | os.PathLike, source: dict[str, Any] | None = None,
                    names: Sequence[str] | None = None) -> Path:
    """Write an ensemble folder: each member as a ``.vxm.h5`` file plus the ``ensemble.json`` manifest.

    For ``varxpress train`` (cross-validation folds) and ``varxpress hyperopt`` (the best ``k`` trials).

    Args:
        models: :class:`~varxpress.models.network.ExpressionModel` objects (saved into the folder) or paths of existing
            ``.vxm.h5`` files (copied into it).
        out_dir: the folder (created if missing).
        source: provenance stored in the manifest, e.g. ``{"kind": "hyperopt-top-k", "trials": [3, 17, 9],
            "losses": [...]}`` or ``{"kind": "cv", "folds": 5}``.
        names: file names of the members (default ``member_01.vxm.h5`` ...).

    Returns:
        the manifest's path. The member list is checked (same window, features, output scale) before writing.
    """
    if not models:
        raise ModelError("export_ensemble needs at least one model")
    loaded = [ExpressionModel.load(m) if isinstance(m, (str, os.PathLike)) else m for m in models]
    EnsembleModel(loaded)  # validates compatibility
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(names) if names is not None else [f"member_{i:02d}.vxm.h5" for i in range(1, len(models) + 1)]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError("names must give one distinct file name per model")
    entries = []
    for given, model, name in zip(models, loaded, names):
        dest = out / name
        if isinstance(given, (str, os.PathLike)):
            if Path(given).resolve() != dest.resolve():
                with atomic_path(dest) as tmp:
                    shutil.copyfile(given, tmp)
            sha = hashlib.sha256(dest.read_bytes()).hexdigest()
        else:
            model.save(dest)
            sha = model.sha256
        entries.append({"file": name, "sha256": sha})
    manifest = out / MANIFEST
    with open_output(manifest) as fh:
        fh.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "members": entries,
                             "source": dict(source or {})}, indent=2, sort_keys=True) + "\n")
    log.info("exported an ensemble of %d models to %s", len(entries), out)
    return manifest
