"""Copy lentiMPRA sequence tables without the elements another library also holds, for pretraining without leaks.

Usage: python recipes/mpra/exclude_sequences.py --exclude WTC11_valid.tsv.gz --exclude WTC11_test.tsv.gz \
           --flank 15 IN.tsv.gz OUT.tsv.gz [IN2.tsv.gz OUT2.tsv.gz ...]

An element is left out when its insert (the sequence without the library's constant flanks of ``--flank`` bases on
each side) or that insert's reverse complement is the insert of any row of an ``--exclude`` table: the libraries
hold elements in both orientations, and `prepare --split group` groups them the same way. Tables are TSVs with a
``seq`` column (gzip or plain); rows are copied as they are. Prints how many rows each table kept and left out.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def _open(path: Path, mode: str):
    return gzip.open(path, mode + "t") if path.suffix == ".gz" else open(path, mode)


def _insert(seq: str, flank: int) -> str:
    seq = seq.strip().upper()
    return seq[flank:len(seq) - flank] if flank else seq


def inserts(path: Path, flank: int) -> set[str]:
    """Every insert of the table and its reverse complement."""
    found: set[str] = set()
    with _open(path, "r") as fh:
        column = fh.readline().rstrip("\n").split("\t").index("seq")
        for line in fh:
            insert = _insert(line.rstrip("\n").split("\t")[column], flank)
            found.update((insert, insert.translate(COMPLEMENT)[::-1]))
    return found


def copy_without(source: Path, target: Path, excluded: set[str], flank: int) -> tuple[int, int]:
    """Copy ``source`` to ``target`` without the rows whose insert is in ``excluded``; ``(kept, left out)``."""
    kept = dropped = 0
    with _open(source, "r") as fh, _open(target, "w") as out:
        header = fh.readline()
        out.write(header)
        column = header.rstrip("\n").split("\t").index("seq")
        for line in fh:
            if _insert(line.rstrip("\n").split("\t")[column], flank) in excluded:
                dropped += 1
            else:
                out.write(line)
                kept += 1
    return kept, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exclude", action="append", type=Path, required=True, help="table whose elements to drop")
    parser.add_argument("--flank", type=int, default=15, help="constant bases at each end of a library sequence")
    parser.add_argument("pairs", nargs="+", type=Path, help="IN OUT pairs")
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give IN OUT pairs")
    excluded = set().union(*(inserts(path, args.flank) for path in args.exclude))
    for source, target in zip(args.pairs[::2], args.pairs[1::2]):
        kept, dropped = copy_without(source, target, excluded, args.flank)
        print(f"{source} -> {target}: kept {kept}, left out {dropped} also in {', '.join(map(str, args.exclude))}")


if __name__ == "__main__":
    main()
