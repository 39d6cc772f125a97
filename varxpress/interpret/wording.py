"""The sentences of an ``varxpress explain`` page: the plain answer for each gene (:func:`plain_sentence`), the
caveats that apply to it (:func:`caveats`) and the small phrases both use (alleles on the gene's strand, distances to
the TSS, fold changes). :mod:`varxpress.interpret.pages` lays them out.
"""

from __future__ import annotations

import html
import math

import numpy as np

from varxpress.interpret.report import GeneReport, VariantReport
from varxpress.scoring.scores import units_text
from varxpress.sequence.encode import reverse_complement

__all__ = ["plain_sentence", "caveats", "strand_allele", "tss_words", "fold_change", "gene_allele", "log2fc_note",
           "number", "percent", "FEW_GENES"]


def number(x: float | None, fmt: str = "{:.4g}") -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return '<span class="missing">.</span>'
    return html.escape(fmt.format(x))


def percent(p: float | None) -> str:
    """A percentile with one decimal, or with as many more (up to four) as keep a value below 100 from reading as
    100.0 (and one above 0 from reading as 0.0): 99.98 is not "as large as or larger than 100 %" of anything.
    None (no background) is shown missing, as by :func:`number`."""
    if p is None or not np.isfinite(p):
        return number(None)
    for digits in range(1, 5):
        text = f"{p:.{digits}f}"
        if (float(text) < 100 or p >= 100) and (float(text) > 0 or p <= 0):
            return text
    step = 1e-4  # closer still: cut, not rounded, towards the side the value is on
    return f"{(math.floor(p / step) if p > 50 else math.ceil(p / step)) * step:.4f}"


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


def gene_allele(g: GeneReport, report: VariantReport) -> str:
    a = report.allele
    return f"{strand_allele(a.ref, a.alt, g.tss.strand)} on the {g.tss.gene_name} strand, {tss_words(g.distance)}"


def plain_sentence(g: GeneReport, report: VariantReport) -> str:
    """One plain-language answer for one gene (HTML): direction, size, how unusual, ensemble agreement."""
    e = html.escape
    name = e(g.tss.gene_name)
    fc = fold_change(g)
    a = report.allele
    genome = f"{a.ref}>{a.alt}"  # the VCF's alleles, genome + strand; the gene's strand may read them complemented
    where = (f"with the alternate allele ({e(genome)} on the genome's + strand, which is the {name} strand; "
             f"{e(tss_words(g.distance))})" if g.tss.strand == "+" else
             f"with the alternate allele ({e(genome)} on the genome's + strand, {e(gene_allele(g, report))})")
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
        text += (f" That change is {judgement}: as large as or larger than {percent(g.percentile)} % of random "
                 f"single-base changes in the promoters of the model's background")
        text += " (but see the caveats: this window is unlike the background's)." if "background_mismatch" in \
            g.flags else "."
    else:
        text += " No background is available to say how unusual this change is."
    en = g.ensemble
    if en:
        if en["all_agree"]:
            text += (f" {'Both' if en['k'] == 2 else 'All ' + str(en['k'])} models of the ensemble predict this "
                     f"direction (their deltas vary by SD {en['sd_delta']:.2g}).")
        elif en["k"] == 2:
            text += " The two models of the ensemble predict opposite directions: treat the direction as uncertain."
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
    out = [f'<span class="flag">failed_baselines</span> <b>The model {e(m["name"])} did not beat simple baselines.</b> '
           f"On the genes it was tested on, never trained on, it did no better than the mean and a k-mer ridge "
           f"({e(m['failed_baselines'])}): do not rely on this prediction." for m in report.model["members"]
           if m.get("failed_baselines")]
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
        out.append('<span class="flag">ref_n</span> <b>The reference base is unknown.</b> The genome has N (or an '
                   "ambiguity code such as R) under the REF allele, so the model compares the alternate allele with "
                   "an unknown base, not with the REF the VCF names.")
    if "alt_n" in g.flags:
        out.append('<span class="flag">alt_n</span> <b>The alternate allele has an unknown base (N).</b> The model '
                   "reads it as no base at all, so the prediction is for a sequence that does not exist; the real "
                   "allele's effect may differ in size and direction.")
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
    tissues = any(m.get("species") in ("human", "mouse") for m in members)  # the Xpresso labels: many tissues
    level = ("a gene's typical level across tissues, not its level in one cell type or tissue" if tissues else
             "the level its training labels measured, not the level in other cells or conditions")
    example = " (for example an erythroid gene such as HBB)" if tissues else ""
    out.append(f"{who} It predicts {level}, and was not trained on variant effects: an effect that acts in one cell "
               f"type{example} or through anything but the promoter sequence can be missed. Use it to prioritise "
               f"variants for follow-up, not to classify them.")
    return out


def log2fc_note(report: VariantReport) -> str:
    """How the page's log2 fold change follows from the delta, with the label SD(s) it uses."""
    sds = [m.get("label_sd") for m in report.model["members"]]
    if report.model["output_scale"] != "standardized_log10":
        return "delta × log2(10): the change of predicted mRNA level it implies"
    if len(sds) == 1:
        return (f"delta × label SD ({number(sds[0], '{:.4g}')}) × log2(10): the change of predicted mRNA level it "
                f"implies")
    return ("the mean over the members of each one's delta × its label SD (" +
            ", ".join(number(sd, "{:.4g}") for sd in sds) + ") × log2(10): the change of predicted mRNA level implied")
