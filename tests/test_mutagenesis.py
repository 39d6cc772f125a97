"""Saturation mutagenesis: its TSV against `varxpress score` of the same substitutions, its plots, its errors."""

from __future__ import annotations

import random

import numpy as np
import pytest

from varxpress.cli import main
from varxpress.sequence.encode import one_hot, reverse_complement
from varxpress.errors import AnnotationError
from varxpress.io.genome import Genome
from varxpress.interpret.mutagenesis import find_gene, saturation_mutagenesis
from varxpress.scoring.engine import Predictor
from varxpress.io.tss import TSS

UP, DOWN = 20, 10
RNG = random.Random(11)
CHR1 = "".join(RNG.choice("ACGT") for _ in range(200))
CHR2 = "NNNNNNNNNN" + "".join(RNG.choice("ACGT") for _ in range(50))
# gene_id gene_name chrom pos(1-based) strand
GENES = [("G1", "PLUS1", "chr1", 60, "+"), ("G2", "MINUS1", "chr1", 120, "-"), ("G3", "EDGE", "chr2", 12, "+"),
         ("G4", "TWIN", "chr1", 160, "+"), ("G5", "TWIN", "chr1", 170, "-")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.toy import toy_genome, toy_model_file

    folder = tmp_path_factory.mktemp("mut")
    fa, tss = toy_genome(folder, {"chr1": CHR1, "chr2": CHR2}, GENES)
    return {"fasta": fa, "tss": tss, "model": toy_model_file(folder, UP, DOWN), "folder": folder}


def read_tsv(path) -> list[dict]:
    lines = [l.rstrip("\n").split("\t") for l in open(path) if not l.startswith("##")]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


def mutagenesis(world, out_prefix, *extra) -> int:
    return main(["mutagenesis", "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), "--model",
                 str(world["model"]), "--out-prefix", str(out_prefix), "--quiet", *map(str, extra)])


@pytest.mark.parametrize("gene", ["G1", "MINUS1"])
def test_tsv_equals_score_of_the_same_substitutions(world, tmp_path, gene):
    prefix = tmp_path / "m"
    assert mutagenesis(world, prefix, "--gene", gene, "--start", -6, "--end", 4, "--no-plots") == 0
    rows = read_tsv(f"{prefix}.tsv")
    assert len(rows) == 10 * 3
    gene_id = rows[0]["gene_id"]
    assert all(CHR1[int(r["pos"]) - 1] == r["ref"] != r["alt"] for r in rows)  # genome + strand REF, as a VCF
    offsets = sorted({int(r["offset"]) for r in rows})
    assert offsets == list(range(-6, 4))
    vcf = tmp_path / "subs.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"chr1\t{r['pos']}\t.\t{r['ref']}\t{r['alt']}\t.\t.\t.\n" for r in rows))
    for extra in ([], ["--no-fast-path"]):  # the incremental engine and full recomputation
        scored = tmp_path / "scored.tsv"
        assert main(["score", str(vcf), "--fasta", str(world["fasta"]), "--tss", str(world["tss"]), "--model",
                     str(world["model"]), "--out", str(tmp_path / "o.vcf"), "--tsv", str(scored), "--quiet",
                     *extra]) == 0
        by_key = {(s["pos"], s["alt"]): s for s in read_tsv(scored) if s["gene_id"] == gene_id}
        assert len(by_key) == len(rows)
        for r in rows:
            s = by_key[(r["pos"], r["alt"])]
            assert float(r["delta"]) == pytest.approx(float(s["delta"]), abs=1e-4)
            assert float(r["ref_pred"]) == pytest.approx(float(s["ref_pred"]), abs=1e-4)
            assert int(r["offset"]) == int(s["distance"])
    assert max(abs(float(r["delta"])) for r in rows) > 0


def test_result_matches_hand_built_minus_strand_windows(world):
    from varxpress.models.network import ExpressionModel

    model = ExpressionModel.load(world["model"])
    genome = Genome(world["fasta"])
    tss = TSS("G2", "MINUS1", "chr1", 119, "-")
    positions = np.arange(115, 125)
    fast = saturation_mutagenesis(Predictor([model], genome), tss, positions)
    slow = saturation_mutagenesis(Predictor([model], genome, fast=False), tss, positions)
    np.testing.assert_allclose(fast.alt_preds, slow.alt_preds, atol=1e-4)
    ref = reverse_complement(CHR1[109:139])  # minus window [t-D, t+U) = [109, 139), read reverse-complemented
    assert fast.ref_bases == "".join(reverse_complement(CHR1[p]) for p in fast.positions)
    assert list(fast.offsets) == sorted(119 - positions)
    k = int(np.flatnonzero(fast.positions == 117)[0])  # offset +2: window index 139 - 1 - 117 = 21
    assert fast.indices[k] == 21 and fast.offsets[k] == 2
    for b, base in enumerate("ACGT"):
        if base == ref[21]:
            assert np.isnan(fast.alt_preds[k, b])
            continue
        alt = ref[:21] + base + ref[22:]
        assert fast.alt_preds[k, b] == pytest.approx(model.predict(one_hot([alt]))[0], abs=1e-4)
    imp = fast.importance()
    np.testing.assert_allclose(imp, -np.nanmean(fast.deltas, axis=1))


def test_plots_and_vcf_marks(world, tmp_path):
    vcf = tmp_path / "marks.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=200>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"chr1\t57\tmySNV\t{CHR1[56]}\t{'A' if CHR1[56] != 'A' else 'C'}\t.\t.\t.\n"
                   f"chr1\t62\tmyDEL\t{CHR1[61:63]}\t{CHR1[61]}\t.\t.\t.\n")
    prefix = tmp_path / "out" / "tert"
    prefix.parent.mkdir()
    assert mutagenesis(world, prefix, "--gene", "PLUS1", "--start", -20, "--end", 10, "--vcf", vcf) == 0
    for kind in ("heatmap", "logo"):
        png = tmp_path / "out" / f"tert.PLUS1.{kind}.png"
        svg = tmp_path / "out" / f"tert.PLUS1.{kind}.svg"
        pdf = tmp_path / "out" / f"tert.PLUS1.{kind}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
        text = svg.read_text()
        assert "<svg" in text and "</svg>" in text and svg.stat().st_size > 2000
        assert "mySNV" in text  # text stays text in the SVG
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000
    assert len(read_tsv(f"{prefix}.tsv")) == 30 * 3
    from varxpress.models.network import ExpressionModel
    from varxpress.interpret.figures import _marks_offsets
    from varxpress.interpret.mutagenesis import vcf_marks

    genome = Genome(world["fasta"])
    res = saturation_mutagenesis(Predictor([ExpressionModel.load(world["model"])], genome),
                                 TSS("G1", "PLUS1", "chr1", 59, "+"), np.arange(39, 69))
    marks = _marks_offsets(res, vcf_marks(str(vcf), genome, "chr1", 39, 69))
    snv_alt = "A" if CHR1[56] != "A" else "C"
    assert marks == [(-3.0, "mySNV", snv_alt), (2.5, "myDEL", "")]  # the SNV's cell is boxed; the deletion spans 2-3


def test_region_scans_every_gene_there_and_skips_n(world, tmp_path):
    prefix = tmp_path / "r"
    assert mutagenesis(world, prefix, "--region", "chr1:160-162", "--no-plots") == 0
    rows = read_tsv(f"{prefix}.tsv")
    assert sorted({r["gene_id"] for r in rows}) == ["G4", "G5"]  # windows [139, 169) (+) and [159, 189) (-)
    assert {int(r["pos"]) for r in rows} == {160, 161, 162}
    assert len(rows) == 2 * 3 * 3
    # chr2 positions 1..10 are N: no substitution rows there
    assert mutagenesis(world, prefix, "--gene", "EDGE", "--start", -5, "--end", 5, "--no-plots") == 0
    rows = read_tsv(f"{prefix}.tsv")
    assert {int(r["pos"]) for r in rows} == set(range(11, 17)) and len(rows) == 6 * 3


def test_errors_are_clear(world, tmp_path, caplog):
    for args, message in [
        (("--gene", "NOPE"), "gene 'NOPE' is not in the TSS set"),
        (("--gene", "TWIN"), "give the gene id"),
        (("--gene", "G1", "--start", -30, "--end", 5), "--start -30 --end 5 reach outside the model window"),
        (("--gene", "G1", "--start", 3, "--end", 3), "--start 3 --end 3: need start < end"),
        (("--region", "chr1:1-5"), "no gene's window overlaps chr1:1-5"),
    ]:
        caplog.clear()
        assert mutagenesis(world, tmp_path / "x", *args) == 1
        assert message in caplog.text, (args, caplog.text)
    tss = [TSS("A", "X", "chr1", 5, "+")]
    assert find_gene(tss, "x").gene_id == "A"
    with pytest.raises(AnnotationError, match="gene 'B' is not in the TSS set"):
        find_gene(tss, "B")


def _text_boxes(fig):
    """Window extents of every visible, non-empty text artist of a drawn figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(fig).draw()  # a closed figure keeps no canvas of its own
    renderer = fig.canvas.get_renderer()
    hidden = set()  # labels of ticks outside the view limits exist but are not drawn
    for ax in fig.findobj(lambda a: hasattr(a, "get_major_ticks")):
        lo, hi = sorted(ax.get_view_interval())
        hidden |= {id(lab) for tick in ax.get_major_ticks() + ax.get_minor_ticks()
                   if not lo - 1e-9 <= tick.get_loc() <= hi + 1e-9 for lab in (tick.label1, tick.label2)}
    # Text.get_window_extent: the letters alone (an Annotation's own extent adds its leader line)
    return [(t, Text.get_window_extent(t, renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def test_figures_fit_do_not_overlap_and_print_at_300_dpi(world, tmp_path):
    from PIL import Image

    from varxpress.models.network import ExpressionModel
    from varxpress.interpret.figures import plot_heatmap, plot_logo

    res = saturation_mutagenesis(Predictor([ExpressionModel.load(world["model"])], Genome(world["fasta"])),
                                 TSS("G2", "MINUS1", "chr1", 119, "-"), np.arange(109, 139))
    # three variants on neighbouring bases with long names, and the TSS label beside them: they would collide
    marks = [(p, f"a_long_variant_name_{p}", CHR1[p], "A" if CHR1[p] != "A" else "C") for p in (118, 119, 120)]
    for plot in (plot_heatmap, plot_logo):
        paths = [tmp_path / f"{plot.__name__}.{ext}" for ext in ("png", "svg", "pdf")]
        fig = plot(res, paths, marks, units="change of predicted log10 mRNA level")
        assert all(p.stat().st_size > 2000 for p in paths)
        assert Image.open(paths[0]).info["dpi"][0] == pytest.approx(300, abs=1)
        boxes = _text_boxes(fig)
        bounds = fig.bbox
        for t, box in boxes:  # nothing clipped: every text inside the figure
            assert box.x0 >= bounds.x0 - 1 and box.y0 >= bounds.y0 - 1, t.get_text()
            assert box.x1 <= bounds.x1 + 1 and box.y1 <= bounds.y1 + 1, t.get_text()
        labels = [(t.get_text(), box) for t, box in boxes if t.get_gid() == "variant-label"]
        assert sorted(name for name, _ in labels) == sorted(["TSS"] + [m[1] for m in marks])
        for i, (name, box) in enumerate(labels):
            for other, box2 in labels[i + 1:]:
                assert not box.overlaps(box2), (name, other)
        texts = " ".join(t.get_text() for t, _ in boxes)
        assert "MINUS1 strand, − on the genome" in texts  # the axis says which strand the bases are read on
        assert "bp" in texts and "log10 mRNA" in texts  # and the units
    # the heat map's top axis spells the reference bases as the transcript strand reads them
    fig = plot_heatmap(res, [], marks)
    (top,) = fig.axes[0].child_axes
    assert "".join(t.get_text() for t in top.get_xticklabels()) == res.ref_bases


def test_default_range_covers_the_real_sequence(world, tmp_path):
    prefix = tmp_path / "edge"
    assert mutagenesis(world, prefix, "--gene", "EDGE", "--no-plots") == 0
    rows = read_tsv(f"{prefix}.tsv")
    # EDGE: TSS chr2:12 (+), window [-9, 21): off-contig and chr2's first 10 bases are N, real from position 11
    assert {int(r["pos"]) for r in rows} == set(range(11, 22))
    assert {int(r["offset"]) for r in rows} == set(range(-1, 10))
