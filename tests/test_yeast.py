"""The yeast recipe (recipes/yeast/recipe.py), the yeast example data and the named-model mechanism.

Real-data tests read ``../shared/data/yeast`` and skip with a visible reason where it is absent.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import pysam
import pytest
import yaml

from tests.realdata import need
from varxpress.models import registry
from varxpress.models.network import ExpressionModel
from varxpress.cli import main

ROOT = Path(__file__).resolve().parents[1]
YEAST = ROOT.parent / "shared" / "data" / "yeast"  # real data: tests.realdata.need, never a plain skip
EXAMPLE = ROOT / "example_data"


def _recipe():
    spec = importlib.util.spec_from_file_location("yeast_recipe", ROOT / "recipes" / "yeast" / "recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _complement(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


# -- named models -------------------------------------------------------------------------------------------------------

def test_resolve_named_models_and_files(tmp_path, monkeypatch) -> None:
    human = registry.BUNDLED["human"]
    assert registry.resolve(None) == (human.model_path, human.tss_path, 10000)
    assert registry.resolve("human") == registry.resolve(None)
    # a named model with a TSS set of its own (as a bundled yeast model would have, 1-bp intervals, no offset)
    own = registry.BundledModel("yeast-like", "y.vxm.h5", "y_tss.bed.gz", None, "R64-1-1", "test entry")
    monkeypatch.setitem(registry.BUNDLED, own.name, own)
    # it brings its own TSS set and offset; --tss and --tss-offset override them one by one
    assert registry.resolve("yeast-like") == (own.model_path, own.tss_path, None)
    assert registry.resolve("yeast-like", tss_offset=5) == (own.model_path, own.tss_path, 5)
    assert registry.resolve("yeast-like", tss="my.bed") == (own.model_path, "my.bed", None)
    # a model file has no TSS set of its own: the default model's, as before named models existed
    model = tmp_path / "mine.vxm.h5"
    model.write_bytes(b"")
    assert registry.resolve(str(model)) == (str(model), human.tss_path, 10000)
    # a file that happens to be called like a bundled model is the file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mouse").write_bytes(b"")
    assert registry.model_file("mouse") == "mouse"
    assert registry.model_file("human") == human.model_path


def test_unknown_model_name_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["score", str(EXAMPLE / "yeast_demo.vcf"), "--fasta", str(EXAMPLE / "yeast_R64_chrI_chrIII.fa.gz"),
              "--model", "zebrafish"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "zebrafish" in err and "human" in err and "mouse" in err


def test_help_lists_the_bundled_models(capsys) -> None:
    texts = []
    for argv in (["--help"], ["score", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        texts.append(capsys.readouterr().out)
    for text in texts:
        flat = "".join(text.split())  # argparse wraps lines, also at hyphens
        for name, entry in registry.BUNDLED.items():
            assert f"{name}({entry.genome_build}" in flat


def test_bundled_files_exist() -> None:
    for entry in registry.BUNDLED.values():
        assert Path(entry.model_path).is_file() and Path(entry.tss_path).is_file()


# -- the example yeast VCF, scored by name ------------------------------------------------------------------------------

def test_yeast_demo_ref_alleles_match_the_example_genome() -> None:
    fa = pysam.FastaFile(str(EXAMPLE / "yeast_R64_chrI_chrIII.fa.gz"))
    assert dict(zip(fa.references, fa.lengths)) == {"chrI": 230218, "chrIII": 316620}  # R64-1-1 lengths
    for line in (EXAMPLE / "yeast_demo.vcf").read_text().splitlines():
        if not line.startswith("#"):
            chrom, pos, _, ref = line.split("\t")[:4]
            assert fa.fetch(chrom, int(pos) - 1, int(pos) - 1 + len(ref)) == ref


def _score_demo(tmp_path: Path, tag: str, *model_args: str) -> tuple[str, dict[str, list[str]]]:
    """Score the yeast example VCF; the annotated VCF's text and its VXP entries (alleles' per-gene fields) by ID."""
    vcf = tmp_path / f"{tag}.vcf"
    assert main(["score", str(EXAMPLE / "yeast_demo.vcf"), "--fasta", str(EXAMPLE / "yeast_R64_chrI_chrIII.fa.gz"),
                 "--out", str(vcf), "--tsv", str(tmp_path / f"{tag}.tsv"), "--quiet", *model_args]) == 0
    text = vcf.read_text()
    entries = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            f = line.split("\t")
            info = dict(x.split("=", 1) for x in f[7].split(";") if "=" in x)
            entries[f[2]] = info.get("VXP", "").split(",") if "VXP" in info else [info.get("VXP_SKIP", "")]
    return text, entries


def test_yeast_demo_scored_with_the_bundled_yeast_model(tmp_path) -> None:
    """``--model yeast`` brings the yeast network and its TSS set: every in-window variant gets a non-zero delta at
    its own gene, the far one is skipped, and the numbers are those of the same files given by path."""
    entry = registry.BUNDLED["yeast"]
    text, named = _score_demo(tmp_path, "named", "--model", "yeast")
    header = [x for x in text.splitlines() if x.startswith("##varxpress_model=")]
    assert len(header) == 1 and "Name=yeast_R64_tifseq," in header[0] and "Build=R64-1-1" in header[0]
    recorded = ExpressionModel.load(registry.model_file("yeast")).metadata  # what it was trained on and its verdict
    assert f"TrainingSet={recorded.training_data['sha256']}," in header[0]
    assert f'Verdict="{recorded.metrics["verdict"]}",' in header[0] and recorded.metrics["verdict"]
    assert "##varxpress_tss=<File=yeast_R64_tifseq_tss.bed.gz,Genes=4818>" in text
    assert named["chrI_telomere"] == [""]  # neither VXP nor VXP_SKIP: outside every window
    genes = {line.split("\t")[2]: line.split("GENE=")[1].split(";")[0]
             for line in (EXAMPLE / "yeast_demo.vcf").read_text().splitlines() if not line.startswith("#")}
    for vid, gene in genes.items():
        if gene == ".":
            continue
        own = [e.split("|") for e in named[vid] if e.split("|")[2] == gene]
        assert len(own) == 1, (vid, named[vid])
        ref, alt, delta = (float(x) for x in own[0][7:10])
        assert delta != 0.0 and delta == pytest.approx(alt - ref, abs=2e-5)
    _, by_path = _score_demo(tmp_path, "path", "--model", entry.model_path, "--tss", entry.tss_path)
    assert by_path == named


# -- the recipe on the real files ---------------------------------------------------------------------------------------

@pytest.mark.realdata
def test_recipe_inputs_put_the_tss_at_each_five_prime_utr_start(tmp_path) -> None:
    """The 1-bp TSS intervals sit at the 5' end of the matching 5' UTRs, and the UTRs end before an ATG."""
    need(YEAST / "tss", YEAST / "genome", YEAST / "labels")
    out = tmp_path / "inputs"
    _recipe().build_inputs(YEAST, out, ["chrI", "chrIII"])
    fa = pysam.FastaFile(str(out / "R64-1-1.fa.gz"))
    assert list(fa.references) == ["chrI", "chrIII"]
    tss = {}
    for line in (out / "tss.bed").read_text().splitlines():
        chrom, start, end, gene, _score, strand = line.split("\t")
        tss[gene] = (chrom, int(start), strand)
    assert len(tss) == 68 + 123  # genes on chrI and chrIII (data README)
    checked = 0
    for line in (YEAST / "tss" / "abundant_five_prime_UTRs_keepintrons.gff").read_text().splitlines():
        f = line.split("\t")
        if line.startswith("#") or f[0] not in ("chrI", "chrIII"):
            continue
        gene = re.match(r"ID=([^_;]+)_", f[8]).group(1)
        if gene not in tss:
            continue
        start, end = int(f[3]), int(f[4])  # 1-based closed
        five_prime0 = start - 1 if f[6] == "+" else end - 1
        assert tss[gene] == (f[0], five_prime0, f[6])
        codon = (fa.fetch(f[0], end, end + 3) if f[6] == "+" else _complement(fa.fetch(f[0], start - 4, start - 1)))
        checked += codon.upper() == "ATG"
    assert checked > 150
    features = {line.split("\t")[0]: line.split("\t")[1:] for line in (out / "features.tsv").read_text().splitlines()}
    recipe = _recipe()
    assert features["gene_id"] == ["log10_half_life", *recipe.ANNOTATION_COLUMNS]
    assert float(features["YAL001C"][0]) == pytest.approx(math.log10(10.79442266), abs=1e-6)  # the source table's
    # PGK1 (YCR012W, no intron): SGD's ORF is chrIII:137571-138821, 1,251 bp with the stop codon
    assert float(features["YCR012W"][2]) == pytest.approx(math.log10(1251 + 1), abs=1e-6)
    assert 0.3 < float(features["YCR012W"][5]) < 0.6 and features["YCR012W"][7] == "0.000000"
    # EFB1 (YAL003W) has an intron: the unspliced reading stops in it, and its branch point is found
    assert features["YAL003W"][7] == "1.000000" and float(features["YAL003W"][2]) < math.log10(400)


def test_transcript_parts_reads_the_orf_from_the_atg_to_the_first_in_frame_stop() -> None:
    parts = _recipe().transcript_parts
    assert parts("CCAATGAAATAGTTTAAGG", 3) == ("CCA", "ATGAAATAG", "TTTAAGG")
    assert parts("CCAATGAAATGACC", 3) == ("CCA", "ATGAAATGA", "CC")
    assert parts("ATGTAA", 0) == ("", "ATGTAA", "")  # an empty 5' and 3' UTR
    assert parts("CTAGATGAAA", 4) == "no in-frame stop codon before the transcript end"  # TAG before the ATG only
    assert parts("CCATGTAA", 3) == "no ATG after the 5' UTR"  # the ATG starts one base earlier


@pytest.mark.slow
@pytest.mark.realdata
def test_small_recipe_runs_end_to_end(tmp_path) -> None:
    """Two chromosomes, two trials of one epoch: every step of the recipe, on the real files.

    Slow because it trains five small networks and fits the k-mer ridge seven times (about 30 s of CPU).
    """
    need(YEAST / "tss", YEAST / "genome", YEAST / "labels")
    from varxpress.models.network import ExpressionModel

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "upstream": ["choice", 200, 300], "downstream": 100, "n_features": ["choice", 0, 8], "n_conv": 1,
        "conv_filters": 8, "conv_kernel": 6, "conv_pool": 10, "dense_units": 8, "dense_dropout": 0.0,
        "learning_rate": ["loguniform", 1e-3, 1e-2], "batch_size": 32, "epochs": 1, "patience": 1, "seed": 0}))
    out = tmp_path / "run"
    common = ["--out", str(out), "--chroms", "chrI,chrIII", "--test-chroms", "chrI", "--valid-chroms", "",
              "--valid-size", "20", "--upstream", "300", "--downstream", "100", "--space", str(space),
              "--max-evals", "2", "--trial-epochs", "1", "--kmax", "3", "--baseline-kmax", "2"]
    recipe = _recipe()
    for step in ("inputs", "prepare", "search"):
        assert recipe.main([step, *common]) == 0
    assert recipe.main(["train", *common, "--variant", "yeast", "--members", "2"]) == 0
    assert recipe.main(["all", *common, "--results", str(tmp_path / "results.json")]) == 0
    assert len((out / "search" / "trials.tsv").read_text().splitlines()) == 1 + 2
    best = json.loads((out / "search" / "best_hparams.json").read_text())
    for name, n_features, filters in (("yeast", 8, 16), ("yeast_nohl", 0, 8)):  # yeast: two members side by side
        model = ExpressionModel.load(out / f"{name}.vxm.h5")
        assert model.n_features == n_features and model.metadata.genome_build == "R64-1-1"
        assert model.window_spec.upstream == best["upstream"] and model.hparams["conv"][0]["filters"] == filters
        for folder, n in ((f"{name}.eval", 68), (f"{name}.valid.eval", 20)):  # test: chrI, whole
            assert json.loads((out / folder / "evaluation.json").read_text())["metrics"]["model"]["n"] == n
    assert [m["seed"] for m in ExpressionModel.load(out / "yeast.vxm.h5").metadata.source["ensemble"]["members"]] \
        == [0, 1]
    bundle = ExpressionModel.load(out / "yeast_R64_tifseq.vxm.h5").metadata  # the merged network + its evaluation
    assert bundle.name == "yeast_R64_tifseq" and bundle.metrics["model"]["test"]["n"] == 68
    assert bundle.metrics["verdict"] == json.loads((out / "yeast.eval" / "evaluation.json").read_text())["verdict"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["split"]["test_chroms"] == ["chrI"] and results["search"]["trials"] == 2
    assert results["verdict"] == json.loads((out / "yeast.eval" / "evaluation.json").read_text())["verdict"]
    checks = results["validation_baselines"]
    assert set(checks["kmer_ridge"]) == {"1", "2"} and checks["n"] == 20
    assert set(checks["features"]) == {"half_life", "lengths", "gc", "branch_point", "transcript", "all"}
    for row in ("network", "network_no_half_life", "training_mean", "kmer_ridge"):
        entry = results[row]
        assert entry["n"] == 68
        assert entry["r2_ci_low"] <= entry["r2"] <= entry["r2_ci_high"]


def test_named_ensemble_scores_like_the_manifest(tmp_path) -> None:
    """``--model human-mouse`` is the bundled ensemble manifest with the human TSS set."""
    lines = (EXAMPLE / "demo.vcf").read_text().splitlines()
    vcf = tmp_path / "tert.vcf"
    vcf.write_text("\n".join([x for x in lines if x.startswith("#")] + [x for x in lines if "\tTERT_C228T\t" in x])
                   + "\n")
    rows = {}
    for how, extra in (("named", ["--model", "human-mouse"]),
                       ("manifest", ["--ensemble", registry.BUNDLED["human-mouse"].model_path,
                                     "--tss", registry.BUNDLED["human"].tss_path, "--tss-offset", "10000"])):
        tsv = tmp_path / f"{how}.tsv"
        assert main(["score", str(vcf), "--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"), "--out",
                     str(tmp_path / f"{how}.vcf"), "--tsv", str(tsv), "--quiet", *extra]) == 0
        body = [x for x in tsv.read_text().splitlines() if not x.startswith("##")]
        rows[how] = body
        assert "Members=2" in (tmp_path / f"{how}.vcf").read_text()
    assert rows["named"] == rows["manifest"] and len(rows["named"]) >= 2


