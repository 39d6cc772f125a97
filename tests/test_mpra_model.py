"""The bundled lentiMPRA activity models: metadata, window rule, and scoring the demo VCF with them."""

from __future__ import annotations

from pathlib import Path

import cyvcf2
import pytest

from varxpress.cli import main
from varxpress.model import ExpressionModel

DATA = Path(__file__).resolve().parents[1] / "varxpress" / "data"
EXAMPLE = Path(__file__).resolve().parents[1] / "example_data"
MODELS = {"hepg2": DATA / "human_mpra_hepg2.vxm.h5", "wtc11": DATA / "human_mpra_wtc11.vxm.h5"}


@pytest.mark.parametrize("cell", sorted(MODELS))
def test_bundled_model_records_its_window_rule_and_data(cell):
    model = ExpressionModel.load(MODELS[cell])
    md = model.metadata
    assert (md.upstream, md.downstream) == (120, 80) and model.window_spec.length == 200
    rule = md.extra["window_rule"]
    assert rule["kind"] == "tss_anchored" and (rule["upstream"], rule["downstream"]) == (120, 80)
    assert md.source["assay"] == "lentiMPRA" and md.training_data["split_method"] == "group"
    # the file carries its own held-out verdict against the baselines, whatever it is (docs/model-quality.md)
    assert {"mean", "kmer_ridge"} <= set(md.metrics["baselines"]) and "beats_baselines" in md.metrics
    assert md.metrics["model"]["test"]["n"] > 900
    assert model.n_features == 0 and md.label_sd is not None


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpra") / "demo.vcf"
    tsv = out.with_suffix(".tsv")
    assert main(["score", str(EXAMPLE / "demo.vcf"), "--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"),
                 "--tss", str(EXAMPLE / "tss.bed"), "--tss-offset", "10000", "--model", str(MODELS["hepg2"]),
                 "--out", str(out), "--tsv", str(tsv), "--quiet"]) == 0
    return out, tsv


def test_demo_vcf_scored_where_the_window_reaches(scored):
    out, _ = scored
    records = {(rec.ID or f"{rec.CHROM}:{rec.POS}"): rec for rec in cyvcf2.VCF(str(out))}
    assert len(records) == sum(1 for line in open(EXAMPLE / "demo.vcf") if not line.startswith("#"))
    genes = {rid: {e.split("|")[3] for e in (rec.INFO.get("VXP") or "").split(",") if e}
             for rid, rec in records.items()}
    # the clinical promoter variants lie 61, 83 and 28 bp upstream of their TSS: inside [TSS-120, TSS+80)
    assert genes["TERT_C228T"] == {"TERT"} and genes["TERT_C250T"] == {"TERT"} and genes["HBB_-28"] == {"HBB"}
    # F9_promoter is 139 bp upstream of the F9 TSS, PKLR's variant 553 bp: beyond what this model reads
    assert records["F9_promoter"].INFO.get("VXP_SKIP") == "no_gene_in_window"
    assert records["chr1:155301500"].INFO.get("VXP_SKIP") == "no_gene_in_window"
    assert records["unknown_contig"].INFO.get("VXP_SKIP") == "unknown_contig"


def test_demo_deltas_equal_the_model_on_hand_built_windows(scored):
    from varxpress.encode import one_hot, reverse_complement
    from varxpress.genome import Genome

    _, tsv = scored
    rows = [line.rstrip("\n").split("\t") for line in open(tsv) if not line.startswith("##")]
    rec = next(dict(zip(rows[0], r)) for r in rows[1:] if r[rows[0].index("id")] == "TERT_C228T")
    model = ExpressionModel.load(MODELS["hepg2"])
    genome = Genome(EXAMPLE / "hg38_promoters.fa.gz")
    t = 1285051 + 10000  # TERT, minus strand: genomic window [t - 80, t + 120), reverse-complemented
    ref = genome.fetch("chr5", t - 80, t + 120).upper()
    k = (1295113 - 1) - (t - 80)
    assert ref[k] == "G"
    alt = ref[:k] + "A" + ref[k + 1:]
    pred = model.predict(one_hot([reverse_complement(s) for s in (ref, alt)]))
    assert float(rec["delta"]) == pytest.approx(pred[1] - pred[0], abs=1e-4)
