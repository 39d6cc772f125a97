"""Benchmark: fast-path (local recomputation) vs full-recomputation scoring, in one run.

Makes a generated genome, a few hundred genes and a synthetic VCF (SNVs and indels inside the genes' windows),
then measures variant-gene scores per second

* full recomputation: Keras ``predict`` on whole alternate windows, timed on a fixed sample of SNV-gene pairs
  (running it on every pair would take most of an hour), batch ``--batch-size`` (32), TensorFlow limited to ``--threads``;
* fast path, engine level: ``LocalScorer.prepare`` + ``predict_substitutions`` per gene (window fetch and
  one-hot encoding included), in this process and over ``--threads`` worker processes (``score_genes``);
* end to end (when ``varxpress.scoring.pipeline.score_vcf`` is importable): ``varxpress score`` on the SNV-only VCF and on
  the whole VCF (indels go through full recomputation there).

It prints the rates, the ratio, peak RSS and the largest |fast - full| on the common sample. Not a test.

Usage::

    .venv/bin/python benchmarks/bench_scoring.py [--snvs 200000 --indels 10000 --genes 300 --threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

UPSTREAM, DOWNSTREAM = 7000, 3500


def make_data(folder: Path, n_genes: int, n_snvs: int, n_indels: int, seed: int) -> dict:
    """Genome (3 contigs), TSS table (TSV, 1-based), SNV-only and full VCFs; returns paths and the TSS list."""
    rng = np.random.default_rng(seed)
    contigs = ["chr1", "chr2", "chr3"]
    per = -(-n_genes // len(contigs))
    genes, seqs = [], {}
    for c in contigs:
        gaps = rng.integers(4_000, 30_000, per)  # some neighbouring windows overlap, as in a real genome
        tss = 20_000 + np.cumsum(gaps)
        length = int(tss[-1] + 20_000)
        seqs[c] = rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8), length)
        for t in tss:
            if len(genes) < n_genes:
                genes.append((f"G{len(genes):05d}", c, int(t), "+" if rng.random() < 0.5 else "-"))
    fasta = folder / "genome.fa"
    with open(fasta, "wb") as fh:
        for c in contigs:
            fh.write(f">{c}\n".encode())
            s = seqs[c].tobytes()
            fh.write(b"\n".join(s[i : i + 80] for i in range(0, len(s), 80)) + b"\n")
    tss_path = folder / "tss.tsv"
    with open(tss_path, "w") as fh:
        fh.write("gene_id\tgene_name\tchrom\tpos\tstrand\n")
        for gid, c, t, strand in genes:
            fh.write(f"{gid}\t{gid}\t{c}\t{t + 1}\t{strand}\n")

    def window_positions(n: int) -> list[tuple[str, int]]:
        picks = rng.integers(0, len(genes), n)
        out = []
        for g in picks:
            _, c, t, strand = genes[g]
            lo = t - (UPSTREAM if strand == "+" else DOWNSTREAM - 1)
            out.append((c, int(lo + rng.integers(0, UPSTREAM + DOWNSTREAM))))
        return out

    records: dict[tuple[str, int], str] = {}
    for c, p in window_positions(int(n_snvs * 1.1) + 10):
        if len(records) >= n_snvs:
            break
        ref = chr(seqs[c][p])
        alt = "ACGT"[("ACGT".index(ref) + int(rng.integers(1, 4))) % 4]
        records[(c, p)] = f"{ref}\t{alt}"
    snv_keys = set(records)
    n_ind = 0
    for c, p in window_positions(n_indels * 2):
        if n_ind >= n_indels or (c, p) in records:
            continue
        k = int(rng.integers(1, 11))
        if rng.random() < 0.5:  # deletion of k bases after the anchor
            ref, alt = seqs[c][p : p + k + 1].tobytes().decode(), chr(seqs[c][p])
        else:
            ins = rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8), k).tobytes().decode()
            ref, alt = chr(seqs[c][p]), chr(seqs[c][p]) + ins
        records[(c, p)] = f"{ref}\t{alt}"
        n_ind += 1
    header = "##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={len(seqs[c])}>\n" for c in contigs)
    header += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    order = {c: i for i, c in enumerate(contigs)}
    vcf_all, vcf_snv = folder / "all.vcf", folder / "snv.vcf"
    with open(vcf_all, "w") as fa, open(vcf_snv, "w") as fs:
        fa.write(header)
        fs.write(header)
        for (c, p) in sorted(records, key=lambda k: (order[k[0]], k[1])):
            line = f"{c}\t{p + 1}\t.\t{records[(c, p)]}\t.\tPASS\t.\n"
            fa.write(line)
            if (c, p) in snv_keys:
                fs.write(line)
    return {"fasta": fasta, "tss": tss_path, "vcf_all": vcf_all, "vcf_snv": vcf_snv,
            "n_snvs": len(snv_keys), "n_indels": n_ind}


def load_model(folder: Path, model_path: str | None, seed: int):
    """The bundled Xpresso model when present (or --model), else the Xpresso architecture with random weights."""
    from varxpress.models.hparams import DEFAULT_HPARAMS
    from varxpress.models.network import DEFAULT_MODEL_PATH, ExpressionModel

    path = Path(model_path) if model_path else DEFAULT_MODEL_PATH
    if path.exists():
        return ExpressionModel.load(path), f"{path.name}"
    model = ExpressionModel.from_hparams(DEFAULT_HPARAMS, name="xpresso_shaped_random")
    rng = np.random.default_rng(seed)
    for layer in model.keras_model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([w if w.ndim > 1 else rng.normal(0, 0.05, w.shape).astype(np.float32) for w in ws])
    out = folder / "xpresso_shaped_random.vxm.h5"
    model.save(out)
    return ExpressionModel.load(out), "Xpresso architecture (DEFAULT_HPARAMS), random weights (bundled model absent)"


def snv_pairs(data: dict, model):
    """{gene TSS: [(pos0, alt)]} for every SNV-gene pair (a variant in several windows counts for each)."""
    from varxpress.io.genome import Genome
    from varxpress.io.tss import read_tss
    from varxpress.sequence.gene_index import TSSIndex

    genome = Genome(str(data["fasta"]))
    tss = read_tss(str(data["tss"]), fmt="tsv")
    index = TSSIndex(tss, model.window_spec.upstream, model.window_spec.downstream, genome=genome)
    by_gene: dict = {}
    with open(data["vcf_snv"]) as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            c, pos, _, ref, alt = line.split("\t")[:5]
            p0 = int(pos) - 1
            for t in index.overlapping(c, p0, p0 + 1):
                by_gene.setdefault(t, []).append((p0, alt))
    return genome, by_gene


_BASE = {"A": 0, "C": 1, "G": 2, "T": 3}
_COMP = {"A": 3, "C": 2, "G": 1, "T": 0}


def edits_for(window, snvs) -> list[list[tuple[int, int]]]:
    if window.strand == "+":
        return [[(p - window.start, _BASE[a])] for p, a in snvs]
    return [[(window.end - 1 - p, _COMP[a])] for p, a in snvs]


def gene_jobs(genome, by_gene, spec):
    from varxpress.sequence.encode import one_hot
    from varxpress.models.fastpath import GeneJob
    from varxpress.sequence.windows import ref_window

    for t, snvs in by_gene.items():
        w = ref_window(genome, t, spec)
        yield GeneJob(t.gene_id, one_hot(w.seq), None, edits_for(w, snvs))


def rss_mb() -> tuple[float, float]:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snvs", type=int, default=200_000)
    ap.add_argument("--indels", type=int, default=10_000)
    ap.add_argument("--genes", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full-sample", type=int, default=2000, help="SNV-gene pairs scored by full recomputation")
    ap.add_argument("--batch-size", type=int, default=32, help="Keras batch size of full recomputation (score's default)")
    ap.add_argument("--model", help="a .vxm.h5 model (default: the bundled one, else random Xpresso-shaped)")
    ap.add_argument("--no-end-to-end", action="store_true", help="skip the varxpress.scoring.pipeline runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", help="keep the generated data here (default: a temporary folder)")
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(args.threads, 2))
    from varxpress.sequence.encode import one_hot
    from varxpress.models.fastpath import LocalScorer, score_gene_substitutions, score_genes
    from varxpress.sequence.windows import alt_window, ref_window

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"# machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu}, {platform.platform()}")
    print(f"# load average at start: {os.getloadavg()}; threads={args.threads}")
    tmp = tempfile.TemporaryDirectory(prefix="vx-bench-")
    folder = Path(args.workdir or tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = make_data(folder, args.genes, args.snvs, args.indels, args.seed)
    model, model_desc = load_model(folder, args.model, args.seed)
    genome, by_gene = snv_pairs(data, model)
    n_pairs = sum(len(v) for v in by_gene.values())
    print(f"# data: {data['n_snvs']} SNVs + {data['n_indels']} indels over {args.genes} genes "
          f"({n_pairs} SNV-gene pairs in {len(by_gene)} genes), made in {time.perf_counter() - t0:.1f} s")
    print(f"# model: {model_desc}")
    spec = model.window_spec

    rng = np.random.default_rng(args.seed + 1)
    flat = [(t, s) for t, v in by_gene.items() for s in v]
    sample = [flat[i] for i in sorted(rng.choice(len(flat), min(args.full_sample, len(flat)), replace=False))]

    # --- fast path, all SNV-gene pairs: in this process, then over worker processes
    scorer = LocalScorer(model)
    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(len(r.alt_preds) for r in score_genes(scorer, gene_jobs(genome, by_gene, spec), threads=1))
    fast1 = n / (time.perf_counter() - t0)
    print(f"fast path, 1 process: {fast1:,.0f} scores/s, {n / (time.process_time() - c0):,.0f} per CPU-second "
          f"({n} SNV-gene pairs; windows fetched and encoded)")
    fastn = None
    if args.threads > 1:
        t0 = time.perf_counter()
        n = sum(len(r.alt_preds) for r in score_genes(scorer, gene_jobs(genome, by_gene, spec), threads=args.threads))
        fastn = n / (time.perf_counter() - t0)
        print(f"fast path, {args.threads} worker processes (score_genes): {fastn:,.0f} scores/s (incl. start-up)")
    fast_sample = np.empty(len(sample))
    by_t: dict = {}
    for i, (t, s) in enumerate(sample):
        by_t.setdefault(t, []).append((i, s))
    for t, items in by_t.items():
        w = ref_window(genome, t, spec)
        _, alts = score_gene_substitutions(scorer, one_hot(w.seq), None, edits_for(w, [s for _, s in items]))
        fast_sample[[i for i, _ in items]] = alts
    own, kids = rss_mb()
    print(f"peak RSS so far (model loaded, fast path only): {own:,.0f} MB (this process), {kids:,.0f} MB (worker)")

    # --- full recomputation on the fixed sample of SNV-gene pairs
    from varxpress.io.variants import Allele, AlleleKind

    windows = []
    for t, (p0, alt) in sample:
        allele = Allele(t.chrom, p0 + 1, genome.fetch(t.chrom, p0, p0 + 1), alt, 0, AlleleKind.SNV)
        windows.append(one_hot(alt_window(genome, t, spec, allele).seq))
    X = np.stack(windows)
    model.predict(X[: args.batch_size], batch_size=args.batch_size)  # warm-up (graph tracing)
    t0, c0 = time.perf_counter(), time.process_time()
    full = model.predict(X, batch_size=args.batch_size)
    full_rate = len(X) / (time.perf_counter() - t0)
    print(f"full recomputation (Keras predict, batch {args.batch_size}, {len(X)} sampled SNV-gene pairs): "
          f"{full_rate:,.0f} scores/s, {len(X) / (time.process_time() - c0):,.0f} per CPU-second")
    max_diff = float(np.abs(fast_sample - full).max())
    print(f"max |fast - full| on the sample: {max_diff:.3g} (output scale; spread of the sample's predictions "
          f"{np.ptp(full):.3g})")
    best = max(fast1, fastn or 0)
    print(f"ratio fast/full: {best / full_rate:,.0f}x (best fast rate vs full rate, same run)")

    # --- end to end
    if not args.no_end_to_end:
        try:
            from varxpress.scoring.pipeline import ScoreConfig, score_vcf
            from varxpress.scoring.resources import ResourceSpec
        except ImportError as exc:
            print(f"end to end: skipped, varxpress.scoring.pipeline not usable ({exc})")
        else:
            for label, vcf in (("SNV-only VCF", data["vcf_snv"]), ("whole VCF (SNVs + indels)", data["vcf_all"])):
                for fast in (True,):
                    spec = ResourceSpec(fasta=str(data["fasta"]), tss=str(data["tss"]), tss_format="tsv",
                                        model=str(model.path))
                    cfg = ScoreConfig(vcf=str(vcf), resources=spec, out=str(folder / "out.vcf.gz"),
                                      threads=args.threads, fast=fast, quiet=True, batch_size=args.batch_size)
                    t0 = time.perf_counter()
                    stats = score_vcf(cfg)
                    dt = time.perf_counter() - t0
                    print(f"end to end, {label}: {stats.scores:,} scores ({stats.scores_fast:,} fast) in {dt:.1f} s "
                          f"= {stats.scores / dt:,.0f} scores/s, {stats.records_in / dt:,.0f} records/s")
    own, kids = rss_mb()
    print(f"peak RSS: {own:,.0f} MB (this process), {kids:,.0f} MB (largest worker)")
    print(f"# load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
