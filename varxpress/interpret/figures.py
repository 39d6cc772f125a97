"""Figures of a saturation mutagenesis: a heat map (position x base) and a sequence logo, for pages and files.

Both read in the direction of transcription (upstream left), bases as the transcript's strand reads them; the TSS and
marked variants are labelled (labels stacked so that none overlap). Files are written through the output helper
(:func:`varxpress.io.outputs.save_figure`): PNG at :data:`FIGURE_DPI`, SVG with text kept as text, PDF with TrueType.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from varxpress.interpret.mutagenesis import MutagenesisResult
from varxpress.io.outputs import save_figure
from varxpress.sequence.encode import ALPHABET, reverse_complement
from varxpress.sequence.windows import tss_offset

__all__ = ["FIGURE_FORMATS", "FIGURE_DPI", "plot_heatmap", "plot_logo", "save_figures"]


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
        if len(ref) == 1 and len(alt) == 1 and alt in "ACGTN":
            base = reverse_complement(alt) if minus else alt
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
