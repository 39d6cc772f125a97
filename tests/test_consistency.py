"""score, explain, mutagenesis and background give the same numbers for the same variant.

The four subcommands once had their own copies of the prediction chain, and the copies drifted: three of them
read a ``--features`` table without the training standardisation that ``score`` applies. Here each runs through
its own command-line options on one world: SNVs, an MNV, an insertion and deletions on a plus- and a minus-strand
gene (and in both windows at once), with and without a features table on a model trained with features, and with
an ensemble. The tolerance is the TSV's six significant digits (``score`` and ``mutagenesis`` write ``%.6g``).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tests.toy import toy_genome, toy_hparams
from varxpress.cli import build_parser, main
from varxpress.cli.options import resource_spec
from varxpress.interpret.background import Background
from varxpress.interpret.report import explain_variant
from varxpress.scoring.resources import load_resources

UP, DOWN = 20, 10
RNG = random.Random(11)
CHR1 = "".join(RNG.choice("ACGT") for _ in range(200))
GENES = [("G1", "PLUS1", "chr1", 60, "+"), ("G2", "MINUS1", "chr1", 70, "-")]  # windows [39, 69) and [59, 89)
FEATURE_MEAN, FEATURE_SD = [100.0, 0.5], [20.0, 0.1]
RAW_G1 = [120.0, 0.45]  # standardised: [1.0, -0.5]; G2 has no row and takes the model's defaults
DEFAULTS = [0.4, -0.3]


def _other(base: str) -> str:
    return "A" if base != "A" else "C"


def _variants() -> list[tuple[int, str, str]]:
    """(1-based POS, REF, ALT): SNVs on each gene and in both windows, an MNV, an insertion, two deletions."""
    b = lambda p: CHR1[p - 1]  # noqa: E731
    return [
        (45, b(45), _other(b(45))),                      # SNV, G1 (+) only
        (64, b(64), _other(b(64))),                      # SNV in both windows
        (80, b(80), _other(b(80))),                      # SNV, G2 (-) only
        (50, CHR1[49:51], _other(b(50)) + _other(b(51))),  # MNV, G1
        (75, b(75), b(75) + "AC"),                       # insertion, G2
        (55, CHR1[54:57], b(55)),                        # deletion, G1
        (66, CHR1[65:68], b(66)),                        # deletion in both windows
    ]


def _model(folder, seed: int):
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.from_hparams(toy_hparams(UP, DOWN, n_features=2, seed=seed), name=f"toy{seed}",
                                         genome_build="toy", output_scale="log10")
    model.metadata.training_data = {"feature_mean": FEATURE_MEAN, "feature_sd": FEATURE_SD}
    model.metadata.default_features = DEFAULTS
    path = folder / f"toy{seed}.vxm.h5"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from varxpress.models.ensemble import export_ensemble

    folder = tmp_path_factory.mktemp("consistency")
    fa, tss = toy_genome(folder, {"chr1": CHR1}, GENES)
    features = folder / "features.tsv"
    features.write_text("gene\tlength\tgc\nG1\t%g\t%g\n" % tuple(RAW_G1))
    vcf = folder / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{p}\t.\t{r}\t{a}\t.\t.\t.\n" for p, r, a in _variants()))
    model = _model(folder, 1)
    ensemble = export_ensemble([model, _model(folder, 2)], folder / "ens")
    return {"folder": folder, "fasta": fa, "tss": tss, "features": features, "vcf": vcf, "model": model,
            "ensemble": ensemble}


SETTINGS = {
    "model with features": lambda w: ["--model", str(w["model"]), "--features", str(w["features"])],
    "model, default features": lambda w: ["--model", str(w["model"])],
    "ensemble with features": lambda w: ["--ensemble", str(w["ensemble"]), "--features", str(w["features"])],
}


def _rows(path) -> list[dict]:
    lines = [line.rstrip("\n").split("\t") for line in open(path) if not line.startswith("##")]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


def _close(a, b) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # %.6g in the TSVs


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_score_explain_mutagenesis_and_background_agree(world, tmp_path, setting):
    opts = SETTINGS[setting](world)
    common = ["--fasta", str(world["fasta"]), "--tss", str(world["tss"]), *opts, "--quiet"]
    # score
    tsv = tmp_path / "score.tsv"
    assert main(["score", str(world["vcf"]), "--out", str(tmp_path / "o.vcf"), "--tsv", str(tsv), *common]) == 0
    scored = {(int(r["pos"]), r["ref"], r["alt"], r["gene_id"]): r for r in _rows(tsv)}
    kinds = {len(k[1]) - len(k[2]) for k in scored}
    assert len(scored) == 9 and {0, 2, -2} <= kinds, sorted(scored)  # 7 variants, 2 of them in both windows
    # explain: its own options, the library call behind `varxpress explain`
    args = build_parser(only="explain").parse_args(["explain", "x", *common, "--out", str(tmp_path / "p.html")])
    res = load_resources(resource_spec(args))
    predictor = res.predictor()
    for pos, ref, alt in _variants():
        for g in explain_variant(res, predictor, "chr1", pos, ref, alt, flank=0).genes:
            s = scored[(pos, ref, alt, g.tss.gene_id)]
            _close([g.ref_pred, g.alt_pred, g.delta], [float(s["ref_pred"]), float(s["alt_pred"]), float(s["delta"])])
    # mutagenesis over both whole windows
    prefix = tmp_path / "mut"
    assert main(["mutagenesis", "--region", "chr1:40-89", *common, "--out-prefix", str(prefix), "--no-plots"]) == 0
    mut = {(int(r["pos"]), r["ref"], r["alt"], r["gene_id"]): r for r in _rows(f"{prefix}.tsv")}
    assert len(mut) == 3 * (30 + 30)
    snvs = [k for k in scored if len(k[1]) == len(k[2]) == 1]
    assert len(snvs) == 4
    for key in snvs:
        _close([float(mut[key]["ref_pred"]), float(mut[key]["delta"])],
               [float(scored[key]["ref_pred"]), float(scored[key]["delta"])])
    # background: every SNV of both windows, the same |delta| values as the scan
    out = tmp_path / "bg.h5"
    assert main(["background", *common, "--n-snvs", "0", "--max-n-fraction", "1", "--out", str(out)]) == 0
    bg = Background.load(out)
    np.testing.assert_allclose(bg.abs_delta, np.sort([abs(float(r["delta"])) for r in mut.values()]),
                               rtol=1e-5, atol=1e-6)


def test_features_are_standardised_as_in_training(world, tmp_path):
    """The anchor: score's reference prediction is the model's own on the standardised (or default) features."""
    from varxpress.io.genome import Genome
    from varxpress.io.tss import TSS
    from varxpress.models.network import ExpressionModel
    from varxpress.sequence.encode import one_hot
    from varxpress.sequence.windows import WindowSpec, ref_window

    model = ExpressionModel.load(world["model"])
    genome = Genome(world["fasta"])
    spec = WindowSpec(UP, DOWN)
    expected = {}
    for gid, name, chrom, pos, strand in GENES:
        x = one_hot(ref_window(genome, TSS(gid, name, chrom, pos - 1, strand), spec).seq)[None]
        f = (np.array(RAW_G1) - FEATURE_MEAN) / FEATURE_SD if gid == "G1" else np.array(DEFAULTS)
        expected[gid] = float(model.predict(x, f[None].astype(np.float32))[0])
        raw = float(model.predict(x, np.array([RAW_G1], dtype=np.float32))[0])
        if gid == "G1":
            assert abs(raw - expected[gid]) > 1e-3  # the toy model does read its features
    tsv = tmp_path / "s.tsv"
    assert main(["score", str(world["vcf"]), "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), "--model",
                 str(world["model"]), "--features", str(world["features"]), "--out", str(tmp_path / "o.vcf"),
                 "--tsv", str(tsv), "--quiet"]) == 0
    for r in _rows(tsv):
        _close(float(r["ref_pred"]), expected[r["gene_id"]])


@pytest.mark.parametrize("form", ["folder", "manifest"])
def test_an_ensembles_background_is_found_beside_it_and_checked(world, tmp_path, form):
    """`background --ensemble E` writes the background where `score --ensemble E` looks for it (one file for the
    folder and its manifest), and percentiles come from it; a member's background is refused for the ensemble."""
    import shutil

    ens = tmp_path / "ens"
    shutil.copytree(Path(world["ensemble"]).parent, ens)
    name = str(ens if form == "folder" else ens / "ensemble.json")
    common = ["--fasta", str(world["fasta"]), "--tss", str(world["tss"]), "--quiet"]
    assert main(["background", *common, "--ensemble", name, "--n-snvs", "0", "--max-n-fraction", "1"]) == 0
    assert (ens / "ensemble.json.background.h5").is_file() and not (tmp_path / "ens.background.h5").exists()
    bg = Background.load(ens / "ensemble.json.background.h5")
    other = str(ens if form == "manifest" else ens / "ensemble.json")  # the other spelling finds the same file
    tsv = tmp_path / "s.tsv"
    assert main(["score", str(world["vcf"]), *common, "--ensemble", other, "--out", str(tmp_path / "o.vcf"),
                 "--tsv", str(tsv)]) == 0
    rows = _rows(tsv)
    assert rows and all(r["percentile"] not in ("", ".") for r in rows)
    step = 100 / len(bg.abs_delta)  # the TSV's delta is rounded: it may land on the other side of an equal value
    for r in rows:
        assert abs(float(r["percentile"]) - bg.percentile(abs(float(r["delta"])))) <= step + 1e-3
    # a background built for one member is not the ensemble's
    member = tmp_path / "member.bg.h5"
    assert main(["background", *common, "--model", str(world["model"]), "--n-snvs", "50", "--out",
                 str(member)]) == 0
    assert main(["score", str(world["vcf"]), *common, "--ensemble", other, "--background", str(member),
                 "--out", str(tmp_path / "o2.vcf")]) == 1
