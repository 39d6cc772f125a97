import math

import numpy as np
import pytest

from varxpress.scoring.scores import GeneScore, delta, log2_fold_change, log10_scale, quality_flags, strongest
from varxpress.sequence.windows import Window


def test_delta_is_alt_minus_ref_elementwise():
    ref = np.array([1.0, 2.0, -0.5])
    alt = np.array([1.5, 1.0, -0.5])
    np.testing.assert_allclose(delta(ref, alt), [0.5, -1.0, 0.0])


@pytest.mark.parametrize("scale,sd,factor", [("log10", None, 1.0), ("standardized_log10", 0.8, 0.8),
                                             ("standardized_log10", None, None), ("unknown", 1.0, None)])
def test_log10_scale(scale, sd, factor):
    assert log10_scale(scale, sd) == factor


def test_log2_fold_change_of_one_log10_unit_is_log2_10():
    assert log2_fold_change(1.0, "log10", None) == pytest.approx(math.log2(10))
    # standardised output: one output unit is sd log10 units
    assert log2_fold_change(0.5, "standardized_log10", 2.0) == pytest.approx(math.log2(10))
    assert log2_fold_change(0.5, "something_else", 2.0) is None


def _score(alt_index, d):
    return GeneScore(0, alt_index, "A", f"G{alt_index}{d}", "g", "+", 1, 0, 0.0, d, d, None, ())


def test_strongest_picks_largest_absolute_delta_first_on_ties():
    scores = [_score(0, 0.1), _score(0, -0.3), _score(1, 0.3)]
    assert strongest(scores) is scores[1]
    assert strongest([]) is None


def test_delta_broadcasts_one_reference_over_many_alternates():
    np.testing.assert_allclose(delta(0.5, np.array([[1.0, 0.5], [0.0, np.nan]])), [[0.5, 0.0], [-0.5, np.nan]])
    assert delta(2.0, 1.5) == -0.5


def test_score_background_and_mutagenesis_compute_deltas_with_scoring_delta(tiny_genome, tmp_path, monkeypatch):
    """Replace scoring.delta by ``ref - alt``: every consumer's deltas flip sign, so each one goes through it."""
    from tests.toy import toy_model_file
    from varxpress.scoring import scores as scoring
    from varxpress.interpret.background import build_background
    from varxpress.cli import main
    from varxpress.io.genome import Genome
    from varxpress.models.network import ExpressionModel
    from varxpress.interpret.mutagenesis import saturation_mutagenesis
    from varxpress.scoring.engine import Predictor
    from varxpress.io.tss import TSS

    model_path = toy_model_file(tmp_path, 20, 10)
    seq = "".join(line.strip() for line in tiny_genome.read_text().splitlines()[1:5] if not line.startswith(">"))
    tss = tmp_path / "tss.tsv"
    tss.write_text("G1\tONE\tchr1\t60\t+\nG2\tTWO\tchr1\t120\t-\n")
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{p}\tv{p}\t{seq[p - 1]}\t{other[seq[p - 1]]}\t.\t.\t.\n" for p in (50, 55, 115)))

    def run(tag):
        tsv = tmp_path / f"{tag}.tsv"
        assert main(["score", str(vcf), "--fasta", str(tiny_genome), "--tss", str(tss), "--model", str(model_path),
                     "--out", str(tmp_path / f"{tag}.vcf"), "--tsv", str(tsv), "--quiet"]) == 0
        rows = [l.split("\t") for l in tsv.read_text().splitlines() if not l.startswith("##")]
        col = {c: i for i, c in enumerate(rows[0])}
        return [(float(r[col["ref_pred"]]), float(r[col["alt_pred"]]), float(r[col["delta"]])) for r in rows[1:]]

    model = ExpressionModel.load(model_path)
    genes = [TSS("G1", "ONE", "chr1", 59, "+"), TSS("G2", "TWO", "chr1", 119, "-")]

    def others():
        _, bg = build_background(Predictor([model], Genome(tiny_genome)), genes, n_snvs=50, seed=1)
        mut = saturation_mutagenesis(Predictor([model], Genome(tiny_genome)), genes[0], np.arange(50, 56))
        return bg, mut.deltas

    normal, (bg, mut) = run("normal"), others()
    assert len(normal) == 3 and all(d == pytest.approx(a - r, abs=2e-6) for r, a, d in normal)
    calls = []

    def flipped(ref_pred, alt_pred):
        calls.append(1)
        return np.subtract(ref_pred, alt_pred)

    monkeypatch.setattr(scoring, "delta", flipped)
    reversed_ = run("flipped")
    bg_r, mut_r = others()
    assert calls
    assert [(r, a) for r, a, _ in reversed_] == [(r, a) for r, a, _ in normal]
    assert [d for *_, d in reversed_] == pytest.approx([-d for *_, d in normal], abs=2e-6)
    assert np.abs(bg).max() > 0 and bg_r == pytest.approx(-bg, abs=1e-6)
    assert np.isfinite(mut).sum() >= 6 * 3
    np.testing.assert_allclose(mut_r, -mut, atol=1e-6)


def test_window_n_fraction_counts_unknown_bases_and_padding():
    assert Window("ACGTNNNNNN", "c", 0, 10, "+", False).n_fraction == 0.6
    assert Window("ACGT", "c", 0, 4, "-", False).n_fraction == 0.0


@pytest.mark.parametrize("off, nfrac, pct, bg_max, flags", [
    (False, 0.0, 99.0, 0.05, ()),
    (False, 0.05, 99.0, 0.05, ()),  # at the threshold: not N-rich
    (False, 0.06, None, None, ("n_rich",)),  # no percentile: nothing to mismatch
    (False, 0.06, 50.0, None, ("n_rich", "background_mismatch")),  # a background that does not say: 5 %
    (False, 0.06, 50.0, 1.0, ("n_rich",)),  # a background built with every window
    (True, 0.5, 50.0, 0.05, ("off_contig", "n_rich", "background_mismatch")),
])
def test_quality_flags(off, nfrac, pct, bg_max, flags):
    assert quality_flags(off, nfrac, pct, bg_max) == flags
