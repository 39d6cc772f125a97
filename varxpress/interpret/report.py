"""What ``varxpress explain CHROM:POS:REF:ALT`` reports: one variant's effect on every gene whose window holds it.

For each gene, :func:`explain_variant` gathers the allele on the gene's strand and its distance to the TSS, the
window, the predictions, delta, log2 fold change, percentile against the background
(:mod:`varxpress.interpret.background`), an ensemble's spread and sign agreement, the quality flags and a local
saturation mutagenesis map (every substitution within ``flank`` bases; :mod:`varxpress.interpret.mutagenesis`).

The numbers come from the prediction engine ``varxpress score`` uses (:class:`varxpress.scoring.engine.Predictor`),
so they are the ones ``score`` writes for the same variant; this module adds the window, the local map and the
records a page is made from. The pages (plain sentence first, then caveats, details and a reading guide; a sortable
index for several variants) are rendered by :mod:`varxpress.interpret.pages`.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varxpress.errors import RefMismatchError, VcfError
from varxpress.interpret.figures import FIGURE_DPI, plot_heatmap
from varxpress.interpret.mutagenesis import saturation_mutagenesis
from varxpress.sequence.gene_index import TSSIndex
from varxpress.io.variants import Allele, SkipReason, check_ref, classify_allele, record_pos
from varxpress.io.vcf import open_vcf
from varxpress.scoring.engine import Predictor, Task
from varxpress.scoring.resources import Resources
from varxpress.scoring.scores import units_text
from varxpress.sequence.windows import Window

log = logging.getLogger(__name__)

__all__ = ["parse_variant", "wanted_variants", "GeneReport", "VariantReport", "explain_variant"]

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
    #: mean_delta, sd_delta, sign_agreement, all_agree, member_deltas, member_names
    ensemble: dict[str, Any] | None = None
    n_fraction: float = 0.0  #: fraction of N in the reference window (Window.n_fraction)
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
    inputs: dict[str, Any] = field(default_factory=dict)  #: reference, TSS set and command that produced the page


def _allele(genome, chrom: str, pos: int, ref: str, alt: str) -> Allele:
    name = genome.resolve(chrom)
    if name is None:
        raise VcfError(f"contig {chrom!r} is not in {genome.path} (under any alias)")
    kind = classify_allele(ref, alt)
    if isinstance(kind, SkipReason):
        raise VcfError(f"{chrom}:{pos}:{ref}:{alt} cannot be scored: {kind.value}")
    length = genome.length(name)
    if pos < 1 or pos - 1 + len(ref) > length:  # as `score` skips it (beyond_contig_end), not a REF mismatch
        raise VcfError(f"{chrom}:{pos}:{ref}:{alt} cannot be scored: the REF ({len(ref)} bp at position {pos}) does "
                       f"not lie within {name} (1-{length:,} in {genome.path}) "
                       f"({SkipReason.BEYOND_CONTIG.value if pos >= 1 else 'position before the contig start'}); "
                       f"is the FASTA the build the variant was called on?")
    if not check_ref(genome, name, pos, ref):
        found = genome.fetch(name, pos - 1, pos - 1 + len(ref))
        raise RefMismatchError(f"REF {ref} of {chrom}:{pos} disagrees with the genome ({found}); is the FASTA the "
                               f"build the variant was called on?")
    return Allele(name, pos, ref, alt, 0, kind)


def explain_variant(res: Resources, predictor: Predictor, chrom: str, pos: int, ref: str, alt: str, flank: int = 50,
                    label: str | None = None, index: TSSIndex | None = None, command: str | None = None
                    ) -> VariantReport:
    """Score one variant on every gene whose window holds it, with percentile, ensemble spread and local mutagenesis.

    The numbers are the prediction engine's own (:meth:`varxpress.scoring.engine.Predictor.score`, the call
    ``varxpress score`` makes): this function adds the window, the local map and the page's wording.

    Args:
        res: the loaded :class:`~varxpress.scoring.resources.Resources` (genome, model or ensemble, TSS set,
            features, background).
        predictor: ``res.predictor(...)``.
        chrom, pos, ref, alt: the variant (1-based ``pos``, VCF-style alleles).
        flank: the local mutagenesis map covers the REF span +- ``flank`` bases (0: no map).
        label: the variant's name on the page (default ``chrom:pos:ref:alt``).
        index: ``res.tss_index()``, made once by the caller for many variants (made here if None).
        command: the command line to record on the page.

    Raises:
        VcfError: unknown contig, unscoreable allele, or no gene's window holds the variant.
        RefMismatchError: REF disagrees with the genome.
    """
    genome, model = res.genome, res.model
    allele = _allele(genome, chrom, pos, ref, alt)
    spec = model.window_spec
    index = index or res.tss_index()
    genes = index.overlapping(allele.chrom, allele.start, max(allele.end, allele.start + 1))
    label = label or f"{chrom}:{pos}:{ref}:{alt}"
    if not genes:
        raise VcfError(f"{label}: no gene's window ({spec.upstream} bp upstream to {spec.downstream} bp downstream of "
                       f"a TSS) holds this variant")
    md = model.metadata
    reports = []
    for scored in predictor.score([Task(0, allele, tss) for tss in genes]):
        s, tss = scored.score, scored.task.tss
        window = predictor.reference(tss)[0]
        ens = None
        if res.is_ensemble:
            d = np.asarray(scored.member_deltas)
            ens = {"k": len(d), "mean_delta": s.delta, "sd_delta": s.delta_sd, "sign_agreement": s.sign_agreement,
                   "all_agree": bool((d > 0).all() or (d < 0).all()), "member_deltas": [float(x) for x in d],
                   "member_names": res.member_names}
        gr = GeneReport(tss, window, s.distance, s.ref_pred, s.alt_pred, s.delta, s.log2fc, s.percentile, s.flags,
                        ens, s.n_fraction or 0.0)
        if flank > 0:
            lo = max(allele.start - flank, window.start)
            hi = min(max(allele.end, allele.start + 1) + flank, window.end)
            gr.mutagenesis = saturation_mutagenesis(predictor, tss, np.arange(lo, hi))
            mark = [(allele.start, label, allele.ref, allele.alt)]
            fig = plot_heatmap(gr.mutagenesis, [], mark, units=units_text(md.output_scale, short=True),
                               title=f"{tss.gene_name}: every substitution within {flank} bp of the variant")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=FIGURE_DPI)
            gr.heatmap_png = buf.getvalue()
        reports.append(gr)
    ctx_lo = max(allele.start - 20, 0)
    left = genome.fetch(allele.chrom, ctx_lo, allele.start)
    right = genome.fetch(allele.chrom, allele.end, allele.end + 20)
    context = f"{left}[{allele.ref}/{allele.alt}]{right}"
    members = [{"name": m.metadata.name, "genome_build": m.metadata.genome_build, "label_sd": m.metadata.label_sd,
                "training_labels": m.metadata.labels_text, "species": m.metadata.source.get("species"),
                "failed_baselines": m.metadata.failed_baselines} for m in res.members]
    model_info = {"name": res.model_name, "file": Path(res.model_path).name, "sha256": res.model_sha256,
                  "output_scale": md.output_scale, "upstream": spec.upstream, "downstream": spec.downstream,
                  "members": members}
    inputs = {"fasta": Path(res.spec.fasta).name, "fai_md5": genome.fingerprint(), "tss": Path(res.tss_path).name,
              "genes": len(res.tss), "command": command}
    bg_info = None
    background = predictor.background
    if background is not None:
        p = background.provenance
        bg_info = {"file": background.path.name if background.path else "", "n": len(background),
                   "n_genes": p.get("n_genes"), "genome_file": p.get("genome_file"), "exhaustive": p.get("exhaustive"),
                   "quantiles": p.get("abs_delta_quantiles", {}), "max_n_fraction": p.get("max_n_fraction")}
    ens_info = None
    if res.is_ensemble:
        ens_info = {"k": len(res.members), "path": Path(res.model_path).name, "sha256": res.model_sha256}
    return VariantReport(allele, label, reports, model_info, bg_info, ens_info, context, inputs=inputs)


Wanted = tuple[tuple[str, int, str, str], str, "str | None"]  #: ((chrom, pos, ref, alt), label, VCF ID or None)


def wanted_variants(variants: list[str], vcf: str | None = None) -> list[Wanted]:
    """``((chrom, pos, ref, alt), label, VCF ID or None)`` of every variant asked for: the texts (see
    :func:`parse_variant`), then every ALT of ``vcf``'s records (``.`` for a record without ALT)."""
    wanted = [(parse_variant(v), v, None) for v in variants]
    if vcf:
        for rec in open_vcf(vcf):
            pos = record_pos(rec)
            for alt in rec.ALT or ["."]:
                v = (rec.CHROM, pos, rec.REF.upper(), alt.upper())
                wanted.append((v, rec.ID or f"{rec.CHROM}:{pos}:{rec.REF}:{alt}", rec.ID))
    return wanted
