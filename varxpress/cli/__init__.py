"""Command line: parse arguments, set up logging, call the library. No science here.

``varxpress SUBCOMMAND --help`` documents each subcommand; ``main(argv)`` is what tests call.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from varxpress import __version__
from varxpress.errors import VarxpressError
from varxpress.models.registry import DEFAULT, describe, model_argument, model_file, model_path_argument

log = logging.getLogger("varxpress")

# subcommand -> (module, add-arguments function, run function, one-line help)
SUBCOMMANDS = {
    "score": ("varxpress.cli", "add_score_arguments", "run_score",
              "score the variants of a VCF/BCF: annotated VCF and TSV of predicted expression changes"),
    "import-xpresso": ("varxpress.models.xpresso", "add_arguments", "run",
                       "convert a published Xpresso Keras HDF5 model into a varxpress model file"),
    "prepare": ("varxpress.learning.dataset", "add_arguments", "run",
                "build a training set (HDF5) from a genome, a TSS file and a label table"),
    "train": ("varxpress.learning.training", "add_arguments", "run", "train a model from a prepared set and hyperparameters"),
    "hyperopt": ("varxpress.learning.tuning", "add_arguments", "run", "search hyperparameters (TPE/anneal/random, resumable)"),
    "evaluate": ("varxpress.learning.evaluation", "add_evaluate_arguments", "run_evaluate",
                 "metrics of a model on a prepared set, beside the mean and k-mer ridge baselines"),
    "predict": ("varxpress.learning.evaluation", "add_predict_arguments", "run_predict",
                "predicted expression of the sequences of a FASTA or the genes of a prepared set"),
    "workflow": ("varxpress.workflow.runner", "add_arguments", "run",
                 "score a cohort VCF in shards with Snakemake (local or cluster), gathered into one indexed VCF"),
    "background": ("varxpress.interpret.background", "add_arguments", "run",
                   "background distribution of |delta| of random promoter SNVs, for percentiles of scores"),
    "mutagenesis": ("varxpress.interpret.mutagenesis", "add_arguments", "run",
                    "score every substitution near a gene's TSS: TSV, heat map and sequence logo"),
    "explain": ("varxpress.interpret.report", "add_arguments", "run",
                "self-contained HTML report of one variant: predictions, percentile, uncertainty, local map"),
}


# where each subcommand's inputs and outputs are documented
EPILOGS = {
    "score": "Output: every input record, in order, with INFO/VXP (per allele and gene: "
             "Allele|Consequence|Gene|Symbol|Strand|TSS|Distance|RefPred|AltPred|Delta|Log2FC|Percentile|DeltaSD|"
             "SignAgreement|Flags|NFrac), VXP_MAX_DELTA/GENE/PCT and VXP_SKIP (why an allele was not scored); --tsv: one row per scored "
             "(record, allele, gene). Exit 0 ok, 1 error (nothing half-written), 2 usage (an output that is an input "
             "included), 130 interrupted, 141 the reader of stdout went away, 143 terminated (SIGTERM). "
             "Details: docs/output.md, docs/windows.md, docs/bad-input.md.",
    "import-xpresso": "Output: a .vxm.h5 model file (docs/model-format.md).",
    "prepare": "Output: a .vxd.h5 training set (docs/training.md).",
    "train": "Output: a .vxm.h5 model, metrics JSON and plots (docs/training.md).",
    "hyperopt": "Output: trials (resumable), best hyperparameters and model (docs/training.md).",
    "evaluate": "Output: metrics table beside the baselines, and a plot (docs/training.md).",
    "predict": "Output: TSV of id, prediction and observed value (docs/training.md).",
    "workflow": "Output: one gathered, indexed VCF and a report (docs/workflow.md).",
    "background": "Output: <model>.background.h5 (docs/interpretation.md).",
    "mutagenesis": "Output: TSV, heat map and logo (PNG at 300 dpi, SVG, PDF) (docs/interpretation.md).",
    "explain": "Output: a self-contained HTML page per variant; for several, a folder with a sortable index.html "
               "(docs/interpretation.md).",
}


def existing_file(text: str) -> str:
    """argparse type: a path that exists (``-`` allowed for standard input)."""
    if text != "-" and not Path(text).exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return text


def existing_path(text: str) -> Path:
    """argparse type: an existing file, as a Path."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _number(kind, least, text: str, strict: bool):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if value < least or (strict and value == least):
        raise argparse.ArgumentTypeError(f"{text}: must be {'>' if strict else '>='} {least}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (sizes, counts, threads)."""
    return _number(int, 1, text, strict=False)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds, optional counts)."""
    return _number(int, 0, text, strict=False)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, gigabytes)."""
    return _number(float, 0.0, text, strict=True)


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = _number(float, 0.0, text, strict=False)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value


def output_path(text: str) -> str:
    """argparse type: ``-`` or a path whose folder exists."""
    if text != "-":
        folder = Path(text).parent
        if str(folder) and not folder.is_dir():
            raise argparse.ArgumentTypeError(f"folder {folder} of output {text} does not exist")
    return text


def parse_region(text: str) -> tuple[str, int, int]:
    """``chr:start-end`` (1-based, inclusive, commas allowed) or ``chr`` -> (chrom, start0, end)."""
    chrom, sep, rng = text.replace(",", "").rpartition(":")
    if not sep:
        from varxpress.workflow.sharding import CONTIG_END

        return text, 0, CONTIG_END
    try:
        start, end = (int(x) for x in rng.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"region {text!r}: expected CHROM:START-END (1-based, inclusive)") from None
    if start < 1 or end < start:
        raise argparse.ArgumentTypeError(f"region {text!r}: need 1 <= START <= END")
    return chrom, start - 1, end


def read_regions(path: str) -> list[tuple[str, int, int]]:
    """Regions from a BED file (0-based, tab-separated) or one ``chr:start-end`` per line."""
    regions = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split("\t")
            try:
                region = (fields[0], int(fields[1]), int(fields[2])) if len(fields) >= 3 else parse_region(line)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise argparse.ArgumentTypeError(f"{path}:{n}: not a BED line or CHROM:START-END: {line!r}") from exc
            if region[1] < 0 or region[2] <= region[1]:
                raise argparse.ArgumentTypeError(f"{path}:{n}: need 0 <= START < END (BED is 0-based, half-open): "
                                                 f"{line!r}")
            regions.append(region)
    return regions


def regions_file(text: str) -> list[tuple[str, int, int]]:
    """argparse type: a regions file (see :func:`read_regions`), read while parsing so a bad line is a usage
    error naming the file and line."""
    try:
        return read_regions(existing_path(text))
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(f"{text}: not a text file of regions (binary data?)") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot read ({exc.strerror or exc})") from None


def add_score_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("vcf", type=existing_file, help="input VCF, VCF.gz or BCF (- for standard input)")
    p.add_argument("--fasta", "-f", required=True, type=existing_file,
                   help="reference genome FASTA, plain or bgzip (.fai/.gzi made if missing and the folder is writable)")
    p.add_argument("--out", "-o", default="-", type=output_path,
                   help="annotated output: .vcf, .vcf.gz (bgzip + tabix index) or .bcf; - for stdout")
    p.add_argument("--tsv", type=output_path, help="also write one row per variant, allele and gene (.tsv or .tsv.gz)")
    p.add_argument("--tss", type=existing_file,
                   help="TSS annotation: BED6(+name), GTF, GFF3 or TSV (default: the bundled model's own TSS set; "
                        "for a model file, the default model's)")
    p.add_argument("--tss-offset", type=int,
                   help="TSS = BED start + OFFSET on both strands (10000 for the Xpresso TSS +- 10 kb BED); "
                        "default: BED convention, start on + and end-1 on - (a bundled TSS set: its own offset)")
    p.add_argument("--tss-format", default="auto", choices=["auto", "bed", "gtf", "gff3", "tsv"],
                   help="format of --tss; auto: from the file name and contents (BED, GTF, GFF3 or TSV)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", "-m", type=model_argument,
                       help=f"a bundled model by name, or a model file (.vxm.h5); default: {DEFAULT}. "
                            f"Bundled: {describe()}")
    which.add_argument("--ensemble", type=existing_file,
                       help="an ensemble (folder of .vxm.h5 or its ensemble.json): mean delta, its SD across "
                            "members and their sign agreement")
    p.add_argument("--background", type=existing_file,
                   help="background of |delta| for percentiles (default: <model>.background.h5 beside the model, "
                        "if present; percentiles are left out (.) without one)")
    p.add_argument("--contig-map", type=existing_file,
                   help="two-column TSV mapping VCF/annotation contig names to FASTA names")
    p.add_argument("--features", type=existing_file,
                   help="per-gene half-life features (TSV with header: gene id, then one column per model feature); "
                        "standardised with the training statistics when the model records them (models made by "
                        "`train`), else taken as on the model's input scale; genes absent use the model's defaults")
    p.add_argument("--region", "-r", action="append", type=parse_region, default=[],
                   help="score only records whose POS lies in CHROM:START-END (1-based; repeatable; needs an index)")
    p.add_argument("--regions", type=regions_file, default=[],
                   help="file of regions (BED, or CHROM:START-END per line)")
    p.add_argument("--on-ref-mismatch", choices=["error", "warn", "skip"], default="warn",
                   help="REF disagrees with the genome: stop (error), leave unscored with a warning (warn, "
                        "default) or leave unscored silently (skip); counted either way")
    p.add_argument("--max-allele-len", type=positive_int, default=1000, help="longer REF/ALT alleles are not scored")
    p.add_argument("--threads", "-t", type=positive_int, default=1, help="CPU threads for prediction")
    p.add_argument("--batch-size", type=positive_int, default=128, help="windows per model call")
    p.add_argument("--chunk-size", type=positive_int, default=2000, help="records held in memory at once")
    p.add_argument("--no-fast-path", dest="fast", action="store_false",
                   help="recompute the whole network for every allele (slow; for checking the fast path)")
    p.add_argument("--stats", type=output_path, help="write the run's counts as JSON")


def run_score(args: argparse.Namespace) -> int:
    from varxpress.scoring.pipeline import ScoreConfig, score_vcf

    regions = list(args.region) + list(args.regions)
    cfg = ScoreConfig(
        vcf=args.vcf, fasta=args.fasta, out=args.out, tsv=args.tsv, model=args.model, ensemble=args.ensemble,
        background=args.background, tss=args.tss,
        tss_offset=args.tss_offset, tss_format=args.tss_format, contig_map=args.contig_map, features=args.features,
        regions=regions or None, on_ref_mismatch=args.on_ref_mismatch, max_allele_len=args.max_allele_len,
        threads=args.threads, batch_size=args.batch_size, chunk_size=args.chunk_size, fast=args.fast,
        quiet=args.quiet, command_line=args.command_line,
    )
    configure_threads(args.threads)
    stats = score_vcf(cfg)
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(stats.skipped.items())) or "none"
    log.info("records in: %d, out: %d; alleles: %d, scored: %d; scores: %d (%d by the fast path); "
             "not scored: %s", stats.records_in, stats.records_out, stats.alleles, stats.alleles_scored,
             stats.scores, stats.scores_fast, skipped)
    if args.stats:
        from varxpress.io.outputs import open_output

        with open_output(args.stats) as fh:
            json.dump(stats.as_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")
    return 0


def configure_threads(n: int) -> None:
    """Limit BLAS and TensorFlow thread pools to ``n`` (must run before TensorFlow starts)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(n, 2))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` to an option's help only where it informs: not for flags (``store_true``/``false``),
    required options, options without a default, or help that already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or action.required or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool) or default == [] or "default" in text.lower()
                or action.nargs == 0):
            return text
        return text + " (default: %(default)s)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that subcommand's module is imported (fast start, lazy extras)."""
    parser = argparse.ArgumentParser(
        prog="varxpress",
        description="Predict how genetic variants change a gene's mRNA level (Xpresso-style CNN on promoter windows).",
        epilog=f"Bundled models (--model NAME; or --model FILE.vxm.h5): {describe()}. "
               "Documentation: docs/ in the source tree. Each subcommand has its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"varxpress {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors; no progress bar")
    common.add_argument("--verbose", "-v", action="store_true", help="debug messages")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, (module, add_fn, _run_fn, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common],
                           epilog=EPILOGS.get(name), formatter_class=HelpFormatter)
        if only is None or only == name:
            getattr(importlib.import_module(module), add_fn)(p)
    return parser


def setup_logging(quiet: bool, verbose: bool) -> None:
    """Log varxpress's messages (and its warnings) to stderr; the library itself never configures logging."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("varxpress %(levelname)s: %(message)s"))
    handler.set_name("varxpress-cli")
    logger = logging.getLogger("varxpress")
    logger.handlers[:] = [h for h in logger.handlers if h.get_name() != "varxpress-cli"] + [handler]
    logger.setLevel(level)
    warnings.simplefilter("always", category=UserWarning)
    warnings.showwarning = _log_warning


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as one log line naming its class (e.g. ``RefMismatchWarning: file: line 12: ...``)."""
    logging.getLogger("varxpress").warning("%s: %s", category.__name__, message)


# options that name files a subcommand writes (each subcommand's own names; folders are checked as a whole)
OUTPUT_OPTIONS = ("out", "tsv", "stats", "out_dir", "out_prefix", "report_dir", "ensemble_out", "model_out", "report",
                  "workdir")
# inputs whose argparse type does not already say so (existing_file / existing_path do)
INPUT_OPTIONS = ("vcf", "h5", "configfile", "snakefile")


def files_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[dict, dict]:
    """``({option: [input paths]}, {option: [output paths]})`` of a parsed subcommand, for ``check_distinct``."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
    inputs: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        if value is None or action.dest == "help":
            continue
        name = max(action.option_strings, key=len) if action.option_strings else action.dest.upper()
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        if action.dest in OUTPUT_OPTIONS:
            outputs[name] = values
            if action.dest == "out_prefix":
                outputs[name] = [v + ".tsv" for v in values]
            elif action.dest == "out" and args.command in ("score", "workflow"):
                outputs[name + " index"] = [v + s for v in values if v != "-" for s in (".tbi", ".csi")]
        elif action.type in (existing_file, existing_path, model_argument, model_path_argument) \
                or action.dest in INPUT_OPTIONS:
            if action.type in (model_argument, model_path_argument):  # a bundled model's name: its file
                values = [model_file(v) for v in values]
            inputs[name] = values
            inputs[name + " index"] = [v + s for v in values if v != "-" for s in (".fai", ".gzi", ".tbi", ".csi")]
    return inputs, outputs


def _terminated(signum, frame) -> None:
    from varxpress.errors import Terminated

    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``varxpress``; returns the exit status (0 ok, 1 error, 2 usage, 130 interrupted (Ctrl-C),
    141 the reader of standard output went away, 143 terminated (SIGTERM))."""
    import signal

    from varxpress.errors import ReaderGone, Terminated, UsageError
    from varxpress.io.outputs import check_distinct
    from varxpress.scoring.pipeline import command_line

    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), "")
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    args.command_line = command_line(argv)
    setup_logging(args.quiet, args.verbose)
    module, _add, run_fn, _help = SUBCOMMANDS[args.command]
    try:  # schedulers (SLURM) stop jobs with SIGTERM; only the main thread may set a handler
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:
        previous = _terminated
    try:
        check_distinct(*files_of(parser, args))
        return int(getattr(importlib.import_module(module), run_fn)(args) or 0)
    except UsageError as exc:
        log.error("%s", exc)
        return 2
    except ReaderGone as exc:
        log.error("%s", exc)
        return 141
    except VarxpressError as exc:
        log.error("%s", exc)
        return 1
    except Terminated:
        log.error("terminated (SIGTERM): no output was left half-written")
        return 143
    except KeyboardInterrupt:
        log.error("interrupted: no output was left half-written")
        return 130
    except BrokenPipeError:
        from varxpress.io.outputs import discard_stdout

        discard_stdout()
        return 0
    finally:
        if previous is not _terminated:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
