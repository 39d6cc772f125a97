"""Command line: parse arguments, set up logging, call the library. No science here.

``varxpress SUBCOMMAND --help`` documents each subcommand; ``main(argv)`` is what tests call.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import shlex
import signal
import sys
import warnings
from pathlib import Path

from varxpress import __version__
from varxpress.errors import ReaderGone, Terminated, UsageError, VarxpressError
from varxpress.io.distinct import check_distinct
from varxpress.io.outputs import discard_stdout
from varxpress.cli.types import RegionsFile, existing_file, existing_path, model_argument, model_path_argument
from varxpress.interpret.background import default_path
from varxpress.models.combination import read_manifest
from varxpress.models.registry import data_path, describe, model_file

log = logging.getLogger("varxpress")

# subcommand -> (its module in varxpress.cli, with add_arguments(parser) and run(args); one-line help)
SUBCOMMANDS = {
    "score": ("score", "score the variants of a VCF/BCF: annotated VCF and TSV of predicted expression changes"),
    "import-xpresso": ("import_xpresso", "convert a published Xpresso Keras HDF5 model into a varxpress model file"),
    "prepare": ("prepare", "build a training set (HDF5) from a genome, a TSS file and a label table"),
    "train": ("train", "train a model from a prepared set and hyperparameters"),
    "hyperopt": ("hyperopt", "search hyperparameters (TPE/anneal/random, resumable)"),
    "evaluate": ("evaluate", "metrics of a model on a prepared set, beside the mean and k-mer ridge baselines"),
    "predict": ("predict", "predicted expression of the sequences of a FASTA or the genes of a prepared set"),
    "workflow": ("workflow",
                 "score a cohort VCF in shards with Snakemake (local or cluster), gathered into one indexed VCF"),
    "background": ("background",
                   "background distribution of |delta| of random promoter SNVs, for percentiles of scores"),
    "mutagenesis": ("mutagenesis", "score every substitution near a gene's TSS: TSV, heat map and sequence logo"),
    "explain": ("explain", "self-contained HTML report of one variant: predictions, percentile, uncertainty, local map"),
}


def subcommand_module(name: str):
    """The module of subcommand ``name`` (imported on demand: ``--help`` of one subcommand loads only its own)."""
    return importlib.import_module(f"varxpress.cli.{SUBCOMMANDS[name][0]}")


# where each subcommand's inputs and outputs are documented
EPILOGS = {
    "score": "Output: every input record, in order, with INFO/VXP (per allele and gene: "
             "Allele|Consequence|Gene|Symbol|Strand|TSS|Distance|RefPred|AltPred|Delta|Log2FC|Percentile|DeltaSD|"
             "SignAgreement|Flags|NFrac; with --combination also |MemberDeltas), VXP_MAX_DELTA/GENE/PCT and VXP_SKIP (why an allele was not scored); --tsv: one row per scored "
             "(record, allele, gene). Exit 0 ok, 1 error (nothing half-written), 2 usage (an output that is an input "
             "included), 130 interrupted, 141 the reader of stdout went away, 143 terminated (SIGTERM). "
             "Details: docs/output.md, docs/windows.md, docs/bad-input.md.",
    "import-xpresso": "Output: a .vxm.h5 model file (docs/model-format.md).",
    "prepare": "Output: a .vxd.h5 training set (docs/training.md).",
    "train": "Output: a .vxm.h5 model, metrics JSON and plots (docs/training.md).",
    "hyperopt": "Output: trials (resumable), best hyperparameters and model (docs/training.md).",
    "evaluate": ("Output: metrics table beside the baselines, and a plot; with --write-model, a copy of the model "
                 "that records them (docs/training.md)."),
    "predict": "Output: TSV of id, prediction and observed value (docs/training.md).",
    "workflow": "Output: one gathered, indexed VCF and a report (docs/workflow.md).",
    "background": "Output: <model>.background.h5 (docs/interpretation.md).",
    "mutagenesis": "Output: TSV, heat map and logo (PNG at 300 dpi, SVG, PDF) (docs/interpretation.md).",
    "explain": "Output: a self-contained HTML page per variant; for several, a folder with a sortable index.html "
               "(docs/interpretation.md).",
}


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
    for name, (_module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common],
                           epilog=EPILOGS.get(name), formatter_class=HelpFormatter)
        if only is None or only == name:
            subcommand_module(name).add_arguments(p)
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
                  "workdir", "write_model")
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
        if isinstance(value, RegionsFile):  # a file read while parsing: its path is the input
            inputs[name] = [value.path]
            continue
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        if action.dest in OUTPUT_OPTIONS:
            outputs[name] = values
            if action.dest == "out_prefix":
                outputs[name] = [v + ".tsv" for v in values]
            elif action.dest == "out" and args.command in ("score", "workflow"):
                outputs[name + " index"] = [v + s for v in values if v != "-" for s in (".tbi", ".csi")]
        elif action.type in (existing_file, existing_path, model_argument, model_path_argument) \
                or action.dest in INPUT_OPTIONS:
            model = action.type in (model_argument, model_path_argument)
            if model:  # a bundled model's name: its file
                values = [model_file(v) for v in values]
            if (model or action.dest in ("ensemble", "combination")) and args.command != "background":
                inputs[name + " background"] = [str(default_path(v)) for v in values]  # read beside it
            inputs[name] = values
            inputs[name + " index"] = [v + s for v in values if v != "-" for s in (".fai", ".gzi", ".tbi", ".csi")]
            # an ensemble or combination, also by a bundled name (human-mouse: its manifest), reads its members
            if action.dest in ("ensemble", "combination") or (model and values and values[0].endswith(".json")):
                inputs[name + " members"] = manifest_inputs(values[0])
    # files read without being named: the default model, TSS set and backgrounds, the bundled manifests' members
    inputs["(bundled with varxpress)"] = [str(f) for f in Path(data_path("")).rglob("*") if f.is_file()]
    return inputs, outputs


def manifest_inputs(path: str) -> list[str]:
    """The files an ensemble or combination manifest (or an ensemble folder) reads: every model file and background
    in its folder, and a combination's members wherever they are (an unreadable manifest is reported when loaded)."""
    where = Path(path)
    folder = where if where.is_dir() else where.parent
    files = [str(f) for f in folder.glob("*.h5") if f.is_file()]
    if where.is_file():
        with contextlib.suppress(VarxpressError, OSError, ValueError):
            for member in read_manifest(where)[1]:
                files += [member.model_path, member.background or member.model_path + ".background.h5"]
    return files


def _terminated(signum, frame) -> None:
    raise Terminated(signum)


def command_line(argv: list[str] | None) -> str:
    """The command line as recorded in output headers and provenance."""
    return shlex.join(["varxpress", *(sys.argv[1:] if argv is None else argv)])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``varxpress``; returns the exit status (0 ok, 1 error, 2 usage, 130 interrupted (Ctrl-C),
    141 the reader of standard output went away, 143 terminated (SIGTERM), 129 hung up (SIGHUP))."""
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), "")
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    args.command_line = command_line(argv)
    setup_logging(args.quiet, args.verbose)
    previous = {}
    try:  # schedulers (SLURM) stop jobs with SIGTERM; only the main thread may set a handler
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _terminated)
        hangup = getattr(signal, "SIGHUP", None)  # a closed terminal or ssh session; left alone under nohup
        if hangup is not None and signal.getsignal(hangup) is signal.SIG_DFL:
            previous[hangup] = signal.signal(hangup, _terminated)
    except ValueError:
        pass
    try:
        check_distinct(*files_of(parser, args))
        return int(subcommand_module(args.command).run(args) or 0)
    except UsageError as exc:
        log.error("%s", exc)
        return 2
    except ReaderGone as exc:
        log.error("%s", exc)
        return 141
    except VarxpressError as exc:
        log.error("%s", exc)
        return 1
    except Terminated as exc:
        signum = exc.args[0] if exc.args else signal.SIGTERM
        log.error("terminated (%s): no output was left half-written", signal.Signals(signum).name)
        return 128 + signum
    except KeyboardInterrupt:
        log.error("interrupted: no output was left half-written")
        return 130
    except BrokenPipeError:
        discard_stdout()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
