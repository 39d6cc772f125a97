"""Per-variant HTML reports: ``varxpress explain CHROM:POS:REF:ALT``.

One self-contained HTML page per variant (inline CSS, plots as base64 PNG ``data:`` URIs, no scripts, nothing
fetched from anywhere), with, for every gene whose window holds the variant: the window's coordinates and strand,
the reference and alternate predictions, the delta and the implied log2 fold change, the percentile of ``|delta|``
against the model's background (:mod:`varxpress.background`), the ensemble's mean, spread and sign agreement
(:mod:`varxpress.ensemble`, with ``--ensemble``) and a local saturation mutagenesis map (every substitution within
``--flank`` bases of the variant; :mod:`varxpress.mutagenesis`). docs/interpretation.md explains each number.

Predictions use the same windows as ``varxpress score`` (:mod:`varxpress.windows`), so the numbers match its output.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varxpress import __version__
from varxpress.encode import one_hot
from varxpress.errors import RefMismatchError, VarxpressError, VcfError
from varxpress.scoring import log2_fold_change
from varxpress.variants import Allele, SkipReason, check_ref, classify_allele
from varxpress.windows import Window, alt_window, distance_to_tss, ref_window

log = logging.getLogger(__name__)

__all__ = ["parse_variant", "GeneReport", "VariantReport", "explain_variant", "render_html", "write_report",
           "add_arguments", "run"]

_VARIANT = re.compile(r"^(?P<chrom>[^\s:]+)[:_-](?P<pos>\d[\d,]*)[:_-](?P<ref>[A-Za-z]+)[:_>/-](?P<alt>[A-Za-z]+)$")


def parse_variant(text: str) -> tuple[str, int, str, str]:
    """``CHROM:POS:REF:ALT`` (also ``CHROM-POS-REF-ALT``, ``CHROM:POS:REF>ALT``; 1-based POS) -> (chrom, pos, ref, alt).

    Raises:
        VcfError: the text is not of that form.
    """
    m = _VARIANT.match(text.strip())
    if not m:
        raise VcfError(f"variant {text!r}: expected CHROM:POS:REF:ALT with a 1-based POS, e.g. chr5:1295113:G:A")
    return m["chrom"], int(m["pos"].replace(",", "")), m["ref"].upper(), m["alt"].upper()


@dataclass
class GeneReport:
    """One gene's numbers for one variant (predictions on the model's output scale)."""

    tss: Any
    window: Window
    distance: int
    ref_pred: float
    alt_pred: float
    delta: float
    log2fc: float | None
    percentile: float | None  #: None: no background
    flags: tuple[str, ...] = ()
    ensemble: dict[str, Any] | None = None  #: mean_delta, sd_delta, sign_agreement, all_agree, member_deltas
    mutagenesis: Any = None  #: MutagenesisResult of the local map, or None
    heatmap_png: bytes = b""


@dataclass
class VariantReport:
    """Everything one page shows."""

    allele: Allele
    label: str
    genes: list[GeneReport]
    model: dict[str, Any]
    background: dict[str, Any] | None
    ensemble: dict[str, Any] | None
    context: str = ""  #: genome + strand sequence around the variant, REF in lower case
    notes: list[str] = field(default_factory=list)


def _allele(genome, chrom: str, pos: int, ref: str, alt: str) -> Allele:
    name = genome.resolve(chrom)
    if name is None:
        raise VcfError(f"contig {chrom!r} is not in {genome.path} (under any alias)")
    kind = classify_allele(ref, alt)
    if isinstance(kind, SkipReason):
        raise VcfError(f"{chrom}:{pos}:{ref}:{alt} cannot be scored: {kind.value}")
    if not check_ref(genome, name, pos, ref):
        found = genome.fetch(name, pos - 1, pos - 1 + len(ref))
        raise RefMismatchError(f"REF {ref} of {chrom}:{pos} disagrees with the genome ({found}); is the FASTA the "
                               f"build the variant was called on?")
    return Allele(name, pos, ref, alt, 0, kind)


def _member_windows(model, genome, tss, allele) -> tuple[np.ndarray, Window, Window]:
    spec = model.window_spec
    ref = ref_window(genome, tss, spec)
    alt = alt_window(genome, tss, spec, allele)
    return one_hot([ref.seq, alt.seq]), ref, alt


def explain_variant(inputs, chrom: str, pos: int, ref: str, alt: str, background=None, ensemble=None,
                    flank: int = 50, predictor=None, label: str | None = None) -> VariantReport:
    """Score one variant on every gene whose window holds it, with percentile, ensemble and local mutagenesis.

    Args:
        inputs: :class:`varxpress.mutagenesis.Inputs` (genome, model, TSS set, features).
        chrom, pos, ref, alt: the variant (1-based ``pos``, VCF-style alleles).
        background: a :class:`~varxpress.background.Background` or None (percentiles missing).
        ensemble: an :class:`~varxpress.ensemble.EnsembleModel` or None.
        flank: the local mutagenesis map covers the REF span +- ``flank`` bases (0: no map).
        predictor: a :class:`~varxpress.mutagenesis.SubstitutionPredictor` of ``inputs.model`` (made if None).

    Raises:
        VcfError: unknown contig, unscoreable allele, or no gene's window holds the variant.
        RefMismatchError: REF disagrees with the genome.
    """
    from varxpress.ensemble import ensemble_stats
    from varxpress.mutagenesis import SubstitutionPredictor, plot_heatmap, saturation_mutagenesis
    from varxpress.tss import TSSIndex

    genome, model = inputs.genome, inputs.model
    allele = _allele(genome, chrom, pos, ref, alt)
    spec = model.window_spec
    index = TSSIndex(inputs.tss, spec.upstream, spec.downstream, genome=genome)
    genes = index.overlapping(allele.chrom, allele.start, max(allele.end, allele.start + 1))
    label = label or f"{chrom}:{pos}:{ref}:{alt}"
    if not genes:
        raise VcfError(f"{label}: no gene's window ({spec.upstream} bp upstream to {spec.downstream} bp downstream of "
                       f"a TSS) holds this variant")
    if predictor is None:
        predictor = SubstitutionPredictor(model)
    md = model.metadata
    reports = []
    for tss in genes:
        X, rw, aw = _member_windows(model, genome, tss, allele)
        f = inputs.features_for(tss.gene_id)
        preds = model.predict(X, None if f is None else np.stack([f, f]))
        d = float(preds[1] - preds[0])
        fc = log2_fold_change(d, md.output_scale, md.label_sd)
        pct = None if background is None else float(background.percentile(abs(d)))
        flags = ("off_contig",) if rw.off_contig or aw.off_contig else ()
        ens = None
        if ensemble is not None:
            Xe, _, _ = _member_windows(ensemble, genome, tss, allele)
            fe = None
            if ensemble.n_features:
                fe = inputs.features.get(tss.gene_id)
                fe = np.stack([fe, fe]) if fe is not None else None
            p = ensemble.predict(Xe, fe)  # (2, k)
            st = ensemble_stats(p[0:1], p[1:2])
            ens = {"k": len(ensemble), "mean_delta": float(st.mean_delta[0]), "sd_delta": float(st.sd_delta[0]),
                   "sign_agreement": float(st.sign_agreement[0]), "all_agree": bool(st.all_agree[0]),
                   "member_deltas": [float(x) for x in p[1] - p[0]]}
        gr = GeneReport(tss, rw, distance_to_tss(allele, tss), float(preds[0]), float(preds[1]), d,
                        None if fc is None else float(fc), pct, flags, ens)
        if flank > 0:
            lo = max(allele.start - flank, rw.start)
            hi = min(max(allele.end, allele.start + 1) + flank, rw.end)
            res = saturation_mutagenesis(predictor, genome, tss, np.arange(lo, hi), f)
            gr.mutagenesis = res
            mark = [(allele.start, "variant", allele.ref, allele.alt)]
            fig = plot_heatmap(res, [], mark, units=f"delta ({md.output_scale})",
                               title=f"{tss.gene_name}: every substitution within {flank} bp of the variant")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100)
            gr.heatmap_png = buf.getvalue()
        reports.append(gr)
    ctx_lo = max(allele.start - 20, 0)
    left = genome.fetch(allele.chrom, ctx_lo, allele.start)
    right = genome.fetch(allele.chrom, allele.end, allele.end + 20)
    context = f"{left}[{allele.ref}/{allele.alt}]{right}"
    model_info = {"name": md.name, "file": Path(inputs.model_path).name, "sha256": model.sha256,
                  "output_scale": md.output_scale, "label_sd": md.label_sd, "upstream": spec.upstream,
                  "downstream": spec.downstream, "genome_build": md.genome_build}
    bg_info = None
    if background is not None:
        p = background.provenance
        bg_info = {"file": background.path.name if background.path else "", "n": len(background),
                   "n_genes": p.get("n_genes"), "genome_file": p.get("genome_file"), "exhaustive": p.get("exhaustive"),
                   "quantiles": p.get("abs_delta_quantiles", {})}
    ens_info = None
    if ensemble is not None:
        ens_info = {"k": len(ensemble), "path": str(ensemble.path.name if ensemble.path else ""),
                    "sha256": ensemble.sha256, "source": ensemble.source}
    return VariantReport(allele, label, reports, model_info, bg_info, ens_info, context)


# ---------------------------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2em;max-width:1100px;
color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}th{background:#f3f3f3;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.seq{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;word-break:break-all}.var{background:#ffe08a;
font-weight:bold}.missing{color:#888}.note{color:#555;font-size:.9em}img{max-width:100%;height:auto}
.up{color:#b2182b}.down{color:#2166ac}
"""


def _num(x: float | None, fmt: str = "{:.4g}") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return '<span class="missing">.</span>'
    return html.escape(fmt.format(x))


def _gene_section(g: GeneReport, report: VariantReport) -> str:
    e = html.escape
    t, w = g.tss, g.window
    direction = "up" if g.delta > 0 else "down" if g.delta < 0 else ""
    rows = [
        ("Gene", f"{e(t.gene_name)} ({e(t.gene_id)})"),
        ("Strand", e(t.strand)),
        ("TSS", f"{e(w.chrom)}:{t.pos0 + 1:,}"),
        ("Window", f"{e(w.chrom)}:{w.start + 1:,}-{w.end:,} (1-based, inclusive; {w.end - w.start:,} bp, read "
                   f"{'reverse-complemented' if t.strand == '-' else 'as on the genome'})"),
        ("Distance to the TSS", f"{g.distance:+,} bp ({'upstream' if g.distance < 0 else 'downstream'}, "
                                f"in the direction of transcription)"),
        ("Reference prediction", _num(g.ref_pred)),
        ("Alternate prediction", _num(g.alt_pred)),
        ("Delta (alt − ref)", f'<span class="{direction}">{_num(g.delta, "{:+.4g}")}</span> '
                              f'<span class="note">{e(report.model["output_scale"])} units</span>'),
        ("Implied log2 fold change", _num(g.log2fc, "{:+.3g}")),
        ("Fold change", _num(None if g.log2fc is None else 2.0 ** g.log2fc, "{:.3g}×")),
        ("Percentile of |delta|", (_num(g.percentile, "{:.1f}") + " <span class=\"note\">against the background: "
                                   "larger than or equal to this percentage of random promoter SNVs</span>")
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
    if g.flags:
        rows.append(("Flags", e(", ".join(g.flags))))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    img = ""
    if g.heatmap_png:
        b64 = base64.b64encode(g.heatmap_png).decode("ascii")
        img = (f'<p>Local saturation mutagenesis: the predicted delta of every substitution near the variant '
               f'(red raises, blue lowers expression; dots mark the reference base; the variant is boxed/arrowed; '
               f'positions read in the direction of transcription).</p>'
               f'<img alt="mutagenesis map for {e(t.gene_name)}" src="data:image/png;base64,{b64}">')
    return f"<h2>{e(t.gene_name)}</h2><table>{table}</table>{img}"


def render_html(report: VariantReport) -> str:
    """The report as one self-contained HTML document (no scripts, no external resources)."""
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
    head = [
        ("Variant", f"{e(a.chrom)}:{a.pos:,} {e(a.ref)}&gt;{e(a.alt)} ({e(a.kind.value)})"),
        ("Sequence (+ strand)", f'<span class="seq">{ctx}</span>'),
        ("Model", f"{e(m['name'])} ({e(m['file'])}, sha256 {e(str(m['sha256'])[:16])}…), window {m['upstream']:,} bp "
                  f"upstream + {m['downstream']:,} bp from the TSS, output {e(m['output_scale'])}"),
        ("Background", bg_text),
        ("Ensemble", ens_text),
    ]
    best = max(report.genes, key=lambda g: abs(g.delta))
    summary = (f"Strongest predicted effect: <b>{e(best.tss.gene_name)}</b>, delta {_num(best.delta, '{:+.4g}')}"
               + (f", percentile {best.percentile:.1f}" if best.percentile is not None else ""))
    body = "".join(_gene_section(g, report) for g in report.genes)
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in head)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>varxpress: {e(report.label)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(report.label)}</h1><p>{summary}</p><table>{table}</table>{body}"
        "<h2>How to read this page</h2><p class=\"note\">Predictions are the model's output for the promoter window "
        "of each gene with the reference and with the alternate allele; <i>delta</i> is their difference on the "
        "model's output scale and <i>log2 fold change</i> the change of predicted mRNA level it implies. The "
        "<i>percentile</i> ranks |delta| among random single-base substitutions of promoter windows (the "
        "background): 99 means only 1% of random promoter SNVs move the prediction more. With an ensemble, the SD "
        "and the sign agreement of the members' deltas say how much the models agree. These are model predictions "
        "for hypothesis generation, not clinical evidence on their own. See docs/interpretation.md.</p>"
        f"<p class=\"note\">varxpress {e(__version__)}</p></body></html>\n"
    )


def write_report(report: VariantReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` atomically."""
    from varxpress.outputs import open_output

    with open_output(path, encoding="utf-8") as fh:
        fh.write(render_html(report))
    return Path(path)


# ---------------------------------------------------------------------------------------------------------------------
# CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``varxpress explain``."""
    from varxpress.cli import existing_file, non_negative_int
    from varxpress.mutagenesis import add_input_arguments

    p.add_argument("variants", nargs="*", metavar="VARIANT", help="CHROM:POS:REF:ALT (1-based POS), e.g. chr5:1295113:G:A")
    p.add_argument("--vcf", type=existing_file, help="also explain every ALT allele of this (small) VCF")
    add_input_arguments(p)
    p.add_argument("--background", type=existing_file,
                   help="background file (default: <model file>.background.h5 beside the model, if present)")
    p.add_argument("--ensemble", type=existing_file, help="ensemble folder or manifest: adds mean, SD, sign agreement")
    p.add_argument("--flank", type=non_negative_int, default=50, help="local mutagenesis map: +- this many bases (0: none)")
    p.add_argument("--out", "-o", required=True,
                   help="report.html for one variant; a folder (created) for several: one page each + index.html")


def _file_name(chrom: str, pos: int, ref: str, alt: str) -> str:
    name = f"{chrom}_{pos}_{ref[:20]}_{alt[:20]}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) + ".html"


def run(args: argparse.Namespace) -> int:
    """``varxpress explain``: one HTML page per variant."""
    from varxpress.background import Background
    from varxpress.ensemble import EnsembleModel
    from varxpress.mutagenesis import SubstitutionPredictor, load_inputs

    wanted = [(parse_variant(v), v) for v in args.variants]
    if args.vcf:
        from varxpress.pipeline import open_vcf
        from varxpress.variants import record_pos

        for rec in open_vcf(args.vcf):
            pos = record_pos(rec)
            for alt in rec.ALT:
                v = (rec.CHROM, pos, rec.REF.upper(), alt.upper())
                wanted.append((v, rec.ID or f"{rec.CHROM}:{pos}:{rec.REF}:{alt}"))
    if not wanted:
        raise VcfError("give at least one VARIANT (CHROM:POS:REF:ALT) or --vcf")
    from varxpress.outputs import in_place

    single = str(args.out).endswith((".html", ".htm")) or in_place(args.out)  # one page to stdout, a FIFO, ...
    if single and len(wanted) != 1:
        raise VarxpressError(f"--out {args.out} is one file but {len(wanted)} variants were given; give a folder")
    inputs = load_inputs(args)
    if args.background:
        background = Background.load(args.background)
        background.check_model(inputs.model.sha256)
    else:
        background = Background.for_model(inputs.model_path, inputs.model.sha256)
    ensemble = EnsembleModel.load(args.ensemble) if args.ensemble else None
    predictor = SubstitutionPredictor(inputs.model, fast=args.fast, threads=args.threads)
    if single:
        (chrom, pos, ref, alt), label = wanted[0]
        report = explain_variant(inputs, chrom, pos, ref, alt, background, ensemble, args.flank, predictor, label)
        write_report(report, args.out)
        log.info("wrote %s", args.out)
        return 0
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for (chrom, pos, ref, alt), label in wanted:
        name = _file_name(chrom, pos, ref, alt)
        try:
            report = explain_variant(inputs, chrom, pos, ref, alt, background, ensemble, args.flank, predictor, label)
        except VarxpressError as exc:
            log.warning("%s: not explained: %s", label, exc)
            items.append(f"<li>{html.escape(label)}: not scored ({html.escape(str(exc))})</li>")
            continue
        write_report(report, folder / name)
        best = max(report.genes, key=lambda g: abs(g.delta))
        items.append(f'<li><a href="{html.escape(name)}">{html.escape(label)}</a>: {html.escape(best.tss.gene_name)} '
                     f'delta {best.delta:+.4g}</li>')
    from varxpress.outputs import open_output

    with open_output(folder / "index.html", encoding="utf-8") as fh:
        fh.write(f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>varxpress reports</title>"
                 f"<style>{_CSS}</style></head><body><h1>varxpress reports</h1><ul>{''.join(items)}</ul></body></html>\n")
    log.info("wrote %d reports to %s", len(items), folder)
    return 0
