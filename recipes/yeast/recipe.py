#!/usr/bin/env python3
"""The yeast recipe: raw S. cerevisiae files -> inputs -> ``prepare`` -> ``hyperopt`` -> ``train`` -> ``evaluate``.

Run as a user with their own genome would (docs/model-quality.md has the recorded run)::

    python recipes/yeast/recipe.py all --out yeast_run --results yeast.json --figures figures/
    python recipes/yeast/recipe.py search --out yeast_run       # one step: inputs prepare search train evaluate report

Each varxpress step is logged as the exact command line it runs, and skipped when its output exists (delete it to
redo the step); the search resumes where it stopped. Split: whole chromosomes, test chrIV + chrXVI, validation
chrXII, training the other 13 (``--test-chroms``/``--valid-chroms``), the same for every number reported.

Step ``inputs`` reads a folder laid out like ``shared/data/yeast`` (``genome/``, ``tss/``, ``labels/``; see its
README) and writes into ``OUT/inputs``:

``R64-1-1.fa.gz`` (+ ``.fai``, ``.gzi``)
    the nuclear chromosomes, bgzip-compressed, contigs renamed ``I`` -> ``chrI`` ... ``XVI`` -> ``chrXVI`` so that
    they match the TSS annotation. The mitochondrial chromosome is left out (the TSS set has no gene on it).
``tss.bed``
    BED6, one 1-bp interval ``[tss, tss + 1)`` per gene (0-based), name = the systematic gene id, score = the
    TIF-seq read count (``ypd=``, capped at 1000 as BED wants), strand. The TSS is the 5' end of the most abundant
    full-ORF transcript: GFF3 ``start`` on ``+`` and ``end`` on ``-`` (1-based, closed), i.e. ``start - 1`` and
    ``end - 1`` 0-based. A 1-bp interval gives the same TSS whether it is read as "start on both strands"
    (``--tss-offset 0``) or as "start on +, end - 1 on -" (``--tss-offset none``).
``labels.tsv``
    ``gene_id  fpkm`` (RNA-seq, Presnyak et al. 2015); ``prepare --label-transform log10`` takes
    log10(FPKM + 0.1), as Xpresso did for RPKM.
``features.tsv``
    ``gene_id  log10_half_life`` (minutes). Genes without a measured half-life get no row: ``prepare``
    standardises the column with the training genes' mean and sd and sets a missing value to 0, the training mean.

``--chroms chrI,chrIII`` keeps only those chromosomes (the test suite's small version of the recipe).

The other steps: ``prepare`` stores TSS-2000..TSS+1000 per gene (the widest window the search may pick; each trial
crops its own), ``search`` runs ``hyperopt`` over ``space.yaml`` (window ends, layers, dropout, learning rate, batch
size, with and without the half-life feature), ``train`` retrains the best trial's hyperparameters twice, with the
half-life feature (``yeast.vxm.h5``) and without it (``yeast_nohl.vxm.h5``), and ``evaluate`` compares both with the
training mean and the k-mer ridge on the test chromosomes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import re
import shlex
import sys
from pathlib import Path

import pysam

log = logging.getLogger("recipe")
HERE = Path(__file__).resolve().parent
STEPS = ("inputs", "prepare", "search", "train", "evaluate", "report")

ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI"]
GENOME_NAME = "Saccharomyces_cerevisiae.R64-1-1.dna.chromosome.{}.fa.gz"
TSS_GFF = "tss/most_abundant_full-ORF_transcripts_ypd.gff3"
FPKM_TSV = "labels/presnyak2015_fpkm_from_cubar.tsv"
HALF_LIFE_TSV = "labels/presnyak2015_half_life_from_cubar.tsv"
DEFAULT_DATA = HERE.parents[1].parent / "shared" / "data" / "yeast"


def write_fasta(data: Path, out: Path, chroms: list[str]) -> Path:
    """Concatenate the per-chromosome FASTAs as ``chr<roman>``, bgzip and index them; returns the path."""
    plain = out / "R64-1-1.fa"
    with plain.open("w") as dst:
        for chrom in chroms:
            src = data / "genome" / GENOME_NAME.format(chrom.removeprefix("chr"))
            with gzip.open(src, "rt") as fh:
                header = fh.readline()
                if not header.startswith(">" + chrom.removeprefix("chr") + " "):
                    raise SystemExit(f"{src}:1: expected the header of chromosome {chrom}, found {header.strip()!r}")
                dst.write(f">{chrom}\n")
                for line in fh:
                    dst.write(line)
    gz = out / "R64-1-1.fa.gz"
    pysam.tabix_compress(str(plain), str(gz), force=True)
    plain.unlink()
    pysam.faidx(str(gz))
    return gz


def write_tss(data: Path, out: Path, chroms: list[str]) -> int:
    """``tss.bed`` from the TIF-seq GFF3 (see the module docstring); returns the number of genes."""
    src = data / TSS_GFF
    keep = set(chroms)
    rows = []
    with src.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) != 9:
                raise SystemExit(f"{src}:{lineno}: expected 9 tab-separated GFF3 columns, found {len(f)}")
            chrom, start, end, strand, attrs = f[0], int(f[3]), int(f[4]), f[6], f[8]
            if chrom not in keep:
                continue
            fields = dict(a.split("=", 1) for a in attrs.split(";") if "=" in a)
            gene = re.sub(r"_id\d+$", "", fields["ID"])
            tss0 = start - 1 if strand == "+" else end - 1
            score = min(int(fields.get("ypd", 0)), 1000)
            rows.append((chrom, tss0, gene, score, strand))
    order = {c: i for i, c in enumerate(chroms)}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    with (out / "tss.bed").open("w") as dst:
        for chrom, tss0, gene, score, strand in rows:
            dst.write(f"{chrom}\t{tss0}\t{tss0 + 1}\t{gene}\t{score}\t{strand}\n")
    return len(rows)


def write_tables(data: Path, out: Path) -> tuple[int, int]:
    """``labels.tsv`` (FPKM as measured) and ``features.tsv`` (log10 half-life); returns their row counts."""
    n_lab = n_feat = 0
    with (data / FPKM_TSV).open() as fh, (out / "labels.tsv").open("w") as dst:
        next(fh)
        dst.write("gene_id\tfpkm\n")
        for line in fh:
            gene, _name, fpkm = line.rstrip("\n").split("\t")
            dst.write(f"{gene}\t{fpkm}\n")
            n_lab += 1
    with (data / HALF_LIFE_TSV).open() as fh, (out / "features.tsv").open("w") as dst:
        next(fh)
        dst.write("gene_id\tlog10_half_life\n")
        for lineno, line in enumerate(fh, 2):
            gene, _name, value = line.rstrip("\n").split("\t")
            if value in ("", "NA"):
                continue
            minutes = float(value)
            if minutes <= 0:
                raise SystemExit(f"{data / HALF_LIFE_TSV}:{lineno}: half-life {value} of {gene} is not positive")
            dst.write(f"{gene}\t{math.log10(minutes):.6f}\n")
            n_feat += 1
    return n_lab, n_feat


def build_inputs(data: Path, out: Path, chroms: list[str]) -> None:
    """Step ``inputs``: FASTA, TSS BED, label and feature tables in ``out`` (see the module docstring)."""
    if not (data / TSS_GFF).is_file():
        raise SystemExit(f"{data}: no {TSS_GFF}; point --data at the yeast folder")
    bad = [c for c in chroms if c.removeprefix("chr") not in ROMAN]
    if bad:
        raise SystemExit(f"--chroms: {bad} are not nuclear chromosomes chrI..chrXVI")
    out.mkdir(parents=True, exist_ok=True)
    write_fasta(data, out, chroms)
    n_tss = write_tss(data, out, chroms)
    n_lab, n_feat = write_tables(data, out)
    log.info("%s: %d chromosomes, %d TSSs, %d labels, %d half-lives", out, len(chroms), n_tss, n_lab, n_feat)


def varxpress(*words: object) -> None:
    """Run one varxpress command in this process, logging it as the command line a user would type."""
    from varxpress.cli import main as cli_main

    argv = [str(w) for w in words]
    log.info("$ varxpress %s", shlex.join(argv))
    status = cli_main(argv)
    if status != 0:
        raise SystemExit(f"varxpress {argv[0]} exited with status {status}")


def split_args(args: argparse.Namespace) -> list[str]:
    out = ["--split", "chrom", "--test-chroms", args.test_chroms]
    return out + (["--valid-chroms", args.valid_chroms] if args.valid_chroms else ["--valid-size", args.valid_size])


def run_steps(args: argparse.Namespace) -> None:
    out: Path = args.out
    inputs, dataset, search = out / "inputs", out / "yeast.vxd.h5", out / "search"
    steps = STEPS if args.step == "all" else (args.step,)
    if "inputs" in steps and not (inputs / "tss.bed").exists():
        build_inputs(args.data, inputs, [c for c in args.chroms.split(",") if c])
    if "prepare" in steps and not dataset.exists():
        varxpress("prepare", "--genome", inputs / "R64-1-1.fa.gz", "--genome-build", "R64-1-1",
                  "--tss", inputs / "tss.bed", "--tss-format", "bed",
                  "--labels", inputs / "labels.tsv", "--label-column", "fpkm", "--label-transform", "log10",
                  "--pseudocount", "0.1", "--label-units", "log10(FPKM + 0.1)", "--features", inputs / "features.tsv",
                  "--upstream", args.upstream, "--downstream", args.downstream, *split_args(args), "-o", dataset)
    if "search" in steps and not (search / "best_hparams.json").exists():
        varxpress("hyperopt", "-d", dataset, "--space", args.space, "-o", search, "--max-evals", args.max_evals,
                  "--timeout", args.timeout, "--trial-epochs", args.trial_epochs, "--seed", args.seed, "--no-final")
    variants = {"yeast": 1, "yeast_nohl": 0}  # with / without the half-life feature, otherwise the best trial's
    if "train" in steps:
        best = json.loads((search / "best_hparams.json").read_text())
        for name, n_features in variants.items():
            model = out / f"{name}.vxm.h5"
            if model.exists() or (args.variant and name != args.variant):
                continue
            hparams = out / f"{name}.hparams.json"
            hparams.write_text(json.dumps(dict(best, n_features=n_features, **(
                {"epochs": args.epochs} if args.epochs else {})), indent=1) + "\n")
            varxpress("train", "-d", dataset, "-p", hparams, "-o", model, "--seed", args.seed, "--kmax", args.kmax,
                      "--name", "yeast_R64_tifseq" + ("" if n_features else "_no_half_life"))
    if "evaluate" in steps:
        for name in variants:
            varxpress("evaluate", "-m", out / f"{name}.vxm.h5", "-d", dataset, "--kmax", args.kmax,
                      "-o", out / f"{name}.eval")
    if "report" in steps and args.results:
        write_results(out, args.results, args.figures)


ROWS = {  # results row -> (train report folder, column of its predictions.tsv)
    "network": ("yeast.report", "prediction"),
    "network_no_half_life": ("yeast_nohl.report", "prediction"),
    "training_mean": ("yeast.report", "mean"),
    "kmer_ridge": ("yeast.report", "kmer_ridge"),
}
METRICS = ("pearson", "spearman", "r2")


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def search_summary(search: Path) -> dict:
    """Trials, their outcome and the search's wall time, from the stored hyperopt trials."""
    from varxpress.learning.tuning import TrialStore

    trials = TrialStore(search).load()[0].trials
    ok = [t for t in trials if t["result"].get("status") == "ok"]
    times = [t[k] for t in trials for k in ("book_time", "refresh_time") if t.get(k)]
    return {"trials": len(trials), "ok": len(ok),
            "with_half_life": sum(1 for t in ok if t["result"]["hparams"].get("n_features")),
            "wall_minutes": round((max(times) - min(times)).total_seconds() / 60, 1) if times else None,
            "best_val_loss": min(t["result"]["loss"] for t in ok) if ok else None}


def write_results(out: Path, results: Path, figures: Path | None) -> dict:
    """Step ``report``: the side-by-side table as JSON (``results``) and the figures of the network's run."""
    import pandas as pd

    from varxpress.learning.bootstrap import Bootstrap
    from varxpress.learning.baselines import regression_metrics

    frames = {folder: pd.read_csv(out / folder / "predictions.tsv", sep="\t").query("split == 'test'")
              for folder, _ in ROWS.values()}
    first = frames["yeast.report"]
    for folder, frame in frames.items():  # every predictor is judged on the same genes, in the same order
        if list(frame["id"]) != list(first["id"]):
            raise SystemExit(f"{out / folder}/predictions.tsv: test genes differ from yeast.report's")
    y = first["observed"].to_numpy(float)
    preds = {row: frames[folder][col].to_numpy(float) for row, (folder, col) in ROWS.items()}
    boot = Bootstrap(y, preds, seed=0)  # the same resamples for every predictor
    table = {}
    for row, p in preds.items():
        metrics = regression_metrics(y, p)
        entry = {"n": int(len(y)), **{m: _finite(metrics[m]) for m in METRICS}}
        entry.update({k: _finite(v) for k, v in boot.intervals(row).items()})
        table[row] = entry
    from varxpress.learning.prepared import PreparedSet

    with PreparedSet(out / "yeast.vxd.h5") as pset:
        split = {"test_chroms": pset.attr("test_chroms"), "valid_chroms": pset.attr("valid_chroms"),
                 "counts": pset.fingerprint()["n"]}
    result = {"models": table, "split": split, "search": search_summary(out / "search"),
              "hyperparameters": json.loads((out / "yeast.hparams.json").read_text()),
              "bootstrap": f"95% percentile intervals over the test genes, {boot.n_boot} resamples shared by all rows "
                           "(varxpress.learning.bootstrap)"}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    log.info("wrote %s", results)
    if figures is not None:
        import shutil

        figures.mkdir(parents=True, exist_ok=True)
        for src, dst in (("yeast.report/learning_curves.png", "yeast_learning_curves.png"),
                         ("yeast.report/pred_vs_obs.png", "yeast_pred_vs_obs.png")):
            shutil.copyfile(out / src, figures / dst)
    for row, e in table.items():
        log.info("%-22s n %d  %s", row, e["n"], "  ".join(f"{m} {e[m]} [{e[m + '_ci_low']}, {e[m + '_ci_high']}]"
                                                         for m in METRICS))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("step", choices=("all",) + STEPS, help="step to run (each needs the previous ones' output)")
    parser.add_argument("--out", type=Path, required=True, help="output folder of every step")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with genome/, tss/, labels/ (default: shared/data/yeast beside the repository)")
    parser.add_argument("--chroms", default=",".join("chr" + r for r in ROMAN),
                        help="chromosomes to keep (the mitochondrial genome is always left out)")
    parser.add_argument("--test-chroms", default="chrIV,chrXVI", help="held-out test chromosomes")
    parser.add_argument("--valid-chroms", default="chrXII", help="validation chromosomes ('' for --valid-size)")
    parser.add_argument("--valid-size", default="0.1", help="random validation genes when --valid-chroms is ''")
    parser.add_argument("--upstream", type=int, default=2000, help="stored bases before the TSS")
    parser.add_argument("--downstream", type=int, default=1000, help="stored bases from the TSS on")
    parser.add_argument("--space", type=Path, default=HERE / "space.yaml", help="hyperopt search space")
    parser.add_argument("--max-evals", type=int, default=30, help="trials in all (a resumed search counts earlier ones)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds of search per run")
    parser.add_argument("--trial-epochs", type=int, default=5, help="epochs per trial")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the final models (default: the space's)")
    parser.add_argument("--variant", choices=("yeast", "yeast_nohl"), default=None,
                        help="train: only this model (two processes can train both at once)")
    parser.add_argument("--kmax", type=int, default=6, help="longest k-mer of the ridge baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None,
                        help="report: JSON of the side-by-side table (the repository's: benchmarks/results/yeast.json)")
    parser.add_argument("--figures", type=Path, default=None,
                        help="report: folder for the learning-curve and predicted-vs-observed PNGs")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("recipe %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False  # varxpress's own messages are logged by its command line, once
    run_steps(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
