"""The wheel is complete: built from the source, installed into a fresh virtual environment outside the checkout, its
``varxpress workflow --dry-run`` and ``varxpress score`` work on the example data from a folder outside the checkout.

Installing TensorFlow and the rest into a new environment would take minutes and gigabytes, so the new environment
gets only the wheel (``pip install --no-deps``) and sees the test environment's third-party packages through a
``.pth`` line. A ``.pth`` line adds a folder to ``sys.path`` without running the ``.pth`` files inside it, so the
editable install's import hook of the test environment stays inactive; the test checks that the wheel's copy of
varxpress is the one imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_data"
SOURCE = ("pyproject.toml", "README.md", "NOTICE", "varxpress")


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_the_wheel_runs_the_workflow_and_scores_outside_the_source_tree(tmp_path):
    pytest.importorskip("snakemake", reason="snakemake absent: pip install '.[workflow]'")
    if not all(shutil.which(t) for t in ("bcftools", "tabix")):
        pytest.skip("bcftools/tabix absent: run scripts/install-system-deps")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VARXPRESS_SNAKEFILE")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # build from a copy of the sources, so the build leaves nothing in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        kwargs = {"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}
        copy(ROOT / name, src / name, **kwargs)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
          str(src)], tmp_path, env)
    wheel = next((tmp_path / "dist").glob("varxpress-*.whl"))
    # a fresh environment with only the wheel; third-party packages seen through a .pth line
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], tmp_path, env)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = _run([python, "-c", "import varxpress; print(varxpress.__file__)"], outside, env).stdout.strip()
    assert Path(where).resolve().is_relative_to(site.resolve()), f"imported {where}, not the wheel's copy"
    varxpress = str(target / "bin" / "varxpress")
    inputs = [str(EXAMPLE / "demo.vcf"), "--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"), "--tss",
              str(EXAMPLE / "tss.bed"), "--tss-offset", "10000"]
    dry = _run([varxpress, "workflow", *inputs, "--out", str(outside / "cohort.vcf.gz"), "--cores", "1",
                "--dry-run"], outside, env)
    assert f"{site}/varxpress/data/workflow/Snakefile" in dry.stderr + dry.stdout
    _run([varxpress, "score", *inputs, "--out", str(outside / "demo.vcf.gz"), "--tsv", str(outside / "demo.tsv"),
          "--quiet"], outside, env)
    rows = [r for r in (outside / "demo.tsv").read_text().splitlines() if not r.startswith("##")]
    assert rows[0].startswith("chrom\tpos") and any("\tTERT\t" in r for r in rows)


def test_tensorflow_dependency_lets_cpu_and_gpu_users_install_cleanly():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    tf = [d for d in project["dependencies"] if d.startswith("tensorflow")]
    assert tf == ["tensorflow>=2.16"]  # one distribution on every platform: never tensorflow and tensorflow-cpu
    assert isinstance(project["license"], str)  # SPDX expression, not the deprecated table


def _fake_apt(tmp_path: Path) -> tuple[dict, Path]:
    """A PATH holding none of the tools and an apt-get that records what it was asked to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    (bin_dir / "apt-get").chmod(0o755)
    for tool in ("id", "sudo"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}, log


@pytest.mark.parametrize("mode, wanted, unwanted", [
    ("demo", {"bcftools", "tabix"}, {"default-jre-headless", "chromium"}),
    ("all", {"bcftools", "tabix", "default-jre-headless", "chromium"}, set()),
])
def test_system_deps_install_for_the_demo_only_what_it_needs(tmp_path, mode, wanted, unwanted):
    env, log = _fake_apt(tmp_path)
    subprocess.run(["/bin/bash", str(ROOT / "scripts" / "install-system-deps"), mode], env=env, check=True,
                   capture_output=True)
    installed = set(log.read_text().split("install", 1)[1].split()) - {"-y", "-qq", "--no-install-recommends"}
    assert wanted <= installed and not unwanted & installed


def test_make_demo_installs_no_extras():
    plan = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("[" not in line for line in installs), installs  # no [test,spark,workflow]
    assert "install-system-deps demo" in plan


def test_checkout_script_without_the_dependencies_says_what_to_do():
    """bin/varxpress run by a Python that lacks the dependencies (here: site-packages switched off) names the missing
    module and the fix, with no traceback."""
    script = ROOT / "bin" / "varxpress"
    run = subprocess.run([sys.executable, "-S", str(script), "score", "--help"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=60)
    assert run.returncode == 1
    assert "is not installed for" in run.stderr and "make demo" in run.stderr
    assert "Traceback" not in run.stderr
    ok = subprocess.run([sys.executable, str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("varxpress ")
