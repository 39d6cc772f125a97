#!/usr/bin/env bash
# Tried and not shipped: WTC11 networks that start from one trained on HepG2 (`train --init-from`).
# Run from the repository root after recipes/mpra/run.sh's prepare step:  bash recipes/mpra/transfer.sh [OUT_DIR]
# (default /tmp/varxpress-mpra, the folder run.sh used). About 25 minutes on a 2-core machine: HepG2 pretraining
# ~13 min (11 epochs), each fine-tuning 2.5-3.5 min, each evaluation ~3 min. Results: docs/model-quality.md and
# benchmarks/results/mpra_wtc11_transfer_2026-12-05.json.
set -euo pipefail
OUT=${1:-/tmp/varxpress-mpra}
DATA=${DATA:-../shared/data/human_mpra}
VX=${VX:-.venv/bin/varxpress}
PY=${PY:-.venv/bin/python}
ADAPTERS=AGGACCGGATCAACT,CATTGCGTGAACCGA
mkdir -p "$OUT/transfer"
T="$OUT/transfer"

# HepG2 without any element of the WTC11 library (either orientation): 224 of 24,590 rows, so the pretrained
# network has seen none of WTC11's held-out elements
$PY recipes/mpra/exclude_sequences.py --exclude "$DATA/WTC11_valid.tsv.gz" --exclude "$DATA/WTC11_test.tsv.gz" \
    "$DATA/HepG2_valid.tsv.gz" "$T/HepG2_valid.tsv.gz" "$DATA/HepG2_test.tsv.gz" "$T/HepG2_test.tsv.gz"
$VX prepare --sequence-table "$T/HepG2_valid.tsv.gz" --sequence-table "$T/HepG2_test.tsv.gz" \
    --adapters "$ADAPTERS" --value-log-base 2 --tss-index 120 --split group --test-size 0.05 --valid-size 0.1 \
    --seed 0 --label-units "log10 lentiMPRA activity (RNA/DNA), HepG2" -o "$T/HepG2-noWTC11.vxd.h5"
# pretraining: the recipe's architecture, seed 0; its ridge row is a 1-mer ridge (only the network is used)
$VX train -d "$T/HepG2-noWTC11.vxd.h5" -p recipes/mpra/hparams.yaml -o "$T/pretrained-hepg2.vxm.h5" --kmax 1 \
    --seed 0
# fine-tuning on WTC11 (run.sh's prepared set) at two learning rates, then the guard's evaluation
for LR in 0.0003 0.001; do
  sed "s/^learning_rate: .*/learning_rate: $LR/" recipes/mpra/hparams.yaml > "$T/hparams-lr$LR.yaml"
  $VX train -d "$OUT/WTC11.vxd.h5" -p "$T/hparams-lr$LR.yaml" -o "$T/wtc11-from-hepg2-lr$LR.vxm.h5" --kmax 1 \
      --seed 0 --init-from "$T/pretrained-hepg2.vxm.h5"
  $VX evaluate -m "$T/wtc11-from-hepg2-lr$LR.vxm.h5" -d "$OUT/WTC11.vxd.h5" --bootstrap 2000 \
      -o "$T/wtc11-from-hepg2-lr$LR.eval" || true   # status 3: not clearly better than the baselines
done
