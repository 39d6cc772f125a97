"""What a model predicts and where it came from (:class:`ModelMetadata`, stored as JSON in the model file), and the
checks that the metadata agrees with the network it describes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from varxpress import __version__
from varxpress.errors import ModelError
from varxpress.sequence.windows import WindowSpec

__all__ = ["OUTPUT_SCALES", "ModelMetadata", "check_consistency", "sha256_file"]

OUTPUT_SCALES = ("standardized_log10", "log10")


@dataclass
class ModelMetadata:
    """What a model predicts and where it came from; stored as JSON in the model file.

    Attributes:
        name: short model name.
        upstream, downstream: window around the TSS (bases before it; bases from it, TSS included), in the
            direction of transcription.
        genome_build: the assembly the windows were cut from (e.g. ``hg38``).
        alphabet: one-hot channel order (``ACGT``; N and other codes = all-zero rows).
        output: what the output means, in words.
        output_scale: ``standardized_log10`` (z-scored log10 expression) or ``log10``.
        label_mean, label_sd: map the output to log10 units, ``log10 = out * label_sd + label_mean``
            (None where unknown; for ``log10`` scale 0 and 1).
        feature_names: names of the ``halflife`` input columns (length n_features).
        default_features: values used when no features are given (length n_features).
        hparams: the (validated) hyperparameters.
        metrics: evaluation numbers (e.g. ``val_mse``, ``test_r2``).
        training_data: fingerprint of the data it was trained on.
        source: provenance (file, sha256, citation, notes).
        varxpress_version: version that wrote the file.
        created: ISO 8601 UTC time of creation.
        extra: keys read from a file that this version does not know (kept on re-save).
    """

    name: str
    upstream: int
    downstream: int
    genome_build: str = "unknown"
    alphabet: str = "ACGT"
    output: str = "predicted mRNA expression level"
    output_scale: str = "standardized_log10"
    label_mean: float | None = None
    label_sd: float | None = None
    feature_names: list[str] = field(default_factory=list)
    default_features: list[float] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    varxpress_version: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.varxpress_version:
            self.varxpress_version = __version__
        if not self.created:
            self.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()

    @property
    def labels_text(self) -> str | None:
        """What the model was trained to predict, in words: the recorded text of an imported model, or, for a model
        trained here, the label column and its transform with the labels file's name and hash."""
        labels = self.training_data.get("labels")
        if not isinstance(labels, Mapping):
            return str(labels) if labels else None
        column = str(labels.get("label_column") or "labels")
        transform, pseudo = labels.get("transform"), labels.get("pseudocount")
        value = f"{transform}({column}{f' + {pseudo}' if pseudo else ''})" if transform else column
        source = f" from {Path(str(labels['path'])).name}" if labels.get("path") else ""
        digest = f" (sha256 {str(labels['sha256'])[:12]}…)" if labels.get("sha256") else ""
        scaled = ", z-scored over the training genes" if self.output_scale == "standardized_log10" else ""
        return f"{value}{source}{digest}{scaled}"

    @property
    def label_transform(self) -> tuple[str, float | None] | None:
        """``(transform, pseudocount)`` the training labels went through (``("log10", 0.1)``, ``("none", None)``),
        as a model trained here records it; None where it is not recorded (an imported model)."""
        labels = self.training_data.get("labels")
        if not isinstance(labels, Mapping) or not labels.get("transform"):
            return None
        log10 = labels["transform"] == "log10"
        return str(labels["transform"]), (float(labels.get("pseudocount") or 0.1) if log10 else None)

    @property
    def failed_baselines(self) -> str | None:
        """Why the model's recorded held-out verdict is not a pass (it did not beat the mean and k-mer baselines on
        genes it never trained on, or gave no verdict), in words; None where it passed or records no verdict (an
        imported model)."""
        verdict = (self.metrics or {}).get("verdict")
        if verdict is None or (self.metrics or {}).get("beats_baselines"):
            return None
        reasons = "; ".join((self.metrics or {}).get("reasons") or [])  # each names its verdict and the numbers
        return reasons or str(verdict)

    @property
    def window_spec(self) -> WindowSpec:
        """The window as a :class:`~varxpress.sequence.windows.WindowSpec`."""
        return WindowSpec(self.upstream, self.downstream)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; unknown keys from ``extra`` are written back at top level."""
        d = asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelMetadata":
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``. Raises ModelError on missing keys/bad types."""
        known = {f.name for f in fields(cls)} - {"extra"}
        missing = [k for k in ("name", "upstream", "downstream") if k not in data]
        if missing:
            raise ModelError(f"model metadata lacks {', '.join(missing)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
        try:
            meta = cls(**kwargs)
            meta.upstream = int(meta.upstream)
            meta.downstream = int(meta.downstream)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model metadata is malformed: {exc}") from exc
        return meta


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (model files, TSS sets, label tables)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_consistency(meta: ModelMetadata, hp: dict[str, Any], where: str) -> None:
    """Metadata vs hyperparameters: window, features, output scale."""
    if (meta.upstream, meta.downstream) != (hp["upstream"], hp["downstream"]):
        raise ModelError(
            f"{where}: the metadata window (upstream {meta.upstream}, downstream {meta.downstream}) does not match the "
            f"network input (upstream {hp['upstream']}, downstream {hp['downstream']}, length "
            f"{hp['upstream'] + hp['downstream']}); fix the metadata or rebuild the model"
        )
    n = hp["n_features"]
    if len(meta.feature_names) != n or len(meta.default_features) != n:
        raise ModelError(
            f"{where}: the network takes {n} half-life features but the metadata lists {len(meta.feature_names)} "
            f"feature_names and {len(meta.default_features)} default_features; give exactly {n} of each"
        )
    if meta.output_scale not in OUTPUT_SCALES:
        raise ModelError(f"{where}: output_scale {meta.output_scale!r} must be one of {', '.join(OUTPUT_SCALES)}")
    if meta.alphabet != "ACGT":
        raise ModelError(f"{where}: alphabet {meta.alphabet!r} is not supported (only ACGT)")
