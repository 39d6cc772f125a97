"""End-to-end tests of `varxpress score` on a tiny genome, a toy model and a VCF of every kind of record."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import re
import shutil
import subprocess

import cyvcf2
import numpy as np
import pytest

from varxpress.cli import main
from varxpress.sequence.encode import one_hot, reverse_complement
from varxpress.errors import RefMismatchWarning
from varxpress.models.network import ExpressionModel
from varxpress.io.writers import TSV_COLUMNS

UP, DOWN = 20, 10
CHR1 = ("GATTACAGGCTTACCGATCGTTAGCATGCAAGTCCTAGGATCCATGGCATTACGGATCGAACTGTTCGACGTAGCTAGGCATCGATCGGATC"
        "CGTAGCTTAGGCTAACGTTAGCCATGGATCCTAGCTAGGCTTAACGGATCCGTAACGATGCATCGTAGCTAGCTAGGATCCGATCGTTAGCA")
CHR2 = "ACGTTGCAAGCTTGCATGCCTGCAGGTCGACTCTAGAGGATCCCCGGGTACCGAGCTCGAATTC"
# gene_id gene_name chrom pos(1-based) strand
GENES = [("G1", "PLUS1", "chr1", 60, "+"), ("G2", "MINUS1", "chr1", 120, "-"), ("G3", "EDGE", "chr2", 5, "+")]


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    from tests.toy import toy_model_file

    return toy_model_file(tmp_path_factory.mktemp("model"), UP, DOWN)


@pytest.fixture
def inputs(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(f">chr1\n{CHR1}\n>chr2\n{CHR2}\n")
    tss = tmp_path / "tss.tsv"
    tss.write_text("".join("\t".join(map(str, g)) + "\n" for g in GENES))
    b = lambda pos: CHR1[pos - 1]  # noqa: E731
    other = lambda base: {"A": "C", "C": "G", "G": "T", "T": "A"}[base]  # noqa: E731
    rows = [
        ("chr1", 45, "snv_plus", b(45), other(b(45))),
        ("chr1", 50, "multi", b(50), f"{other(b(50))},{other(other(b(50)))}"),
        ("chr1", 55, "ins", b(55), b(55) + "GG"),
        ("chr1", 62, "del", CHR1[61:64], b(62)),
        ("chr1", 65, "both_genes", b(65), other(b(65))),
        ("chr1", 70, "mismatch", other(b(70)), b(70)),
        ("chr1", 115, "snv_minus", b(115), other(b(115))),
        ("chr1", 116, "mnv", CHR1[115:117], other(CHR1[115]) + other(CHR1[116])),
        ("chr1", 118, "symbolic", b(118), "<DEL>"),
        ("chr1", 119, "star", b(119), f"{other(b(119))},*"),
        ("chr1", 121, "noalt", b(121), "."),
        ("chr1", 175, "no_gene", b(175), other(b(175))),
        ("chr2", 3, "edge", CHR2[2], other(CHR2[2])),
        ("chr7", 10, "unknown_contig", "A", "G"),
    ]
    vcf = tmp_path / "in.vcf"
    header = ["##fileformat=VCFv4.2", f"##contig=<ID=chr1,length={len(CHR1)}>",
              f"##contig=<ID=chr2,length={len(CHR2)}>",
              "##contig=<ID=chr7,length=1000>", '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">',
              '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2"]
    body = [f"{c}\t{p}\t{i}\t{r}\t{a}\t50\tPASS\tDP={k}\tGT\t0/1\t1|1" for k, (c, p, i, r, a) in enumerate(rows)]
    vcf.write_text("\n".join(header + body) + "\n")
    return {"fasta": fa, "tss": tss, "vcf": vcf, "rows": rows}


def run_score(inputs, model, out, *extra):
    argv = ["score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]),
            "--model", str(model), "--out", str(out), "--quiet", *map(str, extra)]
    return main(argv)


def vxp_entries(rec):
    raw = rec.INFO.get("VXP")
    keys = ("allele", "consequence", "gene", "symbol", "strand", "tss", "distance", "ref", "alt", "delta", "log2fc", "percentile",
            "delta_sd", "sign_agreement", "flags", "n_frac")
    return [dict(zip(keys, e.split("|"), strict=True)) for e in raw.split(",")] if raw else []


def test_every_record_out_in_order_with_reasons(inputs, toy_model, tmp_path):
    out = tmp_path / "out.vcf.gz"
    tsv = tmp_path / "out.tsv"
    stats = tmp_path / "stats.json"
    assert run_score(inputs, toy_model, out, "--tsv", tsv, "--stats", stats) == 0
    assert (tmp_path / "out.vcf.gz.tbi").exists()
    recs = list(cyvcf2.VCF(str(out)))
    ins = list(cyvcf2.VCF(str(inputs["vcf"])))
    assert [r.ID for r in recs] == [r.ID for r in ins]
    for a, b in zip(recs, ins):  # the input's own fields are untouched
        assert (a.CHROM, a.POS, a.REF, a.ALT, a.QUAL, a.FILTER, a.INFO.get("DP")) == \
               (b.CHROM, b.POS, b.REF, b.ALT, b.QUAL, b.FILTER, b.INFO.get("DP"))
        assert a.genotypes == b.genotypes
    by_id = {r.ID: r for r in recs}
    skip = {i: by_id[i].INFO.get("VXP_SKIP") for i in by_id}
    assert skip["mismatch"] == "ref_mismatch"
    assert skip["symbolic"] == "symbolic_allele"
    assert skip["star"] == ".,spanning_deletion"
    assert skip["noalt"] == "missing_alt"
    assert skip["no_gene"] is None and by_id["no_gene"].INFO.get("VXP") is None  # outside every window
    assert skip["unknown_contig"] == "unknown_contig"
    assert skip["snv_plus"] is None
    # genes reached: G1 window [39, 69) on +, G2 window [109, 139) on -
    assert [e["gene"] for e in vxp_entries(by_id["snv_plus"])] == ["G1"]
    assert [e["gene"] for e in vxp_entries(by_id["snv_minus"])] == ["G2"]
    assert [(e["allele"], e["gene"]) for e in vxp_entries(by_id["multi"])] == [
        (by_id["multi"].ALT[0], "G1"), (by_id["multi"].ALT[1], "G1")]
    assert len(by_id["multi"].INFO.get("VXP_MAX_DELTA")) == 2
    # G3's window [-16, 14) on chr2: 16 of its 30 bases are off-contig padding
    assert [(e["flags"], e["n_frac"]) for e in vxp_entries(by_id["edge"])] == [("off_contig&n_rich", "0.533333")]
    assert [(e["flags"], e["n_frac"]) for e in vxp_entries(by_id["snv_plus"])] == [(".", "0")]
    assert vxp_entries(by_id["snv_minus"])[0]["distance"] == str(119 - 114)
    assert vxp_entries(by_id["snv_plus"])[0]["distance"] == str(44 - 59)
    counts = json.loads(stats.read_text())
    assert counts["records_in"] == counts["records_out"] == len(inputs["rows"])
    assert counts["flags"] == {"n_rich": 1, "off_contig": 1}  # the edge record's one score
    assert counts["skipped"]["ref_mismatch"] == 1 and counts["skipped"]["unknown_contig"] == 1
    lines = [l for l in tsv.read_text().splitlines() if not l.startswith("##")]
    assert lines[0].split("\t") == list(TSV_COLUMNS)
    n_vxp = sum(len(vxp_entries(r)) for r in recs)
    assert len(lines) - 1 == n_vxp > 0


def test_bcftools_accepts_output(inputs, toy_model, tmp_path):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not on PATH (scripts/install-system-deps installs it)")
    out = tmp_path / "out.vcf.gz"
    assert run_score(inputs, toy_model, out) == 0
    res = subprocess.run(["bcftools", "view", "-H", str(out)], capture_output=True, text=True, check=True)
    assert len(res.stdout.splitlines()) == len(inputs["rows"])
    res = subprocess.run(["bcftools", "view", "-H", "-r", "chr1:100-130", str(out)], capture_output=True, text=True,
                         check=True)
    assert len(res.stdout.splitlines()) == 5  # snv_minus, mnv, symbolic, star, noalt


def test_bcftools_split_vep_splits_vxp(inputs, toy_model, tmp_path):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not on PATH (scripts/install-system-deps installs it)")
    out = tmp_path / "out.vcf.gz"
    assert run_score(inputs, toy_model, out) == 0
    res = subprocess.run(["bcftools", "+split-vep", "-a", "VXP", "-d", "-f", "%ID\t%Gene\t%Strand\t%Delta\n",
                          str(out)], capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    by_id = {r.ID: r for r in cyvcf2.VCF(str(out))}
    expected = [(rid, e["gene"], e["strand"], e["delta"]) for rid, rec in by_id.items() for e in vxp_entries(rec)]
    assert sorted(map(tuple, rows)) == sorted(expected) and len(rows) > 5


def test_scores_equal_predictions_on_hand_built_windows(inputs, toy_model, tmp_path):
    out = tmp_path / "out.vcf"
    assert run_score(inputs, toy_model, out) == 0
    by_id = {r.ID: r for r in cyvcf2.VCF(str(out))}
    model = ExpressionModel.load(toy_model)

    def predict(seq):
        return float(model.predict(one_hot(seq)[None])[0])

    # plus strand gene G1, TSS 0-based 59: window [39, 69)
    ref = CHR1[39:69]
    rec = by_id["snv_plus"]
    alt = ref[:44 - 39] + rec.ALT[0] + ref[45 - 39:]
    e = vxp_entries(rec)[0]
    assert float(e["ref"]) == pytest.approx(predict(ref), abs=1e-5)
    assert float(e["alt"]) == pytest.approx(predict(alt), abs=1e-4)
    # minus strand gene G2, TSS 0-based 119: window [109, 139), reverse-complemented
    rec = by_id["snv_minus"]
    hap = CHR1[:114] + rec.ALT[0] + CHR1[115:]
    e = vxp_entries(rec)[0]
    assert float(e["ref"]) == pytest.approx(predict(reverse_complement(CHR1[109:139])), abs=1e-5)
    assert float(e["alt"]) == pytest.approx(predict(reverse_complement(hap[109:139])), abs=1e-4)
    # deletion upstream of the plus-strand TSS: REF [61, 64) is downstream (t = 59), so t' = t
    rec = by_id["del"]
    hap = CHR1[:62] + CHR1[64:]
    assert float(vxp_entries(rec)[0]["alt"]) == pytest.approx(predict(hap[39:69]), abs=1e-4)
    # insertion at 0-based 54 (< t): the TSS moves right by 2 on the haplotype
    rec = by_id["ins"]
    hap = CHR1[:55] + "GG" + CHR1[55:]
    assert float(vxp_entries(rec)[0]["alt"]) == pytest.approx(predict(hap[41:71]), abs=1e-4)
    assert float(vxp_entries(rec)[0]["delta"]) == pytest.approx(predict(hap[41:71]) - predict(ref), abs=1e-4)


def test_fast_path_equals_full_recomputation(inputs, toy_model, tmp_path):
    fast, full = tmp_path / "fast.tsv", tmp_path / "full.tsv"
    assert run_score(inputs, toy_model, tmp_path / "a.vcf", "--tsv", fast) == 0
    assert run_score(inputs, toy_model, tmp_path / "b.vcf", "--tsv", full, "--no-fast-path") == 0

    def deltas(path):
        rows = [l.split("\t") for l in path.read_text().splitlines() if not l.startswith("##")][1:]
        col = {c: i for i, c in enumerate(TSV_COLUMNS)}
        return [(r[col["record"]], r[col["gene_id"]]) for r in rows], np.array([float(r[col["delta"]]) for r in rows])

    keys_a, da = deltas(fast)
    keys_b, db = deltas(full)
    assert keys_a == keys_b
    assert np.abs(da - db).max() < 1e-4
    assert np.abs(da).max() > 0  # the toy model is not constant


def test_same_input_gives_byte_identical_output(inputs, toy_model, tmp_path):
    out = tmp_path / "a.vcf"  # the same command line, so the ##varxpress_command header line matches too
    assert run_score(inputs, toy_model, out) == 0
    first = out.read_bytes()
    assert run_score(inputs, toy_model, out) == 0
    assert out.read_bytes() == first


def test_header_names_model_reference_and_fields(inputs, toy_model, tmp_path):
    out = tmp_path / "out.vcf"
    assert run_score(inputs, toy_model, out) == 0
    header = cyvcf2.VCF(str(out)).raw_header
    sha = ExpressionModel.load(toy_model).sha256
    assert f"SHA256={sha}" in header
    assert 'TrainingSet=.,Verdict=".",Members=1>' in header  # a model that records neither its set nor a verdict
    assert "##varxpress_reference=<File=g.fa," in header
    assert "##varxpress_command=varxpress score" in header
    assert ("Format: Allele|Consequence|Gene|Symbol|Strand|TSS|Distance|RefPred|AltPred|Delta|Log2FC|Percentile|"
            "DeltaSD|SignAgreement|Flags|NFrac") in header
    for field in ("VXP_MAX_DELTA", "VXP_MAX_GENE", "VXP_SKIP"):
        assert f"##INFO=<ID={field}," in header


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz", ".bcf"])
def test_rescoring_replaces_the_earlier_runs_provenance_lines(inputs, toy_model, tmp_path, suffix, caplog):
    """An output scored again (with another model) names only the model that made its scores: the earlier run's
    ##varxpress_* lines go, as its VXP declarations and values do (a reader taking the first varxpress_model line
    would otherwise recompute Log2FC with the wrong model's label scale)."""
    from tests.toy import toy_model_file

    (tmp_path / "m2").mkdir()
    second = toy_model_file(tmp_path / "m2", UP, DOWN, seed=1)
    assert run_score(inputs, toy_model, tmp_path / f"first{suffix}") == 0
    assert run_score(inputs, second, tmp_path / "expected.vcf") == 0
    again = dict(inputs, vcf=tmp_path / f"first{suffix}")
    assert run_score(again, second, tmp_path / "again.vcf") == 0
    assert "scored by varxpress before" in caplog.text

    def split(path):
        lines = path.read_text().splitlines()
        return ({x for x in lines if x.startswith("##") and not x.startswith("##varxpress_command")},
                [x for x in lines if not x.startswith("##")])

    header, body = split(tmp_path / "again.vcf")
    assert (header, body) == split(tmp_path / "expected.vcf")
    models = [x for x in header if x.startswith("##varxpress_model=")]
    assert len(models) == 1 and f"SHA256={ExpressionModel.load(second).sha256}," in models[0]


def test_earlier_provenance_lines_go_from_a_file_written_as_read(inputs, toy_model, tmp_path):
    """Without VXP declarations the records outside every window are written as read (the text path): its header
    is text of its own, and an earlier run's lines go from it too."""
    assert run_score(inputs, toy_model, tmp_path / "plain.vcf") == 0
    text = inputs["vcf"].read_text().replace("#CHROM", "##varxpress_model=<Name=old,Members=2>\n"
                                                       "##varxpress_member=<Index=1,Name=a>\n#CHROM")
    (tmp_path / "old.vcf").write_text(text)
    assert run_score(dict(inputs, vcf=tmp_path / "old.vcf"), toy_model, tmp_path / "again.vcf") == 0
    def drop(path):
        return [x for x in path.read_text().splitlines() if not x.startswith("##varxpress_command")]

    assert drop(tmp_path / "again.vcf") == drop(tmp_path / "plain.vcf")


def test_ref_mismatch_error_names_file_line_and_variant(inputs, toy_model, tmp_path, caplog):
    out = tmp_path / "out.vcf"
    assert run_score(inputs, toy_model, out, "--on-ref-mismatch", "error") == 1
    assert not out.exists()  # atomic: nothing half-written
    assert f"{inputs['vcf']}: line 13" in caplog.text and "chr1:70" in caplog.text


def test_an_error_in_a_later_chunk_while_workers_score_an_earlier_one_leaves_nothing(inputs, toy_model, tmp_path,
                                                                                     caplog):
    out = tmp_path / "o.vcf"
    assert run_score(inputs, toy_model, out, "--on-ref-mismatch", "error", "--threads", 2, "--chunk-size", 2) == 1
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
    assert f"{inputs['vcf']}: line 13" in caplog.text
    assert not multiprocessing.active_children()  # the workers were stopped, not left behind


def test_ref_mismatch_warn_names_the_record(inputs, toy_model, tmp_path, caplog):
    assert run_score(inputs, toy_model, tmp_path / "o.vcf") == 0
    assert re.search(r"RefMismatchWarning: \S+in.vcf: line 13: REF \w of chr1:70 disagrees with the genome", caplog.text)


def test_ref_mismatch_skip_is_silent_but_counted(inputs, toy_model, tmp_path, recwarn):
    assert run_score(inputs, toy_model, tmp_path / "o.vcf", "--on-ref-mismatch", "skip",
                     "--stats", tmp_path / "s.json") == 0
    assert not [w for w in recwarn if issubclass(w.category, RefMismatchWarning)]
    assert json.loads((tmp_path / "s.json").read_text())["skipped"]["ref_mismatch"] == 1


def test_region_scores_only_records_whose_pos_is_inside(inputs, toy_model, tmp_path):
    vcf_gz = tmp_path / "in.vcf.gz"
    subprocess.run(["bgzip", "-c", str(inputs["vcf"])], stdout=open(vcf_gz, "wb"), check=True)
    subprocess.run(["tabix", "-p", "vcf", str(vcf_gz)], check=True)
    inputs = dict(inputs, vcf=vcf_gz)
    out = tmp_path / "r.vcf"
    # the deletion at 62 spans 62-64: it belongs to the shard holding its POS only
    assert run_score(inputs, toy_model, out, "--region", "chr1:63-116", "--region", "chr1:40-50") == 0
    assert [r.ID for r in cyvcf2.VCF(str(out))] == ["snv_plus", "multi", "both_genes", "mismatch", "snv_minus",
                                                     "mnv"]


def test_region_without_index_is_a_clear_error(inputs, toy_model, tmp_path, caplog):
    vcf_gz = tmp_path / "in.vcf.gz"
    subprocess.run(["bgzip", "-c", str(inputs["vcf"])], stdout=open(vcf_gz, "wb"), check=True)
    assert run_score(dict(inputs, vcf=vcf_gz), toy_model, tmp_path / "r.vcf", "--region", "chr1:1-10") == 1
    assert "tabix -p vcf" in caplog.text


def test_stdout_output(inputs, toy_model, capfd):
    assert main(["score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]),
                 "--model", str(toy_model), "--quiet"]) == 0
    out = capfd.readouterr().out
    assert out.startswith("##fileformat=VCFv4.2")
    assert sum(1 for l in out.splitlines() if not l.startswith("#")) == len(inputs["rows"])


def test_tsv_gz_and_bcf_outputs(inputs, toy_model, tmp_path):
    out = tmp_path / "o.bcf"
    assert run_score(inputs, toy_model, out, "--tsv", tmp_path / "o.tsv.gz") == 0
    assert len(list(cyvcf2.VCF(str(out)))) == len(inputs["rows"])
    with gzip.open(tmp_path / "o.tsv.gz", "rt") as fh:
        assert any(l.startswith("chrom\t") for l in fh)


def test_a_region_on_a_contig_the_vcf_lacks_says_so(inputs, toy_model, tmp_path, caplog):
    plain = tmp_path / "in.vcf"
    plain.write_text(inputs["vcf"].read_text())
    vcf_gz = tmp_path / "in.vcf.gz"
    subprocess.run(["bgzip", "-c", str(plain)], stdout=open(vcf_gz, "wb"), check=True)
    subprocess.run(["tabix", "-p", "vcf", str(vcf_gz)], check=True)
    out = tmp_path / "r.vcf"
    assert run_score(dict(inputs, vcf=vcf_gz), toy_model, out, "--region", "2:1-100", "--region", "chr2") == 0
    assert "no contig '2' in this VCF" in caplog.text and "did you mean 'chr2'?" in caplog.text
    assert [r.CHROM for r in cyvcf2.VCF(str(out))] and all(r.CHROM == "chr2" for r in cyvcf2.VCF(str(out)))
    assert "'chr2'" not in caplog.text.replace("did you mean 'chr2'?", "")  # a contig it has: no warning


def tsv_rows(path):
    lines = [l.split("\t") for l in path.read_text().splitlines() if not l.startswith("##")]
    return [dict(zip(lines[0], row, strict=True)) for row in lines[1:]]


def test_no_background_means_missing_percentile_never_zero(inputs, toy_model, tmp_path):
    tsv = tmp_path / "o.tsv"
    assert run_score(inputs, toy_model, tmp_path / "o.vcf", "--tsv", tsv) == 0
    rows = tsv_rows(tsv)
    assert rows and all(r["percentile"] == "." for r in rows)
    assert all(r.INFO.get("VXP_MAX_PCT") is None for r in cyvcf2.VCF(str(tmp_path / "o.vcf")))


def test_percentiles_against_a_background_equal_brute_force(inputs, toy_model, tmp_path):
    from varxpress.interpret.background import Background

    values = np.random.default_rng(3).exponential(0.01, size=500)
    bg_path = tmp_path / "bg.h5"
    Background(values, {"model_sha256": ExpressionModel.load(toy_model).sha256}).save(bg_path)
    tsv = tmp_path / "o.tsv"
    assert run_score(inputs, toy_model, tmp_path / "o.vcf", "--tsv", tsv, "--background", bg_path) == 0
    rows = tsv_rows(tsv)
    stored = Background.load(bg_path).abs_delta.astype(np.float64)
    for r in rows:
        expected = 100.0 * np.count_nonzero(stored <= abs(float(r["delta"]))) / stored.size
        assert float(r["percentile"]) == pytest.approx(expected, abs=0.21)  # delta is printed to 6 digits
    header = cyvcf2.VCF(str(tmp_path / "o.vcf")).raw_header
    assert "##varxpress_background=<File=bg.h5,N=500," in header


def test_background_of_another_model_is_refused(inputs, toy_model, tmp_path, caplog):
    from varxpress.interpret.background import Background

    bg_path = tmp_path / "bg.h5"
    Background(np.linspace(0, 1, 10), {"model_sha256": "0" * 64}).save(bg_path)
    assert run_score(inputs, toy_model, tmp_path / "o.vcf", "--background", bg_path) == 1
    assert "built for model sha256" in caplog.text
    assert not (tmp_path / "o.vcf").exists()


def test_ensemble_reports_mean_sd_and_sign_agreement_of_members(inputs, tmp_path):
    from tests.toy import toy_model_file
    from varxpress.models.ensemble import export_ensemble

    members = []
    for i in range(3):
        (tmp_path / f"m{i}").mkdir()
        members.append(toy_model_file(tmp_path / f"m{i}", UP, DOWN, seed=i))
    manifest = export_ensemble(members, tmp_path / "ens")
    per_member = []
    for i, m in enumerate(members):
        tsv = tmp_path / f"m{i}.tsv"
        assert run_score(inputs, m, tmp_path / f"m{i}.vcf", "--tsv", tsv) == 0
        per_member.append(np.array([float(r["delta"]) for r in tsv_rows(tsv)]))
    tsv = tmp_path / "ens.tsv"
    argv = ["score", str(inputs["vcf"]), "--fasta", str(inputs["fasta"]), "--tss", str(inputs["tss"]),
            "--ensemble", str(manifest), "--out", str(tmp_path / "ens.vcf"), "--tsv", str(tsv), "--quiet"]
    assert main(argv) == 0
    lines = [line.split("\t") for line in tsv.read_text().splitlines() if not line.startswith("##")]
    members = ["member_01", "member_02", "member_03"]  # the manifest's file names, as the header lines say
    assert lines[0] == list(TSV_COLUMNS) + [f"delta_{m}" for m in members]
    rows = [dict(zip(lines[0], row, strict=True)) for row in lines[1:]]
    d = np.stack(per_member, axis=1)  # (n, k)
    # each member's own delta is written beside the mean (TSV columns, VXP's MemberDeltas), in manifest order
    np.testing.assert_allclose([[float(r[f"delta_{m}"]) for m in members] for r in rows], d, atol=2e-5, rtol=1e-4)
    vcf = cyvcf2.VCF(str(tmp_path / "ens.vcf"))
    description = vcf.get_header_type("VXP")["Description"]
    assert f"in the order {'&'.join(members)})" in description  # one window: no member misses a variant
    assert "does not hold the variant" not in description
    written = [[float(x) for x in entry.split("|")[-1].split("&")]
               for rec in vcf if rec.INFO.get("VXP") for entry in rec.INFO["VXP"].split(",")]
    np.testing.assert_allclose(written, d, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose([float(r["delta"]) for r in rows], d.mean(axis=1), atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose([float(r["delta_sd"]) for r in rows], d.std(axis=1, ddof=1), atol=2e-5, rtol=1e-4)
    agreement = (np.sign(d) == np.sign(d.mean(axis=1))[:, None]).mean(axis=1)
    np.testing.assert_allclose([float(r["sign_agreement"]) for r in rows], agreement, atol=1e-6)
    assert "Members=3" in vcf.raw_header


def test_worker_processes_give_the_same_scores(inputs, toy_model, tmp_path):
    one, two = tmp_path / "one.tsv", tmp_path / "two.tsv"
    assert run_score(inputs, toy_model, tmp_path / "one.vcf", "--tsv", one, "--stats", tmp_path / "one.json") == 0
    # chunks of 3 records: the workers score a chunk while the next one is read and classified
    assert run_score(inputs, toy_model, tmp_path / "two.vcf", "--tsv", two, "--threads", 2, "--chunk-size", 3,
                     "--stats", tmp_path / "two.json") == 0
    body = lambda path: [l for l in path.read_text().splitlines() if not l.startswith("##")]  # noqa: E731
    assert len(body(tmp_path / "two.vcf")) == len(body(tmp_path / "one.vcf")) > 10
    assert [l.split("\t")[:5] for l in body(tmp_path / "two.vcf")] == \
           [l.split("\t")[:5] for l in body(tmp_path / "one.vcf")]
    rows_one, rows_two = tsv_rows(one), tsv_rows(two)
    genes = {r["gene_id"] for r in rows_one}
    counts = [json.loads(p.read_text())["genes_predicted"] for p in (tmp_path / "one.json", tmp_path / "two.json")]
    assert counts[0] == len(genes) and counts[1] >= len(genes)  # workers count their reference passes too
    assert [(r["record"], r["alt"], r["gene_id"], r["flags"]) for r in rows_one] == \
           [(r["record"], r["alt"], r["gene_id"], r["flags"]) for r in rows_two]
    np.testing.assert_allclose([float(r["delta"]) for r in rows_one], [float(r["delta"]) for r in rows_two],
                               atol=1e-6)


def test_feature_table_is_standardised_with_training_statistics(tmp_path):
    from types import SimpleNamespace

    from varxpress.errors import DatasetError
    from varxpress.scoring.resources import read_model_features

    def model(n, **training):
        return SimpleNamespace(n_features=n, metadata=SimpleNamespace(training_data=training))

    table = tmp_path / "f.tsv"
    table.write_text("gene\tlen\tgc\nG1\t100\t0.5\nG2\t\t0.7\n")
    raw = read_model_features(str(table), model(2))
    np.testing.assert_allclose(raw["G1"], [100, 0.5])
    np.testing.assert_allclose(raw["G2"], [0, 0.7])  # missing -> 0
    std = read_model_features(str(table), model(2, feature_mean=[50, 0.6], feature_sd=[25, 0.1]))
    np.testing.assert_allclose(std["G1"], [2.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(std["G2"], [0.0, 1.0], rtol=1e-6)
    with pytest.raises(DatasetError, match="3 feature columns"):
        read_model_features(str(table), model(3))


def test_region_keeps_a_record_at_pos_0(inputs, toy_model, tmp_path):
    text = inputs["vcf"].read_text().replace("chr2\t3\tedge", "chr2\t0\ttelomere")
    plain = tmp_path / "pos0.vcf"
    plain.write_text(text)
    vcf_gz = tmp_path / "pos0.vcf.gz"
    subprocess.run(["bgzip", "-c", str(plain)], stdout=open(vcf_gz, "wb"), check=True)
    subprocess.run(["tabix", "-p", "vcf", str(vcf_gz)], check=True)
    out = tmp_path / "r.vcf"
    assert run_score(dict(inputs, vcf=vcf_gz), toy_model, out, "--region", "chr2") == 0
    recs = list(cyvcf2.VCF(str(out)))
    assert [r.ID for r in recs] == ["telomere"]
    assert recs[0].INFO.get("VXP_SKIP") == "ref_mismatch"  # POS 0 has no base to check REF against


def tsv_rows(path):
    """The data rows of a score TSV as dicts keyed by column name."""
    lines = [l.split("\t") for l in path.read_text().splitlines() if not l.startswith("##")]
    assert lines[0] == list(TSV_COLUMNS)
    return [dict(zip(TSV_COLUMNS, r, strict=True)) for r in lines[1:]]


def test_per_alt_summaries_of_a_multiallelic_record_by_value(inputs, toy_model, tmp_path):
    """VXP_MAX_DELTA/VXP_MAX_GENE hold, per ALT in ALT order, the values of that allele's strongest TSV row."""
    tsv = tmp_path / "o.tsv"
    assert run_score(inputs, toy_model, tmp_path / "o.vcf", "--tsv", tsv) == 0
    by_id = {r.ID: r for r in cyvcf2.VCF(str(tmp_path / "o.vcf"))}
    rows = tsv_rows(tsv)
    for rid in ("multi", "both_genes", "star"):
        rec = by_id[rid]
        expect_delta, expect_gene = [], []
        for alt in rec.ALT:
            mine = [r for r in rows if r["id"] == rid and r["alt"] == alt]
            best = max(mine, key=lambda r: abs(float(r["delta"])), default=None)
            expect_delta.append(None if best is None else float(best["delta"]))
            expect_gene.append("." if best is None else best["gene_name"])
        got = rec.INFO.get("VXP_MAX_DELTA")
        got = list(got) if isinstance(got, tuple) else [got]
        assert len(got) == len(rec.ALT)
        for g, e in zip(got, expect_delta):
            assert (g is None and e is None) or g == pytest.approx(e, abs=1e-6), (rid, got, expect_delta)
        gene = rec.INFO.get("VXP_MAX_GENE")
        assert (gene.split(",") if isinstance(gene, str) else list(gene)) == expect_gene
    # both ALTs of "multi" are scored, on different bases, so their values differ
    multi = by_id["multi"].INFO.get("VXP_MAX_DELTA")
    assert None not in multi and multi[0] != multi[1]
    assert by_id["star"].INFO.get("VXP_MAX_DELTA")[1] is None  # '*' not scored: '.'


def test_log2fc_of_a_standardised_model_uses_label_sd(inputs, tmp_path):
    """Log2FC = Delta × label_sd × log2(10) on every row (docs/output.md), for a model with a standardised output."""
    import math

    from tests.toy import toy_hparams

    model = ExpressionModel.from_hparams(toy_hparams(UP, DOWN), name="std", genome_build="toy",
                                         output_scale="standardized_log10", label_mean=0.3, label_sd=0.37)
    model.save(tmp_path / "std.vxm.h5")
    tsv = tmp_path / "o.tsv"
    assert run_score(inputs, tmp_path / "std.vxm.h5", tmp_path / "o.vcf", "--tsv", tsv) == 0
    rows = tsv_rows(tsv)
    assert len(rows) > 5 and any(abs(float(r["delta"])) > 1e-3 for r in rows)
    for r in rows:
        assert float(r["log2fc"]) == pytest.approx(float(r["delta"]) * 0.37 * math.log2(10), rel=1e-4, abs=1e-6)


def test_record_ordinals_and_line_numbers_across_chunks(inputs, toy_model, tmp_path, caplog):
    """With 3 records per chunk, the TSV record column and the warning's line number still count the whole file."""
    tsv = tmp_path / "o.tsv"
    assert run_score(inputs, toy_model, tmp_path / "o.vcf", "--tsv", tsv, "--chunk-size", 3) == 0
    lines = inputs["vcf"].read_text().splitlines()
    header = sum(1 for l in lines if l.startswith("#"))
    ordinal = {row[2]: k + 1 for k, row in enumerate(inputs["rows"])}
    rows = tsv_rows(tsv)
    assert {r["id"] for r in rows} >= {"snv_plus", "snv_minus", "edge"}  # records from the first and later chunks
    for r in rows:
        assert int(r["record"]) == ordinal[r["id"]], r
        assert lines[header + int(r["record"]) - 1].split("\t")[2] == r["id"]
    mismatch_line = header + ordinal["mismatch"]  # record 6: the second chunk
    assert mismatch_line == 13
    assert re.search(rf"in.vcf: line {mismatch_line}: REF \w of chr1:70 disagrees", caplog.text)


def test_no_fast_path_turns_the_incremental_engine_off(inputs, toy_model, tmp_path, monkeypatch):
    """A fast path made to answer 1.0 too high shows in the scores unless --no-fast-path is given."""
    from varxpress.models import fastpath

    real = fastpath.LocalScorer.predict_substitutions
    monkeypatch.setattr(fastpath.LocalScorer, "predict_substitutions",
                        lambda self, *a, **k: np.asarray(real(self, *a, **k)) + 1.0)

    def deltas(tag, *extra):
        tsv, stats = tmp_path / f"{tag}.tsv", tmp_path / f"{tag}.json"
        assert run_score(inputs, toy_model, tmp_path / f"{tag}.vcf", "--tsv", tsv, "--stats", stats, *extra) == 0
        return ({(r["record"], r["alt"], r["gene_id"]): float(r["delta"]) for r in tsv_rows(tsv)},
                json.loads(stats.read_text()))

    fast, fast_stats = deltas("fast")
    full, full_stats = deltas("full", "--no-fast-path")
    assert fast_stats["scores_fast"] > 0 and full_stats["scores_fast"] == 0
    assert fast.keys() == full.keys()
    shifted = [k for k in fast if abs(fast[k] - full[k] - 1.0) < 1e-4]
    assert len(shifted) == fast_stats["scores_fast"]  # exactly the substitutions took the (perturbed) fast path
    assert all(abs(d) < 1.0 for d in full.values())  # ... and none of them with --no-fast-path
