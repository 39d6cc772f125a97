"""Benchmark: the indel engine (``varxpress.models.shiftpath``) against full recomputation, in one process.

Generates from ``--seed`` ``--genes`` random reference windows of the model's length and, per gene,
``--indels-per-gene`` insertions and deletions (lengths geometric with mean ~8, 1-50 bp, half of each kind, at random
places of the window plus a margin, so some reach the window's edges) anchored as ``score`` anchors them: the side of
the indel away from the TSS moves, the TSS stays in place (docs/windows.md). Then, gene by gene, it measures the CPU
time (``process_time``, one process, one BLAS thread) of:

* ``LocalScorer.prepare`` (the gene's reference pass, paid once per gene whatever it meets);
* ``predict_windows`` of the gene's indels from a fresh reference cache, given their one-hot windows, and again
  given the windows' sequences (as ``score``'s worker processes receive them);
* with ``--baseline-src DIR``, the same with ``varxpress/models/shiftpath.py`` of another source tree (e.g.
  ``git archive HEAD~1 | tar -x -C DIR``; only that module: the stages it calls are this tree's), on the same caches
  and windows, the order of the runs alternating from gene to gene, so the ratio is measured side by side under the
  same load;
* a full numpy forward pass (``predict_full``) and Keras ``predict`` on a sample of ``--full-sample`` of the windows.

It prints indels per CPU-second for each, the ratios, and the largest differences (engine against the numpy pass,
Keras and the baseline, and sequences against one-hot windows). ``--json`` keeps the figures. Not a test: nothing
here asserts a timing.

Usage::

    .venv/bin/python benchmarks/bench_indels.py [--genes 40] [--indels-per-gene 5] [--model human]
    .venv/bin/python benchmarks/bench_indels.py --baseline-src /tmp/previous-src --json results/x.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

MARGIN = 200  # genome bases beyond each end of the reference window


def onehot(codes: np.ndarray) -> np.ndarray:
    """Base codes (0-3, -1 = N) -> (L, 4) float32 one-hot."""
    out = np.zeros((codes.size, 4), dtype=np.float32)
    ok = codes >= 0
    out[np.flatnonzero(ok), codes[ok]] = 1.0
    return out


def gene_windows(rng: np.random.Generator, length: int, upstream: int, n: int):
    """One gene: its reference window (L, 4) and ``n`` indel windows with their length changes, anchored as score
    anchors them (the TSS, at index ``upstream``, stays; the far side of the indel moves)."""
    genome = rng.integers(0, 4, length + 2 * MARGIN)
    genome[rng.random(genome.size) < 0.005] = -1  # a few N
    ref = onehot(genome[MARGIN : MARGIN + length])
    alts, shifts = [], []
    for _ in range(n):
        site = MARGIN - 20 + int(rng.integers(0, length + 40))  # the anchor base; inside the window or just outside
        size = int(min(50, rng.geometric(1 / 8)))
        if rng.random() < 0.5:
            hap = np.concatenate([genome[: site + 1], rng.integers(0, 4, size), genome[site + 1 :]])
            delta = size
        else:
            hap = np.concatenate([genome[: site + 1], genome[site + 1 + size :]])
            delta = -size
        start = MARGIN + delta if site < MARGIN + upstream else MARGIN  # upstream of the TSS: the left side moves
        alts.append(onehot(hap[start : start + length]))
        shifts.append(delta)
    return ref, np.stack(alts), shifts


def load_baseline(src: str):
    path = Path(src) / "varxpress" / "models" / "shiftpath.py"
    if not path.is_file():
        raise SystemExit(f"--baseline-src {src}: no {path.relative_to(src)} there")
    spec = importlib.util.spec_from_file_location("baseline_shiftpath", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="human", help="a bundled model's name or a .vxm.h5 file (default human)")
    ap.add_argument("--genes", type=int, default=40)
    ap.add_argument("--indels-per-gene", type=int, default=5, help="about 2 at whole-genome density (docs/performance.md)")
    ap.add_argument("--full-sample", type=int, default=40, help="windows also scored by numpy and Keras full passes")
    ap.add_argument("--baseline-src", help="also time shiftpath.py of this source tree, side by side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)

    from varxpress.models import shiftpath
    from varxpress.models.fastpath import LocalScorer
    from varxpress.models.keras_stages import one_blas_thread
    from varxpress.models.network import ExpressionModel
    from varxpress.models.registry import model_file
    from varxpress.sequence.encode import decode

    baseline = load_baseline(args.baseline_src) if args.baseline_src else None
    model = ExpressionModel.load(model_file(args.model))
    scorer = LocalScorer(model)
    spec = model.window_spec
    rng = np.random.default_rng(args.seed)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"# machine: {os.cpu_count()} CPUs, {cpu}, {platform.platform()}; load average at start {os.getloadavg()}")
    print(f"# model: {args.model} (window {scorer.length} bp); {args.genes} genes x {args.indels_per_gene} indels")

    cpu_s = {"prepare": 0.0, "engine": 0.0, "engine_sequences": 0.0, "baseline": 0.0}
    worst = {"engine_vs_numpy": 0.0, "engine_vs_keras": 0.0, "engine_vs_baseline": 0.0, "sequences_vs_onehot": 0.0}
    sample_alts, sample_fast = [], []
    n = 0
    for g in range(args.genes):
        ref, alts, shifts = gene_windows(rng, scorer.length, spec.upstream, args.indels_per_gene)
        t = time.process_time()
        cache = scorer.prepare(ref)
        cpu_s["prepare"] += time.process_time() - t
        runs = [("engine", shiftpath, alts), ("engine_sequences", shiftpath, decode(alts))]
        runs += [("baseline", baseline, alts)] if baseline else []
        preds = {}
        for name, module, windows in runs if g % 2 == 0 else runs[::-1]:
            fresh = scorer.prepare(ref)  # each engine starts from the gene's bare cache (no pooled phases kept)
            t = time.process_time()
            preds[name] = module.predict_windows(scorer, fresh, windows, shifts)
            cpu_s[name] += time.process_time() - t
        worst["sequences_vs_onehot"] = max(worst["sequences_vs_onehot"],
                                           float(np.abs(preds["engine"] - preds["engine_sequences"]).max()))
        if baseline:
            worst["engine_vs_baseline"] = max(worst["engine_vs_baseline"],
                                              float(np.abs(preds["engine"] - preds["baseline"]).max()))
        n += len(alts)
        take = max(0, min(len(alts), args.full_sample - len(sample_alts)))
        sample_alts.extend(alts[:take])
        sample_fast.extend(preds["engine"][:take])
        del cache

    X, fast = np.stack(sample_alts), np.array(sample_fast)
    with one_blas_thread():
        t = time.process_time()
        full = scorer.predict_full(X)
        numpy_s = time.process_time() - t
    model.predict(X[:2], batch_size=32)  # graph tracing outside the timing
    t = time.process_time()
    keras = np.asarray(model.predict(X, batch_size=32), dtype=np.float64).reshape(-1)
    keras_s = time.process_time() - t
    worst["engine_vs_numpy"] = float(np.abs(fast - full).max())
    worst["engine_vs_keras"] = float(np.abs(fast - keras).max())

    rates = {"engine": n / cpu_s["engine"], "engine_sequences": n / cpu_s["engine_sequences"],
             "numpy_full": len(X) / numpy_s, "keras_full": len(X) / keras_s,
             "prepare_ms_per_gene": 1e3 * cpu_s["prepare"] / args.genes}
    print(f"reference pass (prepare): {rates['prepare_ms_per_gene']:.2f} ms of CPU per gene")
    print(f"indel engine: {rates['engine']:,.0f} indels per CPU-second ({n} indels, one-hot windows); "
          f"{rates['engine_sequences']:,.0f} given the windows' sequences, as score's workers are")
    if baseline:
        rates["baseline"] = n / cpu_s["baseline"]
        print(f"baseline engine ({args.baseline_src}): {rates['baseline']:,.0f} indels per CPU-second; "
              f"ratio engine/baseline {rates['engine'] / rates['baseline']:.2f}x (same windows, same load)")
    print(f"full numpy pass: {rates['numpy_full']:,.0f} per CPU-second; Keras predict (batch 32): "
          f"{rates['keras_full']:,.0f} per CPU-second ({len(X)} windows; Keras may use more than one thread)")
    print("largest |difference|: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))
    print(f"# load average at end: {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "argv": sys.argv[1:], "load_average_end": os.getloadavg(), "cpu": cpu,
            "indels": n, "cpu_s": cpu_s, "rates_per_cpu_s": rates, "max_abs_diff": worst,
            "date": time.strftime("%Y-%m-%d")}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
