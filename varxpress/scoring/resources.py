"""The one way in: genome, model or ensemble, TSS set, gene features and background, loaded for a subcommand.

``score``, ``explain``, ``mutagenesis``, ``background`` and the workflow's shards all describe what to load with a
:class:`ResourceSpec` and get it from :func:`load_resources`, so they resolve the bundled defaults
(:mod:`varxpress.models.registry`), read the TSS set, and scale the gene features the same way:

* ``model``: a bundled name (``human``, ``human-mouse``, ...) or a ``.vxm.h5`` file; ``ensemble``: a folder or
  manifest of members instead; ``combination``: a manifest of models that may read different windows
  (:mod:`varxpress.models.combination`). A bundled ensemble or combination name is loaded as one.
* ``tss``: the annotation; None: the bundled model's own TSS set (a model file: the default model's), read with the
  set's own offset unless ``tss_offset`` says otherwise.
* ``features``: per-gene model features (TSV: gene id, then one column per feature). A model made by
  ``varxpress train`` records the training mean and SD of each feature: raw values are standardised with them,
  ``(raw - mean) / sd``, and a missing value becomes 0 (the training mean), exactly as in training. A model without
  those statistics takes the values as they are. Genes absent from the table use the model's defaults
  (:func:`varxpress.scoring.engine.gene_features`).
* ``background``: a file given by the user is checked against the model; None: the background stored beside the
  model file or the ensemble's (combination's) manifest or folder (``<file>.background.h5``), if any. Either way it
  must have been built for this model, ensemble or combination (the SHA-256 it records).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varxpress.errors import DatasetError, UsageError
from varxpress.interpret.background import Background
from varxpress.io.genome import Genome, read_contig_map
from varxpress.io.tss import TSS
from varxpress.sequence.gene_index import TSSIndex
from varxpress.models.ensemble import EnsembleModel
from varxpress.models.network import ExpressionModel, model_stem
from varxpress.models.combination import Combination
from varxpress.models.metadata import sha256_file
from varxpress.models.registry import (BUNDLED, DEFAULT, data_path, load_tss_set, lookup, model_file,
                                       named_combination, named_ensemble)
from varxpress.scoring.combined import CombinedPredictor, load_combination
from varxpress.scoring.engine import Predictor

log = logging.getLogger(__name__)

__all__ = ["ResourceSpec", "Resources", "load_resources", "read_model_features"]


@dataclass(frozen=True)
class ResourceSpec:
    """What a subcommand reads (paths as given; None: the documented default)."""

    fasta: str
    model: str | None = None  #: a bundled model's name or a model file; None: the default bundled model
    ensemble: str | None = None  #: an ensemble folder or manifest instead of ``model``
    combination: str | None = None  #: a combination manifest instead of ``model``
    tss: str | None = None
    tss_offset: int | None = None
    tss_format: str = "auto"
    contig_map: str | None = None
    features: str | None = None
    background: str | None = None  #: None: the one beside the model, if any


@dataclass
class Resources:
    """Everything loaded for one run; :meth:`predictor` makes the engine that predicts with it."""

    spec: ResourceSpec
    genome: Genome
    members: list[Any]  #: the model (one member) or the ensemble's (or combination's) members
    model_path: str  #: the model file or the ensemble's manifest/folder (the combination's manifest)
    model_sha256: str  #: the model file's SHA-256, or the ensemble's (combination's) combined SHA-256
    is_ensemble: bool
    tss_path: str
    tss: list[TSS]
    features: dict[str, np.ndarray] = field(default_factory=dict)  #: on the model's input scale
    background: Background | None = None
    combination: Combination | None = None  #: set when the members are a combination's

    @property
    def model(self):
        """The combination, else the first member: window, features and output scale are common to all members."""
        return self.combination if self.combination is not None else self.members[0]

    @property
    def model_name(self) -> str:
        """The name outputs give what scores: a model's or a combination's own, a bundled ensemble's
        (``human-mouse``), else ``ensemble_of_K``."""
        if len(self.members) == 1 or self.combination is not None:
            return self.model.metadata.name
        bundled = lookup(self.spec.model) if self.spec.model else None
        return bundled.name if bundled else f"ensemble_of_{len(self.members)}"

    @property
    def training_record(self) -> tuple[str, str]:
        """What the members' metadata say of their training, for output headers: the SHA-256 of the prepared set
        they were trained on and their recorded held-out verdict (``evaluate``'s or ``train``'s), each ``.`` where no
        member records one and ``mixed`` where the members differ (an ensemble's members share both when they come
        from one ``train --cv-folds`` or ``hyperopt`` run)."""
        return (_common({_training_set(m) for m in self.members}), _common({_verdict(m) for m in self.members}))

    @property
    def label_scale(self) -> tuple[str, str]:
        """The members' ``label_mean`` and ``label_sd`` for output headers (their output in log10 units is
        ``out * label_sd + label_mean``, and ``Log2FC = Delta * label_sd * log2(10)``), formatted as the model
        records them; ``.`` where no member records one, ``mixed`` where the members differ (then each member's
        own is on its ``varxpress_member`` line); a combination's delta is in background SDs, so ``(".", ".")``."""
        if self.combination is not None:
            return ".", "."
        return (_common({m.metadata.label_mean for m in self.members}),
                _common({m.metadata.label_sd for m in self.members}))

    @property
    def genome_build(self) -> str:
        """The genome build the members record, for output headers; ``mixed`` where they differ (the bundled
        human-mouse ensemble: hg38 and mm10, both reading human windows)."""
        if self.combination is not None:
            return str(self.combination.metadata.genome_build)
        return _common({m.metadata.genome_build for m in self.members})

    @property
    def member_names(self) -> list[str]:
        """Each member's name as outputs show it (``MemberDeltas``, ``delta_NAME`` TSV columns, explain), in
        member order; [] for a single model. A combination's are its own; an ensemble member's is its file's name
        without ``.vxm.h5`` (``member_01``, ``xpresso_mouse_mm10``; its metadata's name when not loaded from a file),
        characters other than letters, digits, ``.``, ``_`` and ``-`` made ``_`` (they become TSV column names and
        VCF header text)."""
        if self.combination is not None:
            return list(self.combination.names)
        if not self.is_ensemble or len(self.members) < 2:
            return []
        names = [model_stem(m.path) if m.path is not None else m.metadata.name for m in self.members]
        return [re.sub(r"[^A-Za-z0-9._-]", "_", name) for name in names]

    def member_lines(self) -> list[tuple[str, str]]:
        """``##varxpress_member=<...>`` header lines, one per member in member order: a combination's (weights and
        background SDs), an ensemble's (file, SHA-256, output scale, label mean and SD, training set, verdict);
        none for a single model, whose ``varxpress_model`` line says all of it."""
        if self.combination is not None:
            return self.combination.header_lines()
        if not self.is_ensemble:
            return []
        return [("varxpress_member",
                 f"<Index={i},Name={name},File={m.path.name if m.path is not None else '.'},SHA256={m.sha256},"
                 f"Build={_common({m.metadata.genome_build})},"
                 f"Output={m.metadata.output_scale},"
                 f"LabelMean={_common({m.metadata.label_mean})},LabelSD={_common({m.metadata.label_sd})},"
                 f"TrainingSet={_common({_training_set(m)})},Verdict=\"{_common({_verdict(m)})}\">")
                for i, (name, m) in enumerate(zip(self.member_names, self.members), 1)]

    def tss_index(self) -> TSSIndex:
        """An interval index of the genes' model windows on this genome."""
        spec = self.model.window_spec
        return TSSIndex(self.tss, spec.upstream, spec.downstream, genome=self.genome)

    def predictor(self, fast: bool = True, batch_size: int = 32, threads: int = 1) -> Predictor:
        """The prediction engine over these members, features and background."""
        if self.combination is not None:
            return CombinedPredictor(self.combination, self.genome, self.background, fast=fast, batch_size=batch_size,
                                     threads=threads)
        return Predictor(self.members, self.genome, self.features, self.background, fast=fast,
                         batch_size=batch_size, threads=threads)


def _common(values: set) -> str:
    """The one value of ``values`` as text, ``.`` for none recorded, ``mixed`` for several."""
    return "." if values == {None} else str(next(iter(values))) if len(values) == 1 else "mixed"


def _training_set(member: Any) -> str | None:
    return (member.metadata.training_data or {}).get("sha256")


def _verdict(member: Any) -> str | None:
    return (member.metadata.metrics or {}).get("verdict")


def read_model_features(path: str, model: Any) -> dict[str, np.ndarray]:
    """Per-gene features of ``path`` on ``model``'s input scale: gene id -> shape (F,) float32.

    The file is TSV with a header: gene id first, then ``model.n_features`` numeric columns. With the training
    statistics the model records (``training_data.feature_mean`` / ``feature_sd``), values are standardised as in
    training and missing values become 0; without them they are taken as already on the input scale.

    Raises:
        DatasetError: wrong number of columns, or a column that is not numeric.
    """
    import pandas as pd  # only a features table needs it: importing pandas is half of `score`'s start-up

    table = pd.read_csv(path, sep="\t", comment="#")
    if table.shape[1] != model.n_features + 1:
        raise DatasetError(f"{path}: expected a gene id column and {model.n_features} feature columns (what the "
                           f"model takes), found {table.shape[1]} columns")
    try:
        values = table.iloc[:, 1:].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path}: feature columns must be numeric ({exc})") from exc
    training = model.metadata.training_data or {}
    mean, sd = training.get("feature_mean"), training.get("feature_sd")
    if mean is not None and sd is not None:
        sd_arr = np.asarray(sd, dtype=np.float64)
        values = (values - np.asarray(mean, dtype=np.float64)) / np.where(sd_arr > 0, sd_arr, 1.0)
    values = np.where(np.isnan(values), 0.0, values).astype(np.float32)
    return {str(g): v for g, v in zip(table.iloc[:, 0], values)}


def _background(spec: ResourceSpec, model_path: str, sha256: str) -> Background | None:
    """The user's background, checked against the model, or the one beside the model file or manifest, if any.

    ``sha256`` is the model's, or an ensemble's (combination's) combined one, as ``varxpress background`` records it.
    """
    if spec.background:
        bg = Background.load(spec.background)
        bg.check_model(sha256)
        return bg
    return Background.for_model(model_path, sha256)


#: names of one assembly (UCSC, GRC), compared case-insensitively
_SAME_BUILD = [{"hg38", "grch38"}, {"hg19", "grch37"}, {"mm10", "grcm38"}, {"mm39", "grcm39"}, {"r64", "r64-1-1",
                                                                                                   "saccer3"}]


def _build_key(build: str) -> str:
    build = build.strip().lower()
    return next((min(names) for names in _SAME_BUILD if build in names), build)


def _check_default_tss_build(spec: ResourceSpec, members: list, several: str | None) -> None:
    """Refuse a model file of another genome build with the default TSS set, which is hg38's.

    Without ``--tss`` a model file (not a bundled name) takes the default model's TSS set. A model trained on yeast
    then scored yeast variants against human genes on a contig of the same name (yeast ``X``, human ``X``). The
    build the model records is compared with that set's; an unknown build, a bundled model by name or, when its
    set is the default, by its file, and an ensemble or combination (the bundled mouse network reads human windows
    by design) are not checked.
    """
    if spec.tss or several or lookup(spec.model) is not None:
        return
    build, path, default = members[0].metadata.genome_build, members[0].path, BUNDLED[DEFAULT]
    bundled = next((e for e in BUNDLED.values() if path and Path(e.model_path).resolve() == Path(path).resolve()), None)
    if bundled is not None and bundled.tss == default.tss:
        return  # the mouse network, given by its file, reads the human set's windows by design
    if not build or build == "unknown":  # `prepare` without --genome-build: the set it was prepared with decides
        source = (members[0].metadata.training_data or {}).get("tss_source") or {}
        if not source or source.get("sha256") == sha256_file(data_path(default.tss)):
            return  # an imported network records none; a set prepared with the default TSS set is at home
        raise UsageError(f"the model {spec.model} records no genome build and was prepared with the TSS set "
                         f"{Path(str(source.get('path', '?'))).name}, but no --tss was given and the default TSS "
                         f"set is {default.genome_build}'s ({default.tss}): give --tss with the TSS set it was "
                         f"prepared with (and record the build next time: prepare --genome-build)")
    if _build_key(str(build)) != _build_key(default.genome_build):
        by_name = f" (or --model {bundled.name}, which brings its own)" if bundled is not None else ""
        raise UsageError(f"the model {spec.model} was trained on genome build {build}, but no --tss was given and "
                         f"the default TSS set is {default.genome_build}'s ({default.tss}): give --tss with the "
                         f"TSS set of the model's genome, the one it was prepared with{by_name}")


def load_resources(spec: ResourceSpec, background: bool = True) -> Resources:
    """Load what ``spec`` names (see the module docstring); ``background=False`` leaves the background out.

    Raises:
        ValueError: more than one of a model, an ensemble and a combination were given.
        UsageError: features with a combination.
        ModelError, GenomeError, AnnotationError, DatasetError, BackgroundError: an input that cannot be used.
    """
    if sum(bool(x) for x in (spec.model, spec.ensemble, spec.combination)) > 1:
        raise ValueError("give one of a model, an ensemble or a combination")
    genome = Genome(spec.fasta, contig_map=read_contig_map(spec.contig_map) if spec.contig_map else None)
    ensemble_path = spec.ensemble or named_ensemble(spec.model)  # --model human-mouse is an ensemble
    combination_path = spec.combination or named_combination(spec.model)
    combination = None
    if combination_path:
        if spec.features:
            raise UsageError("--features cannot be given with a combination: its members may take different "
                             "features; each member uses its own defaults")
        combination = load_combination(combination_path)
        members, model_path, sha256 = combination.models, str(combination_path), combination.sha256
    elif ensemble_path:
        ensemble = EnsembleModel.load(ensemble_path)
        members, model_path, sha256 = ensemble.members, str(ensemble_path), ensemble.sha256
    else:
        model_path = model_file(spec.model)
        members = [ExpressionModel.load(model_path)]
        sha256 = members[0].sha256
    _check_default_tss_build(spec, members, combination_path or ensemble_path)
    tss_set = load_tss_set(spec.model, spec.tss, spec.tss_offset, spec.tss_format)
    features = read_model_features(spec.features, members[0]) if spec.features else {}
    bg = _background(spec, model_path, sha256) if background else None
    for member in members:  # a model that lost to simple baselines on held-out genes is said so wherever it scores
        failed = member.metadata.failed_baselines
        if failed:
            log.warning("!!! model %s did not beat the mean and k-mer baselines on the genes it was tested on (%s): "
                        "its scores are not better evidence than those simple predictors !!!",
                        member.metadata.name, failed)
    return Resources(spec, genome, members, model_path, sha256, bool(ensemble_path), str(tss_set.tss_path),
                     tss_set.tss, features, bg, combination)

