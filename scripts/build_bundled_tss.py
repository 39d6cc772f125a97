#!/usr/bin/env python3
"""Rebuild the bundled TSS set ``varxpress/data/hg38_promoters_cage_corrected.bed.gz`` from ``../shared/data``.

Input (see ``shared/data/README.md``):

* ``xpresso/hg38_promoters_cage_corrected.bed.gz``: Xpresso's CAGE-corrected TSS +- 10 kb per gene, BED6
  (``chrom start end gene_id 0 strand``), 18,413 genes;
* ``xpresso/gene_symbols_hg38.tsv.gz``: ``gene_id symbol biotype`` for the same genes, from Ensembl's GRCh38 gene
  annotation (18,227 have a symbol).

Output: the same lines, in the same order, with a 7th column, the gene symbol (``.`` where Ensembl has none, which
varxpress reads as "use the gene id"). The gene id stays the BED name. gzip with a fixed time stamp, so the same
inputs give the same bytes.

Run: ``python scripts/build_bundled_tss.py [--shared ../shared/data]``.
"""
import argparse
import gzip
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "varxpress" / "data" / "hg38_promoters_cage_corrected.bed.gz"


def read_symbols(path: Path) -> dict[str, str]:
    symbols = {}
    with gzip.open(path, "rt") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:2] != ["gene_id", "symbol"]:
            raise SystemExit(f"{path}: expected the columns gene_id, symbol; found {header}")
        for line in fh:
            gene_id, symbol = line.rstrip("\n").split("\t")[:2]
            if any(c in symbol for c in " \t;=,|"):
                raise SystemExit(f"{path}: symbol {symbol!r} of {gene_id} would break a VCF INFO value")
            symbols[gene_id] = symbol
    return symbols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    symbols = read_symbols(args.shared / "xpresso" / "gene_symbols_hg38.tsv.gz")
    lines, named = [], 0
    with gzip.open(args.shared / "xpresso" / "hg38_promoters_cage_corrected.bed.gz", "rt") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 6:
                raise SystemExit(f"expected BED6, found {len(fields)} columns: {line!r}")
            symbol = symbols.get(fields[3]) or "."
            named += symbol != "."
            lines.append("\t".join(fields + [symbol]) + "\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
        gz.write("".join(lines).encode())
    OUT.write_bytes(buffer.getvalue())
    print(f"{OUT}: {len(lines)} genes, {named} with a symbol")


if __name__ == "__main__":
    main()
