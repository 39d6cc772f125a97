"""The bundled mouse network and the human-mouse ensemble: what `score --ensemble` reports is what each member says.

The example VCF is scored with its README's options three times: with the human network (the default), with the
mouse network, and with the two-member ensemble. Every ensemble figure must follow from the two members' own
scores: the mean delta, its sample SD, the sign agreement, and a log2 fold change that converts each member's delta
with that member's own label SD (the two differ, so using one member's for both would be caught).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from varxpress.models.network import ExpressionModel

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BUNDLED = ROOT / "varxpress" / "data"
HUMAN = BUNDLED / "xpresso_human_hg38.vxm.h5"
MOUSE = BUNDLED / "xpresso_mouse_mm10.vxm.h5"
ENSEMBLE = BUNDLED / "xpresso_human_mouse.ensemble.json"
DEMO = ["score", str(ROOT / "example_data" / "demo.vcf"), "--fasta", str(ROOT / "example_data" / "hg38_promoters.fa.gz"),
        "--tss", str(ROOT / "example_data" / "tss.bed"), "--tss-offset", "10000"]
KEY = ["record", "alt", "gene_id"]


def _score(tmp_path: Path, name: str, extra: list[str]) -> pd.DataFrame:
    from varxpress.cli import main

    assert main(DEMO + extra + ["-o", str(tmp_path / f"{name}.vcf"), "--tsv", str(tmp_path / f"{name}.tsv")]) == 0
    return pd.read_csv(tmp_path / f"{name}.tsv", sep="\t", comment="#", na_values=".").set_index(KEY).sort_index()


def _header(path: Path, key: str) -> list[dict[str, str]]:
    """The fields of each ``##key=<...>`` line of a VCF, in order (quotes taken off; no field holds a comma)."""
    lines = [line.rstrip("\n")[len(key) + 4:-1] for line in open(path) if line.startswith(f"##{key}=<")]
    return [{k: v.strip('"') for k, v in (item.split("=", 1) for item in line.split(","))} for line in lines]


def test_bundled_mouse_model_and_ensemble_metadata() -> None:
    from varxpress.models.ensemble import EnsembleModel
    from varxpress.models.xpresso import KNOWN_MODELS

    mouse = ExpressionModel.load(MOUSE)
    md = mouse.metadata
    known = KNOWN_MODELS[md.source["sha256"]]
    assert known["species"] == "mouse" and md.source["file"] == "mouse_trainepoch.05-0.278.h5"
    assert md.output_scale == "standardized_log10" and md.genome_build == "mm10"
    assert (md.label_mean, md.label_sd) == (known["label_mean"], known["label_sd"])
    assert md.metrics["test_r2"] == 0.71 and md.source["verification"]["max_abs_diff"] < 1e-5
    assert mouse.window_spec == ExpressionModel.load(HUMAN).window_spec  # same input layout as the human model
    ensemble = EnsembleModel.load(ENSEMBLE)  # the manifest checks each member's SHA-256
    assert [m.metadata.name for m in ensemble.members] == ["xpresso_human_hg38", "xpresso_mouse_mm10"]


@pytest.mark.realdata
def test_mouse_label_scale_is_the_moments_of_the_mouse_labels() -> None:
    """label_mean/label_sd of the mouse model are the moments of column 5 of the orthologs table, as documented."""
    path = DATA / "xpresso" / "1to1_orthologs_expression.txt.gz"
    if not path.exists():
        pytest.skip("../shared/data/xpresso/1to1_orthologs_expression.txt.gz absent: real-data check not run")
    mouse_labels = pd.read_csv(path, sep="\t", header=None)[4].astype(float)
    md = ExpressionModel.load(MOUSE).metadata
    assert md.label_mean == pytest.approx(mouse_labels.mean(), abs=5e-5)
    assert md.label_sd == pytest.approx(mouse_labels.std(ddof=0), abs=5e-5)


@pytest.mark.realdata
def test_bundled_mouse_model_is_the_published_network(tmp_path: Path) -> None:
    from varxpress.models.xpresso import import_xpresso

    src = DATA / "xpresso" / "mouse_trainepoch.05-0.278.h5"
    if not src.exists():
        pytest.skip("../shared/data/xpresso/mouse_trainepoch.05-0.278.h5 absent: real-data check not run")
    fresh = import_xpresso(src, tmp_path / "mouse.vxm.h5", name="xpresso_mouse_mm10", genome_build="mm10")
    rng = np.random.default_rng(5)
    X = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 10500))]
    np.testing.assert_array_equal(ExpressionModel.load(MOUSE).predict(X), fresh.predict(X))


def test_the_output_header_names_a_bundled_ensemble_by_its_name(tmp_path: Path) -> None:
    named = _score(tmp_path, "named", ["--model", "human-mouse"])
    by_path = _score(tmp_path, "by_path", ["--ensemble", str(ENSEMBLE)])
    pd.testing.assert_frame_equal(named, by_path)
    header = {name: [line for line in open(tmp_path / f"{name}.vcf") if line.startswith("##varxpress_model=")]
              for name in ("named", "by_path")}
    assert "Name=human-mouse," in header["named"][0] and "Members=2" in header["named"][0]
    assert "Name=ensemble_of_2," in header["by_path"][0]  # a folder or manifest given by path has no name


def test_ensemble_scores_follow_from_each_member_alone(tmp_path: Path) -> None:
    human = _score(tmp_path, "human", [])  # the default model is the human network
    mouse = _score(tmp_path, "mouse", ["--model", str(MOUSE)])
    ens = _score(tmp_path, "ensemble", ["--ensemble", str(ENSEMBLE)])
    assert list(ens.index) == list(human.index) == list(mouse.index) and len(ens) == 16
    dh, dm = human["delta"].to_numpy(), mouse["delta"].to_numpy()
    assert np.abs(dh - dm).max() > 1e-3  # two different networks
    tol = 1e-5  # TSV values carry 6 significant digits
    np.testing.assert_allclose(ens["delta"], (dh + dm) / 2, atol=tol)
    np.testing.assert_allclose(ens["ref_pred"], (human["ref_pred"] + mouse["ref_pred"]) / 2, atol=tol)
    np.testing.assert_allclose(ens["delta_sd"], np.abs(dh - dm) / math.sqrt(2), atol=tol)  # ddof=1 SD of two
    np.testing.assert_allclose(ens["sign_agreement"], np.where(np.sign(dh) == np.sign(dm), 1.0, 0.5))
    # each member's delta converted with its own label SD, then averaged; single-model runs do the same alone.
    # The label SDs are read from the outputs' headers: Log2FC can be recomputed from the output alone
    sd_h, sd_m = ExpressionModel.load(HUMAN).metadata.label_sd, ExpressionModel.load(MOUSE).metadata.label_sd
    assert float(_header(tmp_path / "human.vcf", "varxpress_model")[0]["LabelSD"]) == sd_h
    assert float(_header(tmp_path / "mouse.vcf", "varxpress_model")[0]["LabelSD"]) == sd_m
    assert _header(tmp_path / "human.vcf", "varxpress_member") == []  # one model: its model line says it all
    members = _header(tmp_path / "ensemble.vcf", "varxpress_member")
    assert [(m["Index"], m["Name"], m["File"], m["SHA256"]) for m in members] == \
        [("1", "xpresso_human_hg38", HUMAN.name, ExpressionModel.load(HUMAN).sha256),
         ("2", "xpresso_mouse_mm10", MOUSE.name, ExpressionModel.load(MOUSE).sha256)]
    assert [float(m["LabelSD"]) for m in members] == [sd_h, sd_m]
    assert [m["Build"] for m in members] == ["hg38", "mm10"]  # the mouse network reads human windows here
    model_line = _header(tmp_path / "ensemble.vcf", "varxpress_model")[0]
    assert model_line["LabelSD"] == "mixed" and model_line["Build"] == "mixed"
    assert _header(tmp_path / "mouse.vcf", "varxpress_model")[0]["Build"] == "mm10"
    assert abs(sd_h - sd_m) > 0.01
    log2_10 = math.log2(10)
    np.testing.assert_allclose(human["log2fc"], dh * sd_h * log2_10, atol=1e-4)
    np.testing.assert_allclose(mouse["log2fc"], dm * sd_m * log2_10, atol=1e-4)
    expected = (dh * sd_h + dm * sd_m) / 2 * log2_10
    np.testing.assert_allclose(ens["log2fc"], expected, atol=1e-4)
    # and from the ensemble's own output alone: each member's delta (its columns, named on its member line) times
    # that member's LabelSD
    own = [ens[f"delta_{m['Name']}"] * float(m["LabelSD"]) for m in members]
    np.testing.assert_allclose(ens["log2fc"], (own[0] + own[1]) / 2 * log2_10, atol=1e-4)
    np.testing.assert_allclose(ens["delta_xpresso_human_hg38"], dh, atol=tol)
    assert np.abs(ens["log2fc"] - ens["delta"] * sd_h * log2_10).max() > 1e-3  # not one member's scale for both
    # TERT C228T and C250T create ETS sites and raise TERT expression: both networks, independently, agree
    for rid in ("TERT_C228T", "TERT_C250T"):
        rows = ens[ens["id"] == rid]
        assert len(rows) == 1 and rows["delta"].iloc[0] > 0 and rows["sign_agreement"].iloc[0] == 1.0
