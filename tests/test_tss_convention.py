"""One TSS convention for training and scoring: ``prepare``'s window and ``score``'s TSS agree base for base.

A toy genome carries two plus- and two minus-strand genes whose TSSs are known by construction. Each annotation
format describes the same transcripts: a BED of gene bodies (no offset: the BED convention, the minus-strand TSS is
``end - 1``), a BED of windows centred on the TSS (with ``--tss-offset``), a GTF and a GFF3. For every format,
``varxpress prepare`` and ``varxpress score`` are run with the same options and each must find the true TSS: the
prepared window is the documented slice around it, and ``score`` reports that TSS and predicts, for the reference
allele, exactly what the model predicts on the prepared window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.toy import toy_model_file

UP, DOWN = 60, 40  # model and prepared window
FLANK = 150  # half-width of the centred-window BED, = its --tss-offset
# gene id -> (transcript start, end) 0-based half-open, strand; the TSS is start on +, end - 1 on -
GENES = {"GP1": (400, 900, "+"), "GM1": (1200, 1700, "-"), "GP2": (2000, 2300, "+"), "GM2": (2500, 2900, "-")}
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def true_tss(gene: str) -> int:
    start, end, strand = GENES[gene]
    return start if strand == "+" else end - 1


def expected_window(genome: str, gene: str) -> str:
    """The documented window (docs/windows.md): [t - U, t + D) on +, [t - D, t + U) reverse-complemented on -."""
    t, strand = true_tss(gene), GENES[gene][2]
    if strand == "+":
        return genome[t - UP:t + DOWN]
    return genome[t - DOWN:t + UP].translate(COMPLEMENT)[::-1]


def annotation(folder: Path, fmt: str) -> tuple[Path, list[str]]:
    """Write the genes in ``fmt``; returns the file and the extra options it needs."""
    if fmt == "bed":
        path = folder / "genes.bed"
        path.write_text("".join(f"chr1\t{s}\t{e}\t{g}\t0\t{st}\n" for g, (s, e, st) in GENES.items()))
        return path, []
    if fmt == "bed-offset":
        path = folder / "windows.bed"
        path.write_text("".join(f"chr1\t{true_tss(g) - FLANK}\t{true_tss(g) + FLANK}\t{g}\t0\t{st}\n"
                                for g, (_, _, st) in GENES.items()))
        return path, ["--tss-offset", str(FLANK)]
    if fmt == "gtf":
        path = folder / "genes.gtf"
        path.write_text("".join(f'chr1\ttoy\ttranscript\t{s + 1}\t{e}\t.\t{st}\t.\tgene_id "{g}"; '
                                f'transcript_id "{g}.t1"; gene_name "{g}";\n' for g, (s, e, st) in GENES.items()))
        return path, []
    path = folder / "genes.gff3"
    path.write_text("##gff-version 3\n" + "".join(
        f"chr1\ttoy\tgene\t{s + 1}\t{e}\t.\t{st}\t.\tID=gene:{g};Name={g}\n"
        f"chr1\ttoy\tmRNA\t{s + 1}\t{e}\t.\t{st}\t.\tID=transcript:{g}.t1;Parent=gene:{g}\n"
        for g, (s, e, st) in GENES.items()))
    return path, []


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("convention")
    genome = "".join(np.random.default_rng(11).choice(list("ACGT"), size=3200))
    (folder / "genome.fa").write_text(">chr1\n" + "\n".join(genome[i:i + 60] for i in range(0, len(genome), 60))
                                      + "\n")
    (folder / "labels.tsv").write_text("gene_id\tvalue\n" + "".join(f"{g}\t{i}.5\n" for i, g in enumerate(GENES)))
    # one SNV per gene, 10 bases upstream of its TSS (in transcription direction)
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=chr1,length=3200>", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for g in GENES:
        pos0 = true_tss(g) - 10 if GENES[g][2] == "+" else true_tss(g) + 10
        ref = genome[pos0]
        lines.append(f"chr1\t{pos0 + 1}\tv_{g}\t{ref}\t{'A' if ref != 'A' else 'C'}\t.\t.\t.")
    (folder / "in.vcf").write_text("\n".join(lines) + "\n")
    return {"folder": folder, "genome": genome, "model": toy_model_file(folder, UP, DOWN, seed=3)}


@pytest.mark.parametrize("fmt", ["bed", "bed-offset", "gtf", "gff3"])
def test_prepare_window_and_score_tss_agree(toy, fmt: str) -> None:
    from varxpress.cli import main
    from varxpress.learning.prepared import PreparedSet
    from varxpress.sequence.encode import one_hot
    from varxpress.models.network import ExpressionModel

    folder = toy["folder"] / fmt
    folder.mkdir()
    tss_file, options = annotation(folder, fmt)
    base = toy["folder"]
    assert main(["prepare", "--genome", str(base / "genome.fa"), "--tss", str(tss_file), *options,
                 "--labels", str(base / "labels.tsv"), "--upstream", str(UP), "--downstream", str(DOWN),
                 "--test-size", "1", "--valid-size", "1", "-o", str(folder / "set.vxd.h5")]) == 0
    assert main(["score", str(base / "in.vcf"), "--fasta", str(base / "genome.fa"), "--tss", str(tss_file), *options,
                 "--model", str(toy["model"]), "--tsv", str(folder / "out.tsv"), "-o", str(folder / "out.vcf")]) == 0
    scores = pd.read_csv(folder / "out.tsv", sep="\t", comment="#").set_index("gene_id")
    model = ExpressionModel.load(toy["model"])
    with PreparedSet(folder / "set.vxd.h5") as pset:
        arrays = pset.load("all")
        tss_pos0 = dict(zip(pset.ids, pset.column("tss_pos0").tolist()))
    assert sorted(arrays.ids) == sorted(GENES)
    windows = {g: "".join("ACGT"[j] for j in x.argmax(axis=1)) for g, x in zip(arrays.ids, arrays.X)}
    ref_pred = dict(zip(arrays.ids, model.predict(arrays.X.astype(np.float32))))
    for gene in GENES:
        assert tss_pos0[gene] == true_tss(gene), (fmt, gene)
        assert windows[gene] == expected_window(toy["genome"], gene), (fmt, gene)
        row = scores.loc[gene]
        assert row["tss_pos"] == true_tss(gene) + 1  # 1-based in score's output
        assert row["distance"] == -10  # the SNV lies 10 bases upstream in transcription direction
        assert row["ref_pred"] == pytest.approx(float(ref_pred[gene]), abs=1e-4)
    # and the same windows as one_hot of the truth, so the model sees in score what it saw in training
    assert np.array_equal(arrays.X[0], one_hot([expected_window(toy["genome"], arrays.ids[0])])[0])
