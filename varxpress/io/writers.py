"""Writers: the annotated VCF (every input record, in input order) and the per-(variant, allele, gene) TSV.

Both are opened through :mod:`varxpress.io.outputs`: a regular file is written into a partial file beside the destination,
renamed over it only when complete, so an error, a crash, Ctrl-C or SIGTERM never leaves a half-written output
behind; ``-``, devices and FIFOs are written in place.

INFO fields added to the VCF (declared in its header; see docs/output.md):

* ``VXP`` (Number=., String): one entry per scored (ALT allele, gene), pipe-delimited in the order of
  :data:`VXP_FIELDS` (the Description says "Format: ..." so ``bcftools +split-vep -a VXP`` can split it).
* ``VXP_MAX_DELTA`` (Number=A, Float), ``VXP_MAX_GENE`` (Number=A, String) and ``VXP_MAX_PCT`` (Number=A,
  Float): the largest-effect gene per allele, its delta and the percentile of its |delta| in the background.
* ``VXP_SKIP`` (Number=., String): why each ALT allele was not scored, ``.`` where it was.

Scored with an ensemble or a combination of models (:mod:`varxpress.models.combination`), ``VXP`` gets one more
field at the end, ``MemberDeltas`` (each member's delta, ``&``-separated in member order, ``.`` where a combination
member's window does not hold the variant), and the TSV one ``delta_<member>`` column per member at the end; a
single model's outputs have neither.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import subprocess
from typing import IO, Iterable, Sequence

import cyvcf2

from varxpress.errors import OutputError, ReaderGone, UsageError
from varxpress.io.inputs import open_bytes
from varxpress.io.outputs import PipedOutput, atomic_path, gzip_output
from varxpress.scoring.scores import GeneScore, strongest

log = logging.getLogger(__name__)

VXP_FIELDS = ("Allele", "Consequence", "Gene", "Symbol", "Strand", "TSS", "Distance", "RefPred", "AltPred", "Delta", "Log2FC",
              "Percentile", "DeltaSD", "SignAgreement", "Flags", "NFrac")
TSV_COLUMNS = (
    "chrom", "pos", "id", "ref", "alt", "record", "gene_id", "gene_name", "strand", "tss_pos", "distance",
    "ref_pred", "alt_pred", "delta", "log2fc", "percentile", "delta_sd", "sign_agreement", "flags",
    "n_frac",
)
# Sequence Ontology term of every VXP entry (SO:0001566): the promoter window the model reads is the regulatory
# region. bcftools +split-vep requires a Consequence subfield.
CONSEQUENCE = "regulatory_region_variant"
INFO_IDS = ("VXP", "VXP_MAX_DELTA", "VXP_MAX_GENE", "VXP_MAX_PCT", "VXP_SKIP")
MEMBER_FIELD = "MemberDeltas"  #: the field VXP gets at its end when an ensemble or a combination is scored


def _fmt(x: float | None) -> str:
    return "." if x is None else f"{x:.6g}"


@functools.lru_cache(maxsize=1 << 16)  # gene ids and symbols repeat on every record near the gene
def _vcf_safe(text: str) -> str:
    """INFO values may not hold ``;``, ``=``, ``,``, ``|`` or whitespace."""
    for ch in ";=,| \t":
        text = text.replace(ch, "_")
    return text or "."


class TsvWriter(PipedOutput):
    """Streams GeneScore rows to a TSV (gzip if the name ends in .gz) through :func:`atomic_path`; ``-`` is stdout.

    When the reader of a pipe goes away (``--tsv - | head``), the rows stop there and :attr:`reader_gone` is set;
    the caller finishes its other outputs and then reports it (:class:`ReaderGone`), never blaming the disk.
    """

    def __init__(self, path: str, header_lines: Iterable[str] = (), members: Sequence[str] = ()):
        self.path = path
        self.rows = 0
        self.reader_gone = False
        self._stack = contextlib.ExitStack()
        if path == "-":
            import sys

            self._fh: IO[str] = sys.stdout
        else:
            tmp = self._stack.enter_context(atomic_path(path, stream=True))
            gz = path.lower().endswith(".gz")
            self._fh = self._stack.enter_context(gzip_output(tmp) if gz else open(tmp, "w"))
        columns = TSV_COLUMNS + tuple(f"delta_{m}" for m in members)  # an ensemble's or combination's members
        self._write("".join(f"## {line}\n" for line in header_lines) + "\t".join(columns) + "\n")

    def _write(self, text: str) -> None:
        self._write_to(self._fh, text)

    def write(self, chrom: str, pos: int, vid: str, ref: str, score: GeneScore) -> None:
        row = (
            chrom, str(pos), vid, ref, score.alt, str(score.record + 1), score.gene_id, score.gene_name,
            score.strand, str(score.tss_pos), str(score.distance), _fmt(score.ref_pred), _fmt(score.alt_pred),
            _fmt(score.delta), _fmt(score.log2fc), _fmt(score.percentile), _fmt(score.delta_sd),
            _fmt(score.sign_agreement), ",".join(score.flags) or ".", _fmt(score.n_fraction),
        ) + tuple(_fmt(d) for d in score.member_deltas or ())
        self._write("\t".join(row) + "\n")
        self.rows += 1

    def close(self, ok: bool = True) -> None:
        """Finish the file (``ok``) or remove the partial one; raises :class:`ReaderGone` after a broken pipe."""
        if ok:
            def close() -> None:
                if self.path == "-" and not self.reader_gone:
                    self._fh.flush()
                self._stack.close()

            self._closing(close)
        else:  # the partial file is removed; a failing flush of it (a full disk) must not hide the first error
            with contextlib.suppress(OSError):
                self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def check_reader(self) -> None:
        """Raise :class:`ReaderGone` when the pipe's reader went away (call once the other outputs are complete)."""
        if self.reader_gone:
            where = "standard output" if self.path == "-" else self.path
            raise ReaderGone(f"the reader of {where} went away (e.g. `| head`) after at most {self.rows} of the "
                             f"TSV rows: the TSV is incomplete; every other output was written in full")


#: added to the VXP_SKIP Description when records outside every window are written unmarked (the default)
UNMARKED_NOTE = ("; a record with neither VXP nor VXP_SKIP lies outside every gene window of the model (each of its "
                 "alleles would be no_gene_in_window)")


def add_header(vcf, header_lines: Iterable[tuple[str, str]], unmarked_outside: bool = False,
               members: Sequence[str] = (), combined: bool = False) -> list[str]:
    """Declare the varxpress INFO fields and provenance lines (``unmarked_outside``: records outside every window
    carry no ``VXP_SKIP``, and its Description says so; ``members``: an ensemble's or combination's member names,
    in order, and ``VXP`` then ends with ``MemberDeltas``; ``combined``: they are a combination's, whose members
    read different windows).

    Returns the IDs the input already declared (their declarations are replaced, with a warning): pass them to
    :func:`annotate` so the records' own values of those fields are removed too.
    """
    collisions = []
    for info_id in INFO_IDS:
        try:
            vcf.get_header_type(info_id)
        except KeyError:
            continue
        log.warning("input already declares INFO/%s: its values are replaced by varxpress's", info_id)
        vcf.remove_header(info_id)
        collisions.append(info_id)
    fields = VXP_FIELDS + ((MEMBER_FIELD,) if members else ())
    where = (f" ({MEMBER_FIELD}: Delta of each member model, & between them, in the order {'&'.join(members)}"
             + ("; . where its window does not hold the variant" if combined else "") + ")") if members else ""
    vcf.add_info_to_header({
        "ID": "VXP", "Number": ".", "Type": "String",
        "Description": "varxpress predicted expression change per ALT allele and gene" + where + ". Format: "
                       + "|".join(fields),
    })
    vcf.add_info_to_header({
        "ID": "VXP_MAX_DELTA", "Number": "A", "Type": "Float",
        "Description": "varxpress: Delta (alt - ref prediction) of the gene with the largest |Delta|, per ALT allele",
    })
    vcf.add_info_to_header({
        "ID": "VXP_MAX_GENE", "Number": "A", "Type": "String",
        "Description": "varxpress: gene with the largest |Delta|, per ALT allele",
    })
    vcf.add_info_to_header({
        "ID": "VXP_MAX_PCT", "Number": "A", "Type": "Float",
        "Description": "varxpress: percentile of |Delta| of that gene in the model's background distribution, per "
                       "ALT allele (absent without a background)",
    })
    vcf.add_info_to_header({
        "ID": "VXP_SKIP", "Number": ".", "Type": "String",
        "Description": "varxpress: why each ALT allele was not scored, in ALT order (. = scored; one value for a "
                       "record without ALT)" + (UNMARKED_NOTE if unmarked_outside else "") + "; see docs/output.md",
    })
    for key, value in header_lines:
        vcf.add_to_header(f"##{key}={value}")
    return collisions


PROVENANCE = "##varxpress_"  #: the prefix of the provenance lines :func:`add_header` writes


def earlier_provenance(vcf) -> bool:
    """Whether the input carries provenance lines of an earlier varxpress run (it was scored before); says so.

    Call before :func:`add_header`: this run's lines replace them (:func:`fresh_header`), so the output names only
    the model and reference that produced its scores."""
    earlier = f"\n{PROVENANCE}" in "\n" + vcf.raw_header
    if earlier:
        log.warning("the input was scored by varxpress before: its ##varxpress_* header lines (model, reference, "
                    "TSS set, ...) are replaced by this run's")
    return earlier


def fresh_header(raw_header: str, provenance: Iterable[tuple[str, str]]) -> str:
    """Header text for the output: ``raw_header`` without any ``##varxpress_*`` line, then this run's provenance
    lines, then the ``#CHROM`` line. htslib keeps the lines its header was read with, so the text is made here."""
    lines = raw_header.rstrip("\n").split("\n")
    kept = [line for line in lines[:-1] if not line.startswith(PROVENANCE)]
    return "\n".join(kept + [f"##{key}={value}" for key, value in provenance] + lines[-1:]) + "\n"


class Reheadered:
    """A cyvcf2 writer with a header of its own text (:func:`fresh_header`). The reader's records number their
    INFO, FORMAT and contig names by the reader's header, so each is written through its text, parsed against the
    writer's header: slower, and used only where an earlier run's lines must go."""

    def __init__(self, path: str, header_text: str, mode: str) -> None:
        self._writer = cyvcf2.Writer.from_string(path, header_text, mode=mode)

    def write_header(self) -> None:
        self._writer.write_header()

    def write_record(self, record) -> None:
        self._writer.write_record(self._writer.variant_from_string(str(record).rstrip("\n")))

    def close(self) -> None:
        self._writer.close()


def annotate(record, n_alts: int, scores: list[GeneScore], skips: dict[int, str],
             clear: Iterable[str] = ()) -> None:
    """Set the varxpress INFO fields of a cyvcf2 record from its scores and per-allele skip reasons.

    ``clear``: INFO IDs of ours that the input also used (from :func:`add_header`); the record's values go first.
    """
    for info_id in clear:
        with contextlib.suppress(KeyError):
            del record.INFO[info_id]
    if scores:
        record.INFO["VXP"] = ",".join(
            "|".join((
                _vcf_safe(s.alt), CONSEQUENCE, _vcf_safe(s.gene_id), _vcf_safe(s.gene_name), s.strand, str(s.tss_pos),
                str(s.distance), _fmt(s.ref_pred), _fmt(s.alt_pred), _fmt(s.delta), _fmt(s.log2fc),
                _fmt(s.percentile), _fmt(s.delta_sd), _fmt(s.sign_agreement), "&".join(s.flags) or ".",
                _fmt(s.n_fraction),
            ) + (() if s.member_deltas is None else ("&".join(_fmt(d) for d in s.member_deltas),)))
            for s in scores
        )
        best_delta, best_gene, best_pct = [], [], []
        for alt_index in range(n_alts):
            best = strongest([s for s in scores if s.alt_index == alt_index])
            best_delta.append(_fmt(best.delta) if best else ".")
            best_gene.append(_vcf_safe(best.gene_name) if best else ".")
            best_pct.append(_fmt(best.percentile) if best else ".")
        record.INFO["VXP_MAX_DELTA"] = ",".join(best_delta)
        record.INFO["VXP_MAX_GENE"] = ",".join(best_gene)
        if any(p != "." for p in best_pct):
            record.INFO["VXP_MAX_PCT"] = ",".join(best_pct)
    if skips:
        record.INFO["VXP_SKIP"] = ",".join(skips.get(i, ".") for i in range(max(n_alts, 1)))


def check_written(path: str, records: int, dest: str | None = None) -> None:
    """Read a finished VCF/VCF.gz/BCF back and check it holds ``records`` records.

    cyvcf2's writer ignores failed writes (a full disk, a quota, a file-size limit): htslib logs an error and the
    file is silently short. Reading it back is the only way to know that every record reached the disk.

    Raises:
        OutputError: the file is unreadable, truncated or holds another number of records; names ``dest``.
    """
    dest = dest or path
    found = -1
    try:
        if vcf_write_mode(dest) == "w":
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() and (fh.seek(-1, os.SEEK_END), fh.read(1))[1] != b"\n":
                    raise OSError("the last line is incomplete")
        found = sum(1 for _ in cyvcf2.VCF(path)) if vcf_write_mode(dest) == "wb" else _text_records(path)
    except Exception as exc:  # cyvcf2 raises bare Exception on a damaged file
        raise OutputError(f"cannot write {dest}: the written file is damaged ({exc}); is the disk full?") from exc
    if found != records:
        raise OutputError(f"cannot write {dest}: only {found} of {records} records reached the disk; is the disk "
                          f"full?")


def _text_records(path: str) -> int:
    """Data lines of a plain or BGZF text VCF, counted without parsing them (gzip refuses a damaged stream)."""
    with open_bytes(path) as fh:
        for line in fh:  # the header
            if not line.startswith(b"#"):
                n = 1
                break
        else:
            return 0
        while block := fh.read(1 << 20):
            n += block.count(b"\n")
        return n


def vcf_write_mode(path: str, level: int | None = None) -> str:
    """cyvcf2 Writer mode for an output name: BCF (``.bcf``), BGZF-compressed VCF (``.gz``, ``.bgz``, as bcftools
    does for any such name) or plain VCF (anything else, ``-`` included); with ``level`` (0-9, for a compressed
    output) its BGZF compression level appended, as htslib reads it (``wz1``)."""
    lower = path.lower()  # X.VCF.GZ is compressed, as bcftools takes it
    mode = "wb" if lower.endswith(".bcf") else "wz" if lower.endswith((".gz", ".bgz")) else "w"
    return mode if level is None or mode == "w" else f"{mode}{level}"


def check_compression_level(level: int | None, path: str) -> None:
    """Refuse a BGZF compression ``level`` outside 0-9, or given for an output that is not compressed."""
    if level is None:
        return
    if not isinstance(level, int) or not 0 <= level <= 9:
        raise UsageError(f"compression level {level!r}: give 0 (none) to 9 (smallest)")
    if vcf_write_mode(path) == "w":
        raise UsageError(f"a compression level applies to a compressed output (.vcf.gz, .bcf); {path} is written "
                         f"as plain text")


def index_vcf(path: str, name: str | None = None) -> list[str]:
    """Index a finished BGZF VCF (tabix .tbi) or BCF (.csi); return the index suffixes written.

    ``name`` is the output's name (its extension decides; ``path`` may be a temporary file about to be renamed).
    An input that is not sorted cannot be indexed: the output is complete and valid, a warning says it is left
    unindexed and why, and no index is returned (so none is left beside it). An index that failed on a full disk is
    an :class:`OutputError` instead (the run fails and leaves no output): a pipeline must not go on without it.
    """
    name = name or path
    mode = vcf_write_mode(name)
    if mode not in ("wb", "wz"):
        return []
    suffix = ".csi" if mode == "wb" else ".tbi"
    failure = _write_index(path, name, mode)
    if failure is None:
        return [suffix]
    with contextlib.suppress(OSError):
        os.unlink(path + suffix)
    room = _room_for_index(path)
    if room is not None:  # a full disk, not an unsorted input: the output cannot be finished
        raise OutputError(f"cannot write {name}{suffix}: no space left on the device ({room})")
    if failure:
        log.warning("%s is complete but not indexed (%s): is the input sorted? `bcftools sort` it, then %s", name,
                    failure, "`bcftools index`" if mode == "wb" else "`tabix -p vcf`")
    return []


def _room_for_index(path: str) -> str | None:
    """Why an index beside ``path`` may not have fitted: the free space of its folder, where it is below what the
    index needs (1 MiB, or a hundredth of the file: a tabix or CSI index is far smaller); else None."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(folder).free
        need = max(1 << 20, os.path.getsize(path) // 100)
        vfs = os.statvfs(folder) if hasattr(os, "statvfs") else None
    except OSError:
        return None
    if vfs is not None and vfs.f_files > 0 and vfs.f_favail == 0:  # bytes but no file left (btrfs counts none)
        return "no free inodes"
    return f"{free // 1024:,} kB free" if free < need else None


def _write_index(path: str, name: str, mode: str) -> str | None:
    """Build the index of ``path`` (``mode`` ``"wb"``: BCF, ``"wz"``: BGZF VCF): None when it is built, else why not
    ("" where that was already said)."""
    if mode == "wb":
        if shutil.which("bcftools") is None:
            log.warning("bcftools not on PATH: %s left without a .csi index", name)
            return ""
        done = subprocess.run(["bcftools", "index", "-f", path], capture_output=True, text=True)
        if done.returncode != 0:
            return " ".join(done.stderr.replace(path, name).split()) or f"bcftools exited with {done.returncode}"
        return None
    import pysam

    try:
        pysam.tabix_index(path, preset="vcf", force=True)
    except OSError as exc:  # htslib refuses unsorted input (or cannot write); the VCF itself is complete
        return str(exc).replace(path, name)
    return None
