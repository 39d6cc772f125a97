#!/usr/bin/env python3
"""Rebuild the bundled example data from ``../shared/data`` (see example_data/README.md).

Writes, next to this script:

* ``hg38_promoters.fa.gz`` (+ ``.fai``, ``.gzi``): real hg38 sequence at its true coordinates on otherwise-N contigs,
  bgzip-compressed. Each contig is cut 20 kb after the last base any bundled gene window needs.
* ``tss.bed``: BED6+1 (``chrom start end gene_id 0 strand gene_name``) of the bundled genes, TSS +- 10 kb as in the
  Xpresso CAGE-corrected set, so TSS = start + 10000 (``--tss-offset 10000``).
* ``demo.vcf``: clinically known promoter variants plus edge cases, REF alleles read from the genome built here.

Run: ``python example_data/build_example_data.py [--shared ../shared/data]``. Needs pysam.
"""
import argparse
import gzip
import os
from pathlib import Path

import pysam

HERE = Path(__file__).resolve().parent
UPSTREAM, DOWNSTREAM = 7000, 3500

# Ensembl gene ids of the ten promoter elements (Kircher et al. 2019); MSMB is absent from the Xpresso TSS set.
CLINICAL_GENES = {
    "ENSG00000164362": "TERT", "ENSG00000244734": "HBB", "ENSG00000101981": "F9", "ENSG00000178919": "FOXE1",
    "ENSG00000203618": "GP1BB", "ENSG00000213934": "HBG1", "ENSG00000101076": "HNF4A", "ENSG00000130164": "LDLR",
    "ENSG00000143627": "PKLR",
}
N_REAL_WINDOW_GENES = 12  # genes whose whole window lies in the real 131 kb hg38 windows
MAX_REAL_WINDOW_END = 30_000_000  # N-padded contigs cost ~5 kB per Mb compressed: keep the extra genes near contig starts


def read_fasta(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    name, chunks = None, []
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(chunks)
                name, chunks = line[1:], []
            elif line:
                chunks.append(line)
    if name is not None:
        yield name, "".join(chunks)


def natural_key(chrom):
    """chr1 < chr2 < ... < chr22 < chrX < chrY < chrM."""
    name = chrom[3:] if chrom.startswith("chr") else chrom
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def gene_window(chrom_start_end_strand):
    chrom, start, end, strand = chrom_start_end_strand
    tss = start + 10000
    return (tss - UPSTREAM, tss + DOWNSTREAM) if strand == "+" else (tss - DOWNSTREAM, tss + UPSTREAM)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    shared = args.shared

    # 1. real sequence pieces: (chrom, start0, seq)
    pieces = []
    for header, seq in read_fasta(shared / "human_promoter_elements.fa"):
        gene, build, loc = header.split("|")
        if build == "hg38" and gene != "MSMB":  # MSMB has no Xpresso TSS: its piece would only add N
            chrom, rng = loc.split(":")
            start1, _ = map(int, rng.split("-"))
            pieces.append((chrom, start1 - 1, seq.upper()))
    big_windows = []
    for header, seq in read_fasta(shared / "hg38" / "hg38_65_windows_131kb.fa.gz"):
        chrom, rng = header.split()[0].split(":")
        start, end = map(int, rng.split("-"))
        big_windows.append((chrom, start, end, seq.upper()))

    # 2. genes: the clinical ones, plus the first genes whose whole window is real sequence
    bed = []
    with gzip.open(shared / "xpresso" / "hg38_promoters_cage_corrected.bed.gz", "rt") as fh:
        for line in fh:
            chrom, start, end, gene_id, _, strand = line.split()[:6]
            bed.append(("chr" + chrom, int(start), int(end), gene_id, strand))
    genes = [(c, s, e, g, st, CLINICAL_GENES[g]) for c, s, e, g, st in bed if g in CLINICAL_GENES]
    real = []
    for c, s, e, g, st in bed:
        ws, we = gene_window((c, s, e, st))
        if we > MAX_REAL_WINDOW_END:
            continue
        for bc, bs, be, seq in big_windows:
            if bc == c and bs <= ws and we <= be:
                real.append((c, s, e, g, st, g))
                # the 2 kb flanks are not checked against the source window: for ENSG00000182326 the left one starts
                # before it, the slice is empty and its window stays N (documented in README.md; kept, since the
                # bundled background and the documented figures were made on the genome this wrote)
                pieces.append((c, ws - 2000, seq[ws - 2000 - bs:we + 2000 - bs]))
                break
        if len(real) == N_REAL_WINDOW_GENES:
            break
    genes += real

    # 3. contigs: N everywhere, real pieces at true coordinates
    contig_end = {}
    for c, s, e, g, st, _ in genes:
        contig_end[c] = max(contig_end.get(c, 0), gene_window((c, s, e, st))[1] + 20000)
    for c, s, seq in pieces:
        contig_end[c] = max(contig_end.get(c, 0), s + len(seq) + 20000)
    order = sorted(contig_end, key=natural_key)
    contigs = {c: bytearray(b"N" * contig_end[c]) for c in order}
    for c, s, seq in pieces:
        contigs[c][s:s + len(seq)] = seq.encode()

    plain = HERE / "hg38_promoters.fa"
    with open(plain, "w") as out:
        for c in order:
            out.write(f">{c}\n")
            data = contigs[c]
            for i in range(0, len(data), 60):
                out.write(data[i:i + 60].decode() + "\n")
    fa = HERE / "hg38_promoters.fa.gz"
    for p in (fa, Path(str(fa) + ".fai"), Path(str(fa) + ".gzi")):
        if p.exists():
            p.unlink()
    pysam.tabix_compress(str(plain), str(fa), force=True)
    os.unlink(plain)
    pysam.faidx(str(fa))

    with open(HERE / "tss.bed", "w") as out:
        for c, s, e, g, st, name in sorted(genes, key=lambda r: (order.index(r[0]), r[1])):
            out.write(f"{c}\t{s}\t{e}\t{g}\t0\t{st}\t{name}\n")
    write_vcf(fa, order, contig_end, real)


def write_vcf(fa, order, contig_end, real_genes):
    genome = pysam.FastaFile(str(fa))

    def ref(chrom, pos, n=1):
        return genome.fetch(chrom, pos - 1, pos - 1 + n).upper()

    # (chrom, pos, id, ref, alt, note). ref=None: read from the genome.
    records = [
        ("chr1", 155301500, ".", None, "G", "PKLR_promoter_SNV"),
        ("chr5", 1295113, "TERT_C228T", None, "A", "clinical:TERT_C228T_(c.-124C>T),_recurrent_in_cancers"),
        ("chr5", 1295135, "TERT_C250T", None, "A", "clinical:TERT_C250T_(c.-146C>T),_recurrent_in_cancers"),
        ("chr5", 1295113, "TERT_C228_multiallelic", None, "A,T", "edge:multi-allelic_record"),
        ("chr5", 1295200, "TERT_MNV", None, "TG", "edge:MNV"),
        ("chr11", 5227099, "HBB_-28", None, "C", "clinical:HBB_c.-78A>G_(-28_TATA_box),_beta-thalassaemia"),
        ("chr11", 5227120, "HBB_del", None, None, "edge:3-bp_deletion"),
        ("chr11", 5227150, "HBB_ins", None, None, "edge:insertion"),
        ("chr11", 5227160, "HBB_refmismatch", "WRONG", "A", "edge:REF_disagrees_with_genome"),
        ("chr11", 5227170, "HBB_symbolic", None, "<DEL>", "edge:symbolic_allele"),
        ("chr11", 5227175, "HBB_star", None, "A,*", "edge:spanning_deletion_allele"),
        ("chr11", 5249950, "HBG1_promoter", None, "T", "HBG1_promoter_SNV"),
        ("chr19", 11089400, "LDLR_promoter", None, "T", "LDLR_promoter_SNV"),
        ("chr20", 44355600, "HNF4A_P2", None, "A", "edge:HNF4A_P2_promoter,_outside_every_Xpresso_window"),
        ("chrX", 139530600, "F9_promoter", None, "A", "F9_promoter_SNV"),
        ("chr21", 1000, "unknown_contig", "A", "G", "edge:contig_absent_from_the_FASTA"),
    ]
    for c, s, e, g, st, _ in real_genes[:3]:
        records.append((c, s + 10000 - 100, ".", None, "T", "SNV_in_a_fully_real_window"))
    assert "chr21" not in order, "the unknown-contig record needs a contig the example FASTA lacks"
    contig_rank = {c: i for i, c in enumerate(order + ["chr21"])}
    records.sort(key=lambda r: (contig_rank[r[0]], r[1]))
    lines = ["##fileformat=VCFv4.2", "##reference=hg38_promoters.fa.gz"]
    for c in order:
        lines.append(f"##contig=<ID={c},length={contig_end[c]}>")
    lines.append("##contig=<ID=chr21,length=46709983>")
    lines.append('##INFO=<ID=NOTE,Number=1,Type=String,Description="Why this record is in the demo">')
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    complement = {"A": "C", "C": "G", "G": "T", "T": "A", "N": "A"}
    for chrom, pos, vid, r, alt, note in records:
        if note == "edge:3-bp_deletion":
            r, alt = ref(chrom, pos, 4), ref(chrom, pos)
        elif note == "edge:insertion":
            r = ref(chrom, pos)
            alt = r + "GATA"
        elif note == "edge:MNV":
            r = ref(chrom, pos, 2)
            alt = "".join(complement[b] for b in r)
        elif r is None:
            r = ref(chrom, pos)
            alts = [a if a != r else complement[r] for a in alt.split(",")]
            alt = ",".join(alts)
        elif r == "WRONG":
            g = ref(chrom, pos)
            r, alt = complement[g], g
        lines.append(f"{chrom}\t{pos}\t{vid}\t{r}\t{alt}\t.\tPASS\tNOTE={note}")
    (HERE / "demo.vcf").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
