"""In-silico saturation mutagenesis: every possible substitution in a stretch of a gene's promoter window.

``varxpress mutagenesis --gene TERT --start -500 --end 100`` scores the three alternative bases at every position
of ``[start, end)`` (offsets from the TSS in the direction of transcription, negative = upstream, 0 = the TSS
base; see docs/windows.md) and writes

* ``PREFIX.tsv``: one row per substitution (gene, 1-based genomic position, offset, REF and ALT on the genome's
  ``+`` strand as a VCF would write them, reference and alternate prediction, ``delta = alt - ref``);
* ``PREFIX.GENE.heatmap.{png,svg,pdf}``: position x base, colour = delta of mutating to that base;
* ``PREFIX.GENE.logo.{png,svg,pdf}``: a sequence logo of the reference bases, letter height = per-position importance
  ``-mean(delta over the three substitutions)`` (a tall letter above the axis: the model needs that base for
  expression; below the axis: the base holds expression down).

Plots read in the direction of transcription (upstream left), bases as the transcript's strand reads them (the
complement of the genome's ``+`` strand for a ``-`` strand gene); the TSS and any ``--vcf`` variants are marked.
Reference ``N`` positions have no substitutions (no TSV rows, blank plot columns).

Substitutions go through the incremental engine (:mod:`varxpress.models.fastpath`) where the network allows it, else
through batched full predictions (:class:`SubstitutionPredictor`); the two agree within 1e-4.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from varxpress.scoring import scores
from varxpress.sequence.encode import ALPHABET, one_hot
from varxpress.errors import AnnotationError, VarxpressError
from varxpress.io.outputs import open_output, save_figure
from varxpress.scoring.scores import units_text
from varxpress.sequence.windows import Window, ref_window

log = logging.getLogger(__name__)

__all__ = ["SubstitutionPredictor", "MutagenesisResult", "saturation_mutagenesis", "find_gene", "load_inputs",
           "add_input_arguments", "write_tsv", "plot_heatmap", "plot_logo", "add_arguments", "run"]

_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
TSV_COLUMNS = ("gene_id", "gene_name", "strand", "chrom", "pos", "offset", "ref", "alt", "ref_pred", "alt_pred",
               "delta")


class MutagenesisError(VarxpressError, ValueError):
    """A mutagenesis request that cannot be met (range outside the window, unknown gene)."""


# ---------------------------------------------------------------------------------------------------------------------
# substitution predictions of one model


@dataclass
class _Reference:
    onehot: np.ndarray  #: (L, 4) oriented reference window
    features: np.ndarray | None  #: (F,) or None
    pred: float
    cache: Any = None  #: fastpath.RefCache where the fast path is used


class SubstitutionPredictor:
    """Alternate predictions of windows that differ from a reference window by substitutions only.

    Args:
        model: an :class:`~varxpress.models.network.ExpressionModel`.
        fast: use :class:`varxpress.models.fastpath.LocalScorer` where the network allows it.
        threads: threads of the fast path.
        batch_size: windows per model call on the full-recomputation path.
    """

    def __init__(self, model, fast: bool = True, threads: int = 1, batch_size: int = 128) -> None:
        self.model = model
        self.batch_size = batch_size
        self.local = None
        if fast:
            from varxpress.models import fastpath

            if fastpath.supports(model):
                self.local = fastpath.LocalScorer(model, threads=threads)
            else:
                log.info("network not supported by the incremental engine: full recomputation per substitution")

    @property
    def fast(self) -> bool:
        """Whether the incremental engine is in use."""
        return self.local is not None

    def reference(self, onehot: np.ndarray, features: np.ndarray | None = None) -> _Reference:
        """Prepare a reference window: ``onehot`` shape (L, 4) oriented as the network reads it; ``features`` (F,)."""
        if self.local is not None:
            cache = self.local.prepare(onehot, features)
            return _Reference(onehot, features, float(cache.pred), cache)
        feats = None if features is None else np.asarray(features, dtype=np.float32)[None, :]
        pred = float(self.model.predict(onehot[None], feats, batch_size=1)[0])
        return _Reference(onehot, features, pred)

    def predict(self, ref: _Reference, edits: Sequence[Sequence[tuple[int, int]]]) -> np.ndarray:
        """Alternate predictions, shape (len(edits),) float64, on the model's output scale.

        ``edits``: one edit-set per alternate window, each a list of ``(window_index, base_index)`` (0-based index
        in the oriented window; base 0-3 = A, C, G, T, -1 = N), as in :meth:`varxpress.models.fastpath.LocalScorer.predict_substitutions`.
        """
        if self.local is not None:
            return self.local.predict_substitutions(ref.cache, edits)
        out = np.empty(len(edits), dtype=np.float64)
        rows = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])
        for lo in range(0, len(edits), self.batch_size):
            chunk = edits[lo:lo + self.batch_size]
            X = np.repeat(ref.onehot[None], len(chunk), axis=0)
            for k, es in enumerate(chunk):
                for index, base in es:
                    X[k, index] = rows[base]  # base -1 selects the zero row
            F = None if ref.features is None else np.broadcast_to(np.asarray(ref.features, np.float32),
                                                                  (len(chunk), len(ref.features)))
            out[lo:lo + len(chunk)] = self.model.predict(X, F, batch_size=self.batch_size)
        return out


# ---------------------------------------------------------------------------------------------------------------------
# the scan


@dataclass
class MutagenesisResult:
    """Every substitution at ``m`` positions of one gene's window.

    Attributes:
        tss: the gene's TSS record.
        window: its reference window (genomic coordinates, oriented sequence).
        offsets: shape (m,), signed offset of each position from the TSS in transcription direction (ascending).
        positions: shape (m,), 0-based genomic coordinate of each position.
        indices: shape (m,), index of each position in the oriented window.
        ref_bases: the m reference bases as the transcript's strand reads them.
        ref_pred: the reference prediction.
        alt_preds: shape (m, 4), prediction with the position mutated to A, C, G, T (transcript strand); NaN at the
            reference base and at ``N`` positions.
    """

    tss: Any
    window: Window
    offsets: np.ndarray
    positions: np.ndarray
    indices: np.ndarray
    ref_bases: str
    ref_pred: float
    alt_preds: np.ndarray

    @property
    def deltas(self) -> np.ndarray:
        """``alt - ref``, shape (m, 4) (NaN at the reference base and at ``N`` positions)."""
        return scores.delta(self.ref_pred, self.alt_preds)

    def importance(self) -> np.ndarray:
        """Per-position importance, shape (m,): ``-mean`` of the three substitutions' deltas (NaN at ``N``)."""
        d = self.deltas
        valid = ~np.isnan(d)
        total = np.where(valid, d, 0.0).sum(axis=1)
        count = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, -total / np.maximum(count, 1), np.nan)

    def rows(self) -> list[tuple]:
        """TSV rows (see :data:`TSV_COLUMNS`): genomic ``+`` strand REF/ALT, 1-based ``pos``, genomic order."""
        out = []
        minus = self.window.strand == "-"
        order = np.argsort(self.positions, kind="stable")
        for k in order:
            for b, base in enumerate(ALPHABET):
                alt = self.alt_preds[k, b]
                if np.isnan(alt):
                    continue
                ref_g = _COMPLEMENT[self.ref_bases[k]] if minus else self.ref_bases[k]
                alt_g = _COMPLEMENT[base] if minus else base
                out.append((self.tss.gene_id, self.tss.gene_name, self.tss.strand, self.window.chrom,
                            int(self.positions[k]) + 1, int(self.offsets[k]), ref_g, alt_g, self.ref_pred,
                            float(alt), float(alt - self.ref_pred)))
        return out


DEFAULT_RANGE = (-500, 100)  #: default offsets of ``--gene`` scans (half-open), before trimming N


def real_offsets(genome, tss, spec, offsets: np.ndarray) -> np.ndarray:
    """``offsets`` (ascending) trimmed to the first..last that is not ``N`` in the gene's reference window.

    A window of the example genome is mostly ``N`` around a few hundred real bases: a scan of the default range
    then covers that real stretch rather than a strip of blank columns. All ``N``: returned unchanged.
    """
    window = ref_window(genome, tss, spec)
    pos0 = tss.pos0 + offsets if tss.strand == "+" else tss.pos0 - offsets
    inside = (pos0 >= window.start) & (pos0 < window.end)
    real = np.zeros(len(offsets), dtype=bool)
    idx = window_index(window, pos0[inside])
    real[np.flatnonzero(inside)] = [window.seq[i] in "ACGT" for i in idx]
    if not real.any():
        return offsets
    k = np.flatnonzero(real)
    return offsets[k[0]:k[-1] + 1]


def window_index(window: Window, pos0: np.ndarray) -> np.ndarray:
    """Index in the oriented window of 0-based genomic positions (``pos0 - start`` on ``+``, ``end-1-pos0`` on ``-``)."""
    pos0 = np.asarray(pos0, dtype=np.int64)
    return pos0 - window.start if window.strand == "+" else window.end - 1 - pos0


def tss_offset(tss, pos0: np.ndarray) -> np.ndarray:
    """Signed offset from the TSS in transcription direction of 0-based genomic positions (negative = upstream)."""
    pos0 = np.asarray(pos0, dtype=np.int64)
    return pos0 - tss.pos0 if tss.strand == "+" else tss.pos0 - pos0


def saturation_mutagenesis(predictor: SubstitutionPredictor, genome, tss, positions: Sequence[int] | np.ndarray,
                           features: np.ndarray | None = None) -> MutagenesisResult:
    """Score every substitution at the given genomic positions of one gene's window.

    Args:
        predictor: the model's :class:`SubstitutionPredictor`.
        genome: the reference :class:`~varxpress.io.genome.Genome`.
        tss: the gene's :class:`~varxpress.io.tss.TSS`.
        positions: 0-based genomic coordinates, all inside the gene's window.
        features: the gene's model features, shape (F,); None: the model's defaults.

    Raises:
        MutagenesisError: a position lies outside the window.
    """
    window = ref_window(genome, tss, predictor.model.window_spec)
    pos = np.unique(np.asarray(positions, dtype=np.int64))
    if pos.size and (pos.min() < window.start or pos.max() >= window.end):
        raise MutagenesisError(f"positions {pos.min() + 1}-{pos.max() + 1} reach outside gene {tss.gene_id}'s window "
                               f"{window.chrom}:{window.start + 1}-{window.end}")
    offsets = tss_offset(tss, pos)
    order = np.argsort(offsets, kind="stable")
    pos, offsets = pos[order], offsets[order]
    idx = window_index(window, pos)
    onehot = one_hot(window.seq)
    ref = predictor.reference(onehot, features)
    ref_bases = "".join(window.seq[i] for i in idx)
    edits, cells = [], []
    for k, i in enumerate(idx):
        rb = ALPHABET.find(ref_bases[k])
        if rb < 0:
            continue  # N: no substitution defined
        for b in range(4):
            if b != rb:
                edits.append([(int(i), b)])
                cells.append((k, b))
    alt = np.full((pos.size, 4), np.nan)
    if edits:
        preds = predictor.predict(ref, edits)
        ks, bs = np.array(cells).T
        alt[ks, bs] = preds
    return MutagenesisResult(tss, window, offsets, pos, idx, ref_bases, ref.pred, alt)


# ---------------------------------------------------------------------------------------------------------------------
# inputs shared by the background, mutagenesis and explain subcommands


def add_input_arguments(p: argparse.ArgumentParser, fasta_required: bool = True) -> None:
    """``--fasta --tss --tss-offset --tss-format --model --contig-map --features --threads --no-fast-path``."""
    from varxpress.cli.types import existing_file, positive_int
    from varxpress.cli.types import model_argument
    from varxpress.models.registry import DEFAULT, describe

    p.add_argument("--fasta", "-f", required=fasta_required, type=existing_file, help="reference genome FASTA")
    p.add_argument("--tss", type=existing_file,
                   help="TSS annotation: BED6(+name), GTF, GFF3 or TSV (default: the bundled model's own TSS set)")
    p.add_argument("--tss-offset", type=int,
                   help="TSS = BED start + OFFSET (10000 for the Xpresso BED); default: BED convention")
    p.add_argument("--tss-format", default="auto", choices=["auto", "bed", "gtf", "gff3", "tsv"],
                   help="format of --tss; auto: from the file name and contents (BED, GTF, GFF3 or TSV)")
    p.add_argument("--model", "-m", type=model_argument,
                   help=f"a bundled model by name or a model file (.vxm.h5); default: {DEFAULT}. Bundled: {describe()}")
    p.add_argument("--contig-map", type=existing_file, help="two-column TSV: annotation/VCF contig -> FASTA contig")
    p.add_argument("--features", type=existing_file,
                   help="per-gene model features (TSV: gene id, then one column per feature); default: model defaults")
    p.add_argument("--threads", "-t", type=positive_int, default=1, help="CPU threads")
    p.add_argument("--no-fast-path", dest="fast", action="store_false",
                   help="recompute the whole network for every substitution (slow; for checking)")


@dataclass
class Inputs:
    """What the interpretation subcommands load: genome, model (and its path), TSS list and features."""

    genome: Any
    model: Any
    model_path: str
    tss: list
    tss_path: str
    features: dict[str, np.ndarray]

    def features_for(self, gene_id: str) -> np.ndarray | None:
        """The gene's feature vector (F,), the model's defaults where absent; None for a model without features."""
        if not self.model.n_features:
            return None
        f = self.features.get(gene_id)
        return np.asarray(self.model.metadata.default_features if f is None else f, dtype=np.float32)


def load_inputs(args: argparse.Namespace) -> Inputs:
    """Load the genome, model, TSS set and features named by :func:`add_input_arguments`'s options."""
    from varxpress.io.genome import Genome, read_contig_map
    from varxpress.models.network import ExpressionModel
    from varxpress.scoring.pipeline import read_feature_table
    from varxpress.models.registry import load_tss_set

    contig_map = read_contig_map(args.contig_map) if getattr(args, "contig_map", None) else None
    genome = Genome(args.fasta, contig_map=contig_map)
    model_path, tss_path, tss = load_tss_set(args.model, args.tss, args.tss_offset, args.tss_format)
    model = ExpressionModel.load(model_path)
    features = read_feature_table(args.features, model.n_features) if getattr(args, "features", None) else {}
    return Inputs(genome, model, str(model_path), tss, str(tss_path), features)


def find_gene(tss_list: list, name: str):
    """The TSS of a gene by exact gene id, else by gene name (case-insensitive).

    Raises:
        AnnotationError: no such gene, or a name shared by several gene ids.
    """
    for t in tss_list:
        if t.gene_id == name:
            return t
    hits = [t for t in tss_list if t.gene_name.upper() == name.upper()]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise AnnotationError(f"gene name {name!r} names {len(hits)} genes ({', '.join(t.gene_id for t in hits)}); "
                              f"give the gene id")
    raise AnnotationError(f"gene {name!r} is not in the TSS set (neither a gene id nor a gene name)")


def vcf_marks(vcf_path: str | None, genome, chrom: str, start: int, end: int) -> list[tuple[int, str, str, str]]:
    """Variants of a VCF whose REF span overlaps 0-based ``[start, end)`` of ``chrom``: ``(start0, label, ref, alt)``."""
    if not vcf_path:
        return []
    from varxpress.scoring.pipeline import open_vcf
    from varxpress.io.variants import record_pos

    marks = []
    for rec in open_vcf(vcf_path):
        if genome.resolve(rec.CHROM) != chrom:
            continue
        s = record_pos(rec) - 1
        if s < end and s + len(rec.REF) > start:
            label = rec.ID or f"{rec.CHROM}:{s + 1}"
            marks.append((s, label, rec.REF.upper(), ",".join(rec.ALT).upper()))
    return marks


# ---------------------------------------------------------------------------------------------------------------------
# output


def write_tsv(results: list[MutagenesisResult], path: str | os.PathLike, provenance: Sequence[str] = ()) -> None:
    """Write the substitutions of ``results`` as TSV (``## `` provenance lines, header, rows), atomically."""
    with open_output(path) as fh:
        for line in provenance:
            fh.write(f"## {line}\n")
        fh.write("\t".join(TSV_COLUMNS) + "\n")
        for res in results:
            for row in res.rows():
                fh.write("\t".join(f"{x:.6g}" if isinstance(x, float) else str(x) for x in row) + "\n")


def _marks_offsets(res: MutagenesisResult, marks) -> list[tuple[float, str, str]]:
    """(plot x, label, oriented alt base or '') of marked variants inside the scanned range (labels at one x merged)."""
    out: list[tuple[float, str, str]] = []
    lo, hi = res.offsets.min(), res.offsets.max()
    minus = res.window.strand == "-"
    for s, label, ref, alt in marks:
        span = np.arange(s, s + len(ref))
        offs = tss_offset(res.tss, span)
        x = float(offs.mean())
        if offs.max() < lo or offs.min() > hi:
            continue
        base = ""
        if len(ref) == 1 and len(alt) == 1 and alt in _COMPLEMENT:
            base = _COMPLEMENT[alt] if minus else alt
        same = [i for i, o in enumerate(out) if o[0] == x]
        if same:
            i = same[0]
            out[i] = (x, f"{out[i][1]}/{label}", out[i][2] or base)
        else:
            out.append((x, label, base))
    return out


FIGURE_FORMATS = ("png", "svg", "pdf")  #: what the mutagenesis figures are written as (vector and bitmap)
FIGURE_DPI = 300  #: PNG resolution (print quality)
_CELL_INCHES = 0.075  #: width of one position: room for its reference letter at 5.5 pt
_LABEL_TAG = "variant-label"  #: gid of the variant labels (tests check that none overlap)


def _figure_width(m: int) -> float:
    return float(min(max(6.0, m * _CELL_INCHES + 2.4), 40.0))


def _strand_words(res: MutagenesisResult) -> str:
    name = res.tss.gene_name
    return f"{name} strand, {'+' if res.window.strand == '+' else '−'} on the genome"


def _position_label(res: MutagenesisResult) -> str:
    return f"position relative to the {res.tss.gene_name} TSS (bp, direction of transcription; negative = upstream)"


def _setup_figure(m: int, height: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # SVG text stays text (editable, searchable)
    plt.rcParams["pdf.fonttype"] = 42  # TrueType in PDF, as journals ask
    return plt.subplots(figsize=(_figure_width(m), height), layout="constrained")


def _reference_letters(ax, res: MutagenesisResult) -> None:
    """The reference base of every position as the x tick labels (transcript strand), where there is room."""
    m = len(res.offsets)
    width_pt = (ax.figure.get_figwidth() - 2.4) * 72 / max(m, 1)  # the axes' share of the figure, per position
    if width_pt < 3.0:
        return
    sec = ax.secondary_xaxis("top")
    sec.set_xticks(res.offsets, list(res.ref_bases), fontsize=min(7.0, width_pt / 0.7), family="DejaVu Sans Mono")
    sec.tick_params(length=0, pad=1)


def _label_levels(items: list[tuple[float, str]], data_per_point: float, size: float = 7.0) -> list[int]:
    """Stack labels centred at data x: each goes on the lowest row where it clears every label already there."""
    from matplotlib.textpath import TextPath

    right_edges: list[float] = []  # per row, the right end of its last label
    levels = []
    for x, label in items:
        half = (TextPath((0, 0), label, size=size).get_extents().width / 2 + 2.0) * data_per_point
        row = next((r for r, edge in enumerate(right_edges) if edge < x - half), len(right_edges))
        if row == len(right_edges):
            right_edges.append(x + half)
        else:
            right_edges[row] = x + half
        levels.append(row)
    return levels


def _place_labels(ax, items: list[tuple[float, str]], base_pt: float, colour: str = "#1b7837") -> None:
    """Labels above the axes at their data x, stacked in rows so that none overlap (see :func:`_label_levels`).

    Overlaps are judged from each label's width in points and a conservative estimate of the axes' width (the
    figure less room for the y label and the colour bar), so the result does not depend on the layout pass.
    """
    fig = ax.figure
    x0, x1 = ax.get_xlim()
    axes_pt = max(fig.get_figwidth() - 2.8, 1.0) * 72
    items = sorted(items)
    for (x, label), level in zip(items, _label_levels(items, (x1 - x0) / axes_pt)):
        # lower rows drawn on top, on white: leader lines of higher labels pass behind them
        ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, base_pt + level * 9.0),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7, color=colour, gid=_LABEL_TAG,
                    zorder=10 - min(level, 9) * 0.1, annotation_clip=False,
                    bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none"},
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.6, "shrinkA": 0, "shrinkB": 0})


def save_figures(fig, paths: Sequence[str | os.PathLike]) -> None:
    """Write ``fig`` to each path, format from the suffix (PNG at :data:`FIGURE_DPI`), each through the output helper."""
    for path in paths:
        save_figure(fig, path, dpi=FIGURE_DPI)


def _title(fig, ax, text: str, own: bool) -> None:
    import textwrap

    text = textwrap.fill(text, width=int(fig.get_figwidth() * 72 / 6.0))  # 10 pt letters are ~6 pt wide
    if own:
        fig.suptitle(text, fontsize=10)
    else:
        ax.set_title(text, fontsize=10)


def plot_heatmap(res: MutagenesisResult, paths: Sequence[str | os.PathLike], marks=(), units: str = "delta",
                 title: str | None = None, ax=None):
    """Heat map position x base (colour = delta, diverging around 0); TSS line, marked variants boxed and labelled.

    Columns: positions in the direction of transcription (upstream left), reference letters on the top axis;
    rows: the substituted base as the transcript's strand reads it. White with a dot: the reference base (no
    change); hatched: ``N`` (no data). Labels of nearby variants are stacked so that none overlap.
    Writes each of ``paths`` (format from the suffix: .png at 300 dpi, .svg, .pdf); with ``ax`` draws into it and
    writes nothing. Returns the figure.
    """
    import matplotlib

    d = res.deltas.copy()
    ref_rows = np.array([ALPHABET.find(b) for b in res.ref_bases])
    real = ref_rows >= 0
    d[np.flatnonzero(real), ref_rows[real]] = 0.0  # the reference base: no change
    vmax = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
    vmax = vmax or 1.0
    own = ax is None
    if own:
        fig, ax = _setup_figure(len(res.offsets), 3.0)
    else:
        fig = ax.figure
    x0, x1 = res.offsets[0] - 0.5, res.offsets[-1] + 0.5
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=(1, 1, 1, 0))
    ax.patch.set_facecolor("white")
    ax.patch.set_hatch("////")
    ax.patch.set_edgecolor("#999999")
    img = ax.imshow(np.ma.masked_invalid(d.T), aspect="auto", cmap=cmap, vmin=-vmax, vmax=vmax,
                    extent=(x0, x1, 3.5, -0.5), interpolation="nearest")
    ks = np.flatnonzero(real)
    if len(ks) <= 400:
        ax.scatter(res.offsets[ks], ref_rows[ks], s=3, c="black", marker="o", linewidths=0)
    ax.set_yticks(range(4), list(ALPHABET))
    ax.set_xlim(x0, x1)
    _reference_letters(ax, res)
    if x0 <= 0 <= x1:
        ax.axvline(-0.5, color="black", lw=1.0, ls="--")
    labels = []
    for x, label, base in _marks_offsets(res, marks):
        labels.append((x, label))
        if base:
            ax.add_patch(matplotlib.patches.Rectangle((x - 0.5, ALPHABET.find(base) - 0.5), 1, 1, fill=False,
                                                      ec="black", lw=1.4))
    if x0 <= 0 <= x1:
        labels.append((-0.5, "TSS"))
    top = "; top: reference bases" if ax.child_axes else ""
    ax.set_xlabel(_position_label(res) + f"\nrows: substituted base{top}; bases on the {_strand_words(res)}",
                  fontsize=8)
    ax.set_ylabel(f"substituted base\n({_strand_words(res)})", fontsize=8)
    ax.tick_params(labelsize=7)
    _title(fig, ax, title or f"{res.tss.gene_name}: predicted effect of every single-base substitution", own)
    bar = fig.colorbar(img, ax=ax, shrink=0.95, pad=0.01)
    bar.set_label(units, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    _place_labels(ax, labels, 16.0 if len(ax.child_axes) else 4.0)
    if own:
        save_figures(fig, paths)
        import matplotlib.pyplot as plt

        plt.close(fig)
    return fig


def _draw_letter(ax, letter: str, x: float, bottom: float, height: float, color: str) -> None:
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    ext = path.get_extents()
    if ext.width <= 0 or ext.height <= 0 or height == 0:
        return
    tr = (Affine2D().translate(-ext.x0, -ext.y0).scale(0.9 / ext.width, abs(height) / ext.height)
          .translate(x - 0.45, bottom if height > 0 else bottom + height))
    ax.add_patch(PathPatch(tr.transform_path(path), fc=color, ec="none"))


# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), dark to light so that the
# letters also differ in grey: A green, C blue, G orange, T vermillion
_LOGO_COLOURS = {"A": "#009E73", "C": "#0072B2", "G": "#E69F00", "T": "#D55E00"}


def plot_logo(res: MutagenesisResult, paths: Sequence[str | os.PathLike], marks=(), units: str = "importance",
              title: str | None = None):
    """Sequence logo of the reference bases, height = :meth:`MutagenesisResult.importance`; TSS and marks shown.

    Letters as the transcript's strand reads them; written like :func:`plot_heatmap`. Returns the figure.
    """
    import matplotlib.pyplot as plt

    imp = res.importance()
    fig, ax = _setup_figure(len(res.offsets), 2.8)
    for x, base, h in zip(res.offsets, res.ref_bases, imp):
        if base in _LOGO_COLOURS and np.isfinite(h):
            _draw_letter(ax, base, float(x), 0.0, float(h), _LOGO_COLOURS[base])
    lim = float(np.nanmax(np.abs(imp))) if np.isfinite(imp).any() else 1.0
    lim = (lim or 1.0) * 1.1
    x0, x1 = res.offsets[0] - 1.0, res.offsets[-1] + 1.0
    ax.set_xlim(x0, x1)
    ax.set_ylim(-lim, lim)
    ax.axhline(0, color="grey", lw=0.6)
    labels = [(x, label) for x, label, _base in _marks_offsets(res, marks)]
    for x, _label in labels:
        ax.axvline(x, color="#1b7837", lw=0.6, ls=":")
    if x0 <= 0 <= x1:
        ax.axvline(-0.5, color="black", lw=1.0, ls="--")
        labels.append((-0.5, "TSS"))
    ax.set_xlabel(_position_label(res) + f";\nletters: reference bases on the {_strand_words(res)}", fontsize=8)
    ax.set_ylabel(f"importance\n{units}", fontsize=8)
    ax.tick_params(labelsize=7)
    _title(fig, ax, title or f"{res.tss.gene_name}: importance of each reference base "
                             f"(minus the mean effect of its three substitutions)", True)
    _place_labels(ax, labels, 4.0)
    save_figures(fig, paths)
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress mutagenesis``."""
    from varxpress.cli.types import existing_file, region

    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--gene", "-g", help="gene id or gene name of the TSS set")
    what.add_argument("--region", "-r", type=region,
                      help="CHROM:START-END (1-based, inclusive): every gene whose window holds it is scanned there")
    add_input_arguments(p)
    p.add_argument("--start", type=int,
                   help="first offset from the TSS (transcription direction, negative = upstream) with --gene "
                        f"(default: {DEFAULT_RANGE[0]}, trimmed to the part of the window that is not N)")
    p.add_argument("--end", type=int, help="offset one past the last scanned position (half-open; default: "
                                          f"{DEFAULT_RANGE[1]}, trimmed like --start)")
    p.add_argument("--vcf", type=existing_file, help="mark this VCF's variants on the plots")
    p.add_argument("--out-prefix", "-o", required=True,
                   help="writes PREFIX.tsv, PREFIX.GENE.heatmap.{png,svg,pdf}, PREFIX.GENE.logo.{png,svg,pdf} "
                        "(PNG at 300 dpi)")
    p.add_argument("--no-plots", dest="plots", action="store_false", help="write the TSV only")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run(args: argparse.Namespace) -> int:
    """``varxpress mutagenesis``: scan, write the TSV and the plots."""
    from varxpress.io.tss import TSSIndex

    inputs = load_inputs(args)
    genome, model = inputs.genome, inputs.model
    spec = model.window_spec
    predictor = SubstitutionPredictor(model, fast=args.fast, threads=args.threads)
    jobs = []  # (tss, genomic positions)
    if args.gene:
        tss = find_gene(inputs.tss, args.gene)
        up, down = spec.upstream, spec.downstream
        start = max(DEFAULT_RANGE[0], -up) if args.start is None else args.start  # defaults stay in the window
        end = min(DEFAULT_RANGE[1], down) if args.end is None else args.end
        if end <= start:
            raise MutagenesisError(f"--start {start} --end {end}: need start < end (offsets, half-open)")
        if start < -up or end > down:
            raise MutagenesisError(f"--start {start} --end {end} reach outside the model window "
                                   f"[-{up}, {down}) around the TSS")
        offs = np.arange(start, end)
        if args.start is None and args.end is None:
            offs = real_offsets(genome, tss, spec, offs)
        jobs.append((tss, tss.pos0 + offs if tss.strand == "+" else tss.pos0 - offs))
    else:
        chrom, start, end = args.region
        name = genome.resolve(chrom)
        if name is None:
            raise MutagenesisError(f"contig {chrom!r} of --region is not in {args.fasta}")
        index = TSSIndex(inputs.tss, spec.upstream, spec.downstream, genome=genome)
        for tss in index.overlapping(name, start, end):
            w0, w1 = index.window(tss)
            jobs.append((tss, np.arange(max(start, w0), min(end, w1))))
        if not jobs:
            raise MutagenesisError(f"no gene's window overlaps {chrom}:{start + 1}-{end}")
    results = []
    for tss, positions in jobs:
        res = saturation_mutagenesis(predictor, genome, tss, positions, inputs.features_for(tss.gene_id))
        log.info("%s (%s): %d positions, %d substitutions, max |delta| %.4g", tss.gene_name, tss.gene_id,
                 len(res.offsets), int(np.isfinite(res.alt_preds).sum()), float(np.nanmax(np.abs(res.deltas)))
                 if np.isfinite(res.deltas).any() else 0.0)
        results.append(res)
    prefix = args.out_prefix
    folder = Path(prefix).parent
    if str(folder) and not folder.is_dir():
        raise MutagenesisError(f"folder {folder} of --out-prefix does not exist")
    md = model.metadata
    provenance = [f"varxpress_command={getattr(args, 'command_line', 'varxpress mutagenesis')}",
                  f"model={Path(inputs.model_path).name} sha256={model.sha256} output_scale={md.output_scale}",
                  f"reference={Path(args.fasta).name} fai_md5={genome.fingerprint()}",
                  f"tss={Path(inputs.tss_path).name}",
                  "ref/alt: genome + strand; offset: from the TSS in transcription direction; delta = alt_pred - ref_pred"]
    write_tsv(results, f"{prefix}.tsv", provenance)
    if args.plots:
        for res in results:
            marks = vcf_marks(args.vcf, genome, res.window.chrom, int(res.positions.min()), int(res.positions.max()) + 1)
            stem = f"{prefix}.{_safe(res.tss.gene_name)}"
            plot_heatmap(res, [f"{stem}.heatmap.{ext}" for ext in FIGURE_FORMATS], marks,
                         units=units_text(md.output_scale, short=True))
            plot_logo(res, [f"{stem}.logo.{ext}" for ext in FIGURE_FORMATS], marks,
                      units=units_text(md.output_scale, short=True).replace("change of ", "", 1))
    log.info("wrote %s.tsv%s", prefix, " and plots" if args.plots else "")
    return 0
