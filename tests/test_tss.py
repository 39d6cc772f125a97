"""TSS annotation readers (BED, GTF, GFF3, TSV) and the window index."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.realdata import DATA, need
from varxpress.errors import AnnotationError
from varxpress.io.genome import Genome
from varxpress.io.tss import TSS, read_tss
from varxpress.sequence.gene_index import TSSIndex, canonical_contig



def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# -- BED ---------------------------------------------------------------------------------------------------------


def test_bed_xpresso_offset(tmp_path):
    bed = write(tmp_path / "p.bed.gz", "X\t100626750\t100646750\tENSG00000000003\t0\t-\n"
                                       "X\t100574935\t100594935\tENSG00000000005\t0\t+\n")
    got = read_tss(bed, offset=10000)
    assert got == [
        TSS("ENSG00000000003", "ENSG00000000003", "X", 100636750, "-"),
        TSS("ENSG00000000005", "ENSG00000000005", "X", 100584935, "+"),
    ]


def test_bed_offset_none_and_names(tmp_path):
    bed = write(tmp_path / "t.bed", "track name=x\n# comment\nchr1\t100\t200\tG1\t0\t+\tABC\n"
                                    "chr1 300 400 G2 0 - .\n")
    got = read_tss(bed, offset=None)
    assert got == [TSS("G1", "ABC", "chr1", 100, "+"), TSS("G2", "G2", "chr1", 399, "-")]
    assert read_tss(bed) == got  # the BED convention is the default, as in every subcommand
    assert read_tss(bed, offset=0)[1].pos0 == 300  # an explicit offset counts from the start on both strands


def test_bed_of_centred_windows_read_without_offset_warns(tmp_path, caplog):
    bed = write(tmp_path / "w.bed", "chr1\t1000\t21000\tG1\t0\t+\nchr1\t5000\t25000\tG2\t0\t-\n")
    read_tss(bed)
    assert "all 2 intervals are 20000 bp long" in caplog.text and "--tss-offset 10000" in caplog.text
    caplog.clear()
    read_tss(bed, offset=10000)
    read_tss(write(tmp_path / "v.bed", "chr1\t1000\t21000\tG1\t0\t+\nchr1\t5000\t25001\tG2\t0\t-\n"))
    assert "intervals are" not in caplog.text  # an offset given, or gene bodies of different lengths


def test_load_tss_set_defaults(tmp_path):
    """One default for every subcommand (prepare included): a file in its own convention, else the default model's
    own TSS set at its offset."""
    from varxpress.io.tss import DEFAULT_TSS_OFFSET
    from varxpress.models.registry import load_tss_set

    bed = write(tmp_path / "t.bed", "chr1\t100\t200\tG1\t0\t+\nchr1\t300\t400\tG2\t0\t-\n")
    given = load_tss_set(None, bed)
    assert (given.tss_path, given.tss) == (str(bed), read_tss(bed, offset=None))
    assert load_tss_set(None, bed, 50).tss[1].pos0 == 350
    bundled = load_tss_set(None)  # the bundled hg38 set: BED intervals of TSS +- 10 kb
    assert bundled.tss_path.endswith("hg38_promoters_cage_corrected.bed.gz") and len(bundled.tss) > 10000
    assert bundled.tss == read_tss(bundled.tss_path, offset=DEFAULT_TSS_OFFSET)


def test_a_model_of_another_build_needs_its_own_tss_set(tmp_path):
    """A yeast model given as a file, without --tss, took the human default set and scored yeast variants on human
    genes of a contig of the same name (X). A model of another build than the default set's is refused; a bundled
    model by name brings its own set, and the mouse network by its file reads the human set by design."""
    from varxpress.errors import UsageError
    from varxpress.models.registry import data_path
    from varxpress.scoring.resources import ResourceSpec, load_resources

    fasta = tmp_path / "g.fa"
    fasta.write_text(">chrI\n" + "ACGT" * 50 + "\n")
    with pytest.raises(UsageError, match=r"trained on genome build R64-1-1, but no --tss was given and the default "
                                         r"TSS set is hg38's .* \(or --model yeast, which brings its own\)"):
        load_resources(ResourceSpec(str(fasta), model=data_path("yeast_R64_tifseq.vxm.h5")), background=False)
    assert load_resources(ResourceSpec(str(fasta), model="yeast"), background=False).tss_path.endswith(
        "yeast_R64_tifseq_tss.bed.gz")
    mouse = load_resources(ResourceSpec(str(fasta), model=data_path("xpresso_mouse_mm10.vxm.h5")), background=False)
    assert mouse.tss_path.endswith("hg38_promoters_cage_corrected.bed.gz")
    bed = write(tmp_path / "y.bed", "chrI\t100\t101\tY1\t0\t+\n")  # its own set: fine
    own = ResourceSpec(str(fasta), model=data_path("yeast_R64_tifseq.vxm.h5"), tss=str(bed))
    assert [t.gene_id for t in load_resources(own, background=False).tss] == ["Y1"]


def test_a_model_of_no_recorded_build_is_judged_by_the_tss_set_it_was_prepared_with(tmp_path):
    """`prepare` records the build as "unknown" unless told: such a model, prepared with a yeast TSS set, was scored
    against the human default set. The TSS set it records decides; an imported network records none."""
    from types import SimpleNamespace

    from varxpress.errors import UsageError
    from varxpress.models.metadata import sha256_file
    from varxpress.models.registry import BUNDLED, DEFAULT, data_path
    from varxpress.scoring.resources import ResourceSpec, _check_default_tss_build

    def model(training_data):
        return SimpleNamespace(metadata=SimpleNamespace(genome_build="unknown", training_data=training_data),
                               path=tmp_path / "m.vxm.h5")

    spec = ResourceSpec("g.fa", model=str(tmp_path / "m.vxm.h5"))
    yeast = {"tss_source": {"path": "/data/run/tss.bed", "sha256": "ab" * 32}}
    with pytest.raises(UsageError, match=r"records no genome build and was prepared with the TSS set tss.bed, but no "
                                         r"--tss was given and the default TSS set is hg38's"):
        _check_default_tss_build(spec, [model(yeast)], None)
    _check_default_tss_build(ResourceSpec("g.fa", model=spec.model, tss="tss.bed"), [model(yeast)], None)
    default = {"tss_source": {"path": "x.bed.gz", "sha256": sha256_file(data_path(BUNDLED[DEFAULT].tss))}}
    _check_default_tss_build(spec, [model(default)], None)  # prepared with the default set itself
    _check_default_tss_build(spec, [model(None)], None)  # an imported network: nothing recorded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chr1\t1\t5\tG1\t0\n", r"x.bed:1: BED line has 5 columns"),
        ("chr1\t1\t5\tG1\t0\t+\nchr1\tone\t5\tG2\t0\t+\n", r"x.bed:2: start 'one' is not an integer"),
        ("chr1\t1\t5\tG1\t0\t.\n", r"x.bed:1: strand '.' is not"),
        ("chr1\t1\t5\tG1\t0\t+\n\nchr2\t1\t5\tG1\t0\t-\n", r"x.bed:3: gene 'G1' already given at line 1"),
        ("chr1\t5\t5\tG1\t0\t+\n", r"x.bed:1: interval 5-5 is empty"),
        ("chr1\t1\t5\tG1\t0\t+\n", r"x.bed:1: offset 10 puts the TSS at 11, outside"),
        ("# only a comment\n", r"x.bed: no genes found"),
    ],
)
def test_bed_errors(tmp_path, text, message):
    with pytest.raises(AnnotationError, match=message):
        read_tss(write(tmp_path / "x.bed", text), offset=10 if "offset" in message else 0)


# -- GTF / GFF3 --------------------------------------------------------------------------------------------------


def gtf_line(chrom, feature, start, end, strand, attrs):
    return f"{chrom}\tHAVANA\t{feature}\t{start}\t{end}\t.\t{strand}\t.\t{attrs}\n"


GTF = "".join([
    "##description: test\n",
    gtf_line("chr1", "gene", 100, 900, "+", 'gene_id "GA.1"; gene_name "ALPHA";'),
    # GA: the canonical one is neither longest nor first
    gtf_line("chr1", "transcript", 100, 900, "+", 'gene_id "GA.1"; transcript_id "TA1"; gene_name "ALPHA"; '
             'transcript_type "protein_coding"; tag "basic";'),
    gtf_line("chr1", "exon", 100, 200, "+", 'gene_id "GA.1"; transcript_id "TA1"; gene_name "ALPHA";'),
    gtf_line("chr1", "transcript", 150, 600, "+", 'gene_id "GA.1"; transcript_id "TA2"; gene_name "ALPHA"; '
             'tag "basic"; tag "Ensembl_canonical"; tag "CCDS";'),
    # GB (minus): no canonical; MANE wins over a longer basic one
    gtf_line("chr2", "transcript", 1000, 5000, "-", 'gene_id "GB"; transcript_id "TB1"; gene_name "BETA"; '
             'tag "basic";'),
    gtf_line("chr2", "transcript", 2000, 3000, "-", 'gene_id "GB"; transcript_id "TB2"; gene_name "BETA"; '
             'tag "MANE_Select"; tag "basic";'),
    # GC: nothing tagged; protein coding beats a longer lncRNA
    gtf_line("chr2", "transcript", 10, 500, "+", 'gene_id "GC"; transcript_id "TC1"; transcript_type "lncRNA";'),
    gtf_line("chr2", "transcript", 50, 100, "+", 'gene_id "GC"; transcript_id "TC2"; '
             'transcript_type "protein_coding";'),
    # GD: all equal but length; longest wins
    gtf_line("chr3", "transcript", 10, 50, "-", 'gene_id "GD"; transcript_id "TD1";'),
    gtf_line("chr3", "transcript", 10, 80, "-", 'gene_id "GD"; transcript_id "TD2";'),
    # GE: a complete tie; the smaller transcript id wins whatever the order
    gtf_line("chr3", "transcript", 200, 300, "+", 'gene_id "GE"; transcript_id "TE2";'),
    gtf_line("chr3", "transcript", 201, 301, "+", 'gene_id "GE"; transcript_id "TE1";'),
])


def test_gtf_rule(tmp_path):
    got = {t.gene_id: t for t in read_tss(write(tmp_path / "a.gtf.gz", GTF))}
    assert got["GA.1"] == TSS("GA.1", "ALPHA", "chr1", 149, "+")  # canonical TA2, 1-based 150 -> 149
    assert got["GB"] == TSS("GB", "BETA", "chr2", 2999, "-")  # MANE TB2, end 3000 -> pos0 2999
    assert got["GC"] == TSS("GC", "GC", "chr2", 49, "+")  # protein-coding TC2; no gene_name -> id
    assert got["GD"] == TSS("GD", "GD", "chr3", 79, "-")  # longest TD2
    assert got["GE"] == TSS("GE", "GE", "chr3", 200, "+")  # tie -> TE1
    assert list(got) == ["GA.1", "GB", "GC", "GD", "GE"]


def test_gtf_exon_only(tmp_path):
    text = "".join([
        gtf_line("1", "exon", 500, 600, "-", 'gene_id "G1"; transcript_id "T1"; gene_name "ONE";'),
        gtf_line("1", "exon", 100, 200, "-", 'gene_id "G1"; transcript_id "T1"; gene_name "ONE";'),
        gtf_line("1", "exon", 100, 200, "-", 'gene_id "G1"; transcript_id "T2"; gene_name "ONE";'),
    ])
    assert read_tss(write(tmp_path / "e.gtf", text)) == [TSS("G1", "ONE", "1", 599, "-")]


def test_gtf_errors(tmp_path):
    with pytest.raises(AnnotationError, match=r"b.gtf:2: GTF/GFF3 line has 3"):
        read_tss(write(tmp_path / "b.gtf", GTF.splitlines()[1] + "\nchr1\tx\ty\n"))
    bad = gtf_line("chr1", "transcript", 10, 20, "+", 'gene_id "G";')
    with pytest.raises(AnnotationError, match=r"c.gtf:1: transcript line lacks gene_id or transcript_id"):
        read_tss(write(tmp_path / "c.gtf", bad))
    bad = gtf_line("chr1", "transcript", 30, 20, "+", 'gene_id "G"; transcript_id "T";')
    with pytest.raises(AnnotationError, match=r"d.gtf:1: feature 30-20"):
        read_tss(write(tmp_path / "d.gtf", bad))
    with pytest.raises(AnnotationError, match=r"e.gtf: no transcript records"):
        read_tss(write(tmp_path / "e.gtf", gtf_line("chr1", "gene", 1, 5, "+", 'gene_id "G";')))


def test_a_flat_gff3_says_what_it_lacks_and_what_to_write_instead(tmp_path):
    """TIF-seq's transcripts (one record each, an ID and no Parent): no gene can be told from them."""
    path = tmp_path / "tifseq.gff3"
    path.write_text("##gff-version 3\n"
                    "chrI\tSGD\tprimary_transcript\t142153\t143381\t.\t+\t.\typd=4653;ID=YAL003W_id526\n"
                    "chrI\tSGD\tprimary_transcript\t137649\t142140\t.\t-\t.\typd=1;ID=YAL004W_id001\n")
    with pytest.raises(AnnotationError, match=r"tifseq\.gff3: no feature has a Parent: this flat GFF3 \(2 records "
                                              r"with an ID only, e\.g\. YAL003W_id526\).*one TSS per gene as BED"):
        read_tss(path)


def test_gff3_ensembl_and_gencode(tmp_path):
    def line(chrom, ftype, start, end, strand, attrs):
        return f"{chrom}\tensembl\t{ftype}\t{start}\t{end}\t.\t{strand}\t.\t{attrs}\n"

    text = "".join([
        "##gff-version 3\n",
        line("1", "chromosome", 1, 10000, ".", "ID=chromosome:1"),
        line("1", "gene", 100, 900, "-", "ID=gene:ENSG1;Name=TSPAN6;biotype=protein_coding;gene_id=ENSG1"),
        line("1", "mRNA", 100, 900, "-", "ID=transcript:ENST1;Parent=gene:ENSG1;biotype=protein_coding;"
                                         "tag=basic;transcript_id=ENST1"),
        line("1", "mRNA", 100, 700, "-", "ID=transcript:ENST2;Parent=gene:ENSG1;biotype=protein_coding;"
                                         "tag=basic,Ensembl_canonical;transcript_id=ENST2"),
        line("1", "exon", 100, 200, "-", "Parent=transcript:ENST2;Name=ENSE1"),
        # GENCODE style: versioned ID, gene_name attribute, transcript listed before its gene
        line("chr2", "transcript", 40, 90, "+", "ID=ENST3.1;Parent=ENSG2.4;gene_id=ENSG2.4;transcript_id=ENST3.1;"
                                                "gene_name=AB%3BC;transcript_type=lncRNA"),
        line("chr2", "gene", 40, 90, "+", "ID=ENSG2.4;gene_id=ENSG2.4;gene_name=AB%3BC"),
        line("chr2", "lnc_RNA", 60, 90, "+", "ID=orphan;Parent=nowhere"),
        "##FASTA\n>chr2\nACGT\n",
    ])
    got = read_tss(write(tmp_path / "a.gff3.gz", text))
    assert got == [TSS("ENSG1", "TSPAN6", "1", 699, "-"), TSS("ENSG2.4", "AB;C", "chr2", 39, "+")]


# -- TSV ---------------------------------------------------------------------------------------------------------


def test_tsv(tmp_path):
    tsv = write(tmp_path / "g.tsv", "gene_id\tgene_name\tchrom\tpos\tstrand\nG1\tONE\tchr1\t1\t+\nG2\t\t2\t50\t-\n")
    assert read_tss(tsv) == [TSS("G1", "ONE", "chr1", 0, "+"), TSS("G2", "G2", "2", 49, "-")]
    with pytest.raises(AnnotationError, match=r"h.tsv:1: pos 0 is not a 1-based"):
        read_tss(write(tmp_path / "h.tsv", "G1\tONE\tchr1\t0\t+\n"))
    with pytest.raises(AnnotationError, match=r"i.txt:2: TSV line has 4 columns"):
        read_tss(write(tmp_path / "i.txt", "G1\tONE\tchr1\t5\t+\nG2\tX\t1\t5\n"))


def test_format_detection(tmp_path):
    weird = write(tmp_path / "genes.dat", "G1\tONE\tchr1\t1\t+\n")
    with pytest.raises(AnnotationError, match="cannot tell the annotation format"):
        read_tss(weird)
    assert read_tss(weird, fmt="tsv")[0].pos0 == 0
    with pytest.raises(AnnotationError, match="unknown annotation format 'vcf'"):
        read_tss(weird, fmt="vcf")
    with pytest.raises(AnnotationError, match="does not exist"):
        read_tss(tmp_path / "missing.bed")


# -- index -------------------------------------------------------------------------------------------------------


def test_window_and_overlapping_literal():
    genes = [TSS("P", "P", "1", 100, "+"), TSS("M", "M", "1", 100, "-"), TSS("Q", "Q", "1", 200, "+"),
             TSS("Z", "Z", "2", 100, "+")]
    index = TSSIndex(genes, upstream=10, downstream=5)
    assert index.window(genes[0]) == (90, 105)
    assert index.window(genes[1]) == (95, 110)
    assert index.overlapping("1", 89, 90) == []
    assert index.overlapping("chr1", 90, 91) == [genes[0]]  # chr prefix ignored without a genome
    assert index.overlapping("1", 104, 105) == [genes[1], genes[0]]  # same pos0: sorted by gene id
    assert index.overlapping("1", 105, 110) == [genes[1]]
    assert index.overlapping("1", 110, 190) == []
    assert index.overlapping("1", 50, 500) == [genes[1], genes[0], genes[2]]
    assert index.overlapping("1", 100, 100) == []  # empty interval
    assert index.overlapping("chr3", 0, 1000) == []
    assert len(index) == 4 and index.get("Q") == genes[2] and index.get("nope") is None
    with pytest.raises(AnnotationError, match="'P' appears twice"):
        TSSIndex(genes + [genes[0]], 10, 5)


def test_index_resolves_through_genome(tmp_path, caplog):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "A" * 300 + "\n>chrM\n" + "C" * 50 + "\n")
    genes = [TSS("A", "A", "1", 100, "+"), TSS("B", "B", "MT", 20, "-"), TSS("C", "C", "7", 5, "+")]
    with Genome(fasta) as g:
        index = TSSIndex(genes, 10, 5, genome=g)
        assert index.overlapping("chr1", 99, 100) == [genes[0]]
        assert index.overlapping("1", 99, 100) == [genes[0]]
        assert index.overlapping("chrM", 20, 21) == [genes[1]]
    assert "1 of 3 TSSs lie on contigs absent from the genome (7); their genes cannot be scored\n" in caplog.text
    caplog.clear()
    with Genome(fasta) as g:  # most of a set absent (a yeast set on a human FASTA): the FASTA is put in question
        TSSIndex(genes[1:] + [TSS(f"D{i}", "D", f"chr{i}", 5, "+") for i in range(10, 14)], 10, 5, genome=g)
    assert ("5 of 6 TSSs lie on contigs absent from the genome (7, chr10, chr11, ...); their genes cannot be scored; "
            "that is most of the set: is the FASTA the genome (build)") in caplog.text


def test_canonical_contig():
    assert canonical_contig("chr1") == canonical_contig("1") == "1"
    assert canonical_contig("chrM") == canonical_contig("MT") == "MT"
    assert canonical_contig("chr") == "chr"
    assert canonical_contig("ChrIV") == canonical_contig("IV") == "IV"  # a prefix in any case (plant, yeast sets)
    assert canonical_contig("ChrM") == canonical_contig("M") == canonical_contig("chrMT") == "MT"
    assert canonical_contig("chrUn_gl000220") == "Un_gl000220" and canonical_contig("chrx") == "x"  # case kept


@given(
    genes=st.lists(st.tuples(st.sampled_from(["1", "chr2"]), st.integers(0, 300), st.sampled_from("+-")),
                   max_size=40),
    up=st.integers(0, 50),
    down=st.integers(1, 50),
    query=st.tuples(st.sampled_from(["chr1", "2", "3"]), st.integers(-60, 360), st.integers(0, 80)),
)
def test_overlapping_equals_brute_force(genes, up, down, query):
    tss = [TSS(f"G{i}", f"G{i}", c, p, s) for i, (c, p, s) in enumerate(genes)]
    index = TSSIndex(tss, up, down)
    chrom, start, length = query
    expected = sorted(
        (t for t in tss
         if length > 0 and canonical_contig(t.chrom) == canonical_contig(chrom)
         and index.window(t)[0] < start + length and index.window(t)[1] > start),
        key=lambda t: (t.pos0, t.gene_id),
    )
    assert index.overlapping(chrom, start, start + length) == expected


@given(
    genes=st.lists(st.tuples(st.sampled_from(["1", "chr2"]), st.integers(0, 300), st.sampled_from("+-")),
                   max_size=40),
    up=st.integers(0, 50),
    down=st.integers(1, 50),
    chrom=st.sampled_from(["chr1", "2", "3"]),
    spans=st.lists(st.tuples(st.integers(-60, 360), st.integers(0, 80)), max_size=30),
)
def test_any_overlapping_is_overlapping_vectorised(genes, up, down, chrom, spans):
    """The vectorised membership test (merged windows, one searchsorted) answers as the per-interval query does,
    for touching, nested and far-apart windows, empty intervals and contigs without a window."""
    index = TSSIndex([TSS(f"G{i}", f"G{i}", c, p, s) for i, (c, p, s) in enumerate(genes)], up, down)
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    ends = starts + np.array([n for _, n in spans], dtype=np.int64)
    expected = [bool(index.overlapping(chrom, s, e)) for s, e in zip(starts.tolist(), ends.tolist())]
    assert index.any_overlapping(chrom, starts, ends).tolist() == expected


def test_any_overlapping_at_window_edges():
    index = TSSIndex([TSS("G", "G", "1", 100, "+")], upstream=10, downstream=5)  # window [90, 105)
    starts, ends = np.array([105, 104, 89, 89, 95, 0]), np.array([106, 105, 90, 91, 95, 1000])
    assert index.any_overlapping("chr1", starts, ends).tolist() == [False, True, False, True, False, True]
    assert not index.any_overlapping("chr2", starts, ends).any()


# -- real data ---------------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_xpresso_bed_matches_kipoi_windows():
    bed = DATA / "xpresso" / "hg38_promoters_cage_corrected.bed.gz"
    kipoi = DATA / "xpresso" / "kipoi_human_hg38_windows.bed.gz"
    need(bed, kipoi)
    tss = read_tss(bed, offset=10000)
    assert len(tss) == 18413
    index = TSSIndex(tss, upstream=7000, downstream=3500)
    published = {}
    with gzip.open(kipoi, "rt") as handle:
        for line in handle:
            chrom, start, end, gene, _, strand = line.split("\t")[:6]
            published[gene] = (canonical_contig(chrom), int(start), int(end), strand.strip())
    assert len(published) == 18413
    mismatches = [
        t.gene_id for t in tss
        if published.get(t.gene_id) != (canonical_contig(t.chrom), *index.window(t), t.strand)
    ]
    assert mismatches == []
    # a window query finds a gene's own TSS
    first = tss[0]
    assert first in index.overlapping("chr" + first.chrom, first.pos0, first.pos0 + 1)


def test_the_bundled_tss_set_names_genes_by_symbol_and_keeps_the_ensembl_id():
    from varxpress.io.tss import DEFAULT_TSS, DEFAULT_TSS_OFFSET
    from varxpress.models.registry import data_path

    tss = read_tss(data_path(DEFAULT_TSS), offset=DEFAULT_TSS_OFFSET)
    by_id = {t.gene_id: t for t in tss}
    assert len(tss) == 18413
    tert = by_id["ENSG00000164362"]
    assert (tert.gene_name, tert.chrom, tert.strand) == ("TERT", "5", "-")
    assert by_id["ENSG00000244734"].gene_name == "HBB"
    named = sum(t.gene_name != t.gene_id for t in tss)
    assert 18000 < named < len(tss)  # a few genes have no symbol in Ensembl and keep their id
