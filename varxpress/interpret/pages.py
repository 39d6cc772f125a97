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

from varxpress import __version__
from varxpress.errors import UsageError, VarxpressError
from varxpress.interpret.report import GeneReport, VariantReport, explain_variant
from varxpress.interpret.wording import (caveats, fold_change, gene_allele, log2fc_note, number, percent,
                                         plain_sentence, strand_allele, tss_words)
from varxpress.io.outputs import atomic_folder, in_place, open_output
from varxpress.scoring.scores import units_text

log = logging.getLogger(__name__)

__all__ = ["render_html", "render_index", "index_rows", "write_report", "write_pages"]


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



def _gene_section(g: GeneReport, report: VariantReport) -> str:
    e = html.escape
    t, w = g.tss, g.window
    units = e(units_text(report.model["output_scale"]))
    direction = "up" if g.delta > 0 else "down" if g.delta < 0 else ""
    fc = fold_change(g)
    rows = [
        ("Gene", f"{e(t.gene_name)} ({e(t.gene_id)})"),
        ("Allele on the gene's strand", e(gene_allele(g, report))),
        ("Strand", f"{e(t.strand)} (the model reads the window in the direction of transcription)"),
        ("TSS", f"{e(w.chrom)}:{t.pos0 + 1:,}"),
        ("Window", f"{e(w.chrom)}:{w.start + 1:,}-{w.end:,} (1-based, inclusive; {w.end - w.start:,} bp, read "
                   f"{'reverse-complemented' if t.strand == '-' else 'as on the genome'})"),
        ("Unknown bases (N) in the window", f"{g.n_fraction * 100:.1f} %"),
        ("Distance to the TSS", f"{g.distance:+,} bp ({tss_words(g.distance)}, in the direction of transcription)"),
        ("Reference prediction", f"{number(g.ref_pred)} <span class=\"note\">{units}</span>"),
        ("Alternate prediction", f"{number(g.alt_pred)} <span class=\"note\">{units}</span>"),
        ("Delta (alt − ref)", f'<span class="{direction}">{number(g.delta, "{:+.4g}")}</span> '
                              f'<span class="note">{units}</span>'),
        ("Log2 fold change", number(g.log2fc, "{:+.3g}") + f' <span class="note">{e(log2fc_note(report))}</span>'),
        ("Fold change", number(fc, "{:.3f}×") + ' <span class="note">predicted mRNA with the variant ÷ with the '
                                                'reference allele</span>'),
        ("Percentile of |delta|", (percent(g.percentile) + " <span class=\"note\">against the background: "
                                   "as large as or larger than this percentage of random promoter SNVs</span>")
         if g.percentile is not None else '<span class="missing">. (no background for this model)</span>'),
    ]
    if g.ensemble:
        en = g.ensemble
        rows += [
            ("Ensemble mean delta", f"{number(en['mean_delta'], '{:+.4g}')} <span class=\"note\">over "
                                    f"{en['k']} members</span>"),
            ("Ensemble SD of delta", number(en["sd_delta"])),
            ("Sign agreement", f"{en['sign_agreement'] * 100:.0f}% of members "
                               f"({'all agree' if en['all_agree'] else 'members disagree'})"),
            ("Member deltas", "; ".join(f"{e(name)}: {x:+.3g}" for name, x in zip(en["member_names"],
                                                                                   en["member_deltas"]))),
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
    "<span class=\"flag\">alt_n</span>: the alternate allele has an unknown base (N); "
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
    sub = "<br>".join([genome_notation] + [e(gene_allele(g, report)) for g in report.genes])
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
            f"{cell(number(fc, '{:.3f}×'), '' if fc is None else fc, 'num')}"
            f"{cell(number(g.delta, '{:+.4g}'), g.delta, 'num')}"
            f"{cell(percent(g.percentile), '' if g.percentile is None else g.percentile, 'num')}"
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
    single = str(out).lower().endswith((".html", ".htm")) or (not Path(out).is_dir() and in_place(str(out)))
    if single and len(wanted) != 1:
        raise VarxpressError(f"--out {out} is one file but {len(wanted)} variants were given; give a folder")
    if not single and Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} is an existing file, not a folder: name a folder for the pages, or a .html "
                         f"file for one variant's page")
    index = res.tss_index()
    if single:
        (chrom, pos, ref, alt), label, _ = wanted[0]
        write_report(explain_variant(res, predictor, chrom, pos, ref, alt, flank, label, index, command), out)
        return 1
    with atomic_folder(out) as folder:  # all the pages and their index, or nothing (an interrupted run included)
        return _write_folder(res, predictor, wanted, folder, flank, command, index)


def _write_folder(res, predictor, wanted: list, folder: Path, flank: int, command: str | None, index) -> int:
    """The pages of :func:`write_pages` and their ``index.html``, into ``folder``; the number of pages."""
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
