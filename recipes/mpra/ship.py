"""Write the trained lentiMPRA activity models that beat the baselines, with their window rule and provenance, as
OUT_DIR/human_mpra_*.vxm.h5.

Usage: python recipes/mpra/ship.py OUT_DIR   (OUT_DIR as given to recipes/mpra/run.sh)

Only a model whose evaluation against the default baselines (``OUT_DIR/human-mpra-<cell>.eval-kmax6``, the 1- to
6-mer ridge choosing its k) says it beats them is written; the others are named with their verdict and skipped.

The network and weights are unchanged; the metadata gains ``window_rule`` (how the 200-bp model is laid on a gene),
``source`` (data, citation, licence note) and a ``training_data`` without the local paths of the run (the SHA-256
of every input stays).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CITATION = ("Agarwal V, Inoue F, Schubach M, et al. Massively parallel characterization of transcriptional "
            "regulatory elements. Nature (2025)")
FILES = {
    "HepG2": ("human_mpra_hepg2", "HepG2 (human hepatocellular carcinoma, liver)",
              "held-out folds HepG2_valid/HepG2_test as redistributed by github autosome-imtf/MPRA-MNIST @0a4b122"),
    "WTC11": ("human_mpra_wtc11", "WTC11 (human induced pluripotent stem cells)",
              "held-out folds WTC11_valid/WTC11_test as published with github autosome-ru/human_legnet @1f16782 "
              "(MIT)"),
}
WINDOW_RULE = {
    "kind": "tss_anchored",
    "upstream": 120,
    "downstream": 80,
    "text": ("The model reads one window [TSS - 120, TSS + 80) in the direction of transcription (the 200 bases of a "
             "library element). 120/80 is where Xpresso's CAGE-corrected TSS lies, at the median, inside the "
             "library's promoter elements (docs/model-quality.md); variants outside the window are not scored by this "
             "model (no gene window holds them). Moving the window is a metadata change (upstream/downstream): "
             "score, mutagenesis, explain and background read it from the file."),
}


def main(out_dir: Path) -> None:
    from varxpress.models.network import ExpressionModel

    for cell, (name, what, folds) in FILES.items():
        trained = out_dir / f"{name.replace('_', '-')}.vxm.h5"
        if not trained.exists():  # a cell type whose model is not shipped (run.sh says which)
            print(f"{trained}: not there, skipped")
            continue
        report = out_dir / f"{name.replace('_', '-')}.eval-kmax6" / "evaluation.json"
        verdict = json.loads(report.read_text()) if report.exists() else {"verdict": f"no evaluation ({report})"}
        if not verdict.get("beats_baselines"):
            print(f"{trained}: not shipped: {verdict['verdict']}")
            continue
        model = ExpressionModel.load(trained)
        meta = model.metadata
        if (meta.upstream, meta.downstream) != (WINDOW_RULE["upstream"], WINDOW_RULE["downstream"]):
            raise SystemExit(f"{name}: window {meta.upstream}/{meta.downstream} is not the rule's; re-run run.sh")
        meta.name = name.replace("_", "-")
        meta.genome_build = "hg38"
        meta.output = (f"lentiMPRA regulatory activity in {what}: z-scored log10(RNA/DNA) of a 200-bp element "
                       f"(log10 = out * label_sd + label_mean)")
        meta.extra["window_rule"] = WINDOW_RULE
        td = dict(meta.training_data)
        td["path"] = f"recipes/mpra/run.sh: {cell}.vxd.h5"
        meta.training_data = td
        meta.source = {
            **meta.source, "assay": "lentiMPRA", "cell_type": what, "citation": CITATION, "data": folds,
            "recipe": "recipes/mpra/run.sh then recipes/mpra/ship.py",
            "licence_note": ("weights trained on the published measurements; no library sequence is bundled"),
        }
        model.save(out_dir / f"{name}.vxm.h5", compress=True)  # the zero blocks of merged seeds take no room
        print(out_dir / f"{name}.vxm.h5")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
