"""Benchmark: how long one small ``varxpress score`` run takes from the command line (the clinical case: one
patient's handful of variants), this tree against another, side by side.

Runs ``python -m varxpress score`` on the bundled demo (``example_data/demo.vcf``, the bundled human model, the
example genome and TSS set) ``--repeats`` times for each tree, alternating which goes first, as child processes
started from an empty folder (so each imports the tree it is given), and prints the median wall time, the median CPU
seconds (``resource.getrusage`` of the children) and whether the child imported TensorFlow. With ``--baseline-src
DIR`` (e.g. ``git archive HEAD~1 | tar -x -C DIR``) the other tree runs too, and the two outputs are compared (they
must be equal but for the ``##varxpress_command`` line). Not a test: nothing here asserts a timing.

Usage::

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--baseline-src DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = ("import runpy, sys; sys.argv = ['varxpress'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('varxpress', run_name='__main__')\n"
         "finally:\n    print('TENSORFLOW', 'tensorflow' in sys.modules, file=sys.stderr)\n")


def run_once(src: Path, out: Path, folder: Path) -> dict:
    argv = [sys.executable, "-c", PROBE, "score", str(REPO / "example_data/demo.vcf"),
            "--fasta", str(REPO / "example_data/hg38_promoters.fa.gz"), "--tss", str(REPO / "example_data/tss.bed"),
            "--tss-offset", "10000", "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(src), TF_CPP_MIN_LOG_LEVEL="3")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"score failed with {src}:\n{done.stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "tensorflow": "TENSORFLOW True" in done.stderr}


def body(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("##varxpress_command")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-src", help="another source tree to run side by side")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    trees = {"this tree": REPO}
    if args.baseline_src:
        trees["baseline"] = Path(args.baseline_src).resolve()
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="vx-startup-") as tmp:
        folder = Path(tmp)
        for i in range(args.repeats):
            for name in (list(trees) if i % 2 == 0 else list(trees)[::-1]):
                runs[name].append(run_once(trees[name], folder / f"{name.replace(' ', '_')}.vcf", folder))
        same = None
        if args.baseline_src:
            same = body(folder / "this_tree.vcf") == body(folder / "baseline.vcf")
    summary = {}
    for name, rs in runs.items():
        summary[name] = {"median_wall_s": statistics.median(r["wall_s"] for r in rs),
                         "median_cpu_s": statistics.median(r["cpu_s"] for r in rs),
                         "tensorflow_imported": any(r["tensorflow"] for r in rs), "runs": rs}
        print(f"{name} ({trees[name]}): median {summary[name]['median_wall_s']:.2f} s wall, "
              f"{summary[name]['median_cpu_s']:.2f} CPU-s over {len(rs)} runs; TensorFlow imported: "
              f"{summary[name]['tensorflow_imported']}")
    if args.baseline_src:
        ratio = summary["baseline"]["median_wall_s"] / summary["this tree"]["median_wall_s"]
        print(f"baseline / this tree: {ratio:.1f}x in wall time; outputs equal (but the command line): {same}")
        summary["outputs_equal"] = same
    print(f"# load average at end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"argv": sys.argv[1:], "date": time.strftime("%Y-%m-%d"),
                                               "load_average_end": os.getloadavg(), **summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
