"""Motion compensation over bags, judged against a ray-cast moving rig with exact odometry on /tf
(lab/moving_rig.py): a robot driving 2 m/s and turning 60 degrees/s, its LiDAR's points in each
driver's time layout. With fixed_frame_id the projected returns lie within their pixel's
footprint of the truth; without it they do not; a static rig is unchanged."""

import numpy as np
import pytest
import torch

from sparse_depth_node.bag.frames import BagFrames, cache_frames
from sparse_depth_node.bag.io import deserialize, open_bag, read_messages
from sparse_depth_node.bag.process import process_bag
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.lab.moving_rig import Drive, Motion, measure, write_drive
from sparse_depth_node.msgs.convert import depth_image_to_metres

TURNING = Motion(2.0, np.radians(60))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("rig")


@pytest.mark.parametrize("convention", ["velodyne", "ouster", "hesai"])
def test_with_fixed_frame_id_the_returns_land_in_their_pixels_footprint(folder, convention):
    """Camera at the sweep's start, the worst case: uncompensated, the p90 return lies 12 % of
    its depth beyond its pixel's footprint; carried through odom, 0.004 % (measured)."""
    drive = Drive(TURNING, 0.0, convention, frames=1)
    without = measure(drive, folder, "")
    with_odom = measure(drive, folder, "odom")
    assert without["p90_beyond_footprint_pct"] > 5.0
    assert with_odom["p90_beyond_footprint_pct"] <= 0.2 * without["p90_beyond_footprint_pct"]
    assert with_odom["p90_beyond_footprint_pct"] < 0.05
    assert with_odom["p90_centre_pct"] <= 1.0 and with_odom["returns"] > 10_000


def test_a_static_rig_gives_the_same_depth_with_and_without(folder):
    drive = Drive(Motion(0.0, 0.0), 0.0, "ouster", frames=1)
    assert measure(drive, folder, "odom") == measure(drive, folder, "")


def sparse_of(out):
    with open_bag(out) as reader:
        return [
            depth_image_to_metres(deserialize(reader, raw, c.msgtype, out))
            for c, _, raw in read_messages(reader, out)
            if c.topic == "/depth/sparse"
        ]


def test_training_and_evaluation_on_bags_read_the_frames_carried(folder, tmp_path):
    """train --bags and evaluate --bags decode a bag into the frame cache: with fixed_frame_id
    (their --params) its points are carried to the camera's instant, so they project exactly
    where process puts them."""
    drive = Drive(TURNING, 0.0, "velodyne", frames=1)
    measure(drive, folder, "odom")  # records the drive and processes it
    bag = next(p for p in folder.iterdir() if p.name.endswith("velodyne_1"))
    expected = sparse_of(bag.with_name(bag.name + ".out_odom"))[0]
    for fixed in ("odom", ""):
        frame = BagFrames(cache_frames(bag, {"fixed_frame_id": fixed}, root=tmp_path)).read(0)
        depth, _ = project_points(
            torch.from_numpy(frame.points), frame.camera, frame.t_cam_from_lidar
        )
        same = np.isclose(depth[0, 0].numpy(), expected, atol=1e-3).mean()
        assert (same > 0.999) == (fixed == "odom"), (fixed, same)


@pytest.mark.parametrize("offset, where", [(-0.9, "past"), (0.9, "future")])
def test_times_tf_does_not_cover_drop_the_frame_and_say_which(folder, tmp_path, offset, where):
    """Both clocks shifted by 0.9 s (pairing unchanged): the sweep before the first odometry,
    or the image after the last. Nothing is published uncompensated."""
    drive = Drive(TURNING, 0.0, "velodyne", frames=2)
    bag = tmp_path / "drive"
    write_drive(drive, bag)
    settings = {"model": "nearest", "fixed_frame_id": "odom", "time_offset.lidar": offset}
    settings["time_offset.image"] = offset
    with pytest.raises(ValueError) as none:
        process_bag(bag, tmp_path / "out", settings)
    line = str(none.value)  # no frame: each set's reason, each naming its own time
    assert line.count("1 motion_tf_missing: cloud lidar at ") == 2, line
    assert line.count("-> image camera_optical: TF odom -> base_link is known") == 2
    assert line.count(f"(extrapolation into the {where})") == 2


def test_process_says_how_it_reads_the_times_and_when_tf_shows_motion_it_ignores(folder):
    lines = {}
    for fixed in ("", "odom"):
        drive = Drive(TURNING, 0.0, "velodyne", frames=2)
        measure(drive, folder, "")  # the bag
        bag = next(p for p in folder.iterdir() if p.name.endswith("velodyne_2"))
        said = []
        process_bag(bag, folder / f"said_{fixed or 'none'}", {"model": "nearest",
                    "fixed_frame_id": fixed}, notice=said.append)  # fmt: skip
        lines[fixed] = said
    (moving,) = lines[""]
    assert "TF shows the LiDAR moving (odom -> base_link)" in moving
    assert "set fixed_frame_id (e.g. odom)" in moving
    (how,) = lines["odom"]
    assert how == (
        "motion compensation through odom: lidar point times from field 'time' "
        "(float32, s, relative)"
    )
