#!/usr/bin/env bash
# A quick check of what the model can fit: 64 Datatang training faces, no augmentation, validated on the
# same 64 faces, 30 epochs of 4 steps (about 4-5 minutes per probe on one CPU core). A recipe that cannot bring
# these faces well below the mean shape cannot learn the full set either. Base: LOTR-M with mean-shape anchors,
# pixel outputs, head last-layer init std 0.01, queries std 1.0, Adam 1e-3, batch 16.
#   bash tools/fit_probe.sh [PROBE ...]        (default: all probes; runs go to output/fitprobe/<probe>/)
# A finished probe is skipped, an interrupted one resumed. Summary: output/fitprobe/summary.md (tools/compare_runs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CFG=experiments/datatang/lotr_m.yaml
BASE="DATA.MAX_SAMPLES 64 DATA.VAL_SPLIT splits/train.txt AUG.FLIP False AUG.ROTATION 0.0 AUG.ERASING_PROB 0.0
  AUG.PCA_STD 0.0 AUG.JITTER 0.0 TRAIN.OPTIMIZER adam TRAIN.BATCH_SIZE 16 MODEL.TRANSFORMER.QUERY_INIT_STD 1.0
  MODEL.HEAD.ANCHORS mean_shape MODEL.HEAD.COORD_UNITS pixels MODEL.HEAD.LAST_INIT_STD 0.01 TRAIN.EPOCHS 30 TRAIN.LR_STEPS []
  TRAIN.VAL_EVERY 3"
declare -A PROBES=(
  [drop01]=""                                                     # the paper's Transformer dropout 0.1
  [drop0]="MODEL.TRANSFORMER.DROPOUT 0.0"
  [lr1e-4]="TRAIN.LR 1e-4"
  [drop0_lr3e-3]="MODEL.TRANSFORMER.DROPOUT 0.0 TRAIN.LR 3e-3"
  [drop0_last01]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.LAST_INIT_STD 0.1"
  [drop0_enc0]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.TRANSFORMER.ENC_LAYERS 0"              # no encoder: the decoder reads the 1x1-conv tokens
  [drop0_auxhm]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.AUX.HEATMAP_WEIGHT 1e6"
  [drop0_perlmk]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True"  # PFFN last layer per landmark
  [drop0_perlmk_lr3e-3]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True TRAIN.LR 3e-3"
  [drop0_perlmk_enc0]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.ENC_LAYERS 0"
  [drop0_perlmk_vposx]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.POS_IN_VALUES cross"  # pos enc in cross-attention values
  [drop0_perlmk_vposall]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.POS_IN_VALUES all"  # ... and in encoder values
  [drop0_perlmk_qanchor]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.QUERY_INIT anchor_pos"  # queries = pos enc at the anchors
  [drop0_perlmk_qanchor_sine]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.QUERY_INIT anchor_pos MODEL.TRANSFORMER.POS_INIT sine"
  [drop0_perlmk_prenorm]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.NORM_BEFORE True"  # DETR pre-norm layers
  [drop0_perlmk_attn0]="MODEL.TRANSFORMER.DROPOUT 0.0 MODEL.HEAD.PER_LANDMARK_OUT True MODEL.TRANSFORMER.ATTN_OUT_INIT zero"  # attention branches start as identity
  [cnnffn]="MODEL.NAME cnn_ffn"                                   # no Transformer (LOTR IV-G-2 baseline)
)
NAMES=("$@")
[ ${#NAMES[@]} -eq 0 ] && NAMES=(drop01 drop0 lr1e-4 drop0_lr3e-3 drop0_last01 drop0_enc0 drop0_auxhm drop0_perlmk drop0_perlmk_lr3e-3 drop0_perlmk_enc0 drop0_perlmk_vposx drop0_perlmk_vposall drop0_perlmk_qanchor drop0_perlmk_qanchor_sine drop0_perlmk_prenorm drop0_perlmk_attn0 cnnffn)
mkdir -p output/fitprobe
for name in "${NAMES[@]}"; do
  out=output/fitprobe/$name
  if [ -f "$out/checkpoint_last.json" ] && grep -q '"epoch": 30' "$out/checkpoint_last.json"; then
    echo "== $name: done"; continue
  fi
  resume=""; [ -f "$out/checkpoint_last.json" ] && resume="--resume"
  echo "== $name: ${PROBES[$name]}"
  # shellcheck disable=SC2086
  $PY tools/train.py --cfg $CFG --out "$out" $resume --no-progress $BASE ${PROBES[$name]} >> "$out.log" 2>&1
done
$PY tools/compare_runs.py "${NAMES[@]/#/output/fitprobe/}" --out output/fitprobe/curves.png --json output/fitprobe/summary.json | tee output/fitprobe/summary.md
