"""Tests of building training sets: label/feature tables (varxpress.io.tables), splits (varxpress.learning.splits) and
prepared sets (varxpress.learning.dataset and .prepared; genomic and sequence mode)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import h5py
import numpy as np
import pytest

from varxpress.learning import dataset
from varxpress.io.tables import read_feature_table, read_label_table
from varxpress.learning.dataset import fit_length
from varxpress.learning.prepared import PreparedSet
from varxpress.learning.splits import make_split
from varxpress.sequence.encode import decode, one_hot
from varxpress.errors import DatasetError

from tests._planted import write_fasta, write_labels


# -- tables ---------------------------------------------------------------------------------------------------------

def test_label_table_header_columns_and_provenance(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("# comment\ngene\tother\trpkm\nG1\tx\t9.9\nG2\ty\tNA\nG3\tz\t0.9\n")
    table = read_label_table(path, id_column="gene", label_column="rpkm", transform="log10", pseudocount=0.1)
    assert table.values == pytest.approx({"G1": 1.0, "G3": 0.0})  # G2 (NA) dropped
    assert table.source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert table.source["path"] == str(path.resolve())
    assert table.source["transform"] == "log10" and table.source["label_column"] == "rpkm"


def test_label_table_without_header_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("G1,1.5\nG2,-0.5\n")
    assert read_label_table(path).values == {"G1": 1.5, "G2": -0.5}


@pytest.mark.parametrize("text, match, transform", [
    ("G1\t1\nG1\t2\n", "id 'G1' appears twice .lines 1 and 2.", "none"),
    ("gene\tv\n# a comment\nG1\t1\n\nG2\tabc\n", "line 5: value 'abc' is not a finite number", "none"),
    ("gene\tv\nG1\t1\nG2\tinf\n", "line 3: value 'inf' is not a finite number", "none"),  # NaN loss, else
    ("G1\t1\nG2\t-Infinity\n", "line 2: value '-Infinity' is not a finite number", "none"),
    ("gene\tv\nG1\t1\nG2\t-3\nG3\t-5\n", "line 3: id 'G2' has -3; the log10 .* .2 such values.", "log10"),
    ("G1\t1\tx\nG2\t2\n", "columns", "none"),
])
def test_label_table_errors_say_where(tmp_path: Path, text: str, match: str, transform: str) -> None:
    """Each refused value is named with its file line (comments and blank lines counted)."""
    path = tmp_path / "labels.tsv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match):
        read_label_table(path, transform=transform)


def test_label_table_missing_column_names_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("gene\ttpm\nG1\t1\n")
    with pytest.raises(DatasetError, match="no column 'rpkm'.*gene, tpm"):
        read_label_table(path, label_column="rpkm")


def test_feature_table(tmp_path: Path) -> None:
    path = tmp_path / "features.tsv"
    path.write_text("gene_id\tutr5_len\tgc\nG1\t10\t0.5\nG2\tNA\t0.25\n")
    table = read_feature_table(path)
    assert table.names == ["utr5_len", "gc"]
    assert np.isnan(table.values["G2"][0]) and table.values["G2"][1] == 0.25
    assert read_feature_table(path, columns=["gc"]).names == ["gc"]
    path.write_text("gene_id\tgc\nG1\t0.5\nG2\t0.25\nG1\t0.7\n")  # a repeated id is named, with its file lines
    with pytest.raises(DatasetError, match=r"feature table .*features.tsv: id 'G1' appears twice \(lines 2 and 4\)"):
        read_feature_table(path)


def test_a_feature_table_that_names_no_gene_is_refused(tmp_path: Path) -> None:
    """Its ids matched nothing: every gene's features became the (empty) training mean, a constant column."""
    lines = ["id\tf1"] + [f"gene{i}\t{i}" for i in range(40)]
    (tmp_path / "features.tsv").write_text("\n".join(lines) + "\n")
    write_fasta(tmp_path / "seqs.fa", ["s1", "s2", "s3"], ["ACGT" * 10] * 3)
    write_labels(tmp_path / "labels.tsv", ["s1", "s2", "s3"], np.arange(3, dtype=float))
    with pytest.raises(DatasetError, match=r"no gene has a row in the feature table .* \(its ids look like gene0, "
                                           r"gene1, gene2; the genes' like s1, s2, s3\)"):
        dataset.prepare_sequences(tmp_path / "seqs.fa", read_label_table(tmp_path / "labels.tsv"),
                                  tmp_path / "set.vxd.h5", features=read_feature_table(tmp_path / "features.tsv"),
                                  options=dataset.SequenceSetOptions(test_size=1, valid_size=1))


# -- split ----------------------------------------------------------------------------------------------------------

def test_random_split_sizes_counts_and_fractions() -> None:
    split = make_split(100, "random", test_size=10, valid_size=20, seed=3)
    assert np.bincount(split, minlength=3).tolist() == [70, 20, 10]
    assert np.array_equal(split, make_split(100, "random", test_size=10, valid_size=20, seed=3))
    assert not np.array_equal(split, make_split(100, "random", test_size=10, valid_size=20, seed=4))
    frac = make_split(200, "random", test_size=0.1, valid_size=0.25)
    assert np.bincount(frac, minlength=3).tolist() == [130, 50, 20]


def test_random_split_refuses_to_leave_no_training_items() -> None:
    with pytest.raises(DatasetError, match="no training items"):
        make_split(10, "random", test_size=5, valid_size=5)


def test_chrom_split() -> None:
    chroms = ["chr1"] * 4 + ["chr2"] * 3 + ["chr3"] * 3
    split = make_split(10, "chrom", chroms=chroms, test_chroms=["chr2"], valid_chroms=["chr3"])
    assert split.tolist() == [0] * 4 + [2] * 3 + [1] * 3
    split = make_split(10, "chrom", chroms=chroms, test_chroms=["chr2"], valid_size=2)
    assert (split[4:7] == 2).all() and (split == 1).sum() == 2 and not (split[4:7] == 1).any()
    # a misspelt held-out contig would leave its genes in training, and the set would record the wrong split
    with pytest.raises(DatasetError, match="no item lies on the held-out contig.s. chrX; the items' contigs are "
                                           "chr1, chr2, chr3"):
        make_split(10, "chrom", chroms=chroms, test_chroms=["chrX"])
    with pytest.raises(DatasetError, match="held-out contig.s. chr4"):
        make_split(10, "chrom", chroms=chroms, test_chroms=["chr2"], valid_chroms=["chr4"])
    with pytest.raises(DatasetError, match="chr2 named both in --test-chroms and --valid-chroms"):
        make_split(10, "chrom", chroms=chroms, test_chroms=["chr2", "chr3"], valid_chroms=["chr2"])
    with pytest.raises(DatasetError, match="needs --test-chroms"):
        make_split(10, "chrom", chroms=chroms)


# -- sequence mode --------------------------------------------------------------------------------------------------

def test_fit_length() -> None:
    assert fit_length("ACGT", 8) == "NNACGTNN"
    assert fit_length("ACG", 6) == "NACGNN"
    assert fit_length("AACCGGTT", 4) == "CCGG"
    assert fit_length("ACGT", 6, "left") == "ACGTNN" and fit_length("ACGT", 6, "right") == "NNACGT"
    assert fit_length("AACCGG", 4, "left") == "AACC" and fit_length("AACCGG", 4, "right") == "CCGG"


def _sequence_set(tmp_path: Path, n: int = 40, with_features: bool = True) -> tuple[Path, list[str], list[str]]:
    rng = random.Random(5)
    ids = [f"s{i}" for i in range(n)]
    seqs = ["".join(rng.choice("ACGT") for _ in range(30 + (i % 3) * 5)) for i in range(n)]  # 30, 35, 40 bp
    write_fasta(tmp_path / "seqs.fa", ids + ["unlabelled"], seqs + ["ACGT"])
    write_labels(tmp_path / "labels.tsv", ids + ["no_record"], np.arange(n + 1, dtype=float))
    features = None
    if with_features:
        lines = ["id\tf1\tf2"] + [f"s{i}\t{i}\t{'NA' if i == 3 else 2 * i + 1}" for i in range(n) if i != 7]
        (tmp_path / "features.tsv").write_text("\n".join(lines) + "\n")
        features = read_feature_table(tmp_path / "features.tsv")
    out = dataset.prepare_sequences(tmp_path / "seqs.fa", read_label_table(tmp_path / "labels.tsv"),
                                    tmp_path / "set.vxd.h5", features=features,
                                    options=dataset.SequenceSetOptions(tss_index=15, test_size=8, valid_size=8, seed=1))
    return out, ids, seqs


def test_prepare_sequences_layout(tmp_path: Path) -> None:
    path, ids, seqs = _sequence_set(tmp_path)
    with PreparedSet(path) as pset:
        assert pset.kind == "sequences" and pset.n == 40
        assert (pset.upstream, pset.downstream, pset.tss_index) == (15, 25, 15)  # length 40 = the longest
        assert pset.ids == ids
        assert pset.labels.tolist() == list(range(40))
        assert np.bincount(pset.split, minlength=3).tolist() == [24, 8, 8]
        full = pset.load("all")
        assert decode(full.X[0]) == fit_length(seqs[0], 40)  # 30 bp record: centred, N-padded
        assert decode(full.X[2]) == seqs[2]
        assert full.X.dtype == np.uint8
        counts = pset.attr("counts")
        assert counts["records_without_label"] == 1 and counts["labels_without_record"] == 1
        assert counts["padded"] == 27 and counts["cropped"] == 0
        source = pset.attr("label_source")
        assert source["sha256"] == hashlib.sha256((tmp_path / "labels.tsv").read_bytes()).hexdigest()


def test_features_standardised_with_training_statistics_only(tmp_path: Path) -> None:
    path, ids, _ = _sequence_set(tmp_path)
    with PreparedSet(path) as pset:
        raw = pset._h5["features_raw"][:]
        train = pset.split == 0
        mean = np.nanmean(raw[train], axis=0)
        sd = np.nanstd(raw[train], axis=0)
        assert pset.feature_mean == pytest.approx(mean, rel=1e-5)
        assert pset.feature_sd == pytest.approx(sd, rel=1e-5)
        expected = np.where(np.isnan(raw), 0.0, (raw - mean) / sd)
        assert pset.features == pytest.approx(expected, abs=1e-5)
        assert np.isnan(raw[ids.index("s7")]).all()  # no row in the table -> missing
        assert (pset.features[ids.index("s7")] == 0).all()  # -> the training mean
        assert pset.features[ids.index("s3"), 1] == 0 and pset.features[ids.index("s3"), 0] != 0
        assert pset.feature_names == ["f1", "f2"]
        assert pset.attr("counts")["feature_rows_missing"] == 1


def test_crop_matches_a_narrower_window(tmp_path: Path) -> None:
    path, _, seqs = _sequence_set(tmp_path, with_features=False)
    with PreparedSet(path) as pset:
        full = pset.load("all")
        crop = pset.load("all", upstream=5, downstream=10)
        assert crop.X.shape == (40, 15, 4)
        assert np.array_equal(crop.X, full.X[:, 10:25])
        test = pset.load("test", upstream=5, downstream=10)
        assert np.array_equal(test.X, full.X[pset.split == 2][:, 10:25])
        assert test.ids == [pset.ids[i] for i in np.flatnonzero(pset.split == 2)]
        rows = np.array([7, 2, 2, 30])
        assert np.array_equal(pset.read_rows(rows, 5, 10).X, full.X[rows][:, 10:25])
        with pytest.raises(DatasetError, match="does not fit"):
            pset.load("all", upstream=16, downstream=10)
        padded = pset.load("all", upstream=17, downstream=25, pad=True)
        assert (padded.X[:, :2] == 0).all() and np.array_equal(padded.X[:, 2:], full.X)


def test_prepared_set_rejects_other_files(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5["x"] = [1]
    with pytest.raises(DatasetError, match="not a varxpress prepared set"):
        PreparedSet(tmp_path / "other.h5")
    with pytest.raises(DatasetError, match="does not exist"):
        PreparedSet(tmp_path / "missing.h5")


# -- genomic mode ---------------------------------------------------------------------------------------------------

@pytest.fixture
def genome_files(tmp_path: Path) -> dict[str, Path]:
    rng = random.Random(11)
    contigs = {"chr1": 3000, "chr2": 2000}
    seq = {name: "".join(rng.choice("ACGT") for _ in range(n)) for name, n in contigs.items()}
    with open(tmp_path / "genome.fa", "w") as fh:
        for name, s in seq.items():
            fh.write(f">{name}\n" + "".join(s[i:i + 70] + "\n" for i in range(0, len(s), 70)))
    genes = [  # id, chrom, 1-based pos, strand
        ("ENSG01.3", "1", 1001, "+"), ("ENSG02", "chr1", 2001, "-"), ("G3", "chr2", 501, "+"),
        ("G4", "chr2", 1501, "-"), ("G5", "chr1", 60, "+"), ("G6", "chrUn", 100, "+"), ("G7", "chr1", 2500, "+"),
    ]
    (tmp_path / "tss.tsv").write_text("gene_id\tgene_name\tchrom\tpos\tstrand\n" + "".join(
        f"{g}\t{g}\t{c}\t{p}\t{s}\n" for g, c, p, s in genes))
    labels = {"ENSG01": 1.0, "ENSG02.9": 2.0, "G3": 3.0, "G4": 4.0, "G5": 5.0, "G6": 6.0, "G_absent": 9.0}
    (tmp_path / "labels.tsv").write_text("".join(f"{g}\t{v}\n" for g, v in labels.items()))
    return {"genome": tmp_path / "genome.fa", "tss": tmp_path / "tss.tsv", "labels": tmp_path / "labels.tsv",
            "out": tmp_path / "genomic.vxd.h5"}


def test_prepare_genomic_windows_equal_score_windows(genome_files: dict[str, Path], caplog) -> None:
    from varxpress.io.genome import Genome
    from varxpress.io.tss import read_tss
    from varxpress.sequence.windows import WindowSpec, ref_window

    caplog.set_level("WARNING")
    dataset.prepare_genomic(genome_files["genome"], genome_files["tss"], read_label_table(genome_files["labels"]),
                            genome_files["out"], upstream=200, downstream=150, test_size=1, valid_size=1,
                            genome_build="toy1")
    tss = {t.gene_id: t for t in read_tss(genome_files["tss"])}
    with PreparedSet(genome_files["out"]) as pset, Genome(genome_files["genome"]) as genome:
        # G6 (unknown contig) and G7 (no label) are left out; Ensembl versions match either way
        assert pset.ids == ["ENSG01.3", "ENSG02", "G3", "G4", "G5"]
        assert pset.labels.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert pset.attr("genome_build") == "toy1" and pset.attr("counts")["unknown_contig"] == 1
        full = pset.load("all")
        narrow = pset.load("all", upstream=120, downstream=40)
        for i, gene in enumerate(pset.ids):
            assert decode(full.X[i]) == ref_window(genome, tss[gene], WindowSpec(200, 150)).seq
            # a model window inside the stored one is a crop of it, equal to what `score` builds
            assert decode(narrow.X[i]) == ref_window(genome, tss[gene], WindowSpec(120, 40)).seq
        assert pset.column("off_contig").tolist() == [False, False, False, False, True]  # G5 at 60 < 200
        assert pset.column("strand").tolist() == [1, -1, 1, -1, 1]
        assert pset.column("chrom").tolist() == ["chr1", "chr1", "chr2", "chr2", "chr1"]
        assert decode(full.X[4])[:141] == "N" * 141
    assert "1 labelled ids have no TSS in" in caplog.text and "left out: G_absent" in caplog.text  # named


def test_a_tss_file_on_other_contig_names_says_so(genome_files: dict[str, Path], caplog) -> None:
    """Every labelled gene on contigs the genome lacks (chrA.. against chr1..): the error names both sets of
    contigs and --contig-map, not the id column."""
    text = genome_files["tss"].read_text().replace("\tchr1\t", "\tchrA\t").replace("\tchr2\t", "\tchrB\t")
    genome_files["tss"].write_text(text.replace("\t1\t", "\tchrA\t").replace("\tchrUn\t", "\tchrC\t"))
    with pytest.raises(DatasetError, match=r"every labelled gene .* lies on a contig absent from .*genome.fa under "
                                           r"any alias \(the TSS file names chrA, chrB, chrC; the genome has chr1, "
                                           r"chr2\): give --contig-map"):
        dataset.prepare_genomic(genome_files["genome"], genome_files["tss"], read_label_table(genome_files["labels"]),
                                genome_files["out"], upstream=50, downstream=50)
    assert "the TSS file names chrA, chrB, chrC" in caplog.text


def test_tss_past_the_contig_end_are_left_out_or_refused(genome_files: dict[str, Path], caplog) -> None:
    """A TSS file of another assembly with the same contig names put TSSs past the contigs' ends, whose windows
    were all N, labels and all: a few are left out with a warning, most refuse the set."""
    labels = read_label_table(genome_files["labels"])
    text = genome_files["tss"].read_text()
    genome_files["tss"].write_text(text.replace("G3\tG3\tchr2\t501", "G3\tG3\tchr2\t2501"))  # chr2: 2,000 bp
    caplog.set_level("WARNING")
    dataset.prepare_genomic(genome_files["genome"], genome_files["tss"], labels, genome_files["out"], upstream=50,
                            downstream=50, test_size=1, valid_size=1)
    assert "1 labelled genes have their TSS past the end of its contig" in caplog.text
    assert "G3 at chr2:2,501 (chr2 has 2,000 bp)" in caplog.text
    with PreparedSet(genome_files["out"]) as pset:
        assert "G3" not in list(pset.ids) and pset.n == 4
    rows = [line.split("\t") for line in text.splitlines()]
    tripled = [rows[0]] + [r[:3] + [str(int(r[3]) * 3)] + r[4:] for r in rows[1:]]
    genome_files["tss"].write_text("".join("\t".join(r) + "\n" for r in tripled))
    with pytest.raises(DatasetError, match=r"past the end of its contig .* for another assembly\? Most genes are"):
        dataset.prepare_genomic(genome_files["genome"], genome_files["tss"], labels,
                                genome_files["out"].with_name("other.vxd.h5"), upstream=50, downstream=50,
                                test_size=1, valid_size=1)


def test_prepare_genomic_chrom_split(genome_files: dict[str, Path]) -> None:
    dataset.prepare_genomic(genome_files["genome"], genome_files["tss"], read_label_table(genome_files["labels"]),
                            genome_files["out"], upstream=50, downstream=50, split_method="chrom",
                            test_chroms=["2"], valid_size=1)
    with PreparedSet(genome_files["out"]) as pset:
        chroms = pset.column("chrom")
        assert (pset.split[chroms == "chr2"] == 2).all()
        assert (pset.split[chroms == "chr1"] != 2).all() and (pset.split == 1).sum() == 1
        assert pset.attr("test_chroms") == ["chr2"]


def test_held_out_contigs_imply_a_split_by_contig(genome_files: dict[str, Path], tmp_path: Path) -> None:
    """--test-chroms without --split once gave a random split that still recorded the contigs as held out."""
    from varxpress.cli import main

    base = ["prepare", "--genome", str(genome_files["genome"]), "--tss", str(genome_files["tss"]), "--labels",
            str(genome_files["labels"]), "--upstream", "50", "--downstream", "50", "--valid-size", "1",
            "--test-chroms", "2"]
    assert main(base + ["-o", str(tmp_path / "implied.vxd.h5")]) == 0
    with PreparedSet(tmp_path / "implied.vxd.h5") as pset:
        chroms = pset.column("chrom")
        assert pset.attr("split_method") == "chrom" and (pset.split[chroms == "chr2"] == 2).all()
        assert (pset.split[chroms != "chr2"] != 2).all()
    assert main(base + ["--split", "random", "-o", str(tmp_path / "random.vxd.h5")]) == 1
    assert not (tmp_path / "random.vxd.h5").exists()


def test_prepare_cli(genome_files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from varxpress.cli import main

    features = tmp_path / "hl.tsv"
    features.write_text("gene\tutr3_len\nENSG01\t100\nG3\t300\n")
    rc = main(["prepare", "--genome", str(genome_files["genome"]), "--tss", str(genome_files["tss"]),
               "--labels", str(genome_files["labels"]), "--features", str(features), "--upstream", "100",
               "--downstream", "100", "--test-size", "1", "--valid-size", "1", "--label-transform", "log10",
               "--pseudocount", "1", "-o", str(genome_files["out"])])
    assert rc == 0
    with PreparedSet(genome_files["out"]) as pset:
        assert pset.labels[0] == pytest.approx(np.log10(2.0))
        assert pset.feature_names == ["utr3_len"] and pset.n_features == 1
        assert pset.attr("label_transform") == "log10"
        assert json.loads(pset._h5.attrs["tss_source"])["format"] == "auto"
    caplog.clear()
    bad = main(["prepare", "--sequences", str(genome_files["genome"]), "--genome", str(genome_files["genome"]),
                "--labels", str(genome_files["labels"]), "-o", str(tmp_path / "x.h5")])
    assert bad == 1
    assert "give either --genome and --tss (genomic windows) or --sequences (a FASTA), not both" in caplog.text
    assert not (tmp_path / "x.h5").exists()


def test_sequences_cli_one_hot_round_trip(tmp_path: Path) -> None:
    from varxpress.cli import main

    write_fasta(tmp_path / "s.fa", ["a", "b", "c", "d"], ["ACGTAC", "GGGNCC", "TTTTTT", "CCCCAA"])
    write_labels(tmp_path / "l.tsv", ["a", "b", "c", "d"], np.array([1, 2, 3, 4.0]), header=False)
    assert main(["prepare", "--sequences", str(tmp_path / "s.fa"), "--labels", str(tmp_path / "l.tsv"),
                 "--test-size", "1", "--valid-size", "1", "-o", str(tmp_path / "s.vxd.h5")]) == 0
    with PreparedSet(tmp_path / "s.vxd.h5") as pset:
        X = pset.load("all").X
        assert np.array_equal(X, one_hot(["ACGTAC", "GGGNCC", "TTTTTT", "CCCCAA"]).astype(np.uint8))
        assert pset.tss_index == 3
