#!/usr/bin/env bash
# Levers that make LOTR-M learn from scratch on the 800 Datatang training faces.
# Each probe is the Datatang LOTR-M config plus overrides, trained for EPOCHS epochs at a constant lr,
# validated every epoch; the table and curves come from tools/compare_runs.py. (Longer runs set TRAIN.EPOCHS /
# TRAIN.LR_STEPS on the command line of tools/train.py with the same overrides.)
#   bash tools/ablation_from_scratch.sh [EPOCHS] [PROBE ...]
# Runs go to output/ablation/<probe>/ (git-ignored); a finished probe is skipped, an interrupted one resumed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
EPOCHS=${1:-3}; shift || true
CFG=experiments/datatang/lotr_m.yaml
COMMON="TRAIN.EPOCHS $EPOCHS TRAIN.LR_STEPS [] TRAIN.VAL_EVERY 1"
declare -A PROBES=(
  [paper]=""                                                          # LAMB, queries std 1e-4 (LOTR)
  [adam]="TRAIN.OPTIMIZER adam"                                        # optimiser only
  [lamb_exclude]="TRAIN.LAMB_EXCLUDE_SMALL True"                       # no trust ratio for small tensors
  [adam_q1]="TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0"            # + DETR-like query init
  [lamb_q1]="MODEL.TRANSFORMER.QUERY_INIT_STD 1.0"                                 # LAMB + query init
  [adam_q1_zeros]="TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.TRANSFORMER.DECODER_INPUT zeros"
  [adam_anchor]="TRAIN.OPTIMIZER adam MODEL.HEAD.ANCHORS mean_shape"        # FINDINGS: flat at the mean shape
  [adam_q1_anchor]="TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape"
  [lamb_q1_anchor]="MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape"
  [adam_q1_anchor_aux]="TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.AUX.DECODER_LOSS True"
  # pixel outputs (Adam's step on an input_frac head moves outputs by tens of px) + small last-layer init
  [px_anchor_q1_adam]="TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01"
  [px_anchor_q1_pos002_adam]="TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.TRANSFORMER.POS_INIT_STD 0.02"
  [px_anchor_q1_adam1e-4_b16]="TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam TRAIN.LR 1e-4 TRAIN.BATCH_SIZE 16 MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01"
  # is the backbone the bottleneck? the same recipe without the Transformer
  [cnnffn_px_anchor_adam]="MODEL.NAME cnn_ffn TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01"
  # auxiliary heatmap loss on the backbone (training only, MTLD-style), batch 16 (more steps per epoch)
  [auxhm_px_anchor_q1_adam_b16]="TRAIN.BATCH_SIZE 16 TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.AUX.HEATMAP_WEIGHT 1e6"
  # lighter augmentation (rotation 5 deg, no erasing): the val faces are aligned, rotation mostly teaches rotation
  [auxhm_lightaug_px_anchor_q1_adam_b16]="TRAIN.BATCH_SIZE 16 TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.AUX.HEATMAP_WEIGHT 1e6 AUG.ROTATION 5.0 AUG.ERASING_PROB 0.0"
  [auxhm_noaugrot_px_anchor_q1_adam_b16]="TRAIN.BATCH_SIZE 16 TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.AUX.HEATMAP_WEIGHT 1e6 AUG.ROTATION 0.0 AUG.ERASING_PROB 0.0"
  # per-landmark PFFN last layer + no Transformer dropout (what unblocked fitting in tools/fit_probe.sh)
  [perlmk_drop0_lightaug]="TRAIN.BATCH_SIZE 16 TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True AUG.ROTATION 5.0 AUG.ERASING_PROB 0.0"
  [perlmk_drop0_lightaug_auxhm]="TRAIN.BATCH_SIZE 16 TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True AUG.ROTATION 5.0 AUG.ERASING_PROB 0.0 MODEL.AUX.HEATMAP_WEIGHT 1e6"
  # the same, backbone started from the 12-epoch Earp heatmap run (train it first)
  [earpinit_auxhm_px_anchor_q1_adam_b16]="TRAIN.BATCH_SIZE 16 TRAIN.WARMUP_EPOCHS 1.0 TRAIN.OPTIMIZER adam MODEL.TRANSFORMER.QUERY_INIT_STD 1.0 MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 MODEL.AUX.HEATMAP_WEIGHT 1e6 MODEL.INIT_FROM output/datatang/earp_mnv2_1.0_sdd_e12/model_best.params"
)
NAMES=("$@")
[ ${#NAMES[@]} -eq 0 ] && NAMES=(adam_q1 lamb_exclude adam_q1_anchor lamb_q1_anchor adam_anchor)
for name in "${NAMES[@]}"; do
  out=output/ablation/$name
  if [ -f "$out/checkpoint_last.json" ] && grep -q "\"epoch\": $EPOCHS" "$out/checkpoint_last.json"; then
    echo "== $name: done"; continue
  fi
  resume=""; [ -f "$out/checkpoint_last.json" ] && resume="--resume"
  echo "== $name: ${PROBES[$name]}"
  # shellcheck disable=SC2086
  $PY tools/train.py --cfg $CFG --out "$out" $resume --no-progress $COMMON ${PROBES[$name]}
done
$PY tools/compare_runs.py "${NAMES[@]/#/output/ablation/}" --out output/ablation/curves.png --json output/ablation/summary.json
