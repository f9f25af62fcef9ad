#!/usr/bin/env bash
# The main job on the bundled sample: set up, then complete every frame of
# sample/kitti_raw_2011_09_26 with the shipped model and the classical baseline, writing
# KITTI depth PNGs and a preview per frame under out/sample/, with stage timings.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for method in sparseconv classic; do
  for frame in $(ls sample/kitti_raw_2011_09_26/velodyne_points/data | sed 's/\.bin$//'); do
    .venv/bin/sparse-depth complete --data sample/kitti_raw_2011_09_26 --format kitti-raw \
      --frame "$frame" --method "$method" --device auto --out "out/sample/$method/$frame"
  done
done
echo "main: previews in out/sample/*/*/preview.png"
