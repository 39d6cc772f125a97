"""Benchmark: ``varxpress score`` on a genome-shaped VCF against the htslib I/O floor, in one run.

Generates from ``--seed``:

* a genome of ``--records x 620`` bp (split into contigs of at most 250 Mb) of random sequence with N stretches
  (about 1 %, in runs of 1-50 kb, like assembly gaps);
* a TSS table with one TSS per ~170 kb (human-like density: ~18,000 genes in 3.1 Gb), both strands;
* a sorted VCF of ``--records`` records, one per ~620 bp, about 88 % SNVs and 12 % indels (1-50 bp, half
  insertions, half deletions), 3 % of records multi-allelic, ``--samples`` samples with genotypes.

Then, in the same run, the I/O floor (``bcftools view -Oz`` + ``tabix`` of the same VCF) and ``varxpress score``
end to end (``--threads``, bgzip output + index) as child processes, and prints for each: wall time, records/s,
scores/s (all and indel), CPU seconds (and those of ``score``'s main process alone, the rest being its worker
processes'), peak RSS of the child (``/usr/bin/time``; the largest of it and its worker processes) and the ratio
of ``score`` to the floor. ``--baseline-src`` also runs another source tree's ``score`` on the same files (side by
side, same load). ``--scales 0.5,1`` also runs a smaller input to show how the time scales. ``--json`` writes
the figures. Not a test: nothing here asserts a timing.

Usage::

    .venv/bin/python benchmarks/bench_genome.py [--records 200000] [--threads 2] [--scales 0.5,1] [--json PATH]
    .venv/bin/python benchmarks/bench_genome.py --records 5000000     # the whole-genome size
    .venv/bin/python benchmarks/bench_genome.py --baseline-src /tmp/main-src   # side by side with another tree
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
SPACING = 620  # bp per record
GENE_SPACING = 170_000  # bp per TSS
MAX_CONTIG = 250_000_000


def make_genome(folder: Path, length: int, rng: np.random.Generator) -> tuple[Path, dict[str, np.ndarray]]:
    """Random contigs (at most MAX_CONTIG each) with N stretches; writes genome.fa and its .fai."""
    n_contigs = max(1, -(-length // MAX_CONTIG))
    seqs = {}
    for i in range(n_contigs):
        size = length // n_contigs
        seq = BASES[rng.integers(0, 4, size)]
        for _ in range(max(1, size // 5_000_000)):  # ~1 % N in gaps of 1-50 kb
            gap = int(rng.integers(1_000, 50_000))
            lo = int(rng.integers(0, max(1, size - gap)))
            seq[lo : lo + gap] = ord("N")
        seqs[f"chr{i + 1}"] = seq
    fasta = folder / "genome.fa"
    with open(fasta, "wb") as fh:
        for name, seq in seqs.items():
            fh.write(f">{name}\n".encode())
            width = 60
            full = (seq.size // width) * width
            block = np.empty((full // width, width + 1), dtype=np.uint8)
            block[:, :width] = seq[:full].reshape(-1, width)
            block[:, width] = ord("\n")
            fh.write(block.tobytes())
            if seq.size > full:
                fh.write(seq[full:].tobytes() + b"\n")
    import pysam

    pysam.faidx(str(fasta))
    return fasta, seqs


def make_tss(folder: Path, seqs: dict[str, np.ndarray], rng: np.random.Generator, spacing: int = GENE_SPACING
             ) -> tuple[Path, int]:
    """One TSS per ~``spacing`` bp on both strands, away from contig ends; TSV with 1-based positions."""
    path = folder / "tss.tsv"
    n = 0
    with open(path, "w") as fh:
        fh.write("gene_id\tgene_name\tchrom\tpos\tstrand\n")
        for name, seq in seqs.items():
            count = max(1, seq.size // spacing)
            for t in np.sort(rng.integers(20_000, max(20_001, seq.size - 20_000), count)):
                strand = "+" if rng.random() < 0.5 else "-"
                fh.write(f"G{n:06d}\t{'GENE%d' % n}\t{name}\t{int(t) + 1}\t{strand}\n")
                n += 1
    return path, n


def make_vcf(folder: Path, seqs: dict[str, np.ndarray], n_records: int, samples: int, indel_frac: float,
             rng: np.random.Generator) -> Path:
    """A sorted VCF of about ``n_records`` records (REF from the genome; no record on an N)."""
    path = folder / "genome.vcf"
    total = sum(s.size for s in seqs.values())
    names = [f"S{i + 1}" for i in range(samples)]
    gts = np.array(["0/0", "0/1", "1/1", "0|1", "./."])
    with open(path, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        for name, seq in seqs.items():
            fh.write(f"##contig=<ID={name},length={seq.size}>\n")
        fh.write('##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n')
        fh.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(names) + "\n")
        for name, seq in seqs.items():
            n = int(round(n_records * seq.size / total))
            pos = np.unique(rng.integers(1, seq.size - 60, n))  # 0-based anchor positions, sorted
            pos = pos[seq[pos] != ord("N")]
            kinds = rng.random(pos.size)
            lens = np.minimum(rng.geometric(0.15, pos.size), 50)
            multi = rng.random(pos.size) < 0.03
            alt_base = rng.integers(1, 4, pos.size)
            dp = rng.integers(5, 60, pos.size)
            geno = gts[rng.integers(0, len(gts), (pos.size, samples))]
            lines = []
            for i, p in enumerate(pos.tolist()):
                ref_base = chr(seq[p])
                ref_i = "ACGT".index(ref_base)
                snv = "ACGT"[(ref_i + int(alt_base[i])) % 4]
                if kinds[i] < indel_frac / 2:  # insertion after the anchor base
                    ref = ref_base
                    alts = [ref_base + BASES[rng.integers(0, 4, int(lens[i]))].tobytes().decode()]
                elif kinds[i] < indel_frac:  # deletion of the next lens bases
                    ref = seq[p : p + 1 + int(lens[i])].tobytes().decode()
                    if "N" in ref:
                        ref, alts = ref_base, [snv]
                    else:
                        alts = [ref_base]
                else:
                    ref, alts = ref_base, [snv]
                if multi[i]:
                    alts.append(ref_base + "A" if len(ref) == 1 else ("ACGT"[(ref_i + 1) % 4] + ref[1:]))
                    if alts[1] == alts[0] or alts[1] == ref:
                        alts.pop()
                lines.append(f"{name}\t{p + 1}\t.\t{ref}\t{','.join(alts)}\t50\tPASS\tDP={dp[i]}\tGT\t"
                             + "\t".join(geno[i]) + "\n")
            fh.writelines(lines)
    return path


def run_child(argv: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run a command; wall time, CPU time and peak RSS (MB) of the child and its waited-for descendants.

    Started through ``/usr/bin/time`` where present: a process started straight from this one would report at least
    this process's own RSS (Linux keeps the high-water mark across fork and exec).
    """
    rss_file = log.with_suffix(".maxrss")
    timer = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] if os.access("/usr/bin/time", os.X_OK) else []
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(timer + argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{argv[0]} failed ({code}); see {log}")
    peak_kb = int(rss_file.read_text().split()[-1]) if timer else usage.ru_maxrss
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}


def floor(vcf: Path, folder: Path) -> dict:
    out = folder / "floor.vcf.gz"
    script = f"bcftools view -Oz -o {out} {vcf} && tabix -f -p vcf {out}"
    return run_child(["sh", "-c", script], folder / "floor.log")


# The child: the command line as `python -m varxpress` runs it, then the CPU time of the child's own process written
# to a file (RUSAGE_SELF: the main process alone; its worker processes count only in RUSAGE_CHILDREN).
_CHILD = """
import resource, sys
from varxpress.cli import main
if __name__ == "__main__":
    try:
        code = main(sys.argv[2:])
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open(sys.argv[1], "w") as fh:
            fh.write(str(usage.ru_utime + usage.ru_stime))
    sys.exit(code)
"""


def score(vcf: Path, fasta: Path, tss: Path, folder: Path, threads: int, extra: list[str],
          src: str | None = None, tag: str = "scored") -> dict:
    """``varxpress score`` as a child process; ``src``: import varxpress from this source tree instead. Besides
    :func:`run_child`'s figures, ``main_cpu_s``: the CPU time of the main process alone (the rest is its workers')."""
    stats = folder / f"{tag}.stats.json"
    main_cpu = folder / f"{tag}.main_cpu"
    argv = [sys.executable, "-c", _CHILD, str(main_cpu), "score", str(vcf), "--fasta", str(fasta), "--tss", str(tss),
            "--out", str(folder / f"{tag}.vcf.gz"), "--threads", str(threads), "--stats", str(stats), "--quiet",
            *extra]
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve())) if src else None
    # run from the data folder: `python -c` puts the working directory first on sys.path, so from a source tree it
    # would import that tree's varxpress whatever PYTHONPATH says
    probe = subprocess.run([sys.executable, "-c", "import varxpress; print(varxpress.__file__)"], env=env,
                           cwd=folder, capture_output=True, text=True, check=True).stdout.strip()
    if src and not Path(probe).resolve().is_relative_to(Path(src).resolve()):
        raise SystemExit(f"--baseline-src {src}: the child imports varxpress from {probe}, not from there")
    res = run_child(argv, folder / f"{tag}.log", env, cwd=folder)
    res["varxpress"] = probe
    res["main_cpu_s"] = float(main_cpu.read_text())
    counts = json.loads(stats.read_text())
    res.update(records=counts["records_in"], scores=counts["scores"], scores_fast=counts.get("scores_fast"),
               skipped=counts.get("skipped"))
    return res


def indel_scores(path: Path) -> int:
    """Scores of indel alleles in a scored VCF (VXP entries whose allele differs in length from REF)."""
    import cyvcf2

    n = 0
    for rec in cyvcf2.VCF(str(path)):
        vxp = rec.INFO.get("VXP")
        if not vxp:
            continue
        for entry in vxp.split(","):
            if len(entry.split("|", 1)[0]) != len(rec.REF):
                n += 1
    return n


def vcf_lines(path: Path) -> list[str]:
    """Lines of a BGZF VCF but the ``##varxpress_command`` line (it names the options, which differ)."""
    import gzip

    with gzip.open(path, "rt") as fh:
        return [line for line in fh if not line.startswith("##varxpress_command=")]


def compare_outputs(ours: Path, marked: Path, baseline: Path) -> dict:
    """Whether ``--mark-outside-windows`` gives the baseline's file, and whether the default differs from it only
    by ``VXP_SKIP`` values that are all ``no_gene_in_window`` (records lying in no window)."""
    a, m, b = vcf_lines(ours), vcf_lines(marked), vcf_lines(baseline)
    outside = 0
    other = 0
    described = False  # the default's VXP_SKIP Description adds what an absent VXP_SKIP means
    for x, y in zip(a, b):
        if x == y:
            continue
        if x.startswith("##INFO=<ID=VXP_SKIP,") and y.startswith("##INFO=<ID=VXP_SKIP,"):
            described = True
            continue
        f, g = x.rstrip("\n").split("\t"), y.rstrip("\n").split("\t")
        items = g[7].split(";")
        kept = [i for i in items if not (i.startswith("VXP_SKIP=") and
                                         set(i[len("VXP_SKIP="):].split(",")) == {"no_gene_in_window"})]
        if f[:7] + f[8:] == g[:7] + g[8:] and len(kept) == len(items) - 1 and f[7] == (";".join(kept) or "."):
            outside += 1
        else:
            other += 1
    return {"marked_identical_to_baseline": m == b, "default_lines": len(a), "baseline_lines": len(b),
            "default_differs_only_outside": len(a) == len(b) and other == 0, "records_unmarked_outside": outside,
            "vxp_skip_description_differs": described}


def one_scale(folder: Path, n_records: int, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fasta, seqs = make_genome(folder, n_records * SPACING, rng)
    tss, genes = make_tss(folder, seqs, rng, args.gene_spacing)
    vcf = make_vcf(folder, seqs, n_records, args.samples, args.indel_fraction, rng)
    del seqs
    print(f"[{n_records:,} records] generated genome, {genes:,} TSSs and VCF in {time.perf_counter() - t0:.1f} s",
          flush=True)
    fl = floor(vcf, folder)
    extra = args.score_args.split() if args.score_args else []
    sc = score(vcf, fasta, tss, folder, args.threads, extra)
    sc["indel_scores"] = indel_scores(folder / "scored.vcf.gz")
    rec_s = sc["records"] / sc["wall_s"]
    row = {
        "records_requested": n_records, "records": sc["records"], "genes": genes, "genome_bp": n_records * SPACING,
        "floor": fl, "score": sc,
        "records_per_s": rec_s, "scores_per_s": sc["scores"] / sc["wall_s"],
        "indel_scores_per_s": sc["indel_scores"] / sc["wall_s"],
        "ratio_to_floor": sc["wall_s"] / fl["wall_s"],
        "extrapolated_5M_s": 5_000_000 / rec_s,
    }
    print(f"  floor (bcftools view -Oz + tabix): {fl['wall_s']:.2f} s, {sc['records'] / fl['wall_s']:,.0f} "
          f"records/s, peak RSS {fl['peak_rss_mb']:.0f} MB")
    print(f"  varxpress score --threads {args.threads}: {sc['wall_s']:.2f} s wall ({sc['cpu_s']:.1f} CPU-s, "
          f"{sc['main_cpu_s']:.1f} in the main process), "
          f"{rec_s:,.0f} records/s, {sc['scores']:,} scores ({row['scores_per_s']:,.0f}/s), "
          f"{sc['indel_scores']:,} indel scores ({row['indel_scores_per_s']:,.0f}/s), "
          f"peak RSS {sc['peak_rss_mb']:.0f} MB")
    print(f"  ratio score / floor: {row['ratio_to_floor']:.1f}x; 5 M records extrapolated: "
          f"{row['extrapolated_5M_s']:.0f} s", flush=True)
    if args.baseline_src:
        base = score(vcf, fasta, tss, folder, args.threads, extra, args.baseline_src, "baseline")
        base["indel_scores"] = indel_scores(folder / "baseline.vcf.gz")
        row["baseline"] = base
        print(f"  baseline ({args.baseline_src}): {base['wall_s']:.2f} s wall ({base['cpu_s']:.1f} CPU-s, "
              f"{base['main_cpu_s']:.1f} in the main process), "
              f"{base['records'] / base['wall_s']:,.0f} records/s, {base['indel_scores'] / base['wall_s']:,.0f} "
              f"indel scores/s, peak RSS {base['peak_rss_mb']:.0f} MB; this tree is "
              f"{base['wall_s'] / sc['wall_s']:.2f}x faster ({base['cpu_s'] / sc['cpu_s']:.2f}x in CPU time)",
              flush=True)
        if args.compare_marked:
            row["marked"] = score(vcf, fasta, tss, folder, args.threads, extra + ["--mark-outside-windows"],
                                  tag="marked")
            row["outputs"] = compare_outputs(folder / "scored.vcf.gz", folder / "marked.vcf.gz",
                                             folder / "baseline.vcf.gz")
            print(f"  --mark-outside-windows: {row['marked']['wall_s']:.2f} s wall ({row['marked']['cpu_s']:.1f} "
                  f"CPU-s); outputs: {row['outputs']}", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--records", type=int, default=200_000, help="VCF records of the largest scale")
    p.add_argument("--scales", default="1", help="comma-separated fractions of --records to run, e.g. 0.5,1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--indel-fraction", type=float, default=0.12)
    p.add_argument("--gene-spacing", type=int, default=GENE_SPACING,
                   help="bp per TSS; e.g. 15000 with --indel-fraction 1 measures indel scoring rather than I/O")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score-args", default="", help="extra arguments for varxpress score, e.g. '--no-fast-path'")
    p.add_argument("--baseline-src", help="also run score with varxpress imported from this source tree (e.g. "
                                          "`git archive main | tar -x -C DIR`), on the same files, for a side-by-side "
                                          "comparison")
    p.add_argument("--compare-marked", action="store_true",
                   help="with --baseline-src: also run this tree with --mark-outside-windows and compare the three "
                        "outputs (the marked one should be the baseline's, the default one differ only by the "
                        "VXP_SKIP of records outside every window)")
    p.add_argument("--workdir", help="keep the generated files here (default: a temporary folder, removed)")
    p.add_argument("--json", help="write the figures to this JSON file")
    args = p.parse_args(argv)
    for tool in ("bcftools", "tabix"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not on PATH: install it (scripts/install-system-deps)")
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, python "
          f"{platform.python_version()}, numpy {np.__version__}", flush=True)
    work = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="vxp-bench-genome-"))
    rows = []
    try:
        for frac in (float(x) for x in args.scales.split(",")):
            n = int(args.records * frac)
            rows.append(one_scale(work / f"n{n}", n, args))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"scaling: {b['records'] / a['records']:.2f}x records took {b['score']['wall_s'] / a['score']['wall_s']:.2f}x "
              f"the time")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                "load_average_end": os.getloadavg()[0], "threads": args.threads, "seed": args.seed,
                "indel_fraction": args.indel_fraction, "gene_spacing": args.gene_spacing,
                "score_args": args.score_args,
                "baseline_src": args.baseline_src}
        Path(args.json).write_text(json.dumps({"meta": meta, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
