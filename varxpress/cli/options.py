"""Options shared by several subcommands, declared once.

``score``, ``explain``, ``mutagenesis``, ``background`` and ``workflow`` read the same inputs (genome, model or
ensemble, TSS set, features, background) and predict the same way (threads, batch size, fast path); each option's
name, type, default and help text live here, and :func:`resource_spec` turns them into the library's
:class:`~varxpress.scoring.resources.ResourceSpec`.

``workflow`` overlays its options on a ``--configfile``, so it declares them with ``overlay=True``: no argparse
default (an option not given leaves the config's value), the default stated in the help instead.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from varxpress.cli.types import existing_file, model_argument, positive_int
from varxpress.errors import UsageError
from varxpress.models.registry import DEFAULT, describe
from varxpress.scoring.pipeline import ScoreConfig
from varxpress.scoring.resources import ResourceSpec

__all__ = ["add_resource_options", "add_prediction_options", "add_score_options", "resource_spec",
           "configure_threads", "refuse_combination"]

TSS_FORMATS = ["auto", "bed", "gtf", "gff3", "tsv"]


def _add(p, flags: tuple[str, ...], overlay: bool, **kwargs: Any) -> None:
    """``p.add_argument``; with ``overlay`` the default moves from argparse into the help text."""
    if overlay and "default" in kwargs and kwargs.get("action") not in ("store_false", "store_true"):
        default = kwargs.pop("default")
        kwargs["help"] += f" (default: {default}, unless the --configfile sets it)"
    elif overlay and kwargs.get("action") == "store_false":
        kwargs["default"] = None
    p.add_argument(*flags, **kwargs)


def add_resource_options(p, *, fasta_required: bool = True, ensemble: bool = True, background: bool = True,
                         overlay: bool = False, combination: bool = False) -> None:
    """``--fasta --tss --tss-offset --tss-format --model [--ensemble] [--combination] --contig-map --features
    [--background]``."""
    _add(p, ("--fasta", "-f"), overlay, required=fasta_required, type=existing_file,
         help="reference genome FASTA, plain or bgzip (.fai/.gzi made if missing and the folder is writable)")
    _add(p, ("--tss",), overlay, type=existing_file,
         help="TSS annotation: BED6(+name), GTF, GFF3 or TSV (default: the bundled model's own TSS set; for a model "
              "file, the default model's, hg38, and required for a model file of another genome build)")
    _add(p, ("--tss-offset",), overlay, type=int,
         help="TSS = BED start + OFFSET on both strands (10000 for the Xpresso TSS +- 10 kb BED); default: BED "
              "convention, start on + and end-1 on - (a bundled TSS set: its own offset)")
    _add(p, ("--tss-format",), overlay, default="auto", choices=TSS_FORMATS,
         help="format of --tss; auto: from the file name and contents (BED, GTF, GFF3 or TSV)")
    which = p.add_mutually_exclusive_group() if ensemble else p
    _add(which, ("--model", "-m"), overlay, type=model_argument,
         help=f"a bundled model by name, or a model file (.vxm.h5); default: {DEFAULT}. Bundled: {describe()}")
    if ensemble:
        _add(which, ("--ensemble",), overlay, type=existing_file,
             help="an ensemble (folder of .vxm.h5 or its ensemble.json) instead of --model: mean prediction and "
                  "delta over the members, the delta's SD across them and their sign agreement")
    if combination:
        _add(which, ("--combination",), overlay, type=existing_file,
             help="a combination manifest (JSON; docs/interpretation.md) instead of --model: models that may read "
                  "different windows, each delta divided by the SD of that model's background deltas, then "
                  "averaged with the manifest's weights over the models whose window holds the variant")
    _add(p, ("--contig-map",), overlay, type=existing_file,
         help="two-column TSV mapping VCF/annotation contig names to FASTA names")
    _add(p, ("--features",), overlay, type=existing_file,
         help="per-gene model features (TSV with header: gene id, then one column per model feature); standardised "
              "with the training statistics when the model records them (models made by `train`), else taken as on "
              "the model's input scale; genes absent use the model's defaults")
    if background:
        _add(p, ("--background",), overlay, type=existing_file,
             help="background of |delta| for percentiles (default: <model>.background.h5 beside the model, or "
                  "beside an ensemble's or combination's manifest, if "
                  "present; percentiles are left out (.) without one)")


def add_prediction_options(p, *, threads: bool = True, batch_size: bool = False, fast_dest: str = "fast",
                           overlay: bool = False) -> None:
    """``[--threads] [--batch-size] --no-fast-path``."""
    if threads:
        _add(p, ("--threads", "-t"), overlay, type=positive_int, default=1, help="CPU threads for prediction")
    if batch_size:
        _add(p, ("--batch-size",), overlay, type=positive_int, default=ScoreConfig.batch_size,
             help="windows per model call on the full-recomputation path (memory grows with it)")
    _add(p, ("--no-fast-path",), overlay, dest=fast_dest, action="store_false",
         help="recompute the whole network for every allele (slow; for checking the fast path)")


def add_score_options(p, *, overlay: bool = False) -> None:
    """``--on-ref-mismatch --max-allele-len``: how ``score`` treats records it cannot or should not score."""
    _add(p, ("--on-ref-mismatch",), overlay, choices=["error", "warn", "skip"], default=ScoreConfig.on_ref_mismatch,
         help="REF disagrees with the genome: stop (error), leave unscored with a warning (warn) or leave unscored "
              "silently (skip); counted either way")
    _add(p, ("--max-allele-len",), overlay, type=positive_int, default=ScoreConfig.max_allele_len,
         help="longer REF/ALT alleles are not scored")


def resource_spec(args: argparse.Namespace) -> ResourceSpec:
    """The :class:`ResourceSpec` of :func:`add_resource_options`'s options."""
    return ResourceSpec(fasta=args.fasta, model=args.model, ensemble=getattr(args, "ensemble", None),
                        combination=getattr(args, "combination", None), tss=args.tss,
                        tss_offset=args.tss_offset, tss_format=args.tss_format, contig_map=args.contig_map,
                        features=args.features, background=getattr(args, "background", None))


def configure_threads(n: int) -> None:
    """Limit BLAS and TensorFlow thread pools to ``n`` (must run before TensorFlow starts)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(n, 2))


def refuse_combination(res, command: str) -> None:
    """Stop ``command`` (mutagenesis, explain) given a combination: its members read different windows, and a
    saturation map or a page of predictions needs one window and predictions, not only combined deltas."""
    if res.combination is not None:
        raise UsageError(f"{command} needs one model or an ensemble; {res.combination.name} is a combination of models "
                         f"that read different windows: give one of its members ({', '.join(res.combination.names)}) "
                         f"as --model")
