"""Combinations of models that may read different windows: each member's delta in its own background SDs, averaged.

An ensemble (:mod:`varxpress.models.ensemble`) averages models that read the same window on the same output scale.
A *combination* joins models that need not: the published Xpresso network ([TSS-7000, TSS+3500)) and a 200-bp
promoter-activity model ([TSS-120, TSS+80)), say. Their deltas are on unrelated scales, so each is first divided
by the spread of that member's own background deltas, then averaged with the members' weights.

The rule (docs/output.md, *Combinations*): for one (allele, gene), the members whose window holds the variant each
give their delta ``d_i``; with ``w_i`` the member's weight and ``s_i`` the standard deviation of its background
SNV deltas (the ``delta_sd`` its background file records),

    combined = sum_i(w_i * d_i / s_i) / sum_i(w_i)        over the members that reach the variant only,

so the combined delta is in background standard deviations. Members whose window does not hold the variant take no
part (their delta is reported as missing); the union of the members' windows decides which genes a variant meets.

On disk a combination is a JSON manifest::

    {"format": "varxpress-combination", "version": 1,
     "name": "human-promoter",                               # optional; default: the manifest's file name
     "members": [{"model": "human", "weight": 0.5},            # a bundled model by name
                 {"model": "hepg2.vxm.h5", "weight": 1.0,      # or a model file, relative to the manifest
                  "name": "hepg2",                           # optional; default: the file name without .vxm.h5
                  "background": "hepg2.vxm.h5.background.h5",  # optional; default: the one beside the model
                  "sha256": "..."}],                         # optional check of the model file
     "source": {...}}                                        # free-form provenance (why these weights)

This module reads the manifest and holds the loaded members; :mod:`varxpress.scoring.combined` reads the members'
backgrounds and predicts with them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from varxpress.errors import ModelError
from varxpress.models.registry import lookup, not_bundled, staged_file
from varxpress.sequence.windows import WindowSpec

log = logging.getLogger(__name__)

__all__ = ["FORMAT", "COMBINED_SCALE", "MemberEntry", "CombinationMember", "CombinationMetadata", "Combination",
           "CombinationStats", "combination_stats", "read_manifest"]

FORMAT = "varxpress-combination"
FORMAT_VERSION = 1
#: output scale of a combined delta: a weighted mean of member deltas, each in its own background SDs
COMBINED_SCALE = "background_sd"
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # member names become TSV column names and VCF header text


class MemberEntry(NamedTuple):
    """One member as its manifest lists it, with paths resolved (nothing loaded yet)."""

    name: str
    model_path: str  #: the model file (a bundled name resolved to its file)
    weight: float
    background: str | None  #: the background whose spread scales the member; None: the one beside the model
    sha256: str | None  #: the model file's SHA-256 the manifest records, if any


def _entry(raw: Any, i: int, folder: Path, manifest: Path) -> MemberEntry:
    where = f"{manifest}: member {i}"
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str):
        raise ModelError(f"{where} needs a \"model\": a bundled model's name or a .vxm.h5 file")
    text = raw["model"]
    if (folder / text).is_file():
        path, name = str(folder / text), Path(text).name.removesuffix(".vxm.h5")
    else:
        try:
            bundled = lookup(text)
        except ModelError as exc:  # a staged name: why it is not there
            raise ModelError(f"{where}: {exc}") from None
        staged = staged_file(text) if bundled is None else None
        if staged is not None:
            raise ModelError(f"{where}: model file {text!r} is not in {folder}: {not_bundled(staged)}")
        if bundled is None or bundled.kind != "model" or not Path(bundled.model_path).is_file():
            raise ModelError(f"{where}: model {text!r} is neither a file (looked in {folder}) nor a bundled model")
        path, name = bundled.model_path, bundled.name
    name = str(raw.get("name", name))
    if not _NAME.match(name):
        raise ModelError(f"{where}: name {name!r} may hold only letters, digits, '.', '_' and '-'")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        raise ModelError(f"{where} ({name}): weight {weight!r} must be a finite number > 0")
    background = raw.get("background")
    return MemberEntry(name, path, float(weight), None if background is None else str(folder / background),
                       raw.get("sha256"))


def read_manifest(path: str | os.PathLike) -> tuple[str, list[MemberEntry], dict[str, Any]]:
    """``(name, members, source)`` of a combination manifest (see the module docstring).

    Raises:
        ModelError: unreadable JSON, not a combination manifest, a newer format, a member that is neither a file nor a
            bundled model, a bad weight or name, or two members of one name.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"combination manifest {path} does not exist")
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"combination manifest {path} is not readable JSON: {exc}") from exc
    if not isinstance(spec, dict) or spec.get("format") != FORMAT or not spec.get("members"):
        raise ModelError(f"{path} is not a varxpress combination manifest (needs \"format\": \"{FORMAT}\" and a "
                         f"non-empty \"members\" list)")
    if int(spec.get("version", 1)) > FORMAT_VERSION:
        raise ModelError(f"{path} uses combination format {spec['version']}; upgrade varxpress")
    members = [_entry(raw, i, path.parent, path) for i, raw in enumerate(spec["members"], 1)]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ModelError(f"{path}: member names {names} repeat; give each member its own \"name\"")
    name = str(spec.get("name") or path.name.removesuffix(".json").removesuffix(".combination"))
    return name, members, dict(spec.get("source") or {})


@dataclass(frozen=True)
class CombinationMember:
    """A loaded member: its model, weight, and the SD of its background deltas that scales it."""

    name: str
    model: Any  #: an :class:`~varxpress.models.network.ExpressionModel`
    weight: float
    sd: float  #: standard deviation of the member's background SNV deltas (model output scale)
    background: str  #: the background file ``sd`` was read from


class CombinationMetadata(NamedTuple):
    """What outputs say about a combination where they say it about a model."""

    name: str
    genome_build: str
    output_scale: str = COMBINED_SCALE
    label_sd: float | None = None


class CombinationStats(NamedTuple):
    """Per-row summary of the members' deltas (every field shape (n,)).

    Attributes:
        combined: ``sum(w_i d_i / s_i) / sum(w_i)`` over the members that reached the row; NaN where none did.
        sign_agreement: fraction of those members whose delta has the sign of ``combined`` (signs -1, 0, +1).
        n_members: how many members reached the row.
    """

    combined: np.ndarray
    sign_agreement: np.ndarray
    n_members: np.ndarray


def combination_stats(deltas: np.ndarray, weights: Sequence[float], sds: Sequence[float]) -> CombinationStats:
    """The combined delta and the members' agreement (the rule of the module docstring).

    Args:
        deltas: shape (n, k), member ``j``'s delta in column ``j``; NaN where its window does not hold the variant.
        weights: shape (k,), each member's weight (> 0).
        sds: shape (k,), each member's background SD (> 0).
    """
    d = np.asarray(deltas, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    s = np.asarray(sds, dtype=np.float64)
    if d.ndim != 2 or w.shape != (d.shape[1],) or s.shape != w.shape:
        raise ValueError(f"deltas {d.shape} must be (n, k) with k = {w.shape} weights and {s.shape} sds")
    reached = ~np.isnan(d)
    used = np.where(reached, w, 0.0)
    total = used.sum(axis=1)
    n = reached.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = np.where(total > 0, (used * np.where(reached, d / s, 0.0)).sum(axis=1) / total, np.nan)
        agree = ((np.sign(d) == np.sign(combined)[:, None]) & reached).sum(axis=1) / n
    return CombinationStats(combined, np.where(n > 0, agree, np.nan), n)


class Combination:
    """Members that may read different windows, combined by the rule of the module docstring.

    Args:
        members: at least one :class:`CombinationMember`.
        name: what outputs call it (``##varxpress_model=<Name=...>``).
        path: the manifest it was loaded from.
        source: provenance from the manifest.

    Raises:
        ModelError: no member, a repeated name, a weight or SD that is not a finite number > 0, or members made for
            different genome builds.
    """

    def __init__(self, members: Sequence[CombinationMember], name: str = "combination",
                 path: str | os.PathLike | None = None, source: dict[str, Any] | None = None) -> None:
        if not members:
            raise ModelError("a combination needs at least one member model")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ModelError(f"combination member names {names} repeat")
        for m in members:
            if not (math.isfinite(m.weight) and m.weight > 0):
                raise ModelError(f"combination member {m.name}: weight {m.weight} must be a finite number > 0")
            if not (math.isfinite(m.sd) and m.sd > 0):
                raise ModelError(f"combination member {m.name}: the SD of its background deltas ({m.sd}, from "
                                 f"{m.background}) must be a finite number > 0")
        builds = {m.model.metadata.genome_build for m in members}
        if len(builds) > 1:
            raise ModelError(f"combination members were made for different genome builds ({', '.join(sorted(builds))})")
        self.members = list(members)
        self.name = name
        self.path = Path(path) if path is not None else None
        self.source = dict(source or {})

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Combination({self.name!r}, members={self.names}, weights={list(self.weights)})"

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def models(self) -> list[Any]:
        return [m.model for m in self.members]

    @property
    def weights(self) -> np.ndarray:
        return np.array([m.weight for m in self.members], dtype=np.float64)

    @property
    def sds(self) -> np.ndarray:
        return np.array([m.sd for m in self.members], dtype=np.float64)

    @property
    def window_spec(self) -> WindowSpec:
        """The union of the members' windows: every window holds the TSS's edge, so the union is one window."""
        return WindowSpec(max(m.model.window_spec.upstream for m in self.members),
                          max(m.model.window_spec.downstream for m in self.members))

    @property
    def n_features(self) -> int:
        """0: each member uses its own default features (a features table is not shared across members)."""
        return 0

    @property
    def metadata(self) -> CombinationMetadata:
        return CombinationMetadata(self.name, self.members[0].model.metadata.genome_build)

    @property
    def sha256(self) -> str:
        """SHA-256 over each member's model SHA-256, weight and background SD, in member order: a background of
        combined deltas is valid for exactly this combination."""
        h = hashlib.sha256()
        for m in self.members:
            h.update(f"{m.model.sha256 or 'unsaved'}|{m.weight!r}|{m.sd!r}\n".encode())
        return h.hexdigest()

    def header_lines(self) -> list[tuple[str, str]]:
        """One ``##varxpress_member=<...>`` line per member, in member order (the order of ``MemberDeltas``)."""
        return [("varxpress_member",
                 f"<Name={m.name},File={Path(str(m.model.path or m.model.metadata.name)).name},"
                 f"SHA256={m.model.sha256},Upstream={m.model.window_spec.upstream},"
                 f"Downstream={m.model.window_spec.downstream},Output={m.model.metadata.output_scale},"
                 f"Weight={m.weight:.6g},BackgroundSD={m.sd:.6g},Background={Path(m.background).name}>")
                for m in self.members]
