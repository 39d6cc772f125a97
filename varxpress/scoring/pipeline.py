"""The scoring pipeline: the one place that chains the steps of ``varxpress score``.

``VCF -> variants -> (variant, TSS) pairs -> ref/alt windows -> one-hot -> model -> scores -> writers``

Records are streamed in chunks of ``chunk_size`` (:mod:`varxpress.io.vcf`); each chunk is classified
(:mod:`varxpress.io.variants`), paired with the genes whose window holds it (interval index), predicted by the
engine (:mod:`varxpress.scoring.engine`) and written back in input order (:mod:`varxpress.io.writers`). With
worker processes the engine scores up to ``IN_FLIGHT`` chunks while this process reads and classifies the next.
Memory is bounded by those chunks and the engine's cache, whatever the size of the VCF.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import cyvcf2

from varxpress import __version__
from varxpress.errors import ReaderGone, RefMismatchError, VcfError
from varxpress.io.inputs import input_name, seekable_input
from varxpress.io.outputs import atomic_path, discard_pipe, in_place, pipe_reader_gone, reader_probe
from varxpress.io.refspans import RefSpans
from varxpress.io.variants import Allele, SkipReason, check_ref, classify_allele, record_pos, scan_vcf_text
from varxpress.io.vcf import (check_region_index, count_header_lines, declare_undeclared, iter_records, locate,
                              open_vcf, read_checked, unparsable)
from varxpress.io.vcflines import LineWriter, Lines, SampleCheck, line_chunks
from varxpress.io.writers import (Reheadered, TsvWriter, add_header, annotate, check_compression_level, check_written,
                                  earlier_provenance, fresh_header, index_vcf, vcf_write_mode)
from varxpress.scoring.build_check import BuildCheck
from varxpress.scoring.engine import Pending, Task
from varxpress.scoring.resources import ResourceSpec, load_resources
from varxpress.scoring.scores import GeneScore
from varxpress.scoring.triage import record_columns, triage

log = logging.getLogger(__name__)

MISMATCH_POLICIES = ("error", "warn", "skip")
INDEX_SUFFIXES = (".tbi", ".csi")  #: index files of an output VCF, replaced (or removed) together with it
#: Inputs with more sample columns go through htslib: its parser, and the libdeflate its wheel compresses with, then
#: cost less than checking the samples as text and compressing with zlib (docs/performance.md, "Whole genomes")
MOST_SAMPLES_AS_LINES = 16
#: Chunks started (classified, their genes handed to the workers) before the oldest is written: with three, a
#: chunk whose genes take long (several indels) holds the workers up less often than with two (docs/performance.md)
IN_FLIGHT = 3

# pure in its arguments; most records repeat a handful of (REF, ALT) pairs (SNVs), so the regex work is done once
_classify_allele = functools.lru_cache(maxsize=1 << 14)(classify_allele)


@dataclass(frozen=True)
class ScoreConfig:
    """Everything ``varxpress score`` needs besides its inputs' files (:class:`ResourceSpec`); paths are checked
    by the CLI."""

    vcf: str
    resources: ResourceSpec
    out: str = "-"
    tsv: str | None = None
    regions: list[tuple[str, int, int]] | None = None  #: (chrom, start, end) 0-based half-open, VCF contig names
    on_ref_mismatch: str = "warn"
    max_allele_len: int = 1000
    threads: int = 1
    batch_size: int = 32  #: windows per model call on the full-recomputation path (memory grows with it)
    chunk_size: int = 2000
    fast: bool = True
    #: give records that no model window holds ``VXP_SKIP`` reasons too (checking them as the others); by default
    #: they are written through unchanged, counted as ``no_gene_in_window``
    mark_outside_windows: bool = False
    compression_level: int | None = None  #: BGZF level 0-9 of a .vcf.gz or .bcf output; None: htslib's default (6)
    quiet: bool = False
    command_line: str = ""


@dataclass
class ScoreStats:
    """Counts reported at the end of a run (and written by ``--stats``)."""

    records_in: int = 0
    records_out: int = 0
    alleles: int = 0
    alleles_scored: int = 0
    scores: int = 0
    scores_fast: int = 0
    genes_predicted: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)
    flags: collections.Counter = field(default_factory=collections.Counter)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["skipped"] = dict(sorted(self.skipped.items()))
        d["flags"] = dict(sorted(self.flags.items()))
        return d


def _chunks(it: Iterator, size: int) -> Iterator[list]:
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class _Started(NamedTuple):
    """A chunk whose tasks the engine is scoring: its records (cyvcf2's, or :class:`Lines`), the ordinal of the
    first, each classified record's per-allele skip reasons and cyvcf2 record (records written as read are absent)
    and the pending scores."""

    chunk: list | Lines
    first: int
    per_record: dict[int, tuple[dict[int, str], cyvcf2.Variant]]
    scores: Pending


class Scorer:
    """Loads the genome, model(s), background and TSS set once; :meth:`run` scores a VCF with them."""

    def __init__(self, cfg: ScoreConfig):
        if cfg.on_ref_mismatch not in MISMATCH_POLICIES:
            raise ValueError(f"on_ref_mismatch must be one of {MISMATCH_POLICIES}, not {cfg.on_ref_mismatch!r}")
        self.cfg = cfg
        self.res = load_resources(cfg.resources)
        self.genome, self.members, self.model = self.res.genome, self.res.members, self.res.model
        self.index = self.res.tss_index()
        self.predictor = self.res.predictor(fast=cfg.fast, batch_size=cfg.batch_size, threads=cfg.threads)
        self.build = BuildCheck(self.genome, "")  # a run's own in :meth:`run`

    def provenance(self) -> list[tuple[str, str]]:
        """``##key=value`` header lines naming the program, model, reference and TSS set."""
        md = self.model.metadata
        spec = self.model.window_spec
        name = self.res.model_name
        training_set, verdict = self.res.training_record
        label_mean, label_sd = self.res.label_scale
        lines = [
            ("varxpress_version", __version__),
            ("varxpress_command", self.cfg.command_line or "varxpress score"),
            ("varxpress_model", f"<Name={name},File={Path(self.res.model_path).name},SHA256={self.res.model_sha256},"
                                f"Build={self.res.genome_build},Upstream={spec.upstream},Downstream={spec.downstream},"
                                f"Output={md.output_scale},LabelMean={label_mean},LabelSD={label_sd},"
                                f"TrainingSet={training_set},Verdict=\"{verdict}\","
                                f"Members={len(self.members)}>"),
            ("varxpress_reference", f"<File={Path(self.res.spec.fasta).name},FaiMD5={self.genome.fingerprint()}>"),
            ("varxpress_tss", f"<File={Path(self.res.tss_path).name},Genes={len(self.res.tss)}>"),
        ]
        if self.res.background is not None:
            bg = self.res.background
            lines.append(("varxpress_background", f"<File={Path(str(bg.path)).name},N={len(bg)},"
                                                  f"ModelSHA256={bg.model_sha256}>"))
        lines.extend(self.res.member_lines())
        return lines

    def _triage(self, chunk: list | Lines) -> tuple[list[int], RefSpans]:
        """:func:`varxpress.scoring.triage.triage` of a chunk with this run's genome, windows and settings."""
        return triage(self.genome, self.index, record_columns(chunk), self.cfg.max_allele_len,
                      classify_all=self.cfg.mark_outside_windows)

    def _classify(self, rec, ordinal: int, path: str, header_lines: int, stats: ScoreStats,
                  refs: RefSpans):
        """Per-allele skip reasons and scoring tasks of one record (``path``/``header_lines`` locate it in messages;
        ``refs``: the genome around it, preloaded)."""
        alts = rec.ALT
        stats.alleles += len(alts)
        skips: dict[int, str] = {}
        tasks: list[Task] = []
        if not alts:
            stats.skipped[SkipReason.MISSING_ALT.value] += 1
            return {0: SkipReason.MISSING_ALT.value}, tasks
        chrom = self.genome.resolve(rec.CHROM)
        if chrom is None:
            self.build.unknown_contig(rec.CHROM)
            for i in range(len(alts)):
                skips[i] = SkipReason.UNKNOWN_CONTIG.value
            stats.skipped[SkipReason.UNKNOWN_CONTIG.value] += len(alts)
            return skips, tasks
        pos = record_pos(rec)
        length = self.genome.length(chrom)
        if pos - 1 + len(rec.REF) > length:
            log.warning("%s: %s:%d: the REF (%d bp) ends past the end of %s (%d bp in the FASTA): not scored "
                        "(%s); is the FASTA the build the VCF was called on?", locate(path, header_lines, ordinal),
                        rec.CHROM, pos, len(rec.REF), chrom, length, SkipReason.BEYOND_CONTIG.value)
            for i in range(len(alts)):
                skips[i] = SkipReason.BEYOND_CONTIG.value
            stats.skipped[SkipReason.BEYOND_CONTIG.value] += len(alts)
            return skips, tasks
        if not check_ref(refs, chrom, pos, rec.REF):
            genome_ref = self.genome.fetch(chrom, max(pos - 1, 0), pos - 1 + len(rec.REF))
            msg = (f"{locate(path, header_lines, ordinal)}: REF {rec.REF} of {rec.CHROM}:{pos} disagrees with the genome ({genome_ref}); "
                   f"is the FASTA the build the VCF was called on?")
            if self.cfg.on_ref_mismatch == "error":
                raise RefMismatchError(msg + " (--on-ref-mismatch warn|skip keeps going)")
            if self.cfg.on_ref_mismatch == "warn":
                self.build.ref_mismatch(msg)
            for i in range(len(alts)):
                skips[i] = SkipReason.REF_MISMATCH.value
            stats.skipped[SkipReason.REF_MISMATCH.value] += len(alts)
            return skips, tasks
        ref = rec.REF
        start = pos - 1  # every allele of a record has the same REF span, so the same genes
        genes = self.index.overlapping(chrom, start, start + max(len(ref), 1))
        for i, alt in enumerate(alts):
            kind = _classify_allele(ref, alt, self.cfg.max_allele_len)
            if isinstance(kind, SkipReason):
                skips[i] = kind.value
                stats.skipped[kind.value] += 1
                continue
            if not genes:
                skips[i] = SkipReason.NO_GENE.value
                stats.skipped[SkipReason.NO_GENE.value] += 1
                continue
            allele = Allele(chrom, pos, ref.upper(), alt.upper(), i, kind)
            stats.alleles_scored += 1
            tasks.extend(Task(ordinal, allele, g) for g in genes)
        return skips, tasks

    def run(self, vcf_path: str, out: str, tsv: str | None = None) -> ScoreStats:
        """Score ``vcf_path`` (a file, ``-`` for standard input, or a pipe) into ``out`` (VCF/VCF.gz/BCF or ``-``)
        and optionally ``tsv``."""
        check_compression_level(self.cfg.compression_level, out)
        with seekable_input(vcf_path) as source:
            return self._run(source, input_name(vcf_path), out, tsv)

    def _run(self, source: str, vcf_path: str, out: str, tsv: str | None) -> ScoreStats:
        """:meth:`run` on ``source``, a regular file; ``vcf_path`` names the input in messages."""
        cfg = self.cfg
        stats = ScoreStats()
        if cfg.regions:
            check_region_index(source, vcf_path)  # before anything is written
        # a text VCF is checked line by line first: htslib misreads some malformed lines instead of refusing them
        scan = scan_vcf_text(source, name=vcf_path) if not cfg.regions else None
        vcf = open_vcf(source, name=vcf_path)
        self.build = BuildCheck(self.genome, vcf_path)
        self.build.contig_lengths(vcf)
        header_lines = scan.header_lines if scan is not None else count_header_lines(source)
        if scan is not None:
            declare_undeclared(vcf, scan.undeclared, vcf_path)
        provenance = self.provenance()
        earlier = earlier_provenance(vcf)
        clear = add_header(vcf, provenance, unmarked_outside=not cfg.mark_outside_windows,
                           members=self.res.member_names, combined=self.res.combination is not None)
        header_text = fresh_header(vcf.raw_header, provenance) if earlier else vcf.raw_header
        line_base = 0 if cfg.regions else header_lines  # a region selection has no meaningful file line numbers
        streaming = in_place(out)  # stdout, a device or a FIFO: written in place, cannot be read back or indexed
        # records outside every window are written as read, without htslib parsing them (docs/output.md): a text
        # VCF the scan has checked, into a VCF or VCF.gz file or a plain-text stream
        as_lines = (scan is not None and scan.ascii and scan.columns - 9 <= MOST_SAMPLES_AS_LINES and not clear
                    and not cfg.mark_outside_windows
                    and (vcf_write_mode(out) == "w" if streaming else vcf_write_mode(out) != "wb"))
        if as_lines:
            chunks = line_chunks(source, header_lines, scan.columns, cfg.chunk_size,
                                 SampleCheck.of_header(vcf, scan.columns))
        else:
            # what can be refused up front (no index for --region, an unreadable first record) is, before any
            # header reaches the output (with `-o -` a header on stdout cannot be taken back)
            try:
                records = read_checked(iter_records(vcf, source, cfg.regions, name=vcf_path), vcf_path, line_base)
                first = next(records, None)
            except BaseException:
                self.close_engines()
                raise
            chunks = _chunks(itertools.chain([first] if first is not None else [], records), cfg.chunk_size)
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(out, INDEX_SUFFIXES, stream=True))
            if as_lines:
                writer = LineWriter(tmp, compressed=vcf_write_mode(out) == "wz", name=out, level=cfg.compression_level)
                stack.callback(writer.abort)  # closed before the temporary file is removed, whatever happens
                writer.write(header_text.encode("utf-8"))  # our provenance lines may name non-ASCII files
                parser = cyvcf2.Writer(os.devnull, vcf, mode="w")  # parses the lines that are classified
                stack.callback(parser.close)
            else:
                mode = vcf_write_mode(out, cfg.compression_level)
                writer = Reheadered(tmp, header_text, mode) if earlier else cyvcf2.Writer(tmp, vcf, mode=mode)
                parser = None
                writer.write_header()
            tsv_writer = TsvWriter(tsv, [f"{k}={v}" for k, v in provenance], self.res.member_names) if tsv else None
            # htslib's writer does not see its failed writes: a pipe it writes (standard output, a FIFO) is asked
            # after each chunk whether its reader is still there
            probe = None if as_lines else reader_probe(out)
            if probe is not None and out != "-":
                stack.callback(os.close, probe)
            gone = False
            ok = False
            try:
                progress = _progress(cfg.quiet)
                ordinal = 0
                started: collections.deque[_Started] = collections.deque()  # chunks the engine is scoring
                for chunk in itertools.chain(chunks, [None]):  # None: write the chunks still started
                    if chunk is not None:
                        started.append(self._start_chunk(chunk, ordinal, vcf_path, line_base, stats, parser))
                        ordinal += len(chunk)
                    while started and (chunk is None or len(started) >= IN_FLIGHT):
                        progress.update(self._write_chunk(started.popleft(), vcf_path, line_base, stats,
                                                          None if gone else writer, tsv_writer, clear))
                        gone = gone or (probe is not None and pipe_reader_gone(probe))
                progress.close()
                self.build.summary(stats.records_in)
                if scan is not None and stats.records_in != scan.records:
                    raise VcfError(f"{vcf_path}: htslib read {stats.records_in} records but the file has "
                                   f"{scan.records} data lines; check it with `bcftools view {vcf_path}`")
                if gone:
                    discard_pipe(out, keep=probe)  # what htslib still holds goes nowhere, without an error at close
                writer.close()
                if not streaming:
                    check_written(tmp, stats.records_out, out)
                ok = True
            finally:
                self.close_engines()
                if tsv_writer is not None:
                    tsv_writer.close(ok)
            if not streaming:
                index_vcf(tmp, out)
        stats.genes_predicted = self.predictor.genes_predicted
        try:
            if tsv_writer is not None:
                tsv_writer.check_reader()  # the VCF is complete; now say the TSV's reader went away, if it did
            if gone or (as_lines and writer.reader_gone):
                where = "standard output" if out == "-" else out
                raise ReaderGone(f"the reader of {where} went away (e.g. `| head`) after part of the VCF: the VCF "
                                 f"is incomplete; every other output was written in full")
        except ReaderGone as exc:
            exc.stats = stats  # complete but for records_out: the records handed to the output before it went
            raise
        return stats

    def close_engines(self) -> None:
        """Stop the engines' worker processes (idempotent)."""
        self.predictor.close()

    def _start_chunk(self, chunk: list | Lines, first: int, vcf_path: str, header_lines: int, stats: ScoreStats,
                     parser) -> _Started:
        """Classify a chunk of records (``first``: the ordinal of its first record) and start scoring its tasks;
        ``parser`` (a cyvcf2 Writer) parses the lines of a :class:`Lines` chunk that are classified."""
        plain, refs = self._triage(chunk)
        per_record: dict[int, tuple[dict[int, str], cyvcf2.Variant]] = {}  # records written as read are absent
        tasks: list[Task] = []
        for k in range(len(chunk)):
            if not plain[k]:
                rec = chunk[k] if parser is None else _parse(parser, chunk.line(k), vcf_path, header_lines, first + k)
                skips, rec_tasks = self._classify(rec, first + k, vcf_path, header_lines, stats, refs)
                per_record[k] = skips, rec
                tasks.extend(rec_tasks)
        counted = sum(plain)  # alleles outside every window with nothing else to say: counted, not marked
        stats.alleles += counted
        stats.skipped[SkipReason.NO_GENE.value] += counted
        return _Started(chunk, first, per_record, self.predictor.submit(tasks))

    def _write_chunk(self, started: _Started, vcf_path: str, header_lines: int, stats: ScoreStats, writer,
                     tsv_writer, clear: list[str]) -> int:
        """Wait for a started chunk's scores and write its records, annotated; returns how many. ``writer``: a
        cyvcf2 Writer, or a :class:`LineWriter` for a :class:`Lines` chunk (its records outside every window are
        written as read, the others as htslib formats them)."""
        chunk, first, per_record = started.chunk, started.first, started.per_record
        results = started.scores.result()
        stats.scores += len(results)
        stats.scores_fast += sum(1 for r in results if r.fast)
        scores: dict[int, list[GeneScore]] = collections.defaultdict(list)
        for r in results:
            scores[r.task.record].append(r.score)
        for rec_scores in scores.values():
            rec_scores.sort(key=lambda s: s.alt_index)  # stable: genes stay in index order within an allele
        for flag in (f for rec_scores in scores.values() for s in rec_scores for f in s.flags):
            stats.flags[flag] += 1
        as_lines = isinstance(chunk, Lines)
        handed = writer is not None and not (as_lines and writer.reader_gone)  # not once the reader went away
        lines: dict[int, bytes] = {}
        for k, (skips, rec) in per_record.items():
            mine = scores.get(first + k, [])
            annotate(rec, len(rec.ALT), mine, skips, clear)
            if tsv_writer is not None:
                for s in mine:
                    tsv_writer.write(rec.CHROM, record_pos(rec), rec.ID or ".", rec.REF, s)
            if as_lines:
                lines[k] = _formatted(rec, vcf_path, header_lines, first + k)
        if as_lines and handed:
            writer.write(chunk.with_lines(lines))
        elif handed:
            for k, rec in enumerate(chunk):
                if clear and k not in per_record:  # outside every window: the input's own values of our fields go
                    annotate(rec, 0, [], {}, clear)
                try:
                    writer.write_record(rec)
                except Exception as exc:  # noqa: BLE001 - cyvcf2 raises bare Exception (e.g. an undeclared tag)
                    raise _unwritable(vcf_path, header_lines, first + k, exc) from exc
        stats.records_in += len(chunk)
        stats.records_out += len(chunk) if handed else 0
        return len(chunk)


def _unwritable(vcf_path: str, header_lines: int, ordinal: int, exc: Exception) -> VcfError:
    return VcfError(f"{locate(vcf_path, header_lines, ordinal)}: htslib cannot write this record back ({exc}); does "
                    f"it use an INFO/FORMAT tag or contig its header does not declare? Add the ##INFO/##FORMAT/##contig "
                    f"line")


def _parse(parser, line: bytes, vcf_path: str, header_lines: int, ordinal: int) -> cyvcf2.Variant:
    """One data line as a cyvcf2 record of ``parser``'s header."""
    try:
        return parser.variant_from_string(line.decode("ascii"))
    except Exception as exc:  # noqa: BLE001 - cyvcf2 gives no narrower class
        raise unparsable(vcf_path, header_lines, ordinal, exc, line) from exc


def _formatted(rec: cyvcf2.Variant, vcf_path: str, header_lines: int, ordinal: int) -> bytes:
    """An annotated record's line as htslib writes it, without the line end."""
    try:
        return str(rec).rstrip("\n").encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - cyvcf2 raises bare Exception
        raise _unwritable(vcf_path, header_lines, ordinal, exc) from exc


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(unit=" records", desc="scoring", file=sys.stderr, mininterval=0.5)


def score_vcf(cfg: ScoreConfig) -> ScoreStats:
    """Score ``cfg.vcf`` into ``cfg.out`` (and ``cfg.tsv``); the whole ``varxpress score`` in one call."""
    check_compression_level(cfg.compression_level, cfg.out)  # before the resources load
    return Scorer(cfg).run(cfg.vcf, cfg.out, cfg.tsv)
