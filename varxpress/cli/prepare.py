"""``varxpress prepare``: the options, and the call into :mod:`varxpress.learning.dataset` (or
:mod:`varxpress.learning.seqtable` for ``--sequence-table``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from varxpress.cli.learning_options import add_align, add_seed
from varxpress.cli.types import count_or_fraction, existing_path, name_list, non_negative_int, positive_float, \
    positive_int
from varxpress.errors import DatasetError
from varxpress.io.genome import read_contig_map
from varxpress.io.tables import read_feature_table, read_label_table
from varxpress.learning.dataset import SequenceSetOptions, prepare_genomic, prepare_sequences
from varxpress.learning.seqtable import prepare_sequence_tables


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress prepare``."""
    src = parser.add_argument_group("input")
    src.add_argument("--labels", type=existing_path,
                     help="per-gene label table (TSV/CSV, optional header): id and expression value")
    src.add_argument("--sequence-table", type=existing_path, action="append", default=None,
                     help="table of sequences and measured values (`seq value` or `id seq value`, e.g. an MPRA "
                          "library), instead of --labels; repeat to pool tables (see docs/training.md)")
    src.add_argument("--adapters", default="none",
                     help="--sequence-table: constant flanks to strip: none (default), auto (the longest prefix "
                          "and suffix every row shares) or PREFIX,SUFFIX")
    src.add_argument("--value-log-base", type=float, default=None,
                     help="--sequence-table: the values are logarithms to this base (2 for a log2 RNA/DNA ratio); "
                          "they are stored as log10 so deltas come out in log10 units (default: as they are)")
    src.add_argument("--genome", type=existing_path, help="reference FASTA (plain or bgzip), with --tss")
    src.add_argument("--tss", type=existing_path, help="TSS annotation: BED, GTF, GFF3 or TSV (as for `score`)")
    src.add_argument("--sequences", type=existing_path,
                     help="FASTA of sequences to use directly instead of --genome/--tss (ids as in --labels)")
    src.add_argument("--features", type=existing_path,
                     help="optional per-gene feature table with a header (e.g. mRNA half-life features)")
    src.add_argument("--feature-columns", type=name_list, default=None,
                     help="comma-separated feature columns to use (default: all but the id column)")
    src.add_argument("--id-column", default=None, help="id column of the label/feature table (name or 1-based)")
    src.add_argument("--label-column", default=None, help="label column (name or 1-based number; default: 2nd)")
    src.add_argument("--label-transform", choices=("none", "log10"), default="none",
                     help="transform labels: log10(value + --pseudocount) (default: none)")
    src.add_argument("--pseudocount", type=positive_float, default=0.1, help="pseudocount for --label-transform log10")
    src.add_argument("--label-units", default=None,
                     help="what the labels are, recorded in the set and in models trained on it (default: 'log10 "
                          "expression' with --label-transform log10, else 'expression as given in the label table')")
    src.add_argument("--tss-offset", type=int, default=None,
                     help="TSS = BED start + OFFSET on both strands (10000 for the Xpresso TSS +- 10 kb BED); "
                          "default: BED convention, start on + and end-1 on -, as for `score`")
    src.add_argument("--tss-format", default="auto", help="TSS file format: auto, bed, gtf, gff3, tsv")
    src.add_argument("--contig-map", type=existing_path, help="two-column TSV of contig name aliases")
    src.add_argument("--genome-build", default="unknown", help="assembly name recorded in the set, e.g. hg38")
    win = parser.add_argument_group("window")
    win.add_argument("--upstream", type=non_negative_int, default=10000,
                     help="stored bases upstream of the TSS (default 10000; models may use fewer)")
    win.add_argument("--downstream", type=non_negative_int, default=10000,
                     help="stored bases from the TSS on, TSS included (default 10000)")
    win.add_argument("--length", type=positive_int, default=None,
                     help="--sequences: window length (default: longest record); shorter ones are N-padded")
    win.add_argument("--tss-index", type=non_negative_int, default=None,
                     help="--sequences: window index of the TSS (default: length // 2)")
    add_align(win, "--sequences: how records of another length are padded/cropped (default: center)")
    spl = parser.add_argument_group("split")
    spl.add_argument("--split", choices=("random", "chrom", "group"), default=None,
                     help="random genes, held-out chromosomes (--test-chroms/--valid-chroms), or, for "
                          "--sequence-table, whole leak groups (same element in either orientation, identical or "
                          "reverse-complementary sequence) (default: group for --sequence-table, chrom with "
                          "--test-chroms/--valid-chroms, else random)")
    spl.add_argument("--test-size", type=count_or_fraction, default=1000.0,
                     help="test items: a count or a fraction (default 1000, as Xpresso)")
    spl.add_argument("--valid-size", type=count_or_fraction, default=1000.0,
                     help="validation items: a count or a fraction (default 1000)")
    spl.add_argument("--test-chroms", type=name_list, default=[],
                     help="--split chrom (implied when given): test contigs, e.g. chr8,chr9")
    spl.add_argument("--valid-chroms", type=name_list, default=[],
                     help="--split chrom: validation chromosomes (default: --valid-size random genes)")
    add_seed(spl, "seed of the random split (default 0)")
    parser.add_argument("-o", "--out", required=True, type=Path, help="output prepared set (.vxd.h5)")


def _units(args: argparse.Namespace) -> str:
    """The labels' units: as given, else what the transform makes of them (raw values are not log10)."""
    if args.label_units:
        return args.label_units
    return "log10 expression" if args.label_transform == "log10" else "expression as given in the label table"


def run(args: argparse.Namespace) -> int:
    """Run ``varxpress prepare``; returns the exit status."""
    if args.sequence_table:
        if args.labels or args.sequences or args.genome or args.tss or args.features:
            raise DatasetError("--sequence-table carries its own values: give it without --labels, --sequences, "
                               "--genome, --tss or --features")
        options = SequenceSetOptions(length=args.length, tss_index=args.tss_index, align=args.align,
                                     split_method=args.split or "group", test_size=args.test_size,
                                     valid_size=args.valid_size, seed=args.seed, label_units=_units(args))
        prepare_sequence_tables(args.sequence_table, args.out, adapters=args.adapters, id_column=args.id_column,
                                label_column=args.label_column, value_log_base=args.value_log_base, options=options)
        return 0
    chroms = args.test_chroms or args.valid_chroms
    if chroms and args.split not in (None, "chrom"):
        raise DatasetError(f"--test-chroms/--valid-chroms hold out whole contigs, which only --split chrom does "
                           f"(not --split {args.split})")
    split = args.split or ("chrom" if chroms else "random")  # held-out contigs named: a split by contig
    if split == "group":
        raise DatasetError("--split group needs --sequence-table (groups come from sequences and element ids)")
    if not args.labels:
        raise DatasetError("give --labels (with --genome/--tss or --sequences) or --sequence-table")
    if bool(args.sequences) == bool(args.genome or args.tss):
        raise DatasetError("give either --genome and --tss (genomic windows) or --sequences (a FASTA), not both")
    labels = read_label_table(args.labels, args.id_column, args.label_column, args.label_transform,
                              args.pseudocount)
    features = (read_feature_table(args.features, args.id_column, args.feature_columns)
                if args.features else None)
    if args.sequences:
        options = SequenceSetOptions(length=args.length, tss_index=args.tss_index, align=args.align,
                                     split_method=split, test_size=args.test_size, valid_size=args.valid_size,
                                     seed=args.seed, label_units=_units(args))
        prepare_sequences(args.sequences, labels, args.out, features=features, options=options)
    else:
        if not (args.genome and args.tss):
            raise DatasetError("genomic windows need both --genome and --tss")
        contig_map = read_contig_map(args.contig_map) if args.contig_map else None
        prepare_genomic(args.genome, args.tss, labels, args.out, upstream=args.upstream,
                        downstream=args.downstream, tss_offset=args.tss_offset, tss_format=args.tss_format,
                        contig_map=contig_map, genome_build=args.genome_build, test_chroms=args.test_chroms,
                        valid_chroms=args.valid_chroms, features=features, split_method=split,
                        test_size=args.test_size, valid_size=args.valid_size, seed=args.seed,
                        label_units=_units(args))
    return 0
