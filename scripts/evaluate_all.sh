#!/usr/bin/env bash
# Every validation table of docs/EVALUATION.md: each validation set under each protocol that
# applies to it, every method, JSON per table in out/eval/; the comparison previews; the
# paper's density experiment. DATA defaults to ../shared/data. About 25 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
SD=.venv/bin/sparse-depth
mkdir -p out/eval
METHODS=${METHODS:-guided,multiscale,sparseconv,classic,classic-full,classic-multiscale,classic-refined,nearest}
EXTRA_VAL=000000,000003,000008,000009,000010  # kitti_object_extra frames held out of training
run() {  # name data format protocol [extra args]
  local name=$1 data=$2 fmt=$3 protocol=$4; shift 4
  echo "== $name $protocol"
  $SD evaluate --data "$data" --format "$fmt" --protocol "$protocol" --models "$METHODS" --device cpu \
    --seed 0 --json "out/eval/$name-${protocol/:/}.json" "$@"
}
run kitti "$DATA/kitti_raw_2011_09_26" kitti-raw random:0.5 --frames 60:78
run kitti "$DATA/kitti_raw_2011_09_26" kitti-raw lines:4 --frames 60:78
run extra "$DATA/kitti_object_extra" kitti-object random:0.5 --frames $EXTRA_VAL
run extra "$DATA/kitti_object_extra" kitti-object lines:4 --frames $EXTRA_VAL
run rig "$DATA/pjlab_opencalib" kitti-object random:0.5
run ddad "$DATA/ddad_test_scene/scene_02" ddad random:0.5
run nuscenes "$DATA/nuscenes_demo" nuscenes random:0.5
run nuscenes "$DATA/nuscenes_demo" nuscenes lines:2
echo "== between the returns: the neighbouring sweeps accumulated (KITTI frames 0-19, 5 frames each side)"
run kitti "$DATA/kitti_raw_2011_09_26" kitti-raw accumulated:5 --frames 0:20
echo "== the whole image: photometric error of the neighbouring frames (KITTI frames 0-19, the car moving)"
$SD evaluate --data "$DATA/kitti_raw_2011_09_26" --format kitti-raw --frames 0:20 --protocol photometric \
  --models "classic-multiscale,${METHODS}" --device cpu --json out/eval/kitti-photometric.json \
  --previews out/eval/previews-photometric
echo "== previews: image | LiDAR | classical | paper's network | guided, one scale"
for protocol in random:0.5 lines:4; do
  $SD evaluate --data "$DATA/kitti_raw_2011_09_26" --format kitti-raw --frames 60:78 --protocol $protocol \
    --models classic-multiscale,sparseconv,guided --device cpu --seed 0 --quiet --previews "out/eval/previews-${protocol/:/}"
done
echo "== density sweep (the paper's experiment)"
$SD evaluate --data "$DATA/kitti_raw_2011_09_26" --format kitti-raw --frames 60:78 --device cpu --seed 0 \
  --densities 0.05,0.1,0.2,0.4,0.6,0.8,1.0 \
  --models guided,multiscale,sparseconv,classic-full,nearest \
  --json out/eval/kitti-densities.json
