"""The staged lentiMPRA entries (``human-mpra-wtc11`` and its combination with Xpresso, ``human-xpresso-promoter``):
not bundled while no such network beats the k-mer ridge (docs/model-quality.md), refused by name with the reason,
and, with a stand-in network of the model's window in place of the file a release would ship, scored on the bundled
demo as documented: what the short model scores, what it leaves to Xpresso, and the combined rule.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.toy import toy_hparams
from varxpress.cli import main
from varxpress.errors import ModelError
from varxpress.interpret.background import Background
from varxpress.models import registry
from varxpress.models.network import ExpressionModel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_data"
COMMON = ["--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"), "--tss", str(EXAMPLE / "tss.bed"), "--tss-offset",
          "10000", "--quiet"]
SD = 0.25  # the stand-in's background SD


@pytest.fixture()
def staged(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """The staged entries bundled for one test, from a folder laid out as varxpress/data would be: a stand-in
    WTC11-window network with its background, the shipped manifest, and the Xpresso files it names."""
    folder = tmp_path / "data"
    folder.mkdir()
    model = ExpressionModel.from_hparams(toy_hparams(120, 80, seed=7), name="human-mpra-wtc11", genome_build="hg38",
                                         output_scale="log10")
    model.save(folder / "human_mpra_wtc11.vxm.h5")
    Background(np.linspace(0.0, 0.5, 50), {"model_sha256": model.sha256, "delta_sd": SD}).save(
        folder / "human_mpra_wtc11.vxm.h5.background.h5")
    human = registry.BUNDLED["human"]
    for name in (human.model, human.model + ".background.h5", registry.STAGED["human-xpresso-promoter"].model):
        shutil.copy(registry.data_path(name), folder / name)
    for name in ("human-mpra-wtc11", "human-xpresso-promoter"):
        entry = registry.STAGED[name]
        monkeypatch.setitem(registry.BUNDLED, name, registry.BundledModel(
            name, str(folder / entry.model), entry.tss, entry.tss_offset, entry.genome_build, entry.description,
            entry.kind))
    return {"folder": str(folder)}


def _score(tmp_path: Path, model: str) -> tuple[list[dict], str]:
    out, tsv = tmp_path / f"{model}.vcf", tmp_path / f"{model}.tsv"
    assert main(["score", str(EXAMPLE / "demo.vcf"), "--model", model, "--out", str(out), "--tsv", str(tsv),
                 *COMMON]) == 0
    with open(tsv) as fh:
        rows = list(csv.DictReader((line for line in fh if not line.startswith("##")), delimiter="\t"))
    return rows, out.read_text()


def test_the_staged_names_are_refused_with_the_reason(tmp_path, capsys) -> None:
    for name in ("human-mpra-wtc11", "human-xpresso-promoter"):
        assert name in registry.STAGED and name not in registry.BUNDLED
        with pytest.raises(SystemExit) as stop:
            main(["score", str(EXAMPLE / "demo.vcf"), "--model", name, "--out", str(tmp_path / f"{name}.vcf"),
                  *COMMON])
        assert stop.value.code == 2 and not (tmp_path / f"{name}.vcf").exists()
        err = capsys.readouterr().err
        assert f"{name} is not bundled" in err and "k-mer ridge" in err
    assert not Path(registry.data_path("human_mpra_wtc11.vxm.h5")).exists()  # nothing that does not pass ships
    with pytest.raises(ModelError, match="human-mpra-wtc11 is not bundled"):
        registry.model_file("human-mpra-wtc11")  # the library says the same


def test_a_wtc11_window_model_scores_the_demo_where_its_window_reaches(staged, tmp_path) -> None:
    rows, vcf = _score(tmp_path, "human-mpra-wtc11")
    assert rows and all(-120 <= int(r["distance"]) < 80 for r in rows)  # [TSS-120, TSS+80) and nothing else
    by_id = {(r["id"], r["alt"]): r for r in rows}
    # the clinical promoter variants lie within 120 bp upstream of their TSS: all three are scored
    assert {("TERT_C228T", "A"), ("TERT_C250T", "A"), ("HBB_-28", "C")} <= set(by_id)
    assert all(by_id[k]["percentile"] != "." for k in by_id)  # the background beside the model
    # exactly the (allele, gene) pairs of Xpresso's 10.5-kb windows that lie within the 200 bases
    xpresso = _score(tmp_path, "human")[0]
    near = {(r["id"], r["alt"], r["gene_id"]) for r in xpresso if -120 <= int(r["distance"]) < 80}
    assert {(r["id"], r["alt"], r["gene_id"]) for r in rows} == near and len(near) < len(xpresso)
    body = [line for line in vcf.splitlines() if not line.startswith("#")]
    assert len(body) == sum(1 for line in open(EXAMPLE / "demo.vcf") if not line.startswith("#"))
    assert "Name=human-mpra-wtc11" in vcf


def test_the_combination_with_xpresso_follows_its_documented_rule(staged, tmp_path) -> None:
    """Combined delta = sum(w_i * delta_i / sd_i) / sum(w_i) over the members that reach the variant, sd_i from each
    member's background; each member's own delta equals its single-model score."""
    rows, vcf = _score(tmp_path, "human-xpresso-promoter")
    alone = {name: {(r["id"], r["alt"], r["gene_id"]): float(r["delta"]) for r in _score(tmp_path, name)[0]}
             for name in ("human", "human-mpra-wtc11")}
    weights = {"human": 0.5, "human-mpra-wtc11": 1.0}
    sds = {name: Background.load(registry.BUNDLED[name].model_path + ".background.h5").provenance["delta_sd"]
           for name in weights}
    assert sds["human-mpra-wtc11"] == SD
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


def test_a_manifest_that_needs_a_staged_network_says_which_member_and_why(tmp_path, caplog) -> None:
    """The staged manifests in varxpress/data, given by path, and a manifest of one's own naming a staged model:
    the error names the manifest, the member and the reason, and nothing is written."""
    import json

    own = tmp_path / "mine.combination.json"
    own.write_text(json.dumps({"format": "varxpress-combination", "version": 1, "name": "mine",
                               "members": [{"model": "human-mpra-wtc11"}, {"model": "human"}]}))
    shipped = registry.STAGED["human-xpresso-promoter"].model_path
    for manifest, member in ((shipped, "member 2"), (str(own), "member 1")):
        caplog.clear()
        out = tmp_path / "c.vcf"
        assert main(["score", str(EXAMPLE / "demo.vcf"), "--combination", manifest, "--out", str(out), *COMMON]) == 1
        assert f"{manifest}: {member}" in caplog.text and "human-mpra-wtc11 is not bundled" in caplog.text
        assert not out.exists()
