"""The bundled lentiMPRA activity model (``human-mpra-wtc11``) and its combination with Xpresso
(``human-xpresso-promoter``) on the bundled demo: what they score, what they leave to Xpresso, and the combined rule.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from varxpress.cli import main
from varxpress.interpret.background import Background
from varxpress.models import registry
from varxpress.models.network import ExpressionModel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_data"
COMMON = ["--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"), "--tss", str(EXAMPLE / "tss.bed"), "--tss-offset",
          "10000", "--quiet"]


def _score(tmp_path: Path, model: str) -> tuple[list[dict], str]:
    out, tsv = tmp_path / f"{model}.vcf", tmp_path / f"{model}.tsv"
    assert main(["score", str(EXAMPLE / "demo.vcf"), "--model", model, "--out", str(out), "--tsv", str(tsv),
                 *COMMON]) == 0
    with open(tsv) as fh:
        rows = list(csv.DictReader((line for line in fh if not line.startswith("##")), delimiter="\t"))
    return rows, out.read_text()


def test_the_shipped_activity_model_carries_its_window_rule_and_provenance() -> None:
    model = ExpressionModel.load(registry.BUNDLED["human-mpra-wtc11"].model_path)
    meta = model.metadata
    assert (meta.upstream, meta.downstream) == (120, 80) == (meta.extra["window_rule"]["upstream"],
                                                             meta.extra["window_rule"]["downstream"])
    assert meta.genome_build == "hg38" and meta.source["assay"] == "lentiMPRA"
    assert len(meta.source["ensemble"]["members"]) == 3  # three seeds merged
    assert meta.training_data.get("sha256") or meta.training_data.get("fingerprint")


def test_the_activity_model_scores_the_demo_where_its_window_reaches(tmp_path) -> None:
    rows, vcf = _score(tmp_path, "human-mpra-wtc11")
    assert rows and all(-120 <= int(r["distance"]) < 80 for r in rows)  # [TSS-120, TSS+80) and nothing else
    by_id = {(r["id"], r["alt"]): r for r in rows}
    # the clinical promoter variants lie within 120 bp upstream of their TSS: all three are scored
    assert {("TERT_C228T", "A"), ("TERT_C250T", "A"), ("HBB_-28", "C")} <= set(by_id)
    assert all(by_id[k]["percentile"] != "." for k in by_id)  # the background shipped beside the model
    # exactly the (allele, gene) pairs of Xpresso's 10.5-kb windows that lie within the 200 bases
    xpresso = _score(tmp_path, "human")[0]
    near = {(r["id"], r["alt"], r["gene_id"]) for r in xpresso if -120 <= int(r["distance"]) < 80}
    assert {(r["id"], r["alt"], r["gene_id"]) for r in rows} == near and len(near) < len(xpresso)
    body = [line for line in vcf.splitlines() if not line.startswith("#")]
    assert len(body) == sum(1 for line in open(EXAMPLE / "demo.vcf") if not line.startswith("#"))
    assert "Name=human-mpra-wtc11" in vcf


def test_the_combination_with_xpresso_follows_its_documented_rule(tmp_path) -> None:
    """Combined delta = sum(w_i * delta_i / sd_i) / sum(w_i) over the members that reach the variant, sd_i from each
    member's shipped background; each member's own delta equals its single-model score."""
    rows, vcf = _score(tmp_path, "human-xpresso-promoter")
    alone = {name: {(r["id"], r["alt"], r["gene_id"]): float(r["delta"]) for r in _score(tmp_path, name)[0]}
             for name in ("human", "human-mpra-wtc11")}
    weights = {"human": 0.5, "human-mpra-wtc11": 1.0}
    sds = {name: Background.load(registry.BUNDLED[name].model_path + ".background.h5").provenance["delta_sd"]
           for name in weights}
    checked = {"both": 0, "xpresso only": 0}
    for r in rows:
        key = (r["id"], r["alt"], r["gene_id"])
        reach = {name: float(r[f"delta_{name}"]) for name in weights if r[f"delta_{name}"] != "."}
        for name, value in reach.items():
            assert value == pytest.approx(alone[name][key], rel=1e-5, abs=1e-6)
        assert ("human-mpra-wtc11" in reach) == (key in alone["human-mpra-wtc11"])
        expected = sum(weights[n] * d / sds[n] for n, d in reach.items()) / sum(weights[n] for n in reach)
        assert float(r["delta"]) == pytest.approx(expected, rel=1e-4, abs=1e-5)
        checked["both" if len(reach) == 2 else "xpresso only"] += 1
    assert checked["both"] >= 3 and checked["xpresso only"] >= 3
    assert "MemberDeltas" in vcf and "Name=human-xpresso-promoter" in vcf
