"""``varxpress workflow``: run the scatter-gather Snakemake workflow on a cohort VCF.

The workflow (Snakefile, config.yaml, profiles/) is package data, ``varxpress/data/workflow`` (``workflow/`` in the
source tree links to it), so an installed wheel runs it as well as a checkout.

The subcommand writes the run's configuration into the working folder, clears the lock an interrupted run left
behind (only when no other ``varxpress workflow`` holds the folder) and runs Snakemake with ``--rerun-incomplete``,
so running the same command again after a crash, a kill or a cluster outage redoes only the missing shards.
Everything Snakemake can do (cluster executors, profiles) is reachable through ``--profile``, ``--executor``,
``--jobs`` and ``--snakemake-arg``. See docs/workflow.md.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from varxpress.errors import VarxpressError
from varxpress.cli.types import model_argument
from varxpress.models.registry import DEFAULT, describe, lookup

log = logging.getLogger(__name__)

#: Config keys holding paths (made absolute against the current folder before Snakemake sees them).
PATH_KEYS = ("vcf", "fasta", "tss", "model", "contig_map", "features", "regions", "out", "report")
LOCK_NAME = ".varxpress-workflow.lock"
CONFIG_NAME = "varxpress-workflow.yaml"


class WorkflowError(VarxpressError, RuntimeError):
    """The workflow cannot be started (missing Snakemake, tools, inputs) or its folder is in use."""


def bundled_workflow() -> Path:
    """Folder of the workflow shipped inside the package (``varxpress/data/workflow``: Snakefile, config.yaml,
    profiles/); the source tree's ``workflow/`` points to it."""
    from importlib import resources

    return Path(str(resources.files("varxpress") / "data" / "workflow"))


def snakefile_path() -> Path:
    """The Snakefile: ``$VARXPRESS_SNAKEFILE``, else the one bundled with the package."""
    env = os.environ.get("VARXPRESS_SNAKEFILE")
    path = Path(env) if env else bundled_workflow() / "Snakefile"
    if not path.is_file():
        where = "VARXPRESS_SNAKEFILE names" if env else "the installed package lacks"
        raise WorkflowError(f"Snakefile {path} not found ({where} it): reinstall varxpress, or set "
                            f"VARXPRESS_SNAKEFILE to a Snakefile")
    return path


def profile_path(profile: str) -> str:
    """``--profile`` as given when it is a folder, else the bundled profile of that name (``slurm``)."""
    bundled = bundled_workflow() / "profiles" / profile
    return str(bundled) if not Path(profile).is_dir() and (bundled / "config.yaml").is_file() else profile


def add_arguments(p: argparse.ArgumentParser) -> None:
    from varxpress.cli.types import existing_file, positive_int

    p.add_argument("vcf", nargs="?", type=existing_file,
                   help="input VCF/BCF (indexed VCF.gz/BCF is read in place; a plain VCF is bgzipped and indexed "
                        "first); may come from --configfile instead")
    p.add_argument("--configfile", type=existing_file,
                   help="workflow config (YAML, like the bundled workflow/config.yaml); options given here override it")
    inputs = p.add_argument_group("inputs and scoring (as in `varxpress score`)")
    inputs.add_argument("--fasta", "-f", type=existing_file, help="reference genome FASTA")
    inputs.add_argument("--out", "-o", help="gathered output, .vcf.gz (bgzip + tabix index; folders are made)")
    inputs.add_argument("--tss", type=existing_file, help="TSS annotation (default: bundled Xpresso CAGE hg38 set)")
    inputs.add_argument("--tss-offset", type=int, help="TSS = BED start + OFFSET (10000 for the Xpresso BED)")
    inputs.add_argument("--tss-format", choices=["auto", "bed", "gtf", "gff3", "tsv"],
                        help="format of --tss (default auto: from the file name and contents)")
    inputs.add_argument("--model", "-m", type=model_argument,
                        help=f"bundled model name or model file (default: {DEFAULT}); bundled: {describe()}")
    inputs.add_argument("--contig-map", type=existing_file, help="two-column TSV of contig names -> FASTA names")
    inputs.add_argument("--features", type=existing_file, help="per-gene model features (TSV)")
    inputs.add_argument("--on-ref-mismatch", choices=["error", "warn", "skip"],
                        help="REF disagrees with the genome: stop, warn and leave unscored, or leave unscored "
                             "silently (default warn)")
    inputs.add_argument("--max-allele-len", type=positive_int,
                        help="longer REF/ALT alleles are not scored (default 1000)")
    inputs.add_argument("--batch-size", type=positive_int, help="windows per model call (default 128)")
    inputs.add_argument("--no-fast-path", dest="fast_path", action="store_false", default=None,
                        help="recompute the whole network for every allele")
    shards = p.add_argument_group("sharding")
    shards.add_argument("--shard-size", type=positive_int,
                        help="bases of promoter-window span per shard (default 2000000); window-less stretches "
                             "and contigs ride along with a neighbour")
    shards.add_argument("--regions", type=existing_file,
                        help="explicit shards instead: BED (4th column = shard name) or CHROM:START-END per line; "
                             "only records in these regions are written")
    run = p.add_argument_group("running")
    run.add_argument("--report", help="final report JSON (default: OUT with .report.json)")
    run.add_argument("--workdir", help="folder for shards, logs and Snakemake's bookkeeping "
                                       "(default: OUT without .vcf.gz, plus .work)")
    run.add_argument("--cores", "-c", type=positive_int, default=os.cpu_count() or 1,
                     help="cores for local execution (jobs run side by side within them)")
    run.add_argument("--threads-per-shard", type=positive_int, help="threads of each `varxpress score` job (default 2)")
    run.add_argument("--mem-mb", type=positive_int, help="memory requested per `varxpress score` job, MB (default 4000)")
    run.add_argument("--profile", help="Snakemake profile folder, or the name of a bundled profile (slurm)")
    run.add_argument("--executor", help="Snakemake executor plugin, e.g. slurm (default: local)")
    run.add_argument("--jobs", "-j", type=positive_int, help="jobs submitted at once (cluster executors)")
    run.add_argument("--dry-run", "-n", action="store_true", help="show what would run")
    run.add_argument("--snakemake-arg", action="append", default=[], metavar="ARG",
                     help="extra Snakemake argument, repeatable; write it with = (--snakemake-arg=--keep-going)")
    run.add_argument("--snakefile", help="Snakefile to run (default: the bundled workflow/Snakefile)")


def build_config(args: argparse.Namespace, cwd: Path) -> dict:
    """The run's config: ``--configfile`` overlaid with the options given, paths made absolute against ``cwd``."""
    import yaml

    config: dict = {}
    if args.configfile:
        with open(args.configfile) as fh:
            config = yaml.safe_load(fh) or {}
        if not isinstance(config, dict):
            raise WorkflowError(f"{args.configfile}: expected a YAML mapping")
    for key in ("vcf", "fasta", "out", "tss", "tss_offset", "tss_format", "model", "contig_map", "features",
                "on_ref_mismatch", "max_allele_len", "batch_size", "fast_path", "shard_size", "regions", "report"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    resources = config.setdefault("resources", {}).setdefault("score", {})
    if args.threads_per_shard is not None:
        resources["threads"] = args.threads_per_shard
    if args.mem_mb is not None:
        resources["mem_mb"] = args.mem_mb
    for key in PATH_KEYS:
        if key == "model" and config.get(key) and lookup(str(config[key])) is not None:
            continue  # a bundled model's name, not a path
        if config.get(key):
            config[key] = str((cwd / str(config[key])).resolve()) if str(config[key]) != "-" else "-"
    missing = [k for k in ("vcf", "fasta", "out") if not config.get(k)]
    if missing:
        raise WorkflowError(f"missing {', '.join(missing)}: give them as options (VCF positional, --fasta, --out) "
                            f"or in --configfile")
    if not config["out"].endswith(".vcf.gz"):
        raise WorkflowError(f"--out {config['out']}: the gathered output is bgzipped and tabix-indexed; name it "
                            f"*.vcf.gz")
    if args.shard_size is not None and args.shard_size < 1:
        raise WorkflowError(f"--shard-size {args.shard_size}: need at least 1")
    return config


def default_workdir(out: str) -> Path:
    """``results/cohort.vcf.gz`` -> ``results/cohort.work``."""
    return Path(out[: -len(".vcf.gz")] + ".work")


def snakemake_command(snakefile: Path, workdir: Path, configfile: Path, args: argparse.Namespace) -> list[str]:
    """The Snakemake command line of a run (without ``--unlock``)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
           "--configfile", str(configfile), "--rerun-incomplete", "--show-failed-logs"]
    if args.profile:
        cmd += ["--profile", profile_path(args.profile)]
    if args.executor:
        cmd += ["--executor", args.executor]
    if args.jobs is not None:
        cmd += ["--jobs", str(args.jobs)]
    if not args.executor or args.executor == "local":
        cmd += ["--cores", str(args.cores)]
    if args.dry_run:
        cmd.append("--dry-run")
    if args.quiet:
        cmd += ["--quiet", "progress", "rules"]
    return cmd + list(args.snakemake_arg)


def _check_tools() -> None:
    if importlib.util.find_spec("snakemake") is None:
        raise WorkflowError("Snakemake is not installed: `pip install 'varxpress[workflow]'` (or `make install`)")
    missing = [t for t in ("bcftools", "tabix") if shutil.which(t) is None]
    if missing:
        raise WorkflowError(f"{' and '.join(missing)} not found on PATH: run scripts/install-system-deps")


def _hold_folder(workdir: Path, grace_s: float = 10.0):
    """An exclusive ``flock`` on the working folder, held until the returned file is closed (or the process dies).

    Snakemake and its jobs inherit it, so it stays held while any process of a run is alive; a run that was just
    killed gets ``grace_s`` seconds for its processes to exit.
    """
    fh = open(workdir / LOCK_NAME, "w")
    deadline = time.monotonic() + grace_s
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() >= deadline:
                fh.close()
                raise WorkflowError(f"another `varxpress workflow` (or a job of one) is running in {workdir}; "
                                    f"wait for it or stop it") from None
            time.sleep(0.2)


def _clear_stale_lock(cmd: list[str], workdir: Path, holder) -> None:
    """Remove the Snakemake lock left by an interrupted run (we hold the folder, so no live run owns it)."""
    locks = workdir / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        log.info("a previous run in %s was interrupted: removing its lock; finished shards are kept", workdir)
        res = subprocess.run(cmd + ["--unlock"], capture_output=True, text=True, pass_fds=(holder.fileno(),))
        if res.returncode != 0:
            raise WorkflowError(f"cannot unlock {workdir}: {res.stderr.strip()[-2000:]}")


def run(args: argparse.Namespace) -> int:
    """Run the workflow; returns Snakemake's exit status."""
    import yaml

    _check_tools()
    snakefile = Path(args.snakefile).resolve() if args.snakefile else snakefile_path()
    cwd = Path.cwd()
    config = build_config(args, cwd)
    workdir = Path(args.workdir).resolve() if args.workdir else default_workdir(config["out"])
    workdir.mkdir(parents=True, exist_ok=True)
    Path(config["out"]).parent.mkdir(parents=True, exist_ok=True)
    holder = _hold_folder(workdir)
    try:
        configfile = workdir / CONFIG_NAME
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = snakemake_command(snakefile, workdir, configfile, args)
        _clear_stale_lock(cmd, workdir, holder)
        log.info("running %s", shlex.join(cmd))
        # The child inherits the folder lock: a second `varxpress workflow` cannot unlock while Snakemake runs.
        rc = subprocess.run(cmd, pass_fds=(holder.fileno(),)).returncode
    finally:
        holder.close()
    if rc == 0 and not args.dry_run:
        report = config.get("report") or config["out"][: -len(".vcf.gz")] + ".report.json"
        _log_report(report)
    elif rc != 0:
        log.error("the workflow failed (exit status %d); logs are in %s/logs. Run the same command again to "
                  "redo only what is missing", rc, workdir)
    return rc


def _log_report(path: str) -> None:
    try:
        with open(path) as fh:
            r = json.load(fh)
    except (OSError, ValueError):
        return
    skipped = ", ".join(f"{k}: {v}" for k, v in r["skipped"].items()) or "none"
    log.info("%d shards; records in: %d, out: %d; alleles: %d, scored: %d; scores: %d; not scored: %s; "
             "written to %s (report %s)", r["n_shards"], r["records_in"], r["records_out"], r["alleles"],
             r["alleles_scored"], r["scores"], skipped, r["output"], path)
