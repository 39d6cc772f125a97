"""File names reach the workflow's shell commands quoted: a name is never run, a space never splits it."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from tests.test_workflow import EXAMPLE, SCORE_ARGS, needs_snakemake, needs_tools
from varxpress.cli import main

HOSTILE = "x$(touch PWNED).vcf"


def _hostile_input(tmp_path):
    folder = tmp_path / "my data"
    folder.mkdir()
    vcf = folder / HOSTILE
    shutil.copy(EXAMPLE / "demo.vcf", vcf)
    return folder, vcf


@needs_tools
@needs_snakemake
def test_rendered_shell_commands_quote_every_path(tmp_path, capfd):
    folder, vcf = _hostile_input(tmp_path)
    rc = main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(folder / "out.vcf.gz"), "--cores", "1",
               "--dry-run", "--snakemake-arg=--printshellcmds"])
    shown = capfd.readouterr()
    assert rc == 0, shown.err[-3000:]
    command = next(line for line in (shown.out + shown.err).splitlines() if "(bcftools view" in line)
    assert f"'{vcf}'" in command  # single-quoted: no $(...) expansion, no word splitting
    assert not list(tmp_path.rglob("PWNED"))
    assert sorted(p.name for p in folder.iterdir()) == [HOSTILE]  # a dry run leaves no working folder behind
    nested = tmp_path / "new" / "sub" / "out.vcf.gz"  # nor the output's folders it had to make
    assert main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(nested), "--cores", "1", "--dry-run",
                 "--quiet"]) == 0
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
@needs_tools
@needs_snakemake
def test_a_hostile_file_name_in_a_folder_with_a_space_runs_nothing_and_scores(tmp_path):
    folder, vcf = _hostile_input(tmp_path)
    out = folder / "scored out.vcf.gz"
    rc = main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(out), "--cores", "2", "--threads-per-shard", "1",
               "--quiet"])
    assert rc == 0
    assert not list(tmp_path.rglob("PWNED"))
    with gzip.open(out, "rt") as fh:
        records = [line for line in fh if not line.startswith("#")]
    assert len(records) == 19


def test_a_bundled_profile_can_be_named_and_a_folder_is_kept(tmp_path):
    from tests.test_workflow import _args
    from varxpress.workflow.runner import bundled_workflow, snakemake_command

    cmd = snakemake_command(Path("S"), tmp_path, tmp_path / "c.yaml", _args(["--profile", "slurm"]))
    assert Path(cmd[cmd.index("--profile") + 1]) == bundled_workflow() / "profiles" / "slurm"
    (tmp_path / "slurm").mkdir()
    cmd = snakemake_command(Path("S"), tmp_path, tmp_path / "c.yaml", _args(["--profile", str(tmp_path / "slurm")]))
    assert cmd[cmd.index("--profile") + 1] == str(tmp_path / "slurm")


@needs_snakemake
@needs_tools
def test_a_config_kept_in_the_working_folder_is_not_overwritten(tmp_path, capfd):
    """The workflow writes its resolved settings to WORKDIR/varxpress-workflow.yaml; a user's --configfile at that
    path (comments and all) would be replaced, even by a dry run. Refused, as a working folder inside varxpress's
    own files is."""
    from varxpress.models.registry import data_path

    work = tmp_path / "run"
    work.mkdir()
    mine = work / "varxpress-workflow.yaml"
    mine.write_text("# my settings\nshard_size: 5\n")
    vcf = EXAMPLE / "demo.vcf"
    assert main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(tmp_path / "o.vcf.gz"), "--configfile", str(mine),
                 "--workdir", str(work), "--dry-run", "--quiet"]) == 2
    assert "keep your own configuration elsewhere" in capfd.readouterr().err
    assert mine.read_text() == "# my settings\nshard_size: 5\n"
    assert sorted(p.name for p in work.iterdir()) == [mine.name]
    package = Path(data_path("workflow"))
    before = sorted(p.name for p in package.iterdir())
    assert main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(tmp_path / "o.vcf.gz"), "--workdir", str(package),
                 "--dry-run", "--quiet"]) == 2
    assert "lies in the files varxpress ships" in capfd.readouterr().err
    assert sorted(p.name for p in package.iterdir()) == before


@needs_tools
@needs_snakemake
def test_a_command_line_snakemake_refuses_is_not_told_to_run_again(tmp_path, capfd):
    """Snakemake refusing its arguments (here an executor it does not have, as `--profile slurm` without the SLURM
    plugin) ran no job and wrote no logs: the advice was "logs are in .../logs. Run the same command again"."""
    vcf = EXAMPLE / "demo.vcf"
    rc = main(["workflow", str(vcf), *SCORE_ARGS, "--out", str(tmp_path / "o.vcf.gz"), "--cores", "1",
               "--executor", "slurm-but-missing"])
    err = capfd.readouterr().err
    assert rc != 0 and "Snakemake stopped before running any job" in err
    assert "pip install snakemake-executor-plugin-slurm" in err
    assert "Run the same command again" not in err and "logs are in" not in err
