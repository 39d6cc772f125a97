"""Bundled models by name: the one place that maps ``--model NAME`` to the files shipped in ``varxpress/data``.

Every subcommand that takes ``--model`` accepts either a bundled name (``human``, ``mouse``, ...) or the path of a
``.vxm.h5`` file. A bundled model comes with the TSS set it was made for; ``score`` (and the other subcommands that
read a TSS set) use that set unless ``--tss`` is given, with the model's TSS offset unless ``--tss-offset`` is given.
A model given as a file has no TSS set of its own: without ``--tss`` the default model's set is used, as before.

A file that happens to carry a bundled model's name (``./mouse``) is taken as the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from varxpress.errors import ModelError
from varxpress.io.tss import DEFAULT_TSS, DEFAULT_TSS_OFFSET, TSS, read_tss

__all__ = ["BundledModel", "BUNDLED", "STAGED", "DEFAULT", "data_path", "lookup", "model_file", "resolve",
           "named_ensemble", "named_combination", "describe", "load_tss_set", "TSSSet", "not_bundled", "staged_file"]


def data_path(filename: str) -> str:
    """Path of a file shipped in ``varxpress/data``."""
    return str(resources.files("varxpress") / "data" / filename)


@dataclass(frozen=True)
class BundledModel:
    """One named model: its file, its TSS set and how to read the TSS from that set."""

    name: str
    model: str  #: file name in varxpress/data
    tss: str  #: its TSS set, file name in varxpress/data
    tss_offset: int | None  #: BED: TSS = start + offset on both strands; None: start on +, end - 1 on -
    genome_build: str
    description: str
    kind: str = "model"  #: "model" (a .vxm.h5), "ensemble" (scored as `--ensemble`) or "combination" (`--combination`)

    @property
    def model_path(self) -> str:
        return data_path(self.model)

    @property
    def tss_path(self) -> str:
        return data_path(self.tss)


#: name -> bundled model
BUNDLED: dict[str, BundledModel] = {
    "human": BundledModel(
        "human", "xpresso_human_hg38.vxm.h5", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "published Xpresso human network (Agarwal & Shendure 2020), 18,413 CAGE-corrected hg38 TSSs"),
    "mouse": BundledModel(
        "mouse", "xpresso_mouse_mm10.vxm.h5", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "published Xpresso mouse network applied to human promoter windows, the human TSS set"),
    "human-mouse": BundledModel(
        "human-mouse", "xpresso_human_mouse.ensemble.json", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "ensemble of the human and mouse networks: mean delta, its spread, sign agreement", kind="ensemble"),
    "yeast": BundledModel(
        "yeast", "yeast_R64_tifseq.vxm.h5", "yeast_R64_tifseq_tss.bed.gz", None, "R64-1-1",
        "S. cerevisiae network trained by recipes/yeast (5 seeds merged), 4,818 TIF-seq TSSs"),
}

#: Named entries written ahead of their model files: the lentiMPRA activity models of HepG2 and WTC11 (200 bp,
#: [TSS-120, TSS+80): docs/windows.md, *Short models*), their combination, and WTC11's with Xpresso
#: (docs/interpretation.md, *Combinations*; the two manifests are in varxpress/data). Neither network trained so far
#: is clearly better than the k-mer ridge on its held-out elements (docs/model-quality.md): HepG2's loses to it, and
#: WTC11's, bundled until 2026-12-05, is within noise of the 1- to 6-mer ridge. An entry joins BUNDLED once
#: varxpress/data holds a model that beats the baselines, with its .background.h5; until then the name is refused
#: with the reason (:func:`lookup`). Not bundled before: every bundled entry must load.
STAGED: dict[str, BundledModel] = {
    "human-mpra-hepg2": BundledModel(
        "human-mpra-hepg2", "human_mpra_hepg2.vxm.h5", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "promoter activity in HepG2 (lentiMPRA), 200-bp window [TSS-120, TSS+80)"),
    "human-promoter": BundledModel(
        "human-promoter", "human_promoter.combination.json", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "combination of human-mpra-hepg2 and human-mpra-wtc11, equal weights, deltas in background SDs",
        kind="combination"),
    "human-mpra-wtc11": BundledModel(
        "human-mpra-wtc11", "human_mpra_wtc11.vxm.h5", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "promoter activity in WTC11 iPSCs (lentiMPRA), 200-bp window [TSS-120, TSS+80)"),
    "human-xpresso-promoter": BundledModel(
        "human-xpresso-promoter", "human_xpresso_promoter.combination.json", DEFAULT_TSS, DEFAULT_TSS_OFFSET, "hg38",
        "combination of human (weight 0.5) and human-mpra-wtc11 (weight 1), deltas in background SDs",
        kind="combination"),
}

#: the model used when ``--model`` is not given
DEFAULT = "human"


def lookup(model: str | None) -> BundledModel | None:
    """The bundled model ``model`` names (None: the default); None when ``model`` is a file path.

    Raises:
        ModelError: ``model`` names a staged entry (:data:`STAGED`) and no such file exists.
    """
    if model is None:
        return BUNDLED[DEFAULT]
    if model in BUNDLED and not Path(model).exists():
        return BUNDLED[model]
    if model in STAGED and not Path(model).exists():
        raise ModelError(not_bundled(STAGED[model]))
    return None


def not_bundled(entry: BundledModel) -> str:
    """Why the staged ``entry`` is not there, and what to do instead."""
    what = ("it needs a member network of which" if entry.kind == "combination" else "of networks of this kind")
    why = (f"{entry.name} is not bundled ({entry.description}): {what} none trained so far beats the k-mer ridge "
           "baseline on held-out data (docs/model-quality.md). ")
    if entry.kind == "combination":
        return why + ("Write a combination manifest of models of your own (docs/interpretation.md, Combinations) "
                      "and give it as the combination; the bundled models are listed by varxpress --help")
    return why + ("Train one (recipes/mpra/run.sh) and give its .vxm.h5 file; the bundled models are listed by "
                  "varxpress --help")


def staged_file(filename: str) -> BundledModel | None:
    """The staged entry whose file (in varxpress/data) is called ``filename``, if any."""
    return next((entry for entry in STAGED.values() if entry.model == Path(filename).name), None)


def _named(model: str | None, kind: str) -> str | None:
    entry = lookup(model) if model is not None else None
    return entry.model_path if entry is not None and entry.kind == kind else None


def named_ensemble(model: str | None) -> str | None:
    """The manifest of a bundled ensemble ``model`` names, else None."""
    return _named(model, "ensemble")


def named_combination(model: str | None) -> str | None:
    """The manifest of a bundled combination ``model`` names, else None."""
    return _named(model, "combination")


def model_file(model: str | None) -> str:
    """The model file for ``--model``: a bundled name (None: the default) or a path, returned as is."""
    entry = lookup(model)
    return entry.model_path if entry is not None else str(model)


def resolve(model: str | None, tss: str | None = None,
            tss_offset: int | None = None) -> tuple[str, str, int | None]:
    """``(model file, TSS file, TSS offset)`` for the options ``--model``, ``--tss``, ``--tss-offset``.

    A given ``--tss`` is read with the given ``--tss-offset`` (None: the BED convention). Without ``--tss`` the TSS
    set of the named model is used (a model file: the default model's set), with its own offset unless
    ``--tss-offset`` says otherwise.
    """
    entry = lookup(model)
    path = entry.model_path if entry is not None else str(model)
    if tss:
        return path, str(tss), tss_offset
    own = entry if entry is not None else BUNDLED[DEFAULT]
    return path, own.tss_path, tss_offset if tss_offset is not None else own.tss_offset


class TSSSet(NamedTuple):
    """A subcommand's TSS set and the model file it goes with."""

    model_path: str
    tss_path: str
    tss: list[TSS]


def load_tss_set(model: str | None, tss: str | None = None, tss_offset: int | None = None,
                 fmt: str = "auto") -> TSSSet:
    """The :class:`TSSSet` of ``--model --tss --tss-offset --tss-format``: :func:`resolve`, then the TSS file read
    the way every subcommand reads it."""
    model_path, tss_path, offset = resolve(model, tss, tss_offset)
    return TSSSet(model_path, tss_path, read_tss(tss_path, offset=offset, fmt=fmt))


def describe() -> str:
    """One line per bundled model, for ``--help``."""
    return "; ".join(f"{e.name} ({e.genome_build}{', default' if e.name == DEFAULT else ''}): {e.description}"
                     for e in BUNDLED.values())
