"""Pages of ``varxpress explain``: one self-contained HTML page per variant and a sortable index of them all.

A page leads with the answer (one plain sentence per gene), then the caveats that apply, then the details and a
reading guide; CSS is inline and plots are ``data:`` URIs, so a page is one file that fetches nothing. The index
lists every variant asked for, the unscored ones with their reason, in a table sortable by any column (a small
inline script). The records shown are :class:`varxpress.interpret.report.VariantReport` s.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from varxpress import __version__
from varxpress.errors import VarxpressError
from varxpress.interpret.report import GeneReport, VariantReport, explain_variant
from varxpress.io.outputs import in_place, open_output
from varxpress.scoring.scores import units_text
from varxpress.sequence.encode import reverse_complement

log = logging.getLogger(__name__)

__all__ = ["plain_sentence", "caveats", "strand_allele", "tss_words", "render_html", "render_index", "index_rows",
           "write_report", "write_pages"]


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2em;max-width:1100px;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.1em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
h3{font-size:1.05em;margin-bottom:.3em}.sub{color:#444;margin-top:0}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f3f3f3;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.seq{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;word-break:break-all}.var{background:#ffe08a;
font-weight:bold}.missing{color:#888}.note{color:#555;font-size:.9em}img{max-width:100%;height:auto}
.up{color:#b2182b}.down{color:#2166ac}
.answer{font-size:1.12em;background:#f4f8fb;border-left:5px solid #2166ac;padding:.6em 1em;margin:.8em 0}
.caveats{background:#fff6e0;border-left:5px solid #e69f00;padding:.5em 1em .5em 2.2em;margin:.8em 0}
.caveats li{margin:.3em 0}.flag{font-family:monospace;background:#eee;padding:0 .3em;border-radius:3px}
body.index{max-width:none;font-size:.92em}th.sort{cursor:pointer;user-select:none}
th.sort:after{content:" \\2195";color:#999}
tr.unscored td{color:#777}
"""



def _num(x: float | None, fmt: str = "{:.4g}") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return '<span class="missing">.</span>'
    return html.escape(fmt.format(x))


def strand_allele(ref: str, alt: str, strand: str) -> str:
    """``REF>ALT`` as the gene's strand reads it: reverse-complemented for a ``-`` strand gene (``G>A`` -> ``C>T``)."""
    if strand == "-":
        ref, alt = reverse_complement(ref), reverse_complement(alt)
    return f"{ref}>{alt}"


def tss_words(distance: int) -> str:
    """A signed distance to the TSS (transcription direction) in words: ``61 bp upstream of the TSS``."""
    if distance == 0:
        return "at the TSS"
    return f"{abs(distance):,} bp {'upstream' if distance < 0 else 'downstream'} of the TSS"


def fold_change(g: GeneReport) -> float | None:
    """``2 ** log2fc``, None where the model's scale gives no fold change."""
    return None if g.log2fc is None else float(2.0 ** g.log2fc)


def _gene_allele(g: GeneReport, report: VariantReport) -> str:
    a = report.allele
    return f"{strand_allele(a.ref, a.alt, g.tss.strand)} on the {g.tss.gene_name} strand, {tss_words(g.distance)}"


def plain_sentence(g: GeneReport, report: VariantReport) -> str:
    """One plain-language answer for one gene (HTML): direction, size, how unusual, ensemble agreement."""
    e = html.escape
    name = e(g.tss.gene_name)
    fc = fold_change(g)
    a = report.allele
    genome = f"{a.ref}>{a.alt}"  # the VCF's alleles, genome + strand; the gene's strand may read them complemented
    where = (f"with the alternate allele ({e(genome)} on the genome's and the {e(_gene_allele(g, report))})"
             if g.tss.strand == "+" else
             f"with the alternate allele ({e(genome)} on the genome's + strand, {e(_gene_allele(g, report))})")
    if fc is not None:
        change = (fc - 1.0) * 100.0
        if abs(change) < 0.5:
            size = (f"essentially the same amount of {name} mRNA {where} as with the reference allele "
                    f"(fold change {fc:.3f}×)")
        else:
            more = "more" if change > 0 else "less"
            size = (f"<b>about {abs(change):.0f} % {more} {name} mRNA</b> {where} than with the reference allele "
                    f"(fold change {fc:.2f}×)")
    else:
        more = "a higher" if g.delta > 0 else "a lower" if g.delta < 0 else "the same"
        size = (f"{more} {name} level {where} (delta {g.delta:+.3g}, {e(units_text(report.model['output_scale']))}; "
                f"this model does not say how its output maps to a fold change)")
    text = f"The model predicts {size}."
    if g.percentile is not None:
        judgement = ("unusually large" if g.percentile >= 99 else "large" if g.percentile >= 95 else
                     "not unusual")
        text += (f" That change is {judgement}: as large as or larger than {g.percentile:.1f} % of random "
                 f"single-base changes in the promoters of the model's background")
        text += " (but see the caveats: this window is unlike the background's)." if "background_mismatch" in \
            g.flags else "."
    else:
        text += " No background is available to say how unusual this change is."
    en = g.ensemble
    if en:
        if en["all_agree"]:
            text += (f" All {en['k']} models of the ensemble predict this direction "
                     f"(their deltas vary by SD {en['sd_delta']:.2g}).")
        else:
            text += (f" Only {en['sign_agreement'] * 100:.0f} % of the {en['k']} models of the ensemble predict "
                     f"the same direction as their mean: treat the direction as uncertain.")
    return text


#: a background from fewer genes than this gets a caveat on the page (the bundled ones cover the example genes only)
FEW_GENES = 1000


def caveats(g: GeneReport, report: VariantReport) -> list[str]:
    """The caveats that apply to this gene's prediction (HTML), most serious first."""
    e = html.escape
    name = e(g.tss.gene_name)
    out = []
    length = g.window.end - g.window.start
    if "n_rich" in g.flags:
        out.append(f'<span class="flag">n_rich</span> <b>Mostly unknown sequence.</b> {g.n_fraction * 100:.1f} % of '
                   f"the {length:,} bases the model reads for {name} are N (unknown) in this reference genome. The "
                   f"prediction describes that partly empty window, not the real {name} promoter: score the variant "
                   f"again on a complete genome before relying on it.")
    if "background_mismatch" in g.flags:
        limit = (report.background or {}).get("max_n_fraction")
        limit_text = f"at most {limit * 100:.0f} % N" if isinstance(limit, (int, float)) else "nearly free of N"
        out.append(f'<span class="flag">background_mismatch</span> The percentile ranks this window against '
                   f"background windows that were {limit_text}; for a window this incomplete it is only a rough "
                   f"guide.")
    if "spans_tss" in g.flags:
        out.append(f'<span class="flag">spans_tss</span> <b>The variant removes or rewrites the TSS.</b> The window '
                   f"stays anchored on the annotated TSS ({e(g.window.chrom)}:{g.tss.pos0 + 1:,}), which the "
                   f"alternate sequence no longer has there, and the distance counts from the start of the allele. "
                   f"The prediction describes a changed promoter whose start site may move; the model was not "
                   f"trained on such changes.")
    if "ref_n" in g.flags:
        out.append('<span class="flag">ref_n</span> <b>The reference base is unknown.</b> The genome has N under the '
                   "REF allele, so the model compares the alternate allele with an unknown base, not with the REF the "
                   "VCF names.")
    bg = report.background
    if g.percentile is not None and bg and isinstance(bg.get("n_genes"), int) and bg["n_genes"] < FEW_GENES:
        out.append(f"The percentile ranks this change among random substitutions in the promoters of only "
                   f"{bg['n_genes']} genes (the background {e(str(bg['file']))}): a small sample, so read it as a "
                   f"rough guide; a background built on a whole genome (<code>varxpress background</code>) ranks it "
                   f"against thousands.")
    if "off_contig" in g.flags:
        out.append(f'<span class="flag">off_contig</span> The window runs past the end of {e(g.window.chrom)}; the '
                   f"missing bases were filled with N.")
    members = report.model["members"]
    trained = [f"{e(m['name'])} was trained on the mRNA levels of {e(m['species']) + ' ' if m.get('species') else ''}"
               f"genes on {e(str(m['genome_build']))}" + (f" (its training labels: {e(m['training_labels'])})"
                                                          if m.get("training_labels") else "") for m in members]
    who = (f"The model {trained[0]}." if len(members) == 1 else
           f"The ensemble {e(report.model['name'])} averages {len(members)} models: {'; '.join(trained)}.")
    out.append(f"{who} It predicts a gene's typical level across tissues, not its level in one cell type or tissue, "
               f"and was not trained on variant effects: an effect that acts in one cell type (for example an "
               f"erythroid gene such as HBB) or through anything but the promoter sequence can be missed. Use it to "
               f"prioritise variants for follow-up, not to classify them.")
    return out


def _log2fc_note(report: VariantReport) -> str:
    """How the page's log2 fold change follows from the delta, with the label SD(s) it uses."""
    sds = [m.get("label_sd") for m in report.model["members"]]
    if report.model["output_scale"] != "standardized_log10":
        return "delta × log2(10): the change of predicted mRNA level it implies"
    if len(sds) == 1:
        return f"delta × label SD ({_num(sds[0], '{:.4g}')}) × log2(10): the change of predicted mRNA level it implies"
    return ("the mean over the members of each one's delta × its label SD (" +
            ", ".join(_num(sd, "{:.4g}") for sd in sds) + ") × log2(10): the change of predicted mRNA level implied")


def _gene_section(g: GeneReport, report: VariantReport) -> str:
    e = html.escape
    t, w = g.tss, g.window
    units = e(units_text(report.model["output_scale"]))
    direction = "up" if g.delta > 0 else "down" if g.delta < 0 else ""
    fc = fold_change(g)
    rows = [
        ("Gene", f"{e(t.gene_name)} ({e(t.gene_id)})"),
        ("Allele on the gene's strand", e(_gene_allele(g, report))),
        ("Strand", f"{e(t.strand)} (the model reads the window in the direction of transcription)"),
        ("TSS", f"{e(w.chrom)}:{t.pos0 + 1:,}"),
        ("Window", f"{e(w.chrom)}:{w.start + 1:,}-{w.end:,} (1-based, inclusive; {w.end - w.start:,} bp, read "
                   f"{'reverse-complemented' if t.strand == '-' else 'as on the genome'})"),
        ("Unknown bases (N) in the window", f"{g.n_fraction * 100:.1f} %"),
        ("Distance to the TSS", f"{g.distance:+,} bp ({tss_words(g.distance)}, in the direction of transcription)"),
        ("Reference prediction", f"{_num(g.ref_pred)} <span class=\"note\">{units}</span>"),
        ("Alternate prediction", f"{_num(g.alt_pred)} <span class=\"note\">{units}</span>"),
        ("Delta (alt − ref)", f'<span class="{direction}">{_num(g.delta, "{:+.4g}")}</span> '
                              f'<span class="note">{units}</span>'),
        ("Log2 fold change", _num(g.log2fc, "{:+.3g}") + f' <span class="note">{e(_log2fc_note(report))}</span>'),
        ("Fold change", _num(fc, "{:.3f}×") + ' <span class="note">predicted mRNA with the variant ÷ with the '
                                                'reference allele</span>'),
        ("Percentile of |delta|", (_num(g.percentile, "{:.1f}") + " <span class=\"note\">against the background: "
                                   "as large as or larger than this percentage of random promoter SNVs</span>")
         if g.percentile is not None else '<span class="missing">. (no background for this model)</span>'),
    ]
    if g.ensemble:
        en = g.ensemble
        rows += [
            ("Ensemble mean delta", f"{_num(en['mean_delta'], '{:+.4g}')} <span class=\"note\">over "
                                    f"{en['k']} members</span>"),
            ("Ensemble SD of delta", _num(en["sd_delta"])),
            ("Sign agreement", f"{en['sign_agreement'] * 100:.0f}% of members "
                               f"({'all agree' if en['all_agree'] else 'members disagree'})"),
            ("Member deltas", ", ".join(f"{x:+.3g}" for x in en["member_deltas"])),
        ]
    rows.append(("Flags", e(", ".join(g.flags)) if g.flags else "none"))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    img = ""
    if g.heatmap_png:
        b64 = base64.b64encode(g.heatmap_png).decode("ascii")
        img = (f'<p>Every single-base substitution near the variant: colour = predicted change of {e(t.gene_name)} '
               f"mRNA (red: more, blue: less; white with a dot: the reference base; hatched: unknown sequence N). "
               f"Positions read in the direction of transcription, upstream on the left; bases as the "
               f"{e(t.gene_name)} strand reads them; the variant's cell is boxed.</p>"
               f'<img alt="mutagenesis map for {e(t.gene_name)}" src="data:image/png;base64,{b64}">')
    return f"<h3>{e(t.gene_name)}</h3><table>{table}</table>{img}"


_GUIDE = (
    "<h2>How to read this page</h2>"
    "<p>The model (an Xpresso-style neural network) reads the DNA around each gene's transcription start site (TSS) "
    "and predicts how much mRNA the gene makes. It is run twice: on the reference sequence and with the variant. "
    "<b>Delta</b> is the difference, on the model's scale ({units}); the <b>fold change</b> turns it into the ratio "
    "of predicted mRNA amounts (1.10× = 10 % more; 0.90× = 10 % less). The <b>percentile</b> compares the size of "
    "the change with random single-base changes in promoter windows (the background): 99 means only 1 % of random "
    "promoter changes move the prediction more. It ranks the size, not the direction, and says nothing about "
    "disease. With an ensemble, several independently trained models are run; if they disagree about the "
    "direction, so should you.</p>"
    "<p><b>Strands.</b> VCF files write alleles on the genome's + strand. A gene on the − strand is transcribed from "
    "the other strand, so the same change reads complemented there (genome G&gt;A is C&gt;T on the gene's strand). "
    "Distances are counted from the TSS the model uses, in the direction of transcription; they can differ from "
    "HGVS c. coordinates, which count from the start codon.</p>"
    "<p><b>Flags.</b> <span class=\"flag\">n_rich</span>: more than 5 % of the window is unknown sequence (N); "
    "<span class=\"flag\">background_mismatch</span>: the percentile compares such a window with complete ones; "
    "<span class=\"flag\">off_contig</span>: the window runs past the end of the chromosome sequence; "
    "<span class=\"flag\">ref_n</span>: the genome does not know the reference base; "
    "<span class=\"flag\">spans_tss</span>: an indel removes or rewrites the TSS base.</p>"
    "<p>These are model predictions for hypothesis generation and prioritisation, not clinical evidence on their "
    "own.</p>"
)


def page_title(report: VariantReport) -> str:
    """The user's own name of the variant (VCF ID or the text given), else ``chrom:pos REF>ALT``."""
    a = report.allele
    return report.label or f"{a.chrom}:{a.pos:,} {a.ref}>{a.alt}"


def render_html(report: VariantReport) -> str:
    """The report as one self-contained HTML document (no scripts, no external resources).

    Order: the answer (one sentence per gene), the caveats that apply, then the details and a reading guide.
    """
    e = html.escape
    a = report.allele
    m = report.model
    ctx = e(report.context)
    ctx = re.sub(r"\[([^\]]*)\]", r'<span class="var">[\1]</span>', ctx)
    bg = report.background
    bg_text = ("none: percentiles are missing (<code>.</code>); build one with <code>varxpress background</code>"
               if bg is None else
               f"{e(bg['file'])}: {bg['n']:,} SNV deltas ({'all SNVs' if bg['exhaustive'] else 'random sample'}) over "
               f"{bg['n_genes']} genes of {e(str(bg['genome_file']))}")
    ens = report.ensemble
    ens_text = "none" if ens is None else f"{ens['k']} members ({e(ens['path'])})"
    genome_notation = f"{e(a.chrom)}:{a.pos:,} {e(a.ref)}&gt;{e(a.alt)} (genome + strand, {e(a.kind.value)})"
    sub = "<br>".join([genome_notation] + [e(_gene_allele(g, report)) for g in report.genes])
    head = [
        ("Variant", genome_notation),
        ("Sequence (+ strand)", f'<span class="seq">{ctx}</span>'),
        ("Model", f"{e(m['name'])} ({e(m['file'])}, sha256 {e(str(m['sha256'])[:16])}…), window {m['upstream']:,} bp "
                  f"upstream + {m['downstream']:,} bp from the TSS; output: {e(units_text(m['output_scale']))}"),
        ("Background", bg_text),
        ("Ensemble", ens_text),
    ]
    inputs = report.inputs
    if inputs:
        head += [("Reference genome", f"{e(inputs['fasta'])} (FAI MD5 {e(str(inputs['fai_md5']))})"),
                 ("TSS annotation", f"{e(inputs['tss'])} ({inputs['genes']:,} TSSs)")]
        if inputs.get("command"):
            head.append(("Command", f"<code>{e(inputs['command'])}</code>"))
    answers = "".join(f'<p class="answer">{plain_sentence(g, report)}</p>' for g in report.genes)
    notes = []
    for g in report.genes:
        for c in caveats(g, report):
            prefix = f"<b>{e(g.tss.gene_name)}:</b> " if len(report.genes) > 1 and "class=\"flag\"" in c else ""
            if prefix + c not in notes:
                notes.append(prefix + c)
    caveat_list = '<ul class="caveats">' + "".join(f"<li>{c}</li>" for c in notes) + "</ul>"
    body = "".join(_gene_section(g, report) for g in report.genes)
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in head)
    title = e(page_title(report))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>varxpress: {title}</title><style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1><p class=\"sub\">{sub}</p>"
        f"<h2>Predicted effect</h2>{answers}<h2>Caveats</h2>{caveat_list}"
        f"<h2>Details</h2><table>{table}</table>{body}"
        + _GUIDE.format(units=e(units_text(m["output_scale"])))
        + f"<p class=\"note\">varxpress {e(__version__)}</p></body></html>\n"
    )


def write_report(report: VariantReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` atomically."""
    with open_output(path, encoding="utf-8") as fh:
        fh.write(render_html(report))
    return Path(path)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def _file_name(chrom: str, pos: int, ref: str, alt: str, vid: str | None = None) -> str:
    name = f"{chrom}_{pos}_{ref[:20]}_{alt[:20]}"
    return _safe_name(f"{vid}__{name}" if vid else name) + ".html"


def _unique(name: str, used: set[str]) -> str:
    """``name``, or ``stem-2.html``, ``stem-3.html`` ... when a page of that name was already written."""
    stem, k, out = name[:-5], 2, name
    while out.lower() in used:
        out, k = f"{stem}-{k}.html", k + 1
    used.add(out.lower())
    return out


_SORT_JS = """
document.querySelectorAll('th.sort').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var asc = th.dataset.dir !== 'asc';
    th.dataset.dir = asc ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    function key(r) { var c = r.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      if (isNaN(nx) !== isNaN(ny) && (x === '' || y === '')) { return x === '' ? 1 : -1; }  // blanks last
      var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? cmp : -cmp;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
// index.html#sort=COLUMN or #sort=COLUMN-desc opens the table sorted (a link can share a sorted view)
var wanted = /^#sort=(\\d+)(-desc)?$/.exec(location.hash);
var heading = wanted && document.querySelectorAll('th.sort')[+wanted[1]];
if (heading) { heading.click(); if (wanted[2]) { heading.click(); } }
"""

_INDEX_COLUMNS = ("#", "ID", "variant (genome + strand)", "gene", "allele on the gene's strand (bp to TSS)",
                  "fold change",
                  "delta", "percentile", "flags", "ensemble agreement", "status")


def index_rows(n: int, label: str, variant: str, page: str | None, report: VariantReport | None,
               reason: str = "") -> list[str]:
    """Table rows (HTML ``<tr>``) of one input variant for :func:`render_index`: one per gene, or one saying why not."""
    e = html.escape

    def cell(text: str, v: Any = None, cls: str = "") -> str:
        attr = f' data-v="{e(str(v))}"' if v is not None else ""
        return f'<td{attr}{f" class={cls!r}" if cls else ""}>{text}</td>'

    link = f'<a href="{e(page)}">{e(label)}</a>' if page else e(label)
    if report is None:
        return [f'<tr class="unscored">{cell(str(n), n)}{cell(link)}{cell(e(variant))}'
                + cell("") * 7 + cell(f"not scored: {e(reason)}") + "</tr>"]
    rows = []
    for g in report.genes:
        fc = fold_change(g)
        allele_g = strand_allele(report.allele.ref, report.allele.alt, g.tss.strand)
        agree = ("" if not g.ensemble else f"{g.ensemble['sign_agreement'] * 100:.0f} % of {g.ensemble['k']}")
        rows.append(
            f"<tr>{cell(str(n), n)}{cell(link)}{cell(e(variant))}{cell(e(g.tss.gene_name))}"
            f"{cell(e(allele_g) + f' ({g.distance:+,})', g.distance)}"
            f"{cell(_num(fc, '{:.3f}×'), '' if fc is None else fc, 'num')}"
            f"{cell(_num(g.delta, '{:+.4g}'), g.delta, 'num')}"
            f"{cell(_num(g.percentile, '{:.1f}'), '' if g.percentile is None else g.percentile, 'num')}"
            f"{cell(e(', '.join(g.flags)) or '—')}"
            f"{cell(e(agree) or '—', g.ensemble['sign_agreement'] if g.ensemble else '')}"
            f"{cell('scored')}</tr>")
    return rows


def render_index(rows: list[str], model_name: str) -> str:
    """The index page: a table sortable by any column (click its heading; a small inline script, nothing fetched)."""
    head = "".join(f'<th class="sort">{html.escape(c)}</th>' for c in _INDEX_COLUMNS)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>varxpress reports</title>"
            f"<style>{_CSS}</style></head><body class=\"index\"><h1>varxpress reports</h1>"
            f"<p>{len(rows)} rows: one per variant and gene, and one for each variant that could not be scored, with "
            f"the reason. Model: {html.escape(model_name)}. Click a column heading to sort; click an ID for its page. "
            "Fold change: predicted mRNA with the variant ÷ with the reference allele. Percentile: how the size of the "
            "change ranks among random promoter substitutions (the background). Flags: see each page's caveats.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<script>{_SORT_JS}</script></body></html>\n")


def write_pages(res, predictor, wanted: list, out: str | Path, flank: int = 50, command: str | None = None) -> int:
    """Explain every variant of ``wanted`` (:func:`~varxpress.interpret.report.wanted_variants`) into ``out``.

    ``out`` ending in ``.html``/``.htm`` (or a stream: stdout, a FIFO) is one page, for exactly one variant; else a
    folder (created) with one page per variant and ``index.html``. A variant that cannot be explained gets an
    index row saying why (logged as a warning) and no page. Returns the number of pages written.

    Raises:
        VarxpressError: one page asked for several variants; the one variant of a single page cannot be explained.
    """
    single = str(out).endswith((".html", ".htm")) or in_place(str(out))
    if single and len(wanted) != 1:
        raise VarxpressError(f"--out {out} is one file but {len(wanted)} variants were given; give a folder")
    index = res.tss_index()
    if single:
        (chrom, pos, ref, alt), label, _ = wanted[0]
        write_report(explain_variant(res, predictor, chrom, pos, ref, alt, flank, label, index, command), out)
        return 1
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows, used, pages = [], {"index.html"}, 0
    for n, ((chrom, pos, ref, alt), label, vid) in enumerate(wanted, 1):
        variant = f"{chrom}:{pos:,} {ref}>{alt}"
        try:
            report = explain_variant(res, predictor, chrom, pos, ref, alt, flank, label, index, command)
        except VarxpressError as exc:
            log.warning("%s: not explained: %s", label, exc)
            rows += index_rows(n, label, variant, None, None, str(exc))
            continue
        name = _unique(_file_name(chrom, pos, ref, alt, vid), used)
        write_report(report, folder / name)
        pages += 1
        rows += index_rows(n, label, variant, name, report)
    with open_output(folder / "index.html", encoding="utf-8") as fh:
        fh.write(render_index(rows, res.model_name))
    return pages
