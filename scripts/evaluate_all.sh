#!/usr/bin/env bash
# Every validation table of docs/EVALUATION.md: each validation set under each protocol that
# applies to it, every method, JSON per table in out/eval/. The two paper-comparison networks
# trained at one density (out/experiments/*-keep0.5.pt) are trained first when missing
# (about 10 min each on 2 CPU cores). DATA defaults to ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
SD=.venv/bin/sparse-depth
mkdir -p out/eval out/experiments
for model in sparseconv convnet; do
  ckpt=out/experiments/$model-keep0.5.pt
  [ -f "$ckpt" ] || $SD train --model $model --keep 0.5 0.5 --steps 600 --eval-every 300 --threads 1 --seed 0 \
    --kitti "$DATA/kitti_raw_2011_09_26" --ddad "$DATA/ddad_test_scene/scene_01" --out "$ckpt"
done
METHODS=${METHODS:-multiscale,sparseconv,classic,classic-full,classic-multiscale,nearest,out/experiments/sparseconv-keep0.5.pt,out/experiments/convnet-keep0.5.pt}
run() {  # name data format protocol [extra args]
  local name=$1 data=$2 fmt=$3 protocol=$4; shift 4
  echo "== $name $protocol"
  $SD evaluate --data "$data" --format "$fmt" --protocol "$protocol" --methods "$METHODS" --device cpu \
    --seed 0 --json "out/eval/$name-${protocol/:/}.json" "$@"
}
run kitti "$DATA/kitti_raw_2011_09_26" kitti-raw random:0.5 --frames 60:78
run kitti "$DATA/kitti_raw_2011_09_26" kitti-raw lines:4 --frames 60:78
run ddad "$DATA/ddad_test_scene/scene_02" ddad random:0.5
run nuscenes "$DATA/nuscenes_demo" nuscenes random:0.5
run nuscenes "$DATA/nuscenes_demo" nuscenes lines:2
echo "== density sweep (the paper's experiment)"
$SD evaluate --data "$DATA/kitti_raw_2011_09_26" --format kitti-raw --frames 60:78 --device cpu --seed 0 \
  --densities 0.05,0.1,0.2,0.4,0.6,0.8,1.0 \
  --methods out/experiments/sparseconv-keep0.5.pt,out/experiments/convnet-keep0.5.pt,multiscale,nearest \
  --json out/eval/kitti-densities.json
