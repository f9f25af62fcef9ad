"""The motion compensation table of docs/EVALUATION.md: a ray-cast rig with exact odometry
(sparse_depth_node/lab/moving_rig.py) recorded as bags in each driver's time layout, run through
``sparse-depth process`` with and without ``fixed_frame_id: odom``, its depth/sparse scored
against the truth at the images' instants. About 10 minutes on 2 CPU cores.

    .venv/bin/python scripts/motion_table.py [WORK_DIR]   (default: a temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sparse_depth_node.lab.moving_rig import CONVENTIONS, Drive, Motion, measure

RIGS = [  # (name, motion, camera delay after the sweep's start, s)
    ("static", Motion(0.0, 0.0), 0.0),
    ("car 10 m/s, camera at the sweep's start", Motion(10.0, 0.0), 0.0),
    ("car 10 m/s, camera +50 ms", Motion(10.0, 0.0), 0.05),
    ("robot 2 m/s turning 60°/s, camera at the start", Motion(2.0, np.radians(60)), 0.0),
    ("robot 2 m/s turning 60°/s, camera +50 ms", Motion(2.0, np.radians(60)), 0.05),
]
FRAMES = 3
SYNC = {"sync_slop": 0.06}  # the +50 ms camera pairs with its sweep (0.05 s is the edge)


def cell(r: dict) -> str:
    return (
        f"{r['p90_centre_pct']:.2f} / {r['p90_beyond_footprint_pct']:.3f} / {r['over_5pct']:.1%}"
    )


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    runs = [(r, c) for r in RIGS for c in CONVENTIONS]
    rows = []
    for (name, motion, delay), convention in tqdm(runs, desc="rigs", unit="rig"):
        drive = Drive(motion, delay, convention, FRAMES)
        without = measure(drive, work, "", SYNC)
        carried = measure(drive, work, "odom", SYNC)
        rows.append(f"| {name} | {convention} | {cell(without)} | {cell(carried)} |")
    print(
        "| rig | points' time field | as it is: p90 at the centre / beyond the footprint, "
        "% of depth / returns > 5 % off | fixed_frame_id: odom |"
    )
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
