"""Combinations of models with different windows: member deltas in background SDs, averaged with weights
(varxpress.models.combination, varxpress.scoring.combined; docs/interpretation.md, *Combinations*)."""

from __future__ import annotations

import json
import shutil
import subprocess

import cyvcf2
import numpy as np
import pytest

from varxpress.cli import main
from varxpress.errors import ModelError
from varxpress.interpret.background import Background
from varxpress.io.writers import TSV_COLUMNS
from varxpress.models import registry
from varxpress.models.combination import combination_stats, read_manifest

from tests.test_pipeline import CHR1, CHR2, GENES

LONG, SHORT = (20, 10), (8, 4)  # [TSS-20, TSS+10) and [TSS-8, TSS+4)
# G1 (+, TSS 60): long window holds 1-based 40..69, short 52..63; G2 (-, TSS 120): long 111..140, short 116..127
SNVS = {"both_g1": 58, "long_only_g1": 45, "both_g2": 118, "long_only_g2": 135, "both_del": 62}
OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A genome, a VCF, a long and a short toy model with their backgrounds (every SNV of their windows)."""
    from tests.toy import toy_model_file

    d = tmp_path_factory.mktemp("combo")
    fa, tss = d / "g.fa", d / "tss.tsv"
    fa.write_text(f">chr1\n{CHR1}\n>chr2\n{CHR2}\n")
    tss.write_text("".join("\t".join(map(str, g)) + "\n" for g in GENES))
    rows = [(name, pos, CHR1[pos - 1], OTHER[CHR1[pos - 1]]) for name, pos in SNVS.items() if name != "both_del"]
    rows.append(("both_del", 62, CHR1[61:63], CHR1[61]))
    vcf = d / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=180>\n##contig=<ID=chr2,length=64>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{p}\t{n}\t{r}\t{a}\t.\t.\t.\n" for n, p, r, a in sorted(rows, key=lambda x: x[1])))
    (d / "long").mkdir()
    (d / "short").mkdir()
    models = {"long": toy_model_file(d / "long", *LONG, seed=1), "short": toy_model_file(d / "short", *SHORT, seed=2)}
    for path in models.values():
        assert main(["background", "--fasta", str(fa), "--tss", str(tss), "--model", str(path), "--n-snvs", "0",
                     "--max-n-fraction", "1", "--quiet"]) == 0
    sds = {k: Background.load(f"{p}.background.h5").provenance["delta_sd"] for k, p in models.items()}
    return {"dir": d, "fasta": fa, "tss": tss, "vcf": vcf, "models": models, "sds": sds}


def manifest(setup, path, weights=(1.0, 1.0), **extra) -> str:
    members = [{"model": str(setup["models"]["long"]), "name": "long", "weight": weights[0]},
               {"model": str(setup["models"]["short"]), "name": "short", "weight": weights[1]}]
    path.write_text(json.dumps({"format": "varxpress-combination", "version": 1, "members": members, **extra}))
    return str(path)


def score(setup, out, *how):
    tsv = out.with_suffix(".tsv")
    code = main(["score", str(setup["vcf"]), "--fasta", str(setup["fasta"]), "--tss", str(setup["tss"]), *map(str, how),
                 "--out", str(out), "--tsv", str(tsv), "--quiet"])
    return code, tsv


def rows(tsv):
    lines = [line.split("\t") for line in tsv.read_text().splitlines() if not line.startswith("##")]
    return {(r[2], r[6]): dict(zip(lines[0], r)) for r in lines[1:]}  # (variant id, gene id) -> row


def num(text):
    return None if text == "." else float(text)


def test_combined_delta_is_the_weighted_mean_of_the_single_models_deltas_in_background_sds(setup, tmp_path):
    single = {}
    for name, path in setup["models"].items():
        code, tsv = score(setup, tmp_path / f"{name}.vcf", "--model", path)
        assert code == 0
        single[name] = rows(tsv)
        # a single model's outputs keep their layout: no MemberDeltas, no member columns or header lines
        vcf = cyvcf2.VCF(str(tmp_path / f"{name}.vcf"))
        assert vcf.get_header_type("VXP")["Description"].endswith("|SignAgreement|Flags|NFrac\"")
        assert "varxpress_member" not in vcf.raw_header
        assert list(next(iter(single[name].values()))) == list(TSV_COLUMNS)
    for weights in [(1.0, 1.0), (1.0, 3.0)]:
        code, tsv = score(setup, tmp_path / "combo.vcf", "--combination", manifest(setup, tmp_path / "c.json", weights))
        assert code == 0
        combo = rows(tsv)
        assert set(combo) == set(single["long"])  # the long window holds every pair the short one holds
        assert {("both_g1", "G1"), ("both_g2", "G2"), ("both_del", "G1")} <= set(single["short"])
        for key, row in combo.items():
            d_long = float(single["long"][key]["delta"])
            d_short = num(single["short"][key]["delta"]) if key in single["short"] else None
            assert float(row["delta_long"]) == pytest.approx(d_long, rel=1e-5)  # each member's own delta
            assert num(row["delta_short"]) == (pytest.approx(d_short, rel=1e-5) if d_short is not None else None)
            parts = [(weights[0], d_long / setup["sds"]["long"])]
            if d_short is not None:
                parts.append((weights[1], d_short / setup["sds"]["short"]))
            expected = sum(w * z for w, z in parts) / sum(w for w, _ in parts)
            assert float(row["delta"]) == pytest.approx(expected, rel=1e-4, abs=1e-9)
            signs = [np.sign(d) for d in (d_long, d_short) if d is not None]
            assert float(row["sign_agreement"]) == pytest.approx(np.mean([s == np.sign(expected) for s in signs]))
            assert row["ref_pred"] == row["alt_pred"] == row["log2fc"] == row["delta_sd"] == "."
        if weights == (1.0, 1.0):
            equal = {k: float(r["delta"]) for k, r in combo.items()}
    # a heavier short member moves the combined delta of the pairs it reaches, and only those
    moved = {k for k, r in combo.items() if not np.isclose(float(r["delta"]), equal[k], rtol=1e-6)}
    assert moved == {k for k in combo if k in single["short"]}


def test_vcf_names_the_members_and_marks_those_whose_window_misses_the_variant(setup, tmp_path):
    code, _ = score(setup, tmp_path / "combo.vcf", "--combination", manifest(setup, tmp_path / "duo.combination.json"))
    assert code == 0
    vcf = cyvcf2.VCF(str(tmp_path / "combo.vcf"))
    description = vcf.get_header_type("VXP")["Description"]
    assert description.endswith("Format: Allele|Consequence|Gene|Symbol|Strand|TSS|Distance|RefPred|AltPred|Delta|"
                                "Log2FC|Percentile|DeltaSD|SignAgreement|Flags|NFrac|MemberDeltas\"")
    assert "in the order long&short; . where its window does not hold the variant)" in description
    header = vcf.raw_header
    assert "##varxpress_model=<Name=duo,File=duo.combination.json," in header and "Members=2>" in header
    assert header.index("##varxpress_member=<Name=long,") < header.index("##varxpress_member=<Name=short,")
    assert f"BackgroundSD={setup['sds']['short']:.6g}" in header
    entries = {r.ID: [e.split("|") for e in r.INFO["VXP"].split(",")] for r in vcf}
    long_only = entries["long_only_g1"]
    assert len(long_only) == 1 and long_only[0][2] == "G1"
    members = long_only[0][16].split("&")
    assert members[1] == "." and members[0] != "."
    assert float(long_only[0][9]) == pytest.approx(float(members[0]) / setup["sds"]["long"], rel=1e-4)
    assert long_only[0][13] == "1"  # the one member that scored agrees with itself
    assert all("." not in e[16].split("&") for e in entries["both_g1"] + entries["both_g2"] + entries["both_del"])


def test_bcftools_split_vep_splits_member_deltas(setup, tmp_path):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not on PATH (scripts/install-system-deps installs it)")
    out = tmp_path / "combo.vcf.gz"
    assert score(setup, out, "--combination", manifest(setup, tmp_path / "c.json"))[0] == 0
    res = subprocess.run(["bcftools", "+split-vep", "-a", "VXP", "-f", "%ID\t%Gene\t%MemberDeltas\n", "-d", str(out)],
                         capture_output=True, text=True, check=True)
    split = {tuple(line.split("\t")[:2]): line.split("\t")[2] for line in res.stdout.splitlines()}
    assert split[("long_only_g1", "G1")].endswith("&.") and "." not in split[("both_g2", "G2")].split("&")


def test_combination_background_holds_every_snv_of_the_union_window(setup, tmp_path):
    path = manifest(setup, tmp_path / "c.json", (1.0, 2.0))
    assert main(["background", "--fasta", str(setup["fasta"]), "--tss", str(setup["tss"]), "--combination", path,
                 "--n-snvs", "0", "--max-n-fraction", "1", "--quiet"]) == 0
    bg = Background.load(f"{path}.background.h5")  # the default place: beside the manifest
    assert bg.provenance["upstream"] == LONG[0] and bg.provenance["output_scale"] == "background_sd"
    code, tsv = score(setup, tmp_path / "combo.vcf", "--combination", path)
    assert code == 0
    scored = rows(tsv)
    for row in scored.values():
        if row["id"] == "both_del":
            continue
        d = abs(float(row["delta"]))
        assert np.isclose(bg.abs_delta, d, rtol=1e-4, atol=1e-7).any()  # the same SNV, scored the same way
        # the percentile is against this background (within the printed delta's and float32 storage's rounding)
        assert float(row["percentile"]) == pytest.approx(float(bg.percentile(d)), abs=2.01 * 100 / len(bg))
    # a background made for other weights is refused
    other = manifest(setup, tmp_path / "d.json", (1.0, 1.0))
    code, _ = score(setup, tmp_path / "x.vcf", "--combination", other, "--background", f"{path}.background.h5")
    assert code == 1


def test_stats_literal_cases():
    nan = np.nan
    d = np.array([[0.2, 0.4], [0.2, nan], [-0.2, 0.4], [nan, nan]])
    s = combination_stats(d, [1.0, 3.0], [0.1, 0.2])
    assert s.combined[:3] == pytest.approx([(2 + 3 * 2) / 4, 2.0, (-2 + 3 * 2) / 4])
    assert np.isnan(s.combined[3]) and np.isnan(s.sign_agreement[3])
    assert list(s.sign_agreement[:3]) == [1.0, 1.0, 0.5] and list(s.n_members) == [2, 1, 2, 0]


def test_errors_are_clear(setup, tmp_path, caplog):
    good = json.loads(open(manifest(setup, tmp_path / "g.json")).read())

    def run(members, name="bad.json"):
        (tmp_path / name).write_text(json.dumps({**good, "members": members}))
        caplog.clear()
        code, _ = score(setup, tmp_path / "x.vcf", "--combination", tmp_path / name)
        return code, caplog.text

    missing = dict(good["members"][1], model=str(tmp_path / "nowhere.vxm.h5"))
    code, text = run([good["members"][0], missing])
    assert code == 1 and "member 2: model" in text and "nowhere.vxm.h5" in text and "neither a file" in text
    code, text = run([good["members"][0], dict(good["members"][1], weight=0)])
    assert code == 1 and "weight 0 must be a finite number > 0" in text
    code, text = run([good["members"][0], dict(good["members"][1], name="long")])
    assert code == 1 and "repeat" in text
    code, text = run([good["members"][0], dict(good["members"][1], background="none.h5")])
    assert code == 1 and "combination member short: no background" in text and "varxpress background" in text
    other = f"{setup['models']['long']}.background.h5"
    code, text = run([good["members"][0], dict(good["members"][1], background=other)])
    assert code == 1 and "was built for model sha256" in text  # the long model's background cannot scale the short
    (tmp_path / "nobg").mkdir()
    lonely = tmp_path / "nobg" / "toy.vxm.h5"
    lonely.write_bytes(setup["models"]["short"].read_bytes())
    code, text = run([good["members"][0], dict(good["members"][1], model=str(lonely))])
    assert code == 1 and f"no background {lonely}.background.h5" in text
    caplog.clear()
    code, _ = score(setup, tmp_path / "x.vcf", "--combination", tmp_path / "g.json", "--features", setup["tss"])
    assert code == 2 and "--features cannot be given with a combination" in caplog.text
    with pytest.raises(ModelError, match="not a varxpress combination manifest"):
        (tmp_path / "ens.json").write_text(json.dumps({"format": "varxpress-ensemble", "members": ["a"]}))
        read_manifest(tmp_path / "ens.json")


def test_mutagenesis_and_explain_refuse_a_combination_by_name(setup, tmp_path, monkeypatch, caplog):
    entry = registry.BundledModel("duo", manifest(setup, tmp_path / "duo.json"), str(setup["tss"]), None, "toy",
                                  "test combination", kind="combination")
    monkeypatch.setitem(registry.BUNDLED, "duo", entry)
    code, tsv = score(setup, tmp_path / "named.vcf", "--model", "duo")
    assert code == 0 and "delta_short" in tsv.read_text()
    common = ["--fasta", str(setup["fasta"]), "--tss", str(setup["tss"]), "--model", "duo", "--quiet"]
    assert main(["mutagenesis", "--gene", "G1", "--out-prefix", str(tmp_path / "m"), "--no-plots", *common]) == 2
    assert "mutagenesis needs one model or an ensemble; duo is a combination" in caplog.text
    assert main(["explain", "chr1:58:A:C", "--out", str(tmp_path / "e.html"), *common]) == 2


def test_a_short_bundled_model_is_usable_by_name(setup, tmp_path, monkeypatch):
    """What the lentiMPRA models get once bundled: score, mutagenesis and explain by name, with its background."""
    path = setup["models"]["short"]
    entry = registry.BundledModel("short-toy", str(path), str(setup["tss"]), None, "toy", "test entry")
    monkeypatch.setitem(registry.BUNDLED, entry.name, entry)
    code, tsv = score(setup, tmp_path / "s.vcf", "--model", "short-toy")
    scored = rows(tsv)
    assert code == 0 and set(scored) == {("both_g1", "G1"), ("both_g2", "G2"), ("both_del", "G1")}
    assert all(r["percentile"] != "." for r in scored.values())  # the background beside the model file
    common = ["--fasta", str(setup["fasta"]), "--tss", str(setup["tss"]), "--model", "short-toy", "--quiet"]
    assert main(["mutagenesis", "--gene", "G1", "--out-prefix", str(tmp_path / "m"), "--no-plots", *common]) == 0
    offsets = [line.split("\t") for line in open(tmp_path / "m.tsv") if not line.startswith("##")]
    assert {int(r[offsets[0].index("offset")]) for r in offsets[1:]} == set(range(-SHORT[0], SHORT[1]))
    snv = f"chr1:58:{CHR1[57]}:{OTHER[CHR1[57]]}"
    assert main(["explain", snv, "--out", str(tmp_path / "e.html"), "--flank", "3", *common]) == 0
    assert "PLUS1" in (tmp_path / "e.html").read_text()


def test_staged_combinations_load_once_their_model_files_are_there(tmp_path):
    """The merger's step: with the lentiMPRA files beside them, the prepared manifests load as documented."""
    from tests.toy import toy_hparams
    from varxpress.models.network import ExpressionModel
    from varxpress.scoring.combined import load_combination

    for seed, name in enumerate(("human_mpra_hepg2", "human_mpra_wtc11")):  # stand-ins with the models' window
        model = ExpressionModel.from_hparams(toy_hparams(120, 80, seed=seed), name=name, genome_build="hg38",
                                             output_scale="log10")
        model.save(tmp_path / f"{name}.vxm.h5")
        Background(np.array([0.1, 0.2]), {"model_sha256": model.sha256, "delta_sd": 0.25}).save(
            tmp_path / f"{name}.vxm.h5.background.h5")
    entry = registry.STAGED["human-promoter"]
    copy = tmp_path / entry.model
    copy.write_text(open(entry.model_path).read())
    combo = load_combination(copy)
    assert combo.name == entry.name and combo.window_spec.upstream == 120
    weights = dict(zip(combo.names, combo.weights))
    assert weights["human-mpra-hepg2"] == weights["human-mpra-wtc11"] == 1.0
    assert dict(zip(combo.names, combo.sds))["human-mpra-wtc11"] == 0.25


def test_staged_combinations_name_the_staged_models_with_the_documented_weights():
    assert not set(registry.STAGED) & set(registry.BUNDLED)  # staged entries wait for their files
    for entry in registry.STAGED.values():
        if entry.kind != "combination":
            continue
        spec = json.loads(open(entry.model_path).read())
        assert spec["format"] == "varxpress-combination" and spec["name"] == entry.name
        weights = {m["name"]: m["weight"] for m in spec["members"]}
        for m in spec["members"]:
            assert m["name"] in registry.STAGED or m["name"] in registry.BUNDLED
            own = registry.STAGED.get(m["name"]) or registry.BUNDLED[m["name"]]
            assert m["model"] == own.model  # the file the named entry bundles, in the same folder
        documented = {"human-promoter": {"human-mpra-hepg2": 1.0, "human-mpra-wtc11": 1.0},
                      "human-xpresso-promoter": {"human": 0.5, "human-mpra-wtc11": 1.0}}
        assert weights == documented[entry.name]
