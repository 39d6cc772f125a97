"""How much does a 200-bp activity model's answer depend on where its window sits around the TSS?

Usage: python recipes/mpra/window_stability.py MODEL.vxm.h5 [--out results.json]

On every gene of example_data/ whose sequence is real (no N) across all the windows tried, the model's TSS-anchored
window ``[TSS - U + s, TSS + D + s)`` (transcription direction) is shifted by ``s`` bases, and two things are
measured for each shift against ``s = 0``:

* the reference prediction: its change across shifts, compared with its spread across genes;
* the variant effects: the delta of every transition (A<->G, C<->T) at offsets that every shifted window reads,
  correlated (Pearson) with the deltas at ``s = 0``.

No variant-level measurements are needed: a rule whose answers change a lot with a small shift of the anchor is
fragile whichever anchor is chosen, and a stable one makes the exact anchor a minor choice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SHIFTS = (-40, -20, -10, -5, 0, 5, 10, 20, 40)
TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}


def main() -> None:
    from varxpress.sequence.encode import one_hot, reverse_complement
    from varxpress.io.genome import Genome
    from varxpress.models.network import ExpressionModel
    from varxpress.io.tss import read_tss

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--fasta", default="example_data/hg38_promoters.fa.gz")
    ap.add_argument("--tss", default="example_data/tss.bed")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    model = ExpressionModel.load(args.model)
    up, down = model.window_spec.upstream, model.window_spec.downstream
    lo, hi = -up + min(SHIFTS), down + max(SHIFTS)          # offsets any window reads
    var_lo, var_hi = -up + max(SHIFTS), down + min(SHIFTS)  # offsets every window reads
    genome = Genome(args.fasta)
    genes = []
    for tss in read_tss(args.tss, offset=10000):
        start, end = (tss.pos0 + lo, tss.pos0 + hi) if tss.strand == "+" else (tss.pos0 - hi + 1, tss.pos0 - lo + 1)
        seq = genome.fetch(tss.chrom, start, end).upper()
        if "N" in seq or len(seq) != hi - lo:
            continue
        genes.append((tss.gene_name or tss.gene_id, seq if tss.strand == "+" else reverse_complement(seq)))
    refs, deltas = {s: [] for s in SHIFTS}, {s: [] for s in SHIFTS}
    for _, seq in genes:  # seq[i] is offset lo + i in transcription direction
        for s in SHIFTS:
            a = -up + s - lo
            window = seq[a:a + up + down]
            alts = []
            for off in range(var_lo, var_hi):
                k = off - (-up + s)
                alts.append(window[:k] + TRANSITION[window[k]] + window[k + 1:])
            pred = model.predict(np.stack([one_hot(w) for w in [window, *alts]]))
            refs[s].append(pred[0])
            deltas[s].extend(pred[1:] - pred[0])
    ref0 = np.asarray(refs[0])
    between_genes = float(np.std(ref0))
    result = {"model": str(args.model), "window": [up, down], "genes": [g for g, _ in genes],
              "variant_offsets": [var_lo, var_hi], "between_gene_sd_of_prediction": round(between_genes, 4),
              "shifts": {}}
    for s in SHIFTS:
        r = np.asarray(refs[s])
        result["shifts"][s] = {
            "reference_rms_change": round(float(np.sqrt(np.mean((r - ref0) ** 2))), 4),
            "reference_pearson_across_genes": round(float(np.corrcoef(r, ref0)[0, 1]), 4),
            "delta_pearson": round(float(np.corrcoef(deltas[s], deltas[0])[0, 1]), 4),
            "delta_sd": round(float(np.std(deltas[s])), 4),
        }
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
