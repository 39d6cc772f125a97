"""The scoring pipeline: the one place that chains the steps.

``VCF -> variants -> (variant, TSS) pairs -> ref/alt windows -> one-hot -> model -> scores -> writers``

Records are streamed in chunks of ``chunk_size``; each chunk is classified, paired with the genes whose window holds
it (interval index), scored gene by gene (the reference window of a gene is predicted once and kept in a small LRU
cache; substitutions go through the incremental engine of :mod:`varxpress.models.fastpath` where the model allows, other
alleles are predicted in batches of full alternate windows) and written back in input order. Memory is bounded by
the chunk size and the cache size, whatever the size of the VCF.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import os
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from varxpress import __version__
from varxpress.sequence.encode import one_hot
from varxpress.errors import RefMismatchError, RefMismatchWarning, VcfError
from varxpress.io.genome import Genome, read_contig_map
from varxpress.io.inputs import input_name, seekable_input
from varxpress.models.registry import BUNDLED, DEFAULT, data_path, load_tss_set, model_file, named_ensemble
from varxpress.scoring.scores import GeneScore, mean_log2_fold_change, quality_flags
from varxpress.io.tss import DEFAULT_TSS, DEFAULT_TSS_OFFSET, TSS, TSSIndex  # noqa: F401 (DEFAULT_* re-exported)
from varxpress.io.variants import (Allele, AlleleKind, SkipReason, check_ref, classify_allele, record_pos,
                                scan_vcf_text)
from varxpress.sequence.windows import Window, WindowSpec, alt_window, distance_to_tss, ref_window
from varxpress.io.outputs import atomic_path, in_place
from varxpress.io.writers import TsvWriter, add_header, annotate, check_written, index_vcf, vcf_write_mode

log = logging.getLogger(__name__)

# the default bundled model's file (named models: varxpress.models.registry)
DEFAULT_MODEL = BUNDLED[DEFAULT].model
NO_GENE = "no_gene_in_window"
MISMATCH_POLICIES = ("error", "warn", "skip")
_COMPLEMENT_INDEX = {"A": 3, "C": 2, "G": 1, "T": 0}
_BASE_INDEX = {"A": 0, "C": 1, "G": 2, "T": 3}
INDEX_SUFFIXES = (".tbi", ".csi")  #: index files of an output VCF, replaced (or removed) together with it


bundled = data_path  # path of a file bundled in varxpress/data


@dataclass
class ScoreConfig:
    """Everything ``varxpress score`` needs; paths are checked by the CLI."""

    vcf: str
    fasta: str
    out: str = "-"
    tsv: str | None = None
    model: str | None = None  #: a bundled model's name or a file (None: the default, see varxpress.models.registry)
    ensemble: str | None = None  #: an ensemble (folder or manifest) instead of ``model``
    background: str | None = None  #: None: the background stored beside the model, if any
    tss: str | None = None  #: None: the bundled model's own TSS set (a model file: the default model's)
    tss_offset: int | None = None  #: TSS = BED start + offset; None: BED convention (or the bundled set's offset)
    tss_format: str = "auto"
    contig_map: str | None = None
    features: str | None = None  #: per-gene model features (TSV: gene_id then one column per feature)
    regions: list[tuple[str, int, int]] | None = None  #: (chrom, start, end) 0-based half-open, VCF contig names
    on_ref_mismatch: str = "warn"
    max_allele_len: int = 1000
    threads: int = 1
    batch_size: int = 32
    chunk_size: int = 2000
    fast: bool = True
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


@dataclass
class _Task:
    record: int
    allele: Allele
    tss: TSS


class _GeneRef:
    """A gene's reference window, its encoding and prediction, and the fast-path cache."""

    __slots__ = ("window", "onehot", "features", "pred", "cache")

    def __init__(self, window: Window, onehot: np.ndarray, features: np.ndarray | None):
        self.window, self.onehot, self.features = window, onehot, features
        self.pred: float | None = None
        self.cache = None


class Engine:
    """Predicts reference and alternate expression for (allele, gene) pairs.

    Args:
        model: a loaded :class:`varxpress.models.network.ExpressionModel`.
        genome: the reference.
        features: gene id -> feature vector, shape ``(n_features,)``; genes absent use the model's defaults.
        fast: use the incremental substitution engine where the model supports it.
        cache_genes: how many genes' reference data to keep (each costs the size of the network's activations).
    """

    def __init__(self, model, genome: Genome, features: dict[str, np.ndarray] | None = None, fast: bool = True,
                 batch_size: int = 32, cache_genes: int = 32, threads: int = 1):
        self.model, self.genome = model, genome
        self.spec: WindowSpec = model.window_spec
        self.features = features or {}
        self.batch_size = batch_size
        self.cache_genes = cache_genes
        self._refs: collections.OrderedDict[str, _GeneRef] = collections.OrderedDict()
        self.genes_predicted = 0  #: reference windows predicted (cache misses)
        self.local = None
        self.pool = None
        if fast:
            from varxpress.models import fastpath

            if fastpath.supports(model):
                self.local = fastpath.LocalScorer(model, threads=threads)
                if threads > 1:  # measured faster than BLAS threads for these small products (docs/performance.md)
                    self.pool = fastpath.ScoringPool(self.local, threads)
            else:
                log.info("model layers not supported by the incremental engine: full recomputation for every allele")

    def close(self) -> None:
        """Stop worker processes, if any."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def _features_for(self, gene_id: str) -> np.ndarray | None:
        if not self.model.n_features:
            return None
        f = self.features.get(gene_id)
        return np.asarray(self.model.metadata.default_features if f is None else f, dtype=np.float32)

    def gene_ref(self, tss: TSS) -> _GeneRef:
        """The cached reference data of a gene (window, one-hot, prediction)."""
        ref = self._refs.get(tss.gene_id)
        if ref is not None:
            self._refs.move_to_end(tss.gene_id)
            return ref
        self.genes_predicted += 1
        window = ref_window(self.genome, tss, self.spec)
        ref = _GeneRef(window, one_hot(window.seq), self._features_for(tss.gene_id))
        if self.local is not None:
            ref.cache = self.local.prepare(ref.onehot, ref.features)
            ref.pred = float(self.local.ref_prediction(ref.cache))
        else:
            feats = None if ref.features is None else ref.features[None, :]
            ref.pred = float(self.model.predict(ref.onehot[None], feats)[0])
        self._refs[tss.gene_id] = ref
        if len(self._refs) > self.cache_genes:
            self._refs.popitem(last=False)
        return ref

    def substitution_edits(self, allele: Allele, window: Window) -> list[tuple[int, int]]:
        """Window indices and base indices (-1 for N) an SNV/MNV changes, in the window's orientation."""
        edits = []
        for offset, (r, a) in enumerate(zip(allele.ref.upper(), allele.alt.upper())):
            p = allele.start + offset
            if r == a or not window.start <= p < window.end:
                continue
            if window.strand == "+":
                edits.append((p - window.start, _BASE_INDEX.get(a, -1)))
            else:
                edits.append((window.end - 1 - p, _COMPLEMENT_INDEX.get(a, -1)))
        return edits

    def score(self, tasks: list[_Task]) -> list[tuple[_Task, float, float, tuple[str, ...], bool]]:
        """Predict every task; ``(task, ref_pred, alt_pred, flags, fast, n_fraction)`` in the order of ``tasks``.

        ``n_fraction``: the fraction of ``N`` in the gene's reference window (:attr:`Window.n_fraction`).
        """
        by_gene: dict[str, list[int]] = collections.defaultdict(list)
        for i, task in enumerate(tasks):
            by_gene[task.tss.gene_id].append(i)
        results: list = [None] * len(tasks)
        pending: list[tuple[int, np.ndarray, np.ndarray | None, float, tuple[str, ...]]] = []
        jobs = []  # substitutions for the worker processes (threads > 1)
        for indices in by_gene.values():
            subs = [i for i in indices if self.local is not None
                    and tasks[i].allele.kind in (AlleleKind.SNV, AlleleKind.MNV)]
            others = sorted(set(indices) - set(subs))
            if self.pool is not None:
                jobs.append(self._gene_job(tasks, subs, others))
                continue
            ref = self.gene_ref(tasks[indices[0]].tss)
            base_flags = ("off_contig",) if ref.window.off_contig else ()
            if subs:
                alt_preds = self.local.predict_substitutions(ref.cache, [
                    self.substitution_edits(tasks[i].allele, ref.window) for i in subs])
                for i, alt_pred in zip(subs, alt_preds):
                    results[i] = (tasks[i], ref.pred, float(alt_pred), base_flags, True, ref.window.n_fraction)
            alts = [self.alt_of(tasks[i], base_flags) for i in others]
            if self.local is not None and others:  # indels: the reference's first layer, shifted (shiftpath)
                preds = self.local.predict_windows(ref.cache, one_hot([a[0].seq for a in alts]),
                                                   [_length_change(tasks[i].allele) for i in others])
                for i, (_, flags), alt_pred in zip(others, alts, preds):
                    results[i] = (tasks[i], ref.pred, float(alt_pred), flags, False, ref.window.n_fraction)
                continue
            for i, (alt, flags) in zip(others, alts):
                pending.append((i, one_hot(alt.seq), ref.features, ref.pred, flags, ref.window.n_fraction))
            if len(pending) >= self.batch_size:
                self._flush(tasks, pending, results)
        self._flush(tasks, pending, results)
        if jobs:
            for res in self.pool.map(jobs):
                subs, others, other_flags, off_contig, n_fraction = res.key
                flags = ("off_contig",) if off_contig else ()
                for i, alt_pred in zip(subs, res.alt_preds):
                    results[i] = (tasks[i], float(res.ref_pred), float(alt_pred), flags, True, n_fraction)
                for i, alt_pred, alt_flags in zip(others, res.window_preds if others else (), other_flags):
                    results[i] = (tasks[i], float(res.ref_pred), float(alt_pred), alt_flags, False, n_fraction)
        return results

    def alt_of(self, task: _Task, base_flags: tuple[str, ...]) -> tuple[Window, tuple[str, ...]]:
        """Alternate window of a task and its flags (``off_contig`` when the reference or it runs off the contig)."""
        alt = alt_window(self.genome, task.tss, self.spec, task.allele)
        return alt, base_flags + (("off_contig",) if alt.off_contig and not base_flags else ())

    def _gene_job(self, tasks: list[_Task], subs: list[int], others: list[int]):
        """A worker job for one gene: its substitutions as edits, its other alleles as whole alternate windows."""
        from varxpress.models.fastpath import GeneJob

        tss = tasks[(subs or others)[0]].tss
        window = ref_window(self.genome, tss, self.spec)
        base_flags = ("off_contig",) if window.off_contig else ()
        edits = [self.substitution_edits(tasks[i].allele, window) for i in subs]
        alts, flags = [], []
        for i in others:
            alt, alt_flags = self.alt_of(tasks[i], base_flags)
            alts.append((alt.seq, _length_change(tasks[i].allele)))
            flags.append(alt_flags)
        return GeneJob((subs, others, flags, window.off_contig, window.n_fraction), one_hot(window.seq),
                       self._features_for(tss.gene_id), edits, alts)

    def _flush(self, tasks, pending, results) -> None:
        for lo in range(0, len(pending), self.batch_size):
            batch = pending[lo:lo + self.batch_size]
            X = np.stack([b[1] for b in batch])
            F = None if batch[0][2] is None else np.stack([b[2] for b in batch])
            preds = self.model.predict(X, F, batch_size=self.batch_size)
            for (i, _, _, ref_pred, flags, n_fraction), alt_pred in zip(batch, preds):
                results[i] = (tasks[i], ref_pred, float(alt_pred), flags, False, n_fraction)
        pending.clear()


# pure in its arguments; most records repeat a handful of (REF, ALT) pairs (SNVs), so the regex work is done once
_classify_allele = functools.lru_cache(maxsize=1 << 14)(classify_allele)


def _length_change(allele: Allele) -> int:
    return len(allele.alt) - len(allele.ref)


def read_feature_table(path: str, n_features: int, mean=None, sd=None) -> dict[str, np.ndarray]:
    """Per-gene model features: TSV with a header, gene id first, then ``n_features`` numeric columns.

    With the training statistics ``mean``/``sd`` (a model made by ``varxpress train`` records them), raw values are
    standardised as in training, ``(raw - mean) / sd``, and missing values become 0 (the training mean); without
    them the values are taken as already on the model's input scale.
    """
    import pandas as pd

    from varxpress.errors import DatasetError

    table = pd.read_csv(path, sep="\t", comment="#")
    if table.shape[1] != n_features + 1:
        raise DatasetError(f"{path}: expected a gene id column and {n_features} feature columns, found "
                           f"{table.shape[1]} columns")
    try:
        values = table.iloc[:, 1:].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path}: feature columns must be numeric ({exc})") from exc
    if mean is not None and sd is not None:
        sd_arr = np.asarray(sd, dtype=np.float64)
        values = (values - np.asarray(mean, dtype=np.float64)) / np.where(sd_arr > 0, sd_arr, 1.0)
    values = np.where(np.isnan(values), 0.0, values).astype(np.float32)
    return {str(g): v for g, v in zip(table.iloc[:, 0], values)}


def open_vcf(path: str, name: str | None = None):
    """Open a VCF/VCF.gz/BCF with cyvcf2; a :class:`VcfError` names the file (``name``, default ``path``) when
    htslib cannot."""
    import cyvcf2

    name = name or path
    if path != "-" and not os.path.exists(path):
        raise VcfError(f"{name}: no such VCF/BCF file")
    try:
        return cyvcf2.VCF(path, lazy=True)
    except (OSError, ValueError, Exception) as exc:  # cyvcf2 raises bare Exception for unreadable headers
        raise VcfError(f"{name}: not a readable VCF/BCF ({exc})") from exc


def count_header_lines(path: str) -> int:
    """Number of header lines of a text VCF (plain or bgzip), so messages can give file line numbers; 0 for BCF/stdin."""
    import gzip

    if path == "-" or path.endswith(".bcf"):
        return 0
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    n = 0
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        for line in fh:
            if not line.startswith(b"#"):
                break
            n += 1
    return n


def check_region_index(path: str, name: str | None = None) -> None:
    """Refuse a region query on ``path`` that has no index, saying how to make one (``name`` names it)."""
    name = name or path
    if any(os.path.exists(path + suffix) for suffix in (".tbi", ".csi")):
        return
    if name != path:  # standard input or a pipe, read into a temporary file
        raise VcfError(f"{name}: region queries need an indexed file (bgzipped VCF with .tbi/.csi, or BCF with "
                       f".csi); standard input and pipes have no index: write the VCF to a file and index it")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"\x1f\x8b":
        q = shlex.quote(name)
        raise VcfError(f"{name}: region queries need an index, and tabix indexes only bgzipped files: run "
                       f"`bgzip {q}` then `tabix -p vcf {q}.gz`, and score {name}.gz")
    q = shlex.quote(name)
    raise VcfError(f"{name}: region queries need an index (.tbi or .csi): run `tabix -p vcf {q}` "
                   f"(or `bcftools index {q}`); a gzip (not bgzip) file must be recompressed with bgzip first")


def iter_records(vcf, path: str, regions: list[tuple[str, int, int]] | None, name: str | None = None) -> Iterator:
    """All records, or those whose POS lies in one of ``regions`` (each record once, in region order)."""
    if not regions:
        yield from vcf
        return
    path = name or path
    for chrom, start, end in merge_regions(regions):
        try:
            with warnings.catch_warnings():  # an empty region is normal for a shard, not worth a warning
                warnings.filterwarnings("ignore", message="no intervals found")
                records = iter(vcf(f"{chrom}:{start + 1}-{end}"))
                first = next(records, None)
        except (AssertionError, OSError, ValueError) as exc:  # cyvcf2's refusal of an unusable index
            raise VcfError(f"{path}: cannot query region {chrom}:{start + 1}-{end} ({exc}); re-index with "
                           f"`tabix -f -p vcf {path}`") from exc
        if first is None:
            continue
        for rec in itertools.chain([first], records):
            if start <= max(record_pos(rec) - 1, 0) < end:  # POS 0 (telomere) belongs to the region starting at 0
                yield rec


def declare_undeclared(vcf, undeclared: dict[str, list[str]], path: str) -> None:
    """Declare in ``vcf``'s header the contigs, FILTERs and INFO/FORMAT tags its records use without a header line.

    htslib reads such records (assuming ``Type=String``) but refuses to write them back; declaring them keeps the
    record, and its values, unchanged in the output (with a warning naming them).
    """
    described = "Not declared in the input header; declared by varxpress so the record can be written back"
    for kind, names in undeclared.items():
        log.warning("%s: %s %s used by records but not declared in the header: declared in the output as %s",
                    path, {"contig": "contigs", "FORMAT": "FORMAT tags", "FILTER": "FILTERs"}.get(kind, "INFO tags"),
                    ", ".join(names), {"contig": "contigs of unknown length", "FLAG": "Number=0,Type=Flag",
                                       "FILTER": "FILTERs"}.get(kind, "Number=.,Type=String"))
        for name in names:
            if kind == "contig":
                vcf.add_to_header(f"##contig=<ID={name}>")
            elif kind == "FILTER":
                vcf.add_filter_to_header({"ID": name, "Description": described})
            elif kind == "FORMAT":
                vcf.add_format_to_header({"ID": name, "Number": ".", "Type": "String", "Description": described})
            else:
                vcf.add_info_to_header({"ID": name, "Number": "0" if kind == "FLAG" else ".",
                                        "Type": "Flag" if kind == "FLAG" else "String", "Description": described})


def locate(path: str, header_lines: int, ordinal: int) -> str:
    """Where a record is, for messages: ``path: line N`` when the whole text file is read (``header_lines`` > 0),
    else ``path: record N`` (BCF, stdin, a region selection); ``ordinal`` is 0-based."""
    return f"{path}: line {header_lines + ordinal + 1}" if header_lines else f"{path}: record {ordinal + 1}"


def read_checked(records: Iterator, path: str, header_lines: int) -> Iterator:
    """``records``, with htslib's parse errors (cyvcf2 raises a bare ``Exception``) turned into a :class:`VcfError`
    naming the file and line (see :func:`locate`), and phantom records refused."""
    n = 0
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except VcfError:
            raise
        except Exception as exc:  # noqa: BLE001 - cyvcf2 gives no narrower class
            raise VcfError(f"{locate(path, header_lines, n)}: htslib cannot parse this record ({exc}); see the "
                           f"message above, or check the file with `bcftools view {path}`") from exc
        if not rec.CHROM:
            raise VcfError(f"{locate(path, header_lines, n)}: a record without CHROM (a blank line?); remove it")
        n += 1
        yield rec


def merge_regions(regions: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Merge overlapping regions of the same contig, keeping the contigs in their first-seen order."""
    order: dict[str, list[tuple[int, int]]] = {}
    for chrom, start, end in regions:
        order.setdefault(chrom, []).append((start, end))
    merged = []
    for chrom, spans in order.items():
        spans.sort()
        cur_s, cur_e = spans[0]
        for s, e in spans[1:]:
            if s <= cur_e:
                cur_e = max(cur_e, e)
            else:
                merged.append((chrom, cur_s, cur_e))
                cur_s, cur_e = s, e
        merged.append((chrom, cur_s, cur_e))
    return merged


def _chunks(it: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for x in it:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Scorer:
    """Loads the genome, model(s), background and TSS set once; :meth:`run` scores a VCF with them."""

    def __init__(self, cfg: ScoreConfig):
        from varxpress.interpret.background import Background
        from varxpress.models.network import ExpressionModel

        if cfg.on_ref_mismatch not in MISMATCH_POLICIES:
            raise ValueError(f"on_ref_mismatch must be one of {MISMATCH_POLICIES}, not {cfg.on_ref_mismatch!r}")
        if cfg.ensemble and cfg.model:
            raise ValueError("give a model or an ensemble, not both")
        ensemble_path = cfg.ensemble or named_ensemble(cfg.model)  # --model human-mouse is an ensemble
        self.cfg = cfg
        contig_map = read_contig_map(cfg.contig_map) if cfg.contig_map else None
        self.genome = Genome(cfg.fasta, contig_map=contig_map)
        if ensemble_path:
            from varxpress.models.ensemble import EnsembleModel

            ensemble = EnsembleModel.load(ensemble_path)
            self.model_path, self.members, self.model_sha256 = ensemble_path, ensemble.members, ensemble.sha256
        else:
            self.model_path = model_file(cfg.model)
            self.members = [ExpressionModel.load(self.model_path)]
            self.model_sha256 = self.members[0].sha256
        self.model = self.members[0]  # window, features and output scale are common to all members
        if cfg.background:
            self.background = Background.load(cfg.background)
            self.background.check_model(None if ensemble_path else self.model_sha256)
        else:
            self.background = None if ensemble_path else Background.for_model(self.model_path, self.model_sha256)
        _, self.tss_path, self.tss = load_tss_set(cfg.model, cfg.tss, cfg.tss_offset, cfg.tss_format)
        spec = self.model.window_spec
        self.index = TSSIndex(self.tss, spec.upstream, spec.downstream, genome=self.genome)
        features = None
        if cfg.features:
            td = self.model.metadata.training_data or {}
            features = read_feature_table(cfg.features, self.model.n_features, td.get("feature_mean"),
                                          td.get("feature_sd"))
        self.engines = [Engine(m, self.genome, features, fast=cfg.fast, batch_size=cfg.batch_size,
                               threads=cfg.threads) for m in self.members]
        self._scales = [(m.metadata.output_scale, m.metadata.label_sd) for m in self.members]

    def provenance(self) -> list[tuple[str, str]]:
        """``##key=value`` header lines naming the program, model, reference and TSS set."""
        md = self.model.metadata
        spec = self.model.window_spec
        name = md.name if len(self.members) == 1 else f"ensemble_of_{len(self.members)}"
        lines = [
            ("varxpress_version", __version__),
            ("varxpress_command", self.cfg.command_line or "varxpress score"),
            ("varxpress_model", f"<Name={name},File={Path(self.model_path).name},SHA256={self.model_sha256},"
                                f"Build={md.genome_build},Upstream={spec.upstream},Downstream={spec.downstream},"
                                f"Output={md.output_scale},Members={len(self.members)}>"),
            ("varxpress_reference", f"<File={Path(self.cfg.fasta).name},FaiMD5={self.genome.fingerprint()}>"),
            ("varxpress_tss", f"<File={Path(self.tss_path).name},Genes={len(self.tss)}>"),
        ]
        if self.background is not None:
            bg = self.background
            lines.append(("varxpress_background", f"<File={Path(str(bg.path)).name},N={len(bg)},"
                                                  f"ModelSHA256={bg.model_sha256}>"))
        return lines

    def _classify(self, rec, ordinal: int, path: str, header_lines: int, stats: ScoreStats):
        """Per-allele skip reasons and scoring tasks of one record (``path``/``header_lines`` locate it in messages)."""
        alts = rec.ALT
        stats.alleles += len(alts)
        skips: dict[int, str] = {}
        tasks: list[_Task] = []
        if not alts:
            stats.skipped[SkipReason.MISSING_ALT.value] += 1
            return {0: SkipReason.MISSING_ALT.value}, tasks
        chrom = self.genome.resolve(rec.CHROM)
        if chrom is None:
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
        if not check_ref(self.genome, chrom, pos, rec.REF):
            genome_ref = self.genome.fetch(chrom, max(pos - 1, 0), pos - 1 + len(rec.REF))
            msg = (f"{locate(path, header_lines, ordinal)}: REF {rec.REF} of {rec.CHROM}:{pos} disagrees with the genome ({genome_ref}); "
                   f"is the FASTA the build the VCF was called on?")
            if self.cfg.on_ref_mismatch == "error":
                raise RefMismatchError(msg + " (--on-ref-mismatch warn|skip keeps going)")
            if self.cfg.on_ref_mismatch == "warn":
                warnings.warn(msg, RefMismatchWarning, stacklevel=2)
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
                skips[i] = NO_GENE
                stats.skipped[NO_GENE] += 1
                continue
            allele = Allele(chrom, pos, ref.upper(), alt.upper(), i, kind)
            stats.alleles_scored += 1
            tasks.extend(_Task(ordinal, allele, g) for g in genes)
        return skips, tasks

    def _scores(self, member_results: list[list]) -> dict[int, list[GeneScore]]:
        """GeneScores from each member's ``Engine.score`` results (one list per member, same task order)."""
        from varxpress.models.ensemble import ensemble_stats

        out: dict[int, list[GeneScore]] = collections.defaultdict(list)
        results = member_results[0]
        if not results:
            return out
        ref = np.array([[r[1] for r in res] for res in member_results]).T  # (n, k)
        alt = np.array([[r[2] for r in res] for res in member_results]).T
        ens = ensemble_stats(ref, alt)
        pct = self.background.percentile(np.abs(ens.mean_delta)) if self.background is not None else None
        single = len(member_results) == 1
        fcs = mean_log2_fold_change(ref, alt, self._scales)
        bg_max_n = None if self.background is None else self.background.provenance.get("max_n_fraction")
        for i, (task, _ref, _alt, flags, _fast, n_fraction) in enumerate(results):
            d = float(ens.mean_delta[i])
            p = None if pct is None else float(pct[i])
            flags = quality_flags("off_contig" in flags, n_fraction, p, bg_max_n)
            fc = None if fcs is None else fcs[i]
            allele, tss = task.allele, task.tss
            out[task.record].append(GeneScore(
                record=task.record, alt_index=allele.alt_index, alt=allele.alt, gene_id=tss.gene_id,
                gene_name=tss.gene_name, strand=tss.strand, tss_pos=tss.pos0 + 1,
                distance=distance_to_tss(allele, tss), ref_pred=float(ens.ref_mean[i]),
                alt_pred=float(ens.alt_mean[i]), delta=d, log2fc=None if fc is None else float(fc), flags=flags,
                percentile=p, n_fraction=n_fraction,
                delta_sd=None if single else float(ens.sd_delta[i]),
                sign_agreement=None if single else float(ens.sign_agreement[i]),
            ))
        for scores in out.values():
            scores.sort(key=lambda s: s.alt_index)  # stable: genes stay in index order within an allele
        return out

    def run(self, vcf_path: str, out: str, tsv: str | None = None) -> ScoreStats:
        """Score ``vcf_path`` (a file, ``-`` for standard input, or a pipe) into ``out`` (VCF/VCF.gz/BCF or ``-``)
        and optionally ``tsv``."""
        with seekable_input(vcf_path) as source:
            return self._run(source, input_name(vcf_path), out, tsv)

    def _run(self, source: str, vcf_path: str, out: str, tsv: str | None) -> ScoreStats:
        """:meth:`run` on ``source``, a regular file; ``vcf_path`` names the input in messages."""
        import cyvcf2

        cfg = self.cfg
        stats = ScoreStats()
        if cfg.regions:
            check_region_index(source, vcf_path)  # before anything is written
        # a text VCF is checked line by line first: htslib misreads some malformed lines instead of refusing them
        scan = scan_vcf_text(source, name=vcf_path) if not cfg.regions else None
        vcf = open_vcf(source, name=vcf_path)
        header_lines = scan.header_lines if scan is not None else count_header_lines(source)
        if scan is not None:
            declare_undeclared(vcf, scan.undeclared, vcf_path)
        provenance = self.provenance()
        clear = add_header(vcf, provenance)
        line_base = 0 if cfg.regions else header_lines  # a region selection has no meaningful file line numbers
        records = read_checked(iter_records(vcf, source, cfg.regions, name=vcf_path), vcf_path, line_base)
        # what can be refused up front (no index for --region, an unreadable first record) is, before any header
        # reaches the output (with `-o -` a header on stdout cannot be taken back)
        try:
            first = next(records, None)
        except BaseException:
            self.close_engines()
            raise
        records = itertools.chain([first] if first is not None else [], records)
        streaming = in_place(out)  # stdout, a device or a FIFO: written in place, cannot be read back or indexed
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(out, INDEX_SUFFIXES, stream=True))
            writer = cyvcf2.Writer(tmp, vcf, mode=vcf_write_mode(out))
            writer.write_header()
            tsv_writer = TsvWriter(tsv, [f"{k}={v}" for k, v in provenance]) if tsv else None
            ok = False
            try:
                progress = _progress(cfg.quiet)
                ordinal = 0
                for chunk in _chunks(records, cfg.chunk_size):
                    self._run_chunk(chunk, ordinal, vcf_path, line_base, stats, writer, tsv_writer, clear)
                    ordinal += len(chunk)
                    progress.update(len(chunk))
                progress.close()
                if scan is not None and stats.records_in != scan.records:
                    raise VcfError(f"{vcf_path}: htslib read {stats.records_in} records but the file has "
                                   f"{scan.records} data lines; check it with `bcftools view {vcf_path}`")
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
        if tsv_writer is not None:
            tsv_writer.check_reader()  # the VCF is complete; now say the TSV's reader went away, if it did
        stats.genes_predicted = self.engines[0].genes_predicted
        return stats

    def close_engines(self) -> None:
        """Stop the engines' worker processes (idempotent)."""
        for engine in self.engines:
            engine.close()

    def _run_chunk(self, chunk, first: int, vcf_path: str, header_lines: int, stats: ScoreStats, writer,
                   tsv_writer, clear: list[str]) -> None:
        per_record = []
        tasks: list[_Task] = []
        for k, rec in enumerate(chunk):
            ordinal = first + k
            skips, rec_tasks = self._classify(rec, ordinal, vcf_path, header_lines, stats)
            per_record.append(skips)
            tasks.extend(rec_tasks)
        member_results = [engine.score(tasks) for engine in self.engines]
        results = member_results[0]
        stats.scores += len(results)
        stats.scores_fast += sum(1 for r in results if r[4])
        scores = self._scores(member_results)
        for flag in (f for rec_scores in scores.values() for s in rec_scores for f in s.flags):
            stats.flags[flag] += 1
        for k, rec in enumerate(chunk):
            ordinal = first + k
            mine = scores.get(ordinal, [])
            annotate(rec, len(rec.ALT), mine, per_record[k], clear)
            try:
                writer.write_record(rec)
            except Exception as exc:  # noqa: BLE001 - cyvcf2 raises bare Exception (e.g. an undeclared tag)
                raise VcfError(f"{locate(vcf_path, header_lines, ordinal)}: htslib cannot write this record "
                               f"back ({exc}); does it use an INFO/FORMAT tag or contig its header does not "
                               f"declare? Add the ##INFO/##FORMAT/##contig line") from exc
            stats.records_in += 1
            stats.records_out += 1
            if tsv_writer is not None:
                for s in mine:
                    tsv_writer.write(rec.CHROM, record_pos(rec), rec.ID or ".", rec.REF, s)


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
    return Scorer(cfg).run(cfg.vcf, cfg.out, cfg.tsv)


def command_line(argv: list[str] | None) -> str:
    """The command line as recorded in output headers."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["varxpress", *args])
