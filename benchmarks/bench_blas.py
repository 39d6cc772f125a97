"""Benchmark: the two ways of writing the engines' widest product, each timed in a fresh process.

``ConvStage.preact_rows`` (``varxpress/models/stages.py``) needs ``x @ kcat``: for the Xpresso network's second
layer, ``x`` (350, 128) float32 (the first layer's pooled output) and ``kcat`` (128, 288) (9 taps x 32 filters). It
computes it as ``(kcat.T @ x.T).T``. With the OpenBLAS that numpy wheels ship, single-threaded, the plain ``x @
kcat`` was measured about three times slower in a process whose first such product was written that way, and as
fast once a product of the other shape had run: the speed depends on the process's history, so each way is timed
here in its own fresh process (``--runs`` times, alternating), after one untimed call.

Not a test: nothing here asserts a timing. Prints the medians and their ratio; ``--json`` keeps them.

Usage::

    .venv/bin/python benchmarks/bench_blas.py [--runs 5] [--rows 350] [--json results/x.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

CHILD = """
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
rows, form, reps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.random((rows, 128), dtype=np.float32)
kcat = rng.random((128, 288), dtype=np.float32)
kcat_t = np.ascontiguousarray(kcat.T)
product = (lambda: x @ kcat) if form == "plain" else (lambda: (kcat_t @ x.T).T)
with threadpool_limits(1):
    product()
    t = time.perf_counter()
    for _ in range(reps):
        product()
    print(json.dumps((time.perf_counter() - t) / reps * 1e3))
"""


def timed(rows: int, form: str, reps: int) -> float:
    """Milliseconds per product, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(rows), form, str(reps)], capture_output=True, text=True,
                         check=True)
    return float(json.loads(out.stdout))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per way")
    ap.add_argument("--rows", type=int, default=350, help="rows of x (350: a whole window; ~100: an indel's part)")
    ap.add_argument("--reps", type=int, default=50, help="products timed per process")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    times: dict[str, list[float]] = {"plain": [], "transposed": []}
    for _ in range(args.runs):
        for form in times:
            times[form].append(timed(args.rows, form, args.reps))
    med = {form: statistics.median(v) for form, v in times.items()}
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"x ({args.rows}, 128) @ kcat (128, 288) float32, one BLAS thread, fresh process each:")
    for form, label in (("plain", "x @ kcat"), ("transposed", "(kcat.T @ x.T).T")):
        print(f"  {label:18s} median {med[form]:.3f} ms  (runs: {', '.join(f'{t:.2f}' for t in times[form])})")
    print(f"ratio plain / transposed: {med['plain'] / med['transposed']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": args.rows,
                       "ms": times, "median_ms": med}, fh, indent=1)


if __name__ == "__main__":
    main()
