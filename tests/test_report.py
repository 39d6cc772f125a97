"""`varxpress explain`: numbers equal `score`'s, the page is self-contained, and Chromium renders it cleanly.

The browser test needs Chromium (``scripts/install-system-deps`` installs it; ``make test`` runs that first) and
fails, not skips, without it. Its screenshot goes to ``$VARXPRESS_TEST_ARTEFACTS`` when set, else to pytest's
``tmp_path``; the path is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from varxpress.cli import main
from varxpress.errors import VcfError
from varxpress.interpret.pages import render_html
from varxpress.interpret.report import parse_variant
from varxpress.scoring.engine import Predictor

UP, DOWN = 20, 10
RNG = random.Random(5)
CHR1 = "".join(RNG.choice("ACGT") for _ in range(200))
GENES = [("G1", "PLUS1", "chr1", 60, "+"), ("G2", "MINUS1", "chr1", 70, "-")]
OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.toy import toy_genome, toy_model_file
    from varxpress.interpret.background import Background, build_background, default_path
    from varxpress.models.ensemble import export_ensemble
    from varxpress.io.genome import Genome
    from varxpress.models.network import ExpressionModel
    from varxpress.io.tss import TSS

    folder = tmp_path_factory.mktemp("report")
    fa, tss = toy_genome(folder, {"chr1": CHR1}, GENES)
    model_path = toy_model_file(folder, UP, DOWN)
    model = ExpressionModel.load(model_path)
    genes = [TSS(g, n, c, p - 1, s) for g, n, c, p, s in GENES]
    bg, _ = build_background(Predictor([model], Genome(fa)), genes, n_snvs=0)
    bg.provenance["model_sha256"] = model.sha256
    bg.save(default_path(model_path))
    members = []
    for seed in (1, 2, 3):
        sub = folder / f"m{seed}"
        sub.mkdir()
        members.append(toy_model_file(sub, UP, DOWN, seed=seed))
    ens = export_ensemble(members, folder / "ens")
    return {"fasta": fa, "tss": tss, "model": model_path, "ensemble": ens, "members": members,
            "background": Background.load(default_path(model_path))}


def explain(world, out, *extra) -> int:
    model = [] if "--ensemble" in extra else ["--model", str(world["model"])]  # the two are exclusive
    return main(["explain", *map(str, extra), "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), *model,
                 "--out", str(out), "--quiet"])


def score_tsv(world, tmp_path, model, variants, option="--model") -> list[dict]:
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{p}\t.\t{r}\t{a}\t.\t.\t.\n" for p, r, a in variants))
    tsv = tmp_path / f"{Path(model).parent.name}.tsv"
    assert main(["score", str(vcf), "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), option,
                 str(model), "--out", str(tmp_path / "o.vcf"), "--tsv", str(tsv), "--quiet"]) == 0
    lines = [l.rstrip("\n").split("\t") for l in open(tsv) if not l.startswith("##")]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


def test_numbers_equal_score_percentile_and_ensemble_members(world, tmp_path):
    from varxpress.interpret.report import explain_variant
    from varxpress.scoring.resources import ResourceSpec, load_resources

    pos = 64  # inside both windows: G1 [39, 69) on +, G2 [59, 89) on -
    ref, alt = CHR1[pos - 1], OTHER[CHR1[pos - 1]]
    spec = ResourceSpec(fasta=str(world["fasta"]), tss=str(world["tss"]), model=str(world["model"]),
                        background=str(world["background"].path))
    res = load_resources(spec)
    rep = explain_variant(res, res.predictor(), "chr1", pos, ref, alt, flank=5)
    assert [g.tss.gene_id for g in rep.genes] == ["G1", "G2"]
    scored = {r["gene_id"]: r for r in score_tsv(world, tmp_path, world["model"], [(pos, ref, alt)])}
    for g in rep.genes:
        s = scored[g.tss.gene_id]
        assert g.delta == pytest.approx(float(s["delta"]), abs=1e-4)
        assert g.ref_pred == pytest.approx(float(s["ref_pred"]), abs=1e-4)
        assert g.distance == int(s["distance"])
        assert g.percentile == pytest.approx(float(world["background"].percentile(abs(g.delta))))
        assert 0 <= g.percentile <= 100
        # the local map covers the variant +- 5 bases (inside the window) and its cell for the ALT equals the score
        res = g.mutagenesis
        w = g.window
        assert sorted(res.positions) == list(range(max(pos - 1 - 5, w.start), min(pos + 5, w.end)))
        k = int(np.flatnonzero(res.positions == pos - 1)[0])
        b = "ACGT".index(alt if g.tss.strand == "+" else OTHER_RC[alt])
        assert res.deltas[k, b] == pytest.approx(g.delta, abs=1e-4)
    # with --ensemble the page shows the members' mean and spread, and each member's delta is its own `score` output
    ens_res = load_resources(ResourceSpec(fasta=str(world["fasta"]), tss=str(world["tss"]),
                                          ensemble=str(world["ensemble"])))
    ens_rep = explain_variant(ens_res, ens_res.predictor(), "chr1", pos, ref, alt, flank=0)
    ens_scored = {r["gene_id"]: r for r in score_tsv(world, tmp_path, world["ensemble"], [(pos, ref, alt)],
                                                       option="--ensemble")}
    member_deltas = {gid: [] for gid in scored}
    for m in world["members"]:
        for r in score_tsv(world, tmp_path, m, [(pos, ref, alt)]):
            member_deltas[r["gene_id"]].append(float(r["delta"]))
    for g in ens_rep.genes:
        d = np.array(member_deltas[g.tss.gene_id])
        np.testing.assert_allclose(g.ensemble["member_deltas"], d, atol=1e-4)
        assert g.delta == g.ensemble["mean_delta"] == pytest.approx(d.mean(), abs=1e-4)
        assert g.delta == pytest.approx(float(ens_scored[g.tss.gene_id]["delta"]), abs=1e-6)
        assert g.ensemble["sd_delta"] == pytest.approx(d.std(ddof=1), abs=1e-4)
        assert g.ensemble["sign_agreement"] == pytest.approx(np.mean(np.sign(d) == np.sign(d.mean())))
        # each member's delta is shown beside its name, in manifest order (the VCF's varxpress_member lines)
        names = ["member_01", "member_02", "member_03"]
        assert g.ensemble["member_names"] == names
        shown = "; ".join(f"{name}: {x:+.3g}" for name, x in zip(names, g.ensemble["member_deltas"]))
        assert f"<th>Member deltas</th><td>{shown}</td>" in render_html(ens_rep)


OTHER_RC = {"A": "T", "C": "G", "G": "C", "T": "A"}


def test_a_deletion_over_the_tss_is_flagged_and_explained(world, tmp_path):
    """A deletion that removes G1's TSS (chr1:60) is flagged spans_tss on the page, in the TSV as `score` writes
    it, and explained as a caveat (the distance alone reads 'upstream')."""
    ref = CHR1[56:63]  # chr1:57-63; the deletion removes 58-63
    page = tmp_path / "del.html"
    assert explain(world, page, f"chr1:57:{ref}:{ref[0]}", "--flank", 0) == 0
    text = _text(page.read_text())
    assert "spans_tss The variant removes or rewrites the TSS." in text and "(chr1:60)" in text
    rows = {r["gene_id"]: r for r in score_tsv(world, tmp_path, world["model"], [(57, ref, ref[0])])}
    assert rows["G1"]["flags"] == "spans_tss"
    assert rows["G2"]["flags"] == "."  # G2's TSS (chr1:70) is not touched


def test_a_model_that_lost_to_the_baselines_is_said_so_by_score_and_explain(world, tmp_path, caplog):
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(world["model"])
    model.metadata.metrics = {"beats_baselines": False, "verdict": "does not beat the baselines",
                              "reasons": ["does not beat the baselines (kmer_ridge: r2 0.067 vs 0.087)"]}
    lost = tmp_path / "lost.vxm.h5"
    model.save(lost)
    page = tmp_path / "p.html"
    assert main(["explain", f"chr1:64:{CHR1[63]}:{OTHER[CHR1[63]]}", "--fasta", str(world["fasta"]), "--tss",
                 str(world["tss"]), "--model", str(lost), "--out", str(page), "--flank", "0"]) == 0
    text = _text(page.read_text())
    assert "failed_baselines The model toy did not beat simple baselines." in text
    assert "kmer_ridge: r2 0.067 vs 0.087" in text
    assert "model toy did not beat the mean and k-mer baselines" in caplog.text  # and score's loading says so
    caplog.clear()
    assert main(["explain", f"chr1:64:{CHR1[63]}:{OTHER[CHR1[63]]}", "--fasta", str(world["fasta"]), "--tss",
                 str(world["tss"]), "--model", str(world["model"]), "--out", str(page), "--flank", "0"]) == 0
    assert "failed_baselines" not in page.read_text() and "did not beat" not in caplog.text  # no verdict recorded


def test_page_names_what_scored_and_how_each_number_follows(world, tmp_path):
    """An ensemble's page names the ensemble and every member with its own training data (a model trained here
    records its labels as a mapping: the page describes it instead of failing), the log2 fold change note gives the
    label SDs the shown value comes from, and the reference, TSS set and command are on the page."""
    from tests.toy import toy_hparams
    from varxpress.models.ensemble import export_ensemble
    from varxpress.models.network import ExpressionModel

    members = []
    for seed, sd in ((4, 0.5), (5, 2.0)):
        labels = {"label_column": "tpm", "transform": "log10", "pseudocount": 0.1, "path": "/data/run/labels.tsv",
                  "sha256": "ab" * 32}
        model = ExpressionModel.from_hparams(toy_hparams(UP, DOWN, 0, seed), name=f"trained{seed}",
                                             genome_build="toy", output_scale="standardized_log10", label_sd=sd,
                                             training_data={"labels": labels}, source={"species": "toy"})
        (tmp_path / f"m{seed}").mkdir()
        members.append(tmp_path / f"m{seed}" / "m.vxm.h5")
        model.save(members[-1])
    ens = export_ensemble(members, tmp_path / "ens")
    pos = 64
    ref, alt = CHR1[pos - 1], OTHER[CHR1[pos - 1]]
    page = tmp_path / "p.html"
    assert explain(world, page, f"chr1:{pos}:{ref}:{alt}", "--ensemble", ens, "--flank", 0) == 0
    text = _text(page.read_text())
    assert "The ensemble ensemble_of_2 averages 2 models: trained4 was trained on the mRNA levels of toy genes" in text
    assert "trained5 was trained" in text and "log10(tpm + 0.1) from labels.tsv (sha256 abababababab…)" in text
    assert "/data/run" not in text  # a local path of the training machine is not shown
    assert "the level its training labels measured" in text and "HBB" not in text  # not Xpresso's tissues
    assert "on the genome's + strand, which is the PLUS1 strand; " in text  # G1 reads the genome's strand
    assert "Model ensemble_of_2 (" in text and "xpresso" not in text
    assert "each one's delta × its label SD (0.5, 2) × log2(10)" in text
    shown = float(re.search(r"Log2 fold change ([+-][0-9.e+-]+) ", text).group(1))
    named = re.search(r"Member deltas ([^F]+) Flags", text).group(1).split("; ")
    assert [item.split(": ")[0] for item in named] == ["member_01", "member_02"]
    deltas = [float(item.split(": ")[1]) for item in named]
    if np.sign(deltas[0]) == np.sign(deltas[1]) != 0:  # two members: "both", not "all 2"
        assert "Both models of the ensemble predict this direction" in text
    else:
        assert "The two models of the ensemble predict opposite directions" in text
    assert "All 2 models" not in text and "of the 2 models" not in text
    expect = np.mean([d * sd * np.log2(10) for d, sd in zip(deltas, (0.5, 2.0))])
    assert shown == pytest.approx(expect, rel=0.02, abs=1e-4)  # both printed to 3 significant digits
    assert f"Reference genome {world['fasta'].name} (FAI MD5 " in text and f"TSS annotation {world['tss'].name}" in text
    assert re.search(r"Command varxpress explain chr1:64:\w:\w .*--ensemble", text)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is not installed: run scripts/install-system-deps (apt-get install chromium); "
                "`make test` does this first")


def _artefacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VARXPRESS_TEST_ARTEFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _chromium_run(html: Path, tmp_path: Path, *args: str, fragment: str = "") -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args,
           html.resolve().as_uri() + fragment]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Chromium's log lines of page console output (``...:INFO:CONSOLE...] "message", source: ...``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_console_detector_catches_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('x'); notDefined();</script></body></html>")
    res = _chromium_run(bad, tmp_path, "--dump-dom")
    assert any("Uncaught ReferenceError" in m for m in console_messages(res.stderr)), res.stderr[-2000:]


def test_html_report_in_headless_chromium(world, tmp_path):
    pos = 50
    ref, alt = CHR1[pos - 1], OTHER[CHR1[pos - 1]]
    out = tmp_path / "report.html"
    assert explain(world, out, f"chr1:{pos}:{ref}:{alt}", "--ensemble", world["ensemble"]) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "PLUS1" in text and "Percentile of |delta|" in text
    assert "Ensemble SD of delta" in text and "Sign agreement" in text
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', text)
    # self-contained: no scripts, no stylesheets or images from elsewhere
    assert not re.search(r"<script|<link|<iframe|src=\"(?!data:)|url\(", text, flags=re.I)
    shot = _artefacts(tmp_path) / "explain_report.png"
    res = _chromium_run(out, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert res.returncode == 0, res.stderr[-3000:]
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert console_messages(res.stderr) == []
    print(f"explain report screenshot: {shot}")
    dom = _chromium_run(out, tmp_path, "--dump-dom")
    assert dom.returncode == 0 and "Delta (alt − ref)" in dom.stdout and "PLUS1" in dom.stdout
    assert console_messages(dom.stderr) == []


def test_several_variants_and_vcf_give_a_folder(world, tmp_path):
    vcf = tmp_path / "small.vcf"
    snv = f"{CHR1[65]}\t{OTHER[CHR1[65]]}"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"chr1\t45\tins1\t{CHR1[44]}\t{CHR1[44]}GG\t.\t.\t.\n"
                   f"chr1\t150\tfar\t{CHR1[149]}\t{OTHER[CHR1[149]]}\t.\t.\t.\n"
                   f"chr1\t66\tsame_a\t{snv}\t.\t.\t.\n"  # two records of one variant: two pages
                   f"chr1\t66\tsame_a\t{snv}\t.\t.\t.\n"
                   f"chr1\t50\tno_alt\t{CHR1[49]}\t.\t.\t.\t.\n")
    out = tmp_path / "reports"
    assert explain(world, out, f"chr1:66:{CHR1[65]}:{OTHER[CHR1[65]]}", "--vcf", vcf, "--flank", 3) == 0
    pages = sorted(p.name for p in out.iterdir())
    stem = f"chr1_66_{CHR1[65]}_{OTHER[CHR1[65]]}"
    assert pages == sorted(["index.html", f"{stem}.html", f"ins1__chr1_45_{CHR1[44]}_{CHR1[44]}GG.html",
                            f"same_a__{stem}.html", f"same_a__{stem}-2.html"])
    index = (out / "index.html").read_text()
    rows = re.findall(r"<tr.*?</tr>", index.split("<tbody>")[1])
    ids = [re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", r)[1]) for r in rows]
    # every input in order, one row per gene: the CLI variant and same_a reach both genes
    assert ids == [f"chr1:66:{CHR1[65]}:{OTHER[CHR1[65]]}"] * 2 + ["ins1", "far"] + ["same_a"] * 4 + ["no_alt"]
    assert "not scored" in rows[3] and "no gene" in rows[3]
    assert "not scored" in rows[-1] and "missing_alt" in rows[-1]
    links = re.findall(r'href="([^"]+)"', index)
    assert sorted(set(links)) == sorted(set(pages) - {"index.html"})
    assert "genome + strand, INS)" in (out / f"ins1__chr1_45_{CHR1[44]}_{CHR1[44]}GG.html").read_text()
    # the same folder again (once refused as "a directory"): the pages are replaced, files of others stay
    (out / "notes.txt").write_text("mine\n")
    first = (out / "index.html").read_text()
    assert explain(world, out, f"chr1:66:{CHR1[65]}:{OTHER[CHR1[65]]}", "--vcf", vcf, "--flank", 3) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(pages + ["notes.txt"])
    assert (out / "index.html").read_text() == first and (out / "notes.txt").read_text() == "mine\n"
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_an_interrupted_folder_of_pages_leaves_nothing_behind(world, tmp_path, monkeypatch):
    """Ctrl-C after some pages: neither a new folder with a few pages and no index, nor pages mixed into an
    earlier run's folder (once both, with "no output was left half-written" said)."""
    from varxpress.interpret import pages as pages_module

    calls = []
    real = pages_module.write_report

    def stop_at_second(report, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(report, path)

    monkeypatch.setattr(pages_module, "write_report", stop_at_second)
    variants = [f"chr1:66:{CHR1[65]}:{OTHER[CHR1[65]]}", f"chr1:45:{CHR1[44]}:{OTHER[CHR1[44]]}"]
    fresh, earlier = tmp_path / "fresh", tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "index.html").write_text("the earlier index\n")
    for out in (fresh, earlier):
        calls.clear()
        assert explain(world, out, *variants) == 130
    assert not fresh.exists() and [p.name for p in earlier.iterdir()] == ["index.html"]
    assert (earlier / "index.html").read_text() == "the earlier index\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]


EXAMPLE = Path(__file__).resolve().parents[1] / "example_data"


def _text(dom: str) -> str:
    """The words of a rendered page: tags dropped, entities and whitespace normalised."""
    import html

    body = dom.split("<body", 1)[1].split(">", 1)[1]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def _window_n_fraction(chrom: str, tss0: int, strand: str) -> float:
    import pysam

    lo, hi = (tss0 - 7000, tss0 + 3500) if strand == "+" else (tss0 - 3499, tss0 + 7001)
    seq = pysam.FastaFile(str(EXAMPLE / "hg38_promoters.fa.gz")).fetch(chrom, lo, hi).upper()
    return seq.count("N") / (hi - lo)


def test_demo_clinical_variants_read_like_an_answer_in_chromium(tmp_path):
    """The demo's pages in a browser: the plain sentence, the gene-strand allele, the N-rich caveat, the index."""
    from varxpress.models.network import ExpressionModel
    from varxpress.models.registry import model_file

    out = _artefacts(tmp_path) / "demo_reports"
    shutil.rmtree(out, ignore_errors=True)
    vcf = EXAMPLE / "demo.vcf"
    assert main(["explain", "--vcf", str(vcf), "--fasta", str(EXAMPLE / "hg38_promoters.fa.gz"), "--tss",
                 str(EXAMPLE / "tss.bed"), "--tss-offset", "10000", "--flank", "0", "--out", str(out), "--quiet"]) == 0
    tss = {f[6]: (f[0], int(f[1]) + 10000, f[5]) for f in (l.split() for l in open(EXAMPLE / "tss.bed"))}

    def dom(name: str) -> str:
        res = _chromium_run(out / name, tmp_path, "--dump-dom")
        assert res.returncode == 0 and console_messages(res.stderr) == [], res.stderr[-2000:]
        return _text(res.stdout)

    # TERT C228T: genome G>A at chr5:1295113 on a minus-strand gene
    chrom, t0, strand = tss["TERT"]
    assert strand == "-"
    upstream = (1295113 - 1) - t0  # minus strand: upstream of the TSS is to its right on the genome
    page = dom("TERT_C228T__chr5_1295113_G_A.html")
    assert page.split()[0] == "TERT_C228T"  # the user's own ID is the title
    assert "chr5:1,295,113 G>A (genome + strand" in page
    m = re.search(r"The model predicts about (\d+) % more TERT mRNA with the alternate allele \(G>A on the genome's "
                  r"\+ strand, C>T on the TERT strand, "
                  rf"{upstream} bp upstream of the TSS\) than with the reference allele \(fold change ([\d.]+)×\)\. "
                  r"That change is unusually large: as large as or larger than ([\d.]+) % of random", page)
    assert m, page[:1500]
    delta = float(re.search(r"Delta \(alt − ref\) ([+-][\d.]+)", page)[1])
    label_sd = ExpressionModel.load(model_file(None)).metadata.label_sd
    fold = 2 ** (delta * label_sd * np.log2(10))  # the fold change follows from the delta as docs/output.md says
    assert float(m[2]) == pytest.approx(fold, abs=0.006) and int(m[1]) == round((fold - 1) * 100)
    nfrac = _window_n_fraction(chrom, t0, strand)
    assert nfrac > 0.9
    assert f"Mostly unknown sequence. {nfrac * 100:.1f} % of the 10,500 bases the model reads for TERT are N" in page
    assert "background_mismatch" in page and "docs/" not in page  # the guide is in the page, not in a source path
    assert page.index("Predicted effect") < page.index("Caveats") < page.index("Details")
    # a gene whose whole window is real sequence: no N caveat
    page = dom("chr1_1890969_T_A.html")
    gene = re.search(r"(ENSG\d+|[A-Z0-9]+): the model|Gene (\S+)", page)
    assert gene and "The model predicts" in page
    assert "Unknown bases (N) in the window 0.0 %" in page
    assert "Mostly unknown sequence" not in page and "n_rich," not in page
    # the index: every record, in order, with the reason for those not scored
    index = dom("index.html")
    ids = [l.split("\t")[2] if l.split("\t")[2] != "." else ":".join(l.split("\t")[i] for i in (0, 1, 3, 4))
           for l in open(vcf) if not l.startswith("#")]
    positions = [index.find(f" {i} ") for i in ids]
    assert all(p > 0 for p in positions), [i for i, p in zip(ids, positions) if p < 0]
    for reason in ("disagrees with the genome", "symbolic_allele", "spanning_deletion", "no gene's window",
                   "is not in"):
        assert f"not scored: {reason}" in index or reason in index.split("not scored:", 1)[1], reason
    # sorted by delta (column 6), largest first, in the browser: the scored rows in order, unscored ones last
    res = _chromium_run(out / "index.html", tmp_path, "--dump-dom", fragment="#sort=6-desc")
    assert res.returncode == 0 and console_messages(res.stderr) == [], res.stderr[-2000:]
    cells = [re.findall(r'<td data-v="([^"]*)" class="num">[^<]*(?:<[^>]+>[^<]*)*?</td>', r)
             for r in re.findall(r"<tr.*?</tr>", res.stdout.split("<tbody>")[1])]
    deltas = [r[1] if len(r) > 1 else "" for r in cells]
    scored = [float(d) for d in deltas if d]
    assert len(scored) >= 15 and scored == sorted(scored, reverse=True)
    assert deltas[len(scored):] == [""] * (len(deltas) - len(scored))
    raw = (out / "index.html").read_text()
    assert raw.count("not scored:") == 5 and "<script>" in raw and "http" not in raw.split("<body")[1]
    shot = _artefacts(tmp_path) / "demo_tert_c228t.png"
    res = _chromium_run(out / "TERT_C228T__chr5_1295113_G_A.html", tmp_path, f"--screenshot={shot}",
                        "--window-size=1100,1400")
    assert res.returncode == 0 and shot.is_file()
    print(f"demo report: {out}; screenshot: {shot}")


def test_missing_background_is_shown_missing_and_errors(world, tmp_path, caplog):
    model = tmp_path / "nobg.vxm.h5"
    shutil.copyfile(world["model"], model)
    out = tmp_path / "r.html"
    argv = ["explain", f"chr1:60:{CHR1[59]}:{OTHER[CHR1[59]]}", "--fasta", str(world["fasta"]), "--tss",
            str(world["tss"]), "--model", str(model), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert "no background for this model" in out.read_text()
    assert "ranks this change among random substitutions in the promoters of only" not in out.read_text()
    with_bg = tmp_path / "bg.html"  # the world's model has a background of its 2 genes: a small sample, said so
    assert explain(world, with_bg, f"chr1:60:{CHR1[59]}:{OTHER[CHR1[59]]}", "--flank", 0) == 0
    assert "in the promoters of only 2 genes (the background toy.vxm.h5.background.h5)" in _text(with_bg.read_text())
    # each refusal for its own reason: apart from the fault named, the variants are valid (REF as in the genome)
    caplog.clear()
    assert explain(world, tmp_path / "x.html", f"chr1:60:{OTHER[CHR1[59]]}:{CHR1[59]}") == 1
    assert f"REF {OTHER[CHR1[59]]} of chr1:60 disagrees with the genome ({CHR1[59]})" in caplog.text
    caplog.clear()  # a REF past the contig's end is that, as `score` says, not a disagreement with no bases
    assert explain(world, tmp_path / "x.html", f"chr1:{len(CHR1)}:{CHR1[-1]}A:{CHR1[-1]}") == 1
    assert "does not lie within chr1 (1-200 in" in caplog.text and "beyond_contig_end" in caplog.text
    assert "disagrees" not in caplog.text
    caplog.clear()
    assert explain(world, tmp_path / "x.html", f"chr1:60:{CHR1[59]}:<DEL>") == 1
    assert f"variant 'chr1:60:{CHR1[59]}:<DEL>': expected CHROM:POS:REF:ALT" in caplog.text  # no sequence ALT
    caplog.clear()
    existing = tmp_path / "notes.txt"  # neither a folder nor a page: refused before any work, not a traceback
    existing.write_text("mine")
    assert explain(world, existing, f"chr1:60:{CHR1[59]}:{OTHER[CHR1[59]]}") == 2
    assert "is an existing file, not a folder" in caplog.text and existing.read_text() == "mine"
    upper = tmp_path / "PAGE.HTML"  # a page, whatever the case of its suffix
    assert explain(world, upper, f"chr1:60:{CHR1[59]}:{OTHER[CHR1[59]]}", "--flank", 0) == 0 and upper.is_file()
    caplog.clear()
    two = [f"chr1:60:{CHR1[59]}:{OTHER[CHR1[59]]}", f"chr1:61:{CHR1[60]}:{OTHER[CHR1[60]]}"]
    assert explain(world, tmp_path / "x.html", *two) == 1
    assert "is one file but 2 variants were given; give a folder" in caplog.text
    assert "disagrees" not in caplog.text and not (tmp_path / "x.html").exists()


def test_parse_variant_forms():
    assert parse_variant("chr5:1295113:G:A") == ("chr5", 1295113, "G", "A")
    assert parse_variant("5-1,295,113-g-a") == ("5", 1295113, "G", "A")
    assert parse_variant("chrX:10:AC>A") == ("chrX", 10, "AC", "A")
    with pytest.raises(VcfError, match="CHROM:POS:REF:ALT"):
        parse_variant("chr5:G:A")


@pytest.mark.parametrize("value, shown", [(99.9841, "99.98"), (99.95, "99.95"), (99.99996, "99.9999"),
                                          (100.0, "100.0"), (80.26, "80.3"), (0.01, "0.01"), (0.0, "0.0"),
                                          (0.00001, "0.0001"), (99.96, "99.96"), (50.0, "50.0")])
def test_a_percentile_short_of_100_never_reads_as_100(value, shown):
    """99.9841 was shown as 100.0, "as large as or larger than 100.0 % of random changes", when some were larger."""
    from varxpress.interpret.wording import percent

    assert percent(value) == shown
    assert (float(shown) < 100) == (value < 100) and (float(shown) > 0) == (value > 0)
    assert "missing" in percent(None)
