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
    ``gene_id`` and eight per-gene features, the yeast counterparts of Xpresso's "half-life features":
    ``log10_half_life`` (minutes; Presnyak et al. 2015); ``log10_utr5_length``, ``log10_orf_length``,
    ``log10_utr3_length`` (``log10(bases + 1)``); ``utr5_gc``, ``orf_gc``, ``utr3_gc`` (GC fractions); and
    ``branch_point`` (1 when the yeast intron branch point ``TACTAAC`` lies within 600 bases after the ATG, else 0).
    The transcript is the TIF-seq one that gives the gene its TSS; its 5' UTR is the matching record of
    ``tss/abundant_five_prime_UTRs_keepintrons.gff``, the ORF runs from the ATG right after it to the first in-frame
    stop codon on the transcript's strand, the 3' UTR from there to the transcript's end (:func:`annotation_features`).
    The genome is read unspliced: for a gene with an intron the ORF ends at a stop codon inside the intron, which is
    why the branch-point flag is there (Xpresso's intron length and exon-junction density have no counterpart in
    these files). Of the 4,818 genes, 606 have no 5' UTR record and 4 no ATG right after it: no transcript columns
    (NA). A value that is NA, and a gene without a row, get ``prepare``'s rule: the column is standardised with the
    training genes' mean and sd and a missing value is set to 0, the training mean. The TIF-seq read count (``ypd=``)
    is never a feature: it measures expression itself.

``--chroms chrI,chrIII`` keeps only those chromosomes (the test suite's small version of the recipe).

The other steps: ``prepare`` stores TSS-2000..TSS+1000 per gene (the widest window the search may pick; each trial
crops its own), ``search`` runs ``hyperopt`` over ``space.yaml`` (window ends, layers, dropout, learning rate, batch
size, with and without the features), ``train`` trains the best trial's hyperparameters (or ``--hparams FILE``)
twice: with every feature (``yeast.vxm.h5``) and without any (``yeast_nohl.vxm.h5``, the promoter sequence alone);
with ``--members N`` it trains N seeds of a variant and merges them into one model file that predicts their mean
(:func:`varxpress.models.merge.merge_members`). ``evaluate`` compares both with the training mean and the k-mer
ridge on the test and the validation chromosomes, and writes the test evaluation into a copy of each network
(``yeast_R64_tifseq.vxm.h5``, ``yeast_R64_tifseq_sequence_only.vxm.h5``: ``evaluate --write-model``; the first is the
file varxpress/data bundles), and ``report`` writes the side-by-side table and the figures.
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
STEPS = ("inputs", "prepare", "baselines", "search", "train", "evaluate", "report")

ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI"]
GENOME_NAME = "Saccharomyces_cerevisiae.R64-1-1.dna.chromosome.{}.fa.gz"
TSS_GFF = "tss/most_abundant_full-ORF_transcripts_ypd.gff3"
FPKM_TSV = "labels/presnyak2015_fpkm_from_cubar.tsv"
HALF_LIFE_TSV = "labels/presnyak2015_half_life_from_cubar.tsv"
UTR5_GFF = "tss/abundant_five_prime_UTRs_keepintrons.gff"
DEFAULT_DATA = HERE.parents[1].parent / "shared" / "data" / "yeast"
STOPS = frozenset({"TAA", "TAG", "TGA"})
ANNOTATION_COLUMNS = ("log10_utr5_length", "log10_orf_length", "log10_utr3_length", "utr5_gc", "orf_gc",
                      "utr3_gc", "branch_point")
BRANCH_POINT = "TACTAAC"  # the yeast intron branch-point consensus, nearly invariant (Spingola et al. 1999)
BRANCH_WINDOW = 600  # bases after the ATG searched for it: most yeast introns lie near the ORF's 5' end


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


def gff_records(path: Path):
    """``(chrom, start, end, strand, attributes)`` of each record of a GFF file (1-based, closed)."""
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith("#") or not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) != 9:
                raise SystemExit(f"{path}:{lineno}: expected 9 tab-separated GFF columns, found {len(f)}")
            yield f[0], int(f[3]), int(f[4]), f[6], dict(a.split("=", 1) for a in f[8].split(";") if "=" in a)


def write_tss(data: Path, out: Path, chroms: list[str]) -> int:
    """``tss.bed`` from the TIF-seq GFF3 (see the module docstring); returns the number of genes."""
    keep = set(chroms)
    rows = []
    for chrom, start, end, strand, fields in gff_records(data / TSS_GFF):
        if chrom in keep:
            gene = re.sub(r"_id\d+$", "", fields["ID"])
            tss0 = start - 1 if strand == "+" else end - 1
            rows.append((chrom, tss0, gene, min(int(fields.get("ypd", 0)), 1000), strand))
    order = {c: i for i, c in enumerate(chroms)}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    with (out / "tss.bed").open("w") as dst:
        for chrom, tss0, gene, score, strand in rows:
            dst.write(f"{chrom}\t{tss0}\t{tss0 + 1}\t{gene}\t{score}\t{strand}\n")
    return len(rows)


def write_tables(data: Path, out: Path, annotation: dict[str, list[float]]) -> tuple[int, int]:
    """``labels.tsv`` (FPKM as measured) and ``features.tsv`` (log10 half-life, then the ``annotation`` columns of
    :func:`annotation_features`; NA where a gene lacks one); returns the row counts of the two tables."""
    n_lab = 0
    with (data / FPKM_TSV).open() as fh, (out / "labels.tsv").open("w") as dst:
        next(fh)
        dst.write("gene_id\tfpkm\n")
        for line in fh:
            gene, _name, fpkm = line.rstrip("\n").split("\t")
            dst.write(f"{gene}\t{fpkm}\n")
            n_lab += 1
    half_life = {}
    with (data / HALF_LIFE_TSV).open() as fh:
        next(fh)
        for lineno, line in enumerate(fh, 2):
            gene, _name, value = line.rstrip("\n").split("\t")
            if value in ("", "NA"):
                continue
            minutes = float(value)
            if minutes <= 0:
                raise SystemExit(f"{data / HALF_LIFE_TSV}:{lineno}: half-life {value} of {gene} is not positive")
            half_life[gene] = math.log10(minutes)
    missing = [math.nan] * len(ANNOTATION_COLUMNS)
    genes = sorted(set(half_life) | set(annotation))
    with (out / "features.tsv").open("w") as dst:
        dst.write("gene_id\tlog10_half_life\t" + "\t".join(ANNOTATION_COLUMNS) + "\n")
        for gene in genes:
            values = [half_life.get(gene, math.nan)] + annotation.get(gene, missing)
            dst.write(gene + "\t" + "\t".join(f"{v:.6f}" if math.isfinite(v) else "NA" for v in values) + "\n")
    return n_lab, len(genes)


def _gc(seq: str) -> float:
    return (seq.count("G") + seq.count("C")) / len(seq) if seq else float("nan")


def transcript_parts(transcript: str, utr5_length: int) -> tuple[str, str, str] | str:
    """Split a transcript (5' -> 3', upper case) into 5' UTR, ORF and 3' UTR; a string saying why it failed.

    The ORF starts right after the 5' UTR, which must be an ``ATG``, and ends with the first in-frame stop codon
    (included); the 3' UTR is the rest of the transcript.
    """
    if transcript[utr5_length:utr5_length + 3] != "ATG":
        return "no ATG after the 5' UTR"
    for i in range(utr5_length, len(transcript) - 2, 3):
        if transcript[i:i + 3] in STOPS:
            return transcript[:utr5_length], transcript[utr5_length:i + 3], transcript[i + 3:]
    return "no in-frame stop codon before the transcript end"


def read_utr5(path: Path) -> dict[str, tuple[int, int]]:
    """Transcript id (the 5' UTR's ``Parent``) -> 1-based closed ``(start, end)`` of its 5' UTR."""
    return {fields["Parent"]: (start, end) for _chrom, start, end, _strand, fields in gff_records(path)}


def annotation_features(data: Path, genome: Path, chroms: list[str]) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per gene, the columns :data:`ANNOTATION_COLUMNS` of its TIF-seq transcript; and the genes counted by outcome.

    The transcript is the one whose 5' end is the gene's TSS (:data:`TSS_GFF`); its 5' UTR is the record of
    :data:`UTR5_GFF` whose ``Parent`` is the transcript. Sequences are read on the transcript's strand from
    ``genome`` and split by :func:`transcript_parts`. Lengths are ``log10(length + 1)`` (a 3' UTR may be empty;
    its GC fraction is then NA), GC fractions are of the part's bases, ``branch_point`` is 1 when
    :data:`BRANCH_POINT` occurs within :data:`BRANCH_WINDOW` bases after the ATG (a likely intron: the genome is
    read unspliced, so the ORF of an intron-containing gene ends at a stop codon in its intron), else 0. A gene whose
    5' UTR is missing or does not start at the transcript's 5' end, with no ATG after the UTR or no in-frame stop
    codon before the transcript's end gets no values (``prepare`` gives it the training mean of every column).
    """
    utr5 = read_utr5(data / UTR5_GFF)
    keep = set(chroms)
    counts, values = {"ok": 0}, {}
    with pysam.FastaFile(str(genome)) as fasta:
        for chrom, start, end, strand, fields in gff_records(data / TSS_GFF):
            if chrom not in keep:
                continue
            tx = fields["ID"]
            span = utr5.get(tx)
            if span is None:
                parts = "no 5' UTR record"
            elif (strand == "+" and span[0] != start) or (strand == "-" and span[1] != end):
                parts = "5' UTR not at the transcript's 5' end"
            else:
                seq = fasta.fetch(chrom, start - 1, end).upper()
                if strand == "-":
                    seq = seq[::-1].translate(str.maketrans("ACGTN", "TGCAN"))
                parts = transcript_parts(seq, span[1] - span[0] + 1)
            if isinstance(parts, str):
                counts[parts] = counts.get(parts, 0) + 1
                continue
            counts["ok"] += 1
            branch = float(BRANCH_POINT in (parts[1] + parts[2])[:BRANCH_WINDOW])
            values[re.sub(r"_id\d+$", "", tx)] = ([math.log10(len(part) + 1) for part in parts]
                                                  + [_gc(part) for part in parts] + [branch])
    return values, counts


def build_inputs(data: Path, out: Path, chroms: list[str]) -> None:
    """Step ``inputs``: FASTA, TSS BED, label and feature tables in ``out`` (see the module docstring)."""
    if not (data / TSS_GFF).is_file():
        raise SystemExit(f"{data}: no {TSS_GFF}; point --data at the yeast folder")
    bad = [c for c in chroms if c.removeprefix("chr") not in ROMAN]
    if bad:
        raise SystemExit(f"--chroms: {bad} are not nuclear chromosomes chrI..chrXVI")
    out.mkdir(parents=True, exist_ok=True)
    genome = write_fasta(data, out, chroms)
    n_tss = write_tss(data, out, chroms)
    annotation, outcome = annotation_features(data, genome, chroms)
    n_lab, n_feat = write_tables(data, out, annotation)
    log.info("%s: %d chromosomes, %d TSSs, %d labels, %d genes with features", out, len(chroms), n_tss, n_lab,
             n_feat)
    log.info("transcript annotation features: %s", ", ".join(f"{why}: {n}" for why, n in outcome.items()))


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
    if "baselines" in steps and not (out / "baselines.valid.json").exists():
        hp = json.loads(args.hparams.read_text()) if args.hparams else {}
        table = validation_baselines(dataset, hp.get("upstream", args.upstream),
                                     hp.get("downstream", args.downstream), args.baseline_kmax)
        (out / "baselines.valid.json").write_text(json.dumps(table, indent=1) + "\n")
    if "search" in steps and not (search / "best_hparams.json").exists():
        varxpress("hyperopt", "-d", dataset, "--space", args.space, "-o", search, "--max-evals", args.max_evals,
                  "--timeout", args.timeout, "--trial-epochs", args.trial_epochs, "--seed", args.seed, "--no-final")
    if "train" in steps:
        best = json.loads((args.hparams or search / "best_hparams.json").read_text())
        for name, n_features in VARIANTS.items():
            if args.variant and name != args.variant:
                continue
            train_variant(out, name, n_features, best, args)
    if "evaluate" in steps:
        for name in VARIANTS:
            for split, folder in (("test", f"{name}.eval"), ("valid", f"{name}.valid.eval")):
                if (out / f"{name}.vxm.h5").exists() and not (out / folder / "evaluation.json").exists():
                    # the test evaluation also writes the network with it as its metrics: the file to bundle
                    record = ["--write-model", out / f"{bundle_name(VARIANTS[name])}.vxm.h5"] if split == "test" else []
                    varxpress("evaluate", "-m", out / f"{name}.vxm.h5", "-d", dataset, "--kmax", args.kmax,
                              "--split", split, "-o", out / folder, *record)
    if "report" in steps and args.results:
        write_results(out, args.results, args.figures)


#: model file stem -> n_features of its hyperparameters: every per-gene feature of the set (None: the set's number), or
#: none (the promoter sequence alone); otherwise the same network
VARIANTS = {"yeast": None, "yeast_nohl": 0}


def bundle_name(n_features: int | None) -> str:
    """The name a variant's network carries, and the stem of the file ``evaluate`` writes for bundling."""
    return "yeast_R64_tifseq" + ("" if n_features is None else "_sequence_only")


def validation_baselines(dataset: Path, upstream: int, downstream: int, kmax: int = 6) -> dict:
    """Step ``baselines``: linear fits on the training chromosomes, scored on the validation chromosomes only.

    ``features``: ridge regression (penalty by generalised cross-validation) on each group of the per-gene
    features alone, standardised as ``prepare`` stored them: ``half_life``, ``lengths`` (the three log10 lengths),
    ``gc`` (the three GC fractions), ``branch_point``, ``transcript`` (the seven transcript columns) and ``all``.
    ``kmer_ridge``: ``train``/``evaluate``'s k-mer ridge (1- to k-mers of the window TSS-``upstream``..+``downstream``
    plus every feature) for k = 1..``kmax``. Returns ``{"features": {group: metrics}, "kmer_ridge": {k: metrics}}``
    with validation Pearson r and r².
    """
    import numpy as np
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from varxpress.learning.prepared import PreparedSet
    from varxpress.learning.baselines import KmerRidgeBaseline, regression_metrics

    with PreparedSet(dataset) as pset:
        train, valid = pset.load("train", upstream, downstream), pset.load("valid", upstream, downstream)
        names = list(pset.feature_names)
    groups = {"half_life": ["log10_half_life"], "lengths": [c for c in ANNOTATION_COLUMNS if c.endswith("_length")],
              "gc": [c for c in ANNOTATION_COLUMNS if c.endswith("_gc")], "branch_point": ["branch_point"],
              "transcript": list(ANNOTATION_COLUMNS), "all": names}
    keep = lambda m: {"pearson": round(float(m["pearson"]), 4), "r2": round(float(m["r2"]), 4)}  # noqa: E731
    out: dict = {"features": {}, "kmer_ridge": {}, "n": len(valid.ids)}
    for group, columns in groups.items():
        idx = [names.index(c) for c in columns if c in names]
        if not idx:
            continue
        fit = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))
        fit.fit(train.features[:, idx], train.labels)
        out["features"][group] = keep(regression_metrics(valid.labels, fit.predict(valid.features[:, idx])))
    for k in range(1, kmax + 1):
        ridge = KmerRidgeBaseline(k, choose_k=False).fit(train.X, train.features, train.labels)
        out["kmer_ridge"][str(k)] = keep(regression_metrics(valid.labels, ridge.predict(valid.X, valid.features)))
        log.info("validation, %d-mer ridge + features: %s", k, out["kmer_ridge"][str(k)])
    for group, m in out["features"].items():
        log.info("validation, linear fit on %s: %s", group, m)
    return out


def member_paths(out: Path, name: str, members: int, seed: int) -> list[Path]:
    """The model files ``train`` writes for ``members`` seeds of variant ``name`` (one member: the model itself)."""
    return [out / f"{name}.vxm.h5"] if members == 1 else [out / f"{name}_seed{seed + i}.vxm.h5" for i in range(members)]


def train_variant(out: Path, name: str, n_features: int | None, best: dict, args: argparse.Namespace) -> None:
    """Step ``train`` for one variant: ``--members`` networks with seeds ``seed, seed + 1, ...`` (each skipped when its
    file exists), merged into ``OUT/<name>.vxm.h5`` (:func:`varxpress.models.merge.merge_members`) when there are
    several."""
    model = out / f"{name}.vxm.h5"
    if model.exists():
        return
    hparams = out / f"{name}.hparams.json"
    hparams.write_text(json.dumps(dict(best, n_features=n_features, **(
        {"epochs": args.epochs} if args.epochs else {})), indent=1) + "\n")
    label = bundle_name(n_features)
    paths = member_paths(out, name, args.members, args.seed)
    for i, path in enumerate(paths):
        if not path.exists():
            varxpress("train", "-d", out / "yeast.vxd.h5", "-p", hparams, "-o", path, "--seed", args.seed + i,
                      "--kmax", args.kmax, "--name", label if len(paths) == 1 else f"{label}_seed{args.seed + i}")
    if len(paths) > 1:
        from varxpress.models.merge import merge_members  # TensorFlow starts only for the steps that need it

        merge_members(paths, model, label)


ROWS = {  # results row -> (evaluate's folder, column of its predictions.tsv)
    "network": ("yeast.eval", "model"),
    "network_no_half_life": ("yeast_nohl.eval", "model"),
    "training_mean": ("yeast.eval", "mean"),
    "kmer_ridge": ("yeast.eval", "kmer_ridge"),
}
METRICS = ("pearson", "spearman", "r2")


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def search_summary(search: Path) -> dict | None:
    """Trials, their outcome and the search's wall time, from the stored hyperopt trials (None: no search run)."""
    from varxpress.learning.tuning import TrialStore

    if not search.is_dir():
        return None
    trials = TrialStore(search).load()[0].trials
    ok = [t for t in trials if t["result"].get("status") == "ok"]
    times = [t[k] for t in trials for k in ("book_time", "refresh_time") if t.get(k)]
    return {"trials": len(trials), "ok": len(ok),
            "with_features": sum(1 for t in ok if t["result"]["hparams"].get("n_features")),
            "wall_minutes": round((max(times) - min(times)).total_seconds() / 60, 1) if times else None,
            "best_val_loss": min(t["result"]["loss"] for t in ok) if ok else None}


def write_results(out: Path, results: Path, figures: Path | None) -> dict:
    """Step ``report``: the side-by-side table on the test split as JSON (``results``), with the verdict of
    ``evaluate`` for the network, and the figures (learning curves of every trained network of the ``yeast``
    variant, predicted against observed on the validation and test splits)."""
    import pandas as pd

    from varxpress.learning.bootstrap import Bootstrap
    from varxpress.learning.prepared import PreparedSet
    from varxpress.learning.baselines import regression_metrics

    folders = {folder for folder, _ in ROWS.values() if (out / folder / "predictions.tsv").exists()}
    frames = {folder: pd.read_csv(out / folder / "predictions.tsv", sep="\t") for folder in folders}
    first = frames["yeast.eval"]
    for folder, frame in frames.items():  # every predictor is judged on the same genes, in the same order
        if list(frame["id"]) != list(first["id"]):
            raise SystemExit(f"{out / folder}/predictions.tsv: test genes differ from yeast.eval's")
    y = first["observed"].to_numpy(float)
    preds = {row: frames[folder][col].to_numpy(float) for row, (folder, col) in ROWS.items() if folder in frames}
    boot = Bootstrap(y, preds, seed=0)  # the same resamples for every predictor
    verdict = json.loads((out / "yeast.eval" / "evaluation.json").read_text())
    with PreparedSet(out / "yeast.vxd.h5") as pset:
        split = {"test_chroms": pset.attr("test_chroms"), "valid_chroms": pset.attr("valid_chroms"),
                 "counts": pset.fingerprint()["n"], "features": list(pset.feature_names)}
    result = {"what": "yeast R64-1-1, TIF-seq TSS, log10(FPKM + 0.1) (Presnyak 2015); held-out chromosomes: test "
                      f"{'+'.join(split['test_chroms'] or [])}, validation {'+'.join(split['valid_chroms'] or [])}",
              "run": "python recipes/yeast/recipe.py (docs/model-quality.md has the commands)",
              "split": split, "intervals": f"95% percentile bootstrap over the test genes, {boot.n_boot} resamples "
                                           "shared by all rows (varxpress.learning.bootstrap)",
              **{row: None for row in ROWS}}
    for row, p in preds.items():
        metrics = regression_metrics(y, p)
        entry = {"n": int(len(y)), **{m: _finite(metrics[m]) for m in METRICS}}
        entry.update({k: _finite(v) for k, v in boot.intervals(row).items()})
        result[row] = entry
    result.update({k: verdict[k] for k in ("verdict", "reasons", "beats_baselines", "paired")})
    result["validation"] = {}
    for name in VARIANTS:
        valid = out / f"{name}.valid.eval" / "evaluation.json"
        if valid.exists():
            metrics = json.loads(valid.read_text())["metrics"]["model"]
            result["validation"][name] = {"n": int(metrics["n"]), **{m: _finite(metrics[m]) for m in METRICS}}
    result["hyperparameters"] = json.loads((out / "yeast.hparams.json").read_text())
    from varxpress.models.network import ExpressionModel

    meta = ExpressionModel.load(out / "yeast.vxm.h5").metadata
    result["members"] = meta.source.get("ensemble", {}).get("members", [{"file": "yeast.vxm.h5"}])
    result["search"] = search_summary(out / "search")
    if (out / "baselines.valid.json").exists():
        result["validation_baselines"] = json.loads((out / "baselines.valid.json").read_text())
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    log.info("wrote %s", results)
    if figures is not None:
        write_figures(out, figures)
    for row in preds:
        e = result[row]
        log.info("%-22s n %d  %s", row, e["n"], "  ".join(f"{m} {e[m]} [{e[m + '_ci_low']}, {e[m + '_ci_high']}]"
                                                         for m in METRICS))
    return result


def write_figures(out: Path, figures: Path) -> None:
    """``yeast_learning_curves.png`` (every trained network of the ``yeast`` variant) and ``yeast_pred_vs_obs.png``
    (the final model on the validation and test splits) in ``figures``."""
    import pandas as pd

    from varxpress.learning.plots import plot_pred_vs_obs, pyplot
    from varxpress.io.outputs import save_figure

    plt = pyplot()
    figures.mkdir(parents=True, exist_ok=True)
    reports = sorted(out.glob("yeast_seed*.report")) or [out / "yeast.report"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, report in enumerate(reports):
        hist = pd.read_csv(report / "history.tsv", sep="\t")
        seed = report.name.split(".")[0].removeprefix("yeast_") if len(reports) > 1 else ""
        ax.plot(hist["epoch"], hist["loss"], color=f"C{i}", ls="--", lw=1, label=f"train {seed}".strip())
        ax.plot(hist["epoch"], hist["val_loss"], color=f"C{i}", marker="o", ms=3, label=f"valid {seed}".strip())
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (standardised labels)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, figures / "yeast_learning_curves.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4))
    for ax, (folder, label) in zip(axes, (("yeast.valid.eval", "validation"), ("yeast.eval", "test"))):
        frame = pd.read_csv(out / folder / "predictions.tsv", sep="\t")
        plot_pred_vs_obs(ax, frame["observed"].to_numpy(float), frame["model"].to_numpy(float), label)
    fig.tight_layout()
    save_figure(fig, figures / "yeast_pred_vs_obs.png", dpi=100)
    plt.close(fig)


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
    parser.add_argument("--hparams", type=Path, default=None,
                        help="train: hyperparameters of the final models (default: the search's best trial, "
                             "OUT/search/best_hparams.json); the recorded run used recipes/yeast/hparams.json")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the final models (default: the space's)")
    parser.add_argument("--members", type=int, default=1,
                        help="train: networks per variant, seeds SEED, SEED + 1, ..., merged into one model file")
    parser.add_argument("--variant", choices=tuple(VARIANTS), default=None,
                        help="train: only this model (two processes can train both at once)")
    parser.add_argument("--kmax", type=int, default=6, help="longest k-mer of the ridge baseline of train/evaluate")
    parser.add_argument("--baseline-kmax", type=int, default=6,
                        help="baselines: k-mer ridges with k = 1..this, scored on the validation chromosomes")
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
