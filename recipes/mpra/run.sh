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

# first architecture search on HepG2 (4 trials x 2 epochs, the best retrained for up to 10 epochs). Recorded as
# run: its best overfit and lost to the k-mer ridge, so it is kept as search-best.vxm.h5 and not shipped
$VX hyperopt -d "$OUT/HepG2.vxd.h5" --space recipes/mpra/space.yaml -o "$OUT/HepG2.search" --max-evals 4 \
    --trial-epochs 2 --timeout 2400 --seed 0 --kmax 5 --model-out "$OUT/search-best.vxm.h5"

# the recipe's architecture (recipes/mpra/hparams.yaml: batch-normalised conv blocks, global average pooling):
# three seeds per cell type, merged into one network that predicts their mean (varxpress.models.merge), then
# evaluated on the held-out test split against the mean and the 1- to 5-mer ridge; the bootstrap draws leak groups
for CELL in WTC11 HepG2; do
  LOWER=$(echo "$CELL" | tr '[:upper:]' '[:lower:]')
  SEEDS=${SEEDS:-0 1 2}
  [ "$CELL" = HepG2 ] && SEEDS=${HEPG2_SEEDS:-0}   # recorded run: one seed (it lost to the ridge; see the docs)
  MEMBERS=()
  for S in $SEEDS; do
    [ -e "$OUT/$LOWER-seed$S.vxm.h5" ] || \
      $VX train -d "$OUT/$CELL.vxd.h5" -p recipes/mpra/hparams.yaml -o "$OUT/$LOWER-seed$S.vxm.h5" --kmax 5 --seed "$S"
    MEMBERS+=("$OUT/$LOWER-seed$S.vxm.h5")
  done
  if [ ${#MEMBERS[@]} -gt 1 ]; then
    $PY -c 'import sys; from varxpress.models.merge import merge_members; merge_members(sys.argv[2:], sys.argv[1], "human-mpra-'"$LOWER"'")' \
        "$OUT/human-mpra-$LOWER.vxm.h5" "${MEMBERS[@]}"
  else
    cp "${MEMBERS[0]}" "$OUT/human-mpra-$LOWER.vxm.h5"
  fi
  $VX evaluate -m "$OUT/human-mpra-$LOWER.vxm.h5" -d "$OUT/$CELL.vxd.h5" --kmax 5 --bootstrap 2000 \
      -o "$OUT/human-mpra-$LOWER.eval" || true   # status 3 when it does not beat the baselines: recorded, not shipped
  # the same against the ridge with the default --kmax 6 (it picks k by its leave-one-out error; the recorded run
  # above used 1- to 5-mers only): WTC11 is not clearly better than it (docs/model-quality.md, the verdict)
  $VX evaluate -m "$OUT/human-mpra-$LOWER.vxm.h5" -d "$OUT/$CELL.vxd.h5" --bootstrap 2000 \
      -o "$OUT/human-mpra-$LOWER.eval-kmax6" || true
done

# a second search around that architecture, on WTC11 (6 trials x 4 epochs; trial losses recorded)
$VX hyperopt -d "$OUT/WTC11.vxd.h5" --space recipes/mpra/space_bn.yaml -o "$OUT/WTC11.search" --max-evals 6 \
    --trial-epochs 4 --timeout 1800 --seed 0

# how much the deltas depend on where the window sits (docs/windows.md, "Short models")
$PY recipes/mpra/window_stability.py "$OUT/human-mpra-wtc11.vxm.h5" --out "$OUT/window_stability.json"
# bootstrap intervals, the results file and the plot; then the models that beat the default baselines (their
# eval-kmax6 verdict) with their window rule as $OUT/human_mpra_*.vxm.h5. None does as recorded (WTC11 is within
# noise of the 1-6-mer ridge, HepG2 loses: docs/model-quality.md), so ship.py names both as not shipped.
$PY recipes/mpra/summarise.py "$OUT" --results benchmarks/results/mpra.json --plot docs/figures/mpra_pred_vs_obs.png
$PY recipes/mpra/ship.py "$OUT"
# for a shipped model, its percentile background (every SNV of the example genes whose 200-bp window is real
# sequence; a small stand-in: build a genome-wide one on a full hg38), then, once it is in varxpress/data (and its
# registry entry moved from STAGED to BUNDLED), the background of the Xpresso + WTC11 combination
if [ -e "$OUT/human_mpra_wtc11.vxm.h5" ]; then
  $VX background --fasta example_data/hg38_promoters.fa.gz --tss example_data/tss.bed --tss-offset 10000 \
      --model "$OUT/human_mpra_wtc11.vxm.h5" --n-snvs 0 --max-n-fraction 0 --quiet
fi
#   varxpress background --model human-xpresso-promoter --fasta example_data/hg38_promoters.fa.gz \
#     --tss example_data/tss.bed --tss-offset 10000 --n-snvs 20000 \
#     --out varxpress/data/human_xpresso_promoter.combination.json.background.h5
