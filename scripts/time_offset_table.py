"""The time offset table of docs/EVALUATION.md: a ray-cast moving rig (lab/moving_rig.py) whose
images are stamped a known time after (or before) their instants, recorded as bags, and the
offset ``sparse-depth time-offset`` measures on each (lab/time_offset.py). About 4 minutes on 2
CPU cores.

    .venv/bin/python scripts/time_offset_table.py [WORK_DIR]   (default: a temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sparse_depth_node.lab.moving_rig import Drive, Motion, write_drive
from sparse_depth_node.lab.time_offset import estimate_offset

RIGS = [
    ("robot 2 m/s turning 60°/s", Motion(2.0, np.radians(60))),
    ("car 10 m/s", Motion(10.0, 0.0)),
    ("car 7 m/s", Motion(7.0, 0.0)),
]
LATE_S = (0.03, -0.02)  # images stamped 30 ms late, 20 ms early
FRAMES = 8
PARAMS = {"fixed_frame_id": "odom", "sync_slop": 0.09}  # the +50 ms camera pairs with its sweep
CANDIDATES = np.arange(-20, 21) * 0.005  # the command's defaults: +-0.1 s, 5 ms apart


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    runs = [(r, late) for r in RIGS for late in LATE_S]
    for (name, motion), late in tqdm(runs, desc="rigs", unit="rig"):
        bag = work / f"v{motion.speed:g}_w{np.degrees(motion.turn):g}_late{late * 1000:g}ms"
        if not bag.exists():
            write_drive(Drive(motion, 0.05, "velodyne", FRAMES, image_stamp_late_s=late), bag)
        found = estimate_offset(bag, PARAMS, CANDIDATES)
        got = "flat" if found.offset is None else f"{found.offset * 1000:+.1f}"
        rows.append(f"| {name} | {-late * 1000:+.0f} | {got} | {found.spread * 1000:.1f} |")
    print("| rig | true time_offset.image, ms | measured, ms | bootstrap spread, ms |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
