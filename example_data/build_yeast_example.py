#!/usr/bin/env python3
"""Rebuild the yeast example (see example_data/README.md) from ``../shared/data/yeast``.

Writes, next to this script:

* ``yeast_R64_chrI_chrIII.fa.gz`` (+ ``.fai``, ``.gzi``): chromosomes I and III of S. cerevisiae R64-1-1, whole and
  unchanged, as contigs ``chrI`` and ``chrIII`` (the names of the bundled yeast TSS set), bgzip-compressed.
* ``yeast_demo.vcf``: variants in the promoters of real genes at true R64 coordinates, REF read from that
  sequence, plus one record outside every gene window.

Run: ``python example_data/build_yeast_example.py [--shared ../shared/data]``. Needs pysam.
"""
import argparse
import gzip
from pathlib import Path

import pysam

HERE = Path(__file__).resolve().parent
FASTA = "yeast_R64_chrI_chrIII.fa.gz"
GENOME = "yeast/genome/Saccharomyces_cerevisiae.R64-1-1.dna.chromosome.{}.fa.gz"

# (id, contig, gene, strand, 0-based TSS from the TIF-seq set, distance upstream of the TSS, kind). Distances stay
# within 200 bp upstream so that every window the yeast search allows (upstream >= 250) holds them.
VARIANTS = [
    ("CDC19_-60", "chrI", "YAL038W", "+", 71758, 60, "snv"),
    ("EFB1_-90", "chrI", "YAL003W", "+", 142152, 90, "snv"),
    ("SSA1_-120", "chrI", "YAL005C", "-", 141492, 120, "snv"),
    ("PGK1_-70", "chrIII", "YCR012W", "+", 137705, 70, "snv"),
    ("PGK1_-150_del", "chrIII", "YCR012W", "+", 137705, 150, "del"),
    ("GLK1_-100", "chrIII", "YCL040W", "+", 50808, 100, "snv"),
    ("ILV6_-80", "chrIII", "YCL009C", "-", 105562, 80, "snv"),
]
OUTSIDE = ("chrI_telomere", "chrI", 500)  # 9.3 kb before chrI's first TSS: outside every gene window
OTHER = {"A": "G", "C": "T", "G": "A", "T": "C"}


def write_fasta(shared: Path) -> Path:
    plain = HERE / FASTA.removesuffix(".gz")
    with plain.open("w") as dst:
        for roman in ("I", "III"):
            with gzip.open(shared / GENOME.format(roman), "rt") as fh:
                fh.readline()
                dst.write(f">chr{roman}\n")
                dst.writelines(fh)
    out = HERE / FASTA
    pysam.tabix_compress(str(plain), str(out), force=True)
    plain.unlink()
    pysam.faidx(str(out))
    return out


def write_vcf(fasta: Path) -> None:
    fa = pysam.FastaFile(str(fasta))
    rows = []
    for vid, chrom, gene, strand, tss0, dist, kind in VARIANTS:
        pos0 = tss0 - dist if strand == "+" else tss0 + dist  # upstream = against the direction of transcription
        if kind == "snv":
            ref = fa.fetch(chrom, pos0, pos0 + 1).upper()
            rows.append((chrom, pos0 + 1, vid, ref, OTHER[ref], f"GENE={gene}"))
        else:  # a 3-bp deletion, VCF-style with the preceding base
            ref = fa.fetch(chrom, pos0 - 1, pos0 + 3).upper()
            rows.append((chrom, pos0, vid, ref, ref[0], f"GENE={gene}"))
    vid, chrom, pos = OUTSIDE
    ref = fa.fetch(chrom, pos - 1, pos).upper()
    rows.append((chrom, pos, vid, ref, OTHER[ref], "GENE=."))
    rows.sort(key=lambda r: (r[0] != "chrI", r[1]))
    header = [
        "##fileformat=VCFv4.2",
        "##reference=S. cerevisiae R64-1-1 (SGD), chromosomes I and III as chrI, chrIII",
        *(f"##contig=<ID={name},length={fa.get_reference_length(name)}>" for name in ("chrI", "chrIII")),
        '##INFO=<ID=GENE,Number=1,Type=String,Description="Gene whose promoter the variant was placed in (illustration, '
        'not a known variant)">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    with (HERE / "yeast_demo.vcf").open("w") as fh:
        fh.write("\n".join(header) + "\n")
        for chrom, pos, vid, ref, alt, info in rows:
            fh.write(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t.\t.\t{info}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    write_vcf(write_fasta(args.shared))


if __name__ == "__main__":
    main()
