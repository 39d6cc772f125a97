"""TSS annotation: one transcription start site per gene, and an index of the gene windows around them.

Coordinates: :attr:`TSS.pos0` is the 0-based coordinate of the TSS base (the first transcribed base: the
transcript's leftmost base on ``+``, its rightmost base on ``-``).

Formats read by :func:`read_tss` (plain or gzip/bgzip; ``fmt="auto"`` goes by the file suffix):

* **BED** (``.bed``): BED6 ``chrom start end gene_id score strand`` with an optional 7th column gene name.
  By default (``offset=None``, the BED convention) the TSS is ``start`` on ``+`` and ``end - 1`` on ``-``: right
  for a BED of transcripts or gene bodies. With an offset, ``TSS = start + offset`` on both strands: right for a
  BED of windows centred on the TSS (the Xpresso BED stores TSS +-10 kb: ``offset=10000``). A BED whose intervals
  all have one even length of 1 kb or more, read without an offset, gets a warning naming the offset that would
  put the TSS at their centre. Without a 7th column, ``gene_name = gene_id``.
* **GTF** (``.gtf``) and **GFF3** (``.gff3``/``.gff``), GENCODE or Ensembl: ``transcript`` (GFF3: any feature
  whose Parent is a gene) records, grouped by gene. One transcript per gene is picked, by the first rule that
  separates them:

  1. tagged ``Ensembl_canonical``;
  2. tagged ``MANE_Select``;
  3. tagged ``basic``;
  4. transcript type/biotype ``protein_coding``;
  5. the longest genomic span (``end - start``);
  6. the smallest transcript id (a deterministic tie-break).

  A GTF with exon lines but no transcript lines uses each transcript's exon span. ``gene_name`` comes from the
  ``gene_name`` attribute (GFF3: also the gene's ``Name``), else it is the gene id.
* **TSV** (``.tsv``/``.txt``): ``gene_id gene_name chrom pos strand`` with 1-based ``pos``; an optional header
  line starting with ``gene_id``.

Columns are tab-separated (BED/TSV lines without a tab may use spaces). Lines starting with ``#`` (and BED
``track``/``browser`` lines, and a GFF3 ``##FASTA`` section) are skipped. Any malformed line, or a gene id
seen twice (BED/TSV), raises :class:`~varxpress.errors.AnnotationError` naming the file and line.

One convention for every subcommand: :func:`varxpress.models.registry.load_tss_set` is how ``prepare``, ``score``
and the interpretation subcommands get their TSS set, with one default: the file's own convention (BED: start on
``+``, end - 1 on ``-``), or, when no file is given, the bundled model's own set at its offset. A model trained on
``prepare``'s windows therefore sees, in ``score``, the same TSS base for base.

Windows (:class:`TSSIndex`): with upstream ``U`` and downstream ``D`` the genomic window is ``[t-U, t+D)`` on
``+`` and ``[t-D, t+U)`` on ``-`` (not clipped to the contig: the window builder pads with ``N``).
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from varxpress.errors import AnnotationError

__all__ = ["TSS", "read_tss", "DEFAULT_TSS", "DEFAULT_TSS_OFFSET"]

log = logging.getLogger(__name__)

#: The TSS set used when none is given, bundled in ``varxpress/data``: Xpresso's CAGE-corrected hg38 TSSs, stored
#: as BED intervals of TSS +- 10 kb, so it is read with ``TSS = start + DEFAULT_TSS_OFFSET``.
DEFAULT_TSS = "hg38_promoters_cage_corrected.bed.gz"
DEFAULT_TSS_OFFSET = 10000
#: Shortest common interval length of a BED read without offset that triggers the "centred windows?" warning.
_CENTRED_WINDOW_MIN = 1000


@dataclass(frozen=True)
class TSS:
    """One gene's TSS. ``pos0`` is 0-based; ``chrom`` is as in the annotation file; ``strand`` is ``'+'`` or ``'-'``."""

    gene_id: str
    gene_name: str
    chrom: str
    pos0: int
    strand: str


# -- reading ---------------------------------------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, tab-split fields)`` of the data lines."""
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.startswith("##FASTA"):  # GFF3: sequences follow, no more features
                return
            if not line.strip() or line.startswith("#"):
                continue
            yield lineno, line.split("\t") if "\t" in line else line.split()


def _detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    suffixes_by_format = {"bed": (".bed",), "gtf": (".gtf",), "gff3": (".gff3", ".gff"), "tsv": (".tsv", ".txt")}
    for fmt, suffixes in suffixes_by_format.items():
        if name.endswith(suffixes):
            return fmt
    raise AnnotationError(f"{path}: cannot tell the annotation format from the name; pass fmt='bed'|'gtf'|'gff3'|'tsv'")


def _int(path: Path, lineno: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise AnnotationError(f"{path}:{lineno}: {what} {value!r} is not an integer") from None


def _strand(path: Path, lineno: int, value: str) -> str:
    if value not in ("+", "-"):
        raise AnnotationError(f"{path}:{lineno}: strand {value!r} is not '+' or '-'")
    return value


def _add_unique(genes: dict[str, TSS], tss: TSS, path: Path, lineno: int, seen_at: dict[str, int]) -> None:
    if tss.gene_id in genes:
        raise AnnotationError(f"{path}:{lineno}: gene {tss.gene_id!r} already given at line {seen_at[tss.gene_id]}")
    genes[tss.gene_id] = tss
    seen_at[tss.gene_id] = lineno


def _read_bed(path: Path, offset: int | None) -> list[TSS]:
    genes: dict[str, TSS] = {}
    seen_at: dict[str, int] = {}
    lengths: set[int] = set()
    for lineno, fields in _lines(path):
        if fields[0].startswith(("track", "browser")):
            continue
        if len(fields) < 6:
            raise AnnotationError(
                f"{path}:{lineno}: BED line has {len(fields)} columns; need 6 (chrom start end gene_id score strand)"
            )
        chrom, gene_id = fields[0], fields[3]
        start = _int(path, lineno, fields[1], "start")
        end = _int(path, lineno, fields[2], "end")
        strand = _strand(path, lineno, fields[5])
        if not 0 <= start < end:
            raise AnnotationError(f"{path}:{lineno}: interval {start}-{end} is empty or negative")
        if offset is None:
            pos0 = start if strand == "+" else end - 1
        else:
            pos0 = start + offset
            if not start <= pos0 < end:
                raise AnnotationError(
                    f"{path}:{lineno}: offset {offset} puts the TSS at {pos0}, outside the interval {start}-{end}"
                )
        name = fields[6] if len(fields) > 6 and fields[6] not in ("", ".") else gene_id
        _add_unique(genes, TSS(gene_id, name, chrom, pos0, strand), path, lineno, seen_at)
        lengths.add(end - start)
    if offset is None and len(genes) > 1 and len(lengths) == 1:
        (length,) = lengths
        if length >= _CENTRED_WINDOW_MIN and length % 2 == 0:
            log.warning("%s: all %d intervals are %d bp long; read with the BED convention (TSS = start on +, "
                        "end - 1 on -). If they are windows centred on the TSS, give --tss-offset %d", path,
                        len(genes), length, length // 2)
    return list(genes.values())


def _read_tsv(path: Path) -> list[TSS]:
    genes: dict[str, TSS] = {}
    seen_at: dict[str, int] = {}
    first = True
    for lineno, fields in _lines(path):
        if first and fields[0].lower() == "gene_id":
            first = False
            continue
        first = False
        if len(fields) < 5:
            raise AnnotationError(
                f"{path}:{lineno}: TSV line has {len(fields)} columns; need 5 (gene_id gene_name chrom pos strand)"
            )
        gene_id, name, chrom = fields[0], fields[1] or fields[0], fields[2]
        pos = _int(path, lineno, fields[3], "pos")
        if pos < 1:
            raise AnnotationError(f"{path}:{lineno}: pos {pos} is not a 1-based position")
        _add_unique(genes, TSS(gene_id, name, chrom, pos - 1, _strand(path, lineno, fields[4])), path, lineno, seen_at)
    return list(genes.values())


def _gtf_attributes(text: str) -> tuple[dict[str, str], set[str]]:
    """GTF attribute column -> (first value per key, set of ``tag`` values)."""
    attrs: dict[str, str] = {}
    tags: set[str] = set()
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(" ")
        value = value.strip().strip('"')
        if key == "tag":
            tags.add(value)
        attrs.setdefault(key, value)
    return attrs, tags


def _gff3_attributes(text: str) -> tuple[dict[str, str], set[str]]:
    attrs: dict[str, str] = {}
    for item in text.split(";"):
        if "=" in item:
            key, _, value = item.strip().partition("=")
            attrs[key] = value
    tags = {unquote(t) for t in attrs.get("tag", "").split(",") if t}
    return {k: unquote(v) for k, v in attrs.items()}, tags


@dataclass
class _Transcript:
    transcript_id: str
    gene_id: str
    gene_name: str
    chrom: str
    start: int  # 0-based
    end: int  # exclusive
    strand: str
    tags: frozenset[str]
    biotype: str
    lineno: int

    def rank(self) -> tuple:
        """Sort key: smaller is preferred (see the module docstring)."""
        return (
            "Ensembl_canonical" not in self.tags,
            "MANE_Select" not in self.tags,
            "basic" not in self.tags,
            self.biotype != "protein_coding",
            -(self.end - self.start),
            self.transcript_id,
        )

    def tss(self) -> TSS:
        pos0 = self.start if self.strand == "+" else self.end - 1
        return TSS(self.gene_id, self.gene_name or self.gene_id, self.chrom, pos0, self.strand)


_SUBFEATURES = frozenset(
    {"exon", "CDS", "UTR", "five_prime_UTR", "three_prime_UTR", "start_codon", "stop_codon",
     "Selenocysteine", "stop_codon_redefined_as_selenocysteine"}
)


def _gff_fields(path: Path, lineno: int, fields: list[str]) -> tuple[str, str, int, int, str]:
    if len(fields) != 9:
        raise AnnotationError(f"{path}:{lineno}: GTF/GFF3 line has {len(fields)} tab-separated columns, need 9")
    start = _int(path, lineno, fields[3], "start")
    end = _int(path, lineno, fields[4], "end")
    if not 1 <= start <= end:
        raise AnnotationError(f"{path}:{lineno}: feature {start}-{end} is not a 1-based closed interval")
    return fields[0], fields[2], start - 1, end, fields[6]


def _read_gtf(path: Path) -> list[_Transcript]:
    transcripts: dict[str, _Transcript] = {}
    exon_spans: dict[str, _Transcript] = {}
    for lineno, fields in _lines(path):
        feature = fields[2] if len(fields) == 9 else ""
        if feature != "transcript" and (feature != "exon" or transcripts) and len(fields) == 9:
            continue  # cheap skip of the many lines not used
        chrom, feature, start, end, strand = _gff_fields(path, lineno, fields)
        strand = _strand(path, lineno, strand)
        attrs, tags = _gtf_attributes(fields[8])
        gene_id, tx_id = attrs.get("gene_id"), attrs.get("transcript_id")
        if not gene_id or not tx_id:
            raise AnnotationError(f"{path}:{lineno}: {feature} line lacks gene_id or transcript_id")
        biotype = attrs.get("transcript_type") or attrs.get("transcript_biotype") or ""
        tx = _Transcript(tx_id, gene_id, attrs.get("gene_name", ""), chrom, start, end, strand,
                         frozenset(tags), biotype, lineno)
        if feature == "transcript":
            if tx_id in transcripts:
                raise AnnotationError(f"{path}:{lineno}: transcript {tx_id!r} already given at line "
                                      f"{transcripts[tx_id].lineno}")
            transcripts[tx_id] = tx
        elif not transcripts:
            old = exon_spans.get(tx_id)
            if old is None:
                exon_spans[tx_id] = tx
            else:
                old.start, old.end = min(old.start, start), max(old.end, end)
    return list(transcripts.values()) if transcripts else list(exon_spans.values())


def _read_gff3(path: Path) -> list[_Transcript]:
    genes: dict[str, tuple[str, str]] = {}  # gene record ID -> (gene_id, gene_name)
    candidates: list[tuple[list[str], _Transcript]] = []
    for lineno, fields in _lines(path):
        if len(fields) == 9 and fields[2] in _SUBFEATURES:
            continue
        chrom, feature, start, end, strand = _gff_fields(path, lineno, fields)
        attrs, tags = _gff3_attributes(fields[8])
        parents = [p for p in attrs.get("Parent", "").split(",") if p]
        if not parents:  # a gene-level record
            if "ID" in attrs:
                record_id = attrs["ID"]
                gene_id = attrs.get("gene_id") or record_id.removeprefix("gene:")
                genes[record_id] = (gene_id, attrs.get("gene_name") or attrs.get("Name", ""))
            continue
        strand = _strand(path, lineno, strand)
        tx_id = attrs.get("transcript_id") or attrs.get("ID", "").removeprefix("transcript:") or f"line{lineno}"
        biotype = attrs.get("transcript_type") or attrs.get("biotype") or attrs.get("transcript_biotype") or ""
        tx = _Transcript(tx_id, "", attrs.get("gene_name", ""), chrom, start, end, strand, frozenset(tags), biotype,
                         lineno)
        candidates.append((parents, tx))
    if not candidates and genes:
        raise AnnotationError(
            f"{path}: no feature has a Parent: this flat GFF3 ({len(genes)} records with an ID only, e.g. "
            f"{next(iter(genes))}) does not say which gene each transcript belongs to. Write one TSS per gene as "
            "BED instead (chrom, TSS - 1, TSS, gene id, score, strand; a GFF3 record's TSS is its start on + and "
            "its end on -), with the gene ids your labels and outputs should use")
    out = []
    for parents, tx in candidates:
        for parent in parents:
            if parent in genes:
                gene_id, gene_name = genes[parent]
                out.append(_Transcript(tx.transcript_id, gene_id, tx.gene_name or gene_name, tx.chrom, tx.start, tx.end,
                                       tx.strand, tx.tags, tx.biotype, tx.lineno))
    return out


def _pick_per_gene(transcripts: list[_Transcript], path: Path) -> list[TSS]:
    best: dict[str, _Transcript] = {}
    for tx in transcripts:
        old = best.get(tx.gene_id)
        if old is None or tx.rank() < old.rank():
            best[tx.gene_id] = tx
    if not best:
        raise AnnotationError(f"{path}: no transcript records found (GTF 'transcript'/'exon' lines, GFF3 features "
                              f"with a gene Parent)")
    return [tx.tss() for tx in best.values()]


def read_tss(path: str | os.PathLike, offset: int | None = None, fmt: str = "auto") -> list[TSS]:
    """Read one TSS per gene from a BED, GTF, GFF3 or TSV file (see the module docstring for the rules).

    Args:
        path: annotation file, plain or gzip-compressed.
        offset: BED only: ``None`` (default): ``start`` on +, ``end - 1`` on -; else TSS = ``start + offset``
            on both strands (Xpresso BED: 10000).
        fmt: ``"auto"`` (by suffix), ``"bed"``, ``"gtf"``, ``"gff3"`` or ``"tsv"``.

    Returns:
        TSS records in file order (GTF/GFF3: order of each gene's first transcript).

    Raises:
        AnnotationError: unreadable file, unknown format, malformed line or duplicate gene (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file {path} does not exist or is not a file")
    fmt = _detect_format(path) if fmt == "auto" else fmt.lower()
    try:
        if fmt == "bed":
            result = _read_bed(path, offset)
        elif fmt == "tsv":
            result = _read_tsv(path)
        elif fmt == "gtf":
            result = _pick_per_gene(_read_gtf(path), path)
        elif fmt in ("gff3", "gff"):
            result = _pick_per_gene(_read_gff3(path), path)
        else:
            raise AnnotationError(f"{path}: unknown annotation format {fmt!r}; use 'bed', 'gtf', 'gff3' or 'tsv'")
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise AnnotationError(f"{path}: cannot read as {fmt} text: {exc}") from exc
    if not result:
        raise AnnotationError(f"{path}: no genes found")
    log.info("read %d TSSs from %s", len(result), path)
    return result
