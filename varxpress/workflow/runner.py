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

import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from varxpress.errors import UsageError, VarxpressError
from varxpress.io.variants import scan_vcf_text
from varxpress.models.registry import data_path, lookup
from varxpress.workflow.sharding import INSTALL_TOOLS

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


#: options that overlay the --configfile's keys of the same name (None: not given, the config's value stays)
CONFIG_KEYS = ("vcf", "fasta", "out", "tss", "tss_offset", "tss_format", "model", "contig_map", "features",
               "on_ref_mismatch", "max_allele_len", "batch_size", "fast_path", "shard_size", "regions", "report")


@dataclass(frozen=True)
class WorkflowRun:
    """One ``varxpress workflow`` run: the config overlay and how Snakemake runs it.

    Attributes:
        overlay: config keys (:data:`CONFIG_KEYS`) given as options; they replace the ``configfile``'s values.
        configfile: a workflow config (YAML) to start from, or None.
        threads_per_shard, mem_mb: resources of each ``varxpress score`` job (None: the config's, else 2 / 4000).
        workdir: folder for shards, logs and Snakemake's bookkeeping (None: ``OUT`` without ``.vcf.gz`` + ``.work``).
        snakefile: the Snakefile (None: the bundled one).
        profile, executor, jobs, cores, dry_run, quiet, snakemake_args: passed to Snakemake.
    """

    overlay: dict[str, Any] = field(default_factory=dict)
    configfile: str | None = None
    threads_per_shard: int | None = None
    mem_mb: int | None = None
    workdir: str | None = None
    snakefile: str | None = None
    profile: str | None = None
    executor: str | None = None
    jobs: int | None = None
    cores: int = 1
    dry_run: bool = False
    quiet: bool = False
    snakemake_args: tuple[str, ...] = ()


def build_config(run: WorkflowRun, cwd: Path) -> dict:
    """The run's config: ``--configfile`` overlaid with the options given, paths made absolute against ``cwd``."""
    import yaml

    config: dict = {}
    if run.configfile:
        with open(run.configfile) as fh:
            config = yaml.safe_load(fh) or {}
        if not isinstance(config, dict):
            raise WorkflowError(f"{run.configfile}: expected a YAML mapping")
    unknown = sorted(set(run.overlay) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"not workflow config keys: {', '.join(unknown)}")
    config.update({k: v for k, v in run.overlay.items() if v is not None})
    resources = config.setdefault("resources", {}).setdefault("score", {})
    if run.threads_per_shard is not None:
        resources["threads"] = run.threads_per_shard
    if run.mem_mb is not None:
        resources["mem_mb"] = run.mem_mb
    for key in PATH_KEYS:
        if key == "model" and config.get(key) and lookup(str(config[key])) is not None:
            continue  # a bundled model's name, not a path
        if config.get(key):
            config[key] = str((cwd / str(config[key])).resolve()) if str(config[key]) != "-" else "-"
    missing = [k for k in ("vcf", "fasta", "out") if not config.get(k)]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}: give them as options (VCF positional, --fasta, --out) "
                            f"or in --configfile")
    if not config["out"].endswith(".vcf.gz"):
        raise UsageError(f"--out {config['out']}: the gathered output is bgzipped and tabix-indexed; name it "
                            f"*.vcf.gz")
    if config.get("shard_size") is not None and int(config["shard_size"]) < 1:
        raise UsageError(f"--shard-size {config['shard_size']}: need at least 1")
    return config


def default_workdir(out: str) -> Path:
    """``results/cohort.vcf.gz`` -> ``results/cohort.work``."""
    return Path(out[: -len(".vcf.gz")] + ".work")


def snakemake_command(snakefile: Path, workdir: Path, configfile: Path, run: WorkflowRun) -> list[str]:
    """The Snakemake command line of a run (without ``--unlock``)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(workdir),
           "--configfile", str(configfile), "--rerun-incomplete", "--show-failed-logs"]
    if run.profile:
        cmd += ["--profile", profile_path(run.profile)]
    if run.executor:
        cmd += ["--executor", run.executor]
    if run.jobs is not None:
        cmd += ["--jobs", str(run.jobs)]
    if not run.executor or run.executor == "local":
        cmd += ["--cores", str(run.cores)]
    if run.dry_run:
        cmd.append("--dry-run")
    if run.quiet:
        cmd += ["--quiet", "progress", "rules"]
    return cmd + list(run.snakemake_args)


def _check_tools() -> None:
    if importlib.util.find_spec("snakemake") is None:
        raise WorkflowError("Snakemake is not installed: `pip install 'varxpress[workflow]'` (or `make install`)")
    missing = [t for t in ("bcftools", "tabix") if shutil.which(t) is None]
    if missing:
        raise WorkflowError(f"{' and '.join(missing)} not found on PATH: {INSTALL_TOOLS}")


def _hold_folder(workdir: Path, grace_s: float = 10.0):
    """An exclusive ``flock`` on the working folder, held until the returned file is closed (or the process dies).

    Snakemake inherits it (its jobs do not: Snakemake starts them without the descriptor), so it stays held while
    a run's Snakemake is alive; a run that was just killed gets ``grace_s`` seconds for its processes to exit.
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


def _missing_folders(folders: list[Path]) -> list[Path]:
    """The folders (and their missing parents) that creating ``folders`` would make, deepest first."""
    missing: list[Path] = []
    for folder in folders:
        for p in [folder.resolve(), *folder.resolve().parents]:
            if p.exists():
                break
            if p not in missing:
                missing.append(p)
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)


def _remove_folders(made: list[Path], workdir: Path) -> None:
    """Remove what a dry run created: the working folder with what Snakemake put in it, other folders if empty."""
    for folder in made:
        if folder == workdir.resolve():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # not empty: something else was put there meanwhile
                folder.rmdir()


def run_workflow(run: WorkflowRun) -> int:
    """Run the workflow; returns Snakemake's exit status."""
    import yaml

    _check_tools()
    snakefile = Path(run.snakefile).resolve() if run.snakefile else snakefile_path()
    cwd = Path.cwd()
    config = build_config(run, cwd)
    workdir = Path(run.workdir).resolve() if run.workdir else default_workdir(config["out"])
    if run.configfile and Path(run.configfile).resolve() == (workdir / CONFIG_NAME).resolve():
        raise UsageError(f"--configfile {run.configfile} is the file the workflow writes its resolved settings to "
                         f"({CONFIG_NAME} in the working folder): keep your own configuration elsewhere")
    data = Path(data_path("")).resolve()
    if workdir == data or data in workdir.parents:
        raise UsageError(f"--workdir {workdir} lies in the files varxpress ships; give a folder of your own")
    if not run.dry_run and config["vcf"] != "-":
        # the shards read regions of the input, which htslib takes without the checks `score` makes of a whole
        # file: what `score` refuses (a malformed INFO value htslib would silently drop, ...) is refused here
        log.info("checking %s", config["vcf"])
        scan_vcf_text(config["vcf"])
    made = _missing_folders([Path(config["out"]).parent, workdir])  # a dry run removes them again
    workdir.mkdir(parents=True, exist_ok=True)
    Path(config["out"]).parent.mkdir(parents=True, exist_ok=True)
    holder = _hold_folder(workdir)
    try:
        configfile = workdir / CONFIG_NAME
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = snakemake_command(snakefile, workdir, configfile, run)
        _clear_stale_lock(cmd, workdir, holder)
        (workdir / "logs" / "plan.log").unlink(missing_ok=True)  # an earlier run's plan error is not this run's
        log.info("running %s", shlex.join(cmd))
        # The child inherits the folder lock: a second `varxpress workflow` cannot unlock while Snakemake runs.
        rc = subprocess.run(cmd, pass_fds=(holder.fileno(),)).returncode
    finally:
        holder.close()
        if run.dry_run:
            _remove_folders(made, workdir)
    if rc == 0 and not run.dry_run:
        report = config.get("report") or config["out"][: -len(".vcf.gz")] + ".report.json"
        _log_report(report)
        for line in build_warnings(workdir / "logs"):
            log.warning("%s", line)
    elif rc != 0 and not (workdir / "logs").is_dir():  # no job ran: Snakemake refused its command line or settings
        plugin = next((x for x in (run.executor, run.profile) if x and "slurm" in str(x).lower()), None)
        log.error("Snakemake stopped before running any job (exit status %d; its message is above)%s", rc,
                  "; the SLURM executor is a Snakemake plugin: pip install snakemake-executor-plugin-slurm"
                  if plugin else "")
    elif rc != 0:
        planning = plan_error(workdir / "logs")
        if planning:
            log.error("the workflow failed (exit status %d) while planning the shards: %s", rc, planning)
        else:
            cause = known_cause(workdir / "logs")
            log.error("the workflow failed (exit status %d); logs are in %s/logs. %s", rc, workdir,
                      cause or "Run the same command again to redo only what is missing")
    return rc


#: what a job's log says -> what to do (a cause that running again would only repeat)
KNOWN_CAUSES = {
    "blocks not continuous": "The input VCF is not sorted (bcftools: chromosome blocks not continuous): `bcftools "
                             "sort` it, then run the workflow on the sorted file",
    "unsorted positions": "The input VCF is not sorted (bcftools: unsorted positions): `bcftools sort` it, then run "
                          "the workflow on the sorted file",
}


def build_warnings(logs: Path) -> list[str]:
    """The shards' warnings that the VCF looks called on another genome build (scoring.build_check), once per
    shard log that has them: they are in the jobs' logs, and a pipeline reads the workflow's own output."""
    found = []
    for path in sorted((logs / "score").glob("*.log")) if (logs / "score").is_dir() else []:
        with contextlib.suppress(OSError):
            hits = [ln.split("WARNING: ", 1)[-1].strip() for ln in path.read_text(errors="replace").splitlines()
                    if "genome build" in ln and "WARNING" in ln]
            found += [f"{path.stem}: {hit}" for hit in hits[:2]]
    return found


def plan_error(logs: Path) -> str | None:
    """The error the plan job wrote (``logs/plan.log``: a region list that overlaps, a damaged input, ...), or
    None: running again repeats it, so it is the run's last line rather than Snakemake's traceback."""
    with contextlib.suppress(OSError):
        for line in (logs / "plan.log").read_text(errors="replace").splitlines():
            if line.startswith("varxpress ERROR: "):
                return line.removeprefix("varxpress ERROR: ")
    return None


def known_cause(logs: Path) -> str | None:
    """The advice for a failure whose cause a job's log names (:data:`KNOWN_CAUSES`), or None."""
    for path in sorted(logs.rglob("*.log")) if logs.is_dir() else []:
        with contextlib.suppress(OSError):
            text = path.read_text(errors="replace").lower()  # tabix says "Unsorted positions", bcftools "unsorted"
            for needle, advice in KNOWN_CAUSES.items():
                if needle in text:
                    return f"{advice} (from {path.name})"
    return None


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
