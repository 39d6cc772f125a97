#!/usr/bin/env bash
# Reproduce the lentiMPRA activity models and docs/model-quality.md's "Human promoter activity" section.
# Run from the repository root:  bash recipes/mpra/run.sh [OUT_DIR]   (default /tmp/varxpress-mpra)
# Inputs: ../shared/data/human_mpra/{HepG2,WTC11}_{valid,test}.tsv.gz (see that folder's README).
set -euo pipefail
OUT=${1:-/tmp/varxpress-mpra}
DATA=${DATA:-../shared/data/human_mpra}
VX=${VX:-.venv/bin/varxpress}
PY=${PY:-.venv/bin/python}
ADAPTERS=AGGACCGGATCAACT,CATTGCGTGAACCGA   # the library's constant 15-bp flanks, never in a genomic window
mkdir -p "$OUT"

for CELL in HepG2 WTC11; do
  # both published held-out folds pooled, then re-split 80/10/10 by leak group (element in either orientation,
  # identical or reverse-complementary sequence); log2 activity stored as log10; the CAGE TSS sits at index 120
  # of the 200-bp promoter elements (median; docs/model-quality.md), hence --tss-index 120
  $VX prepare --sequence-table "$DATA/${CELL}_valid.tsv.gz" --sequence-table "$DATA/${CELL}_test.tsv.gz" \
      --adapters "$ADAPTERS" --value-log-base 2 --tss-index 120 --split group --test-size 0.1 --valid-size 0.1 \
      --seed 0 --label-units "log10 lentiMPRA activity (RNA/DNA), $CELL" -o "$OUT/$CELL.vxd.h5"
done

# architecture search on HepG2 (4 trials x 2 epochs, the best retrained for up to 10 epochs). Recorded as run:
# its best overfit and lost to the k-mer ridge, so it is kept as search-best.vxm.h5 and not shipped
$VX hyperopt -d "$OUT/HepG2.vxd.h5" --space recipes/mpra/space.yaml -o "$OUT/HepG2.search" --max-evals 4 \
    --trial-epochs 2 --timeout 2400 --seed 0 --kmax 5 --model-out "$OUT/search-best.vxm.h5"

# the shipped architecture (recipes/mpra/hparams.yaml), one model per cell type; train reports the model and
# both baselines (mean, 1- to 5-mer ridge) on the held-out test split in <model>.report/
$VX train -d "$OUT/HepG2.vxd.h5" -p recipes/mpra/hparams.yaml -o "$OUT/human-mpra-hepg2.vxm.h5" --kmax 5
# WTC11 has a third of the rows (cheaper epochs) and was still improving at epoch 6 of a first run that tied with
# the k-mer ridge (test r2 0.161 vs 0.163): up to 12 epochs
$VX train -d "$OUT/WTC11.vxd.h5" -p recipes/mpra/hparams.yaml -o "$OUT/human-mpra-wtc11.vxm.h5" --kmax 5 --epochs 12

# how much the deltas depend on where the window sits (docs/windows.md, "Short models")
$PY recipes/mpra/window_stability.py "$OUT/human-mpra-hepg2.vxm.h5" --out "$OUT/window_stability.json"
# bootstrap intervals, the results file and the plot; then the models with their window rule as $OUT/human_mpra_*.vxm.h5 (for --model PATH; not bundled: docs/model-quality.md)
$PY recipes/mpra/summarise.py "$OUT" --results benchmarks/results/mpra.json --plot docs/images/mpra_pred_vs_obs.png
$PY recipes/mpra/ship.py "$OUT"
# percentile backgrounds beside the shipped models: every SNV of the example genes whose 200-bp window is real
# sequence (a small stand-in, as for the bundled Xpresso background; build a genome-wide one on a full hg38)
# (the recorded run shipped the HepG2 one only: the WTC11 one did not finish in the time left)
for LOWER in hepg2 wtc11; do
  $VX background --fasta example_data/hg38_promoters.fa.gz --tss example_data/tss.bed --tss-offset 10000 \
      --model "$OUT/human_mpra_$LOWER.vxm.h5" --n-snvs 0 --max-n-fraction 0 --quiet
done
