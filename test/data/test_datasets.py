"""Cameras from CameraInfo (rclpy and rosbags messages) and from each data set's calibration."""

import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES

from sparse_depth_node.core.camera import PinholeCamera
from sparse_depth_node.data.calibration import (
    ddad_calibration,
    exported_calibration,
    kitti_object_calibration,
    kitti_raw_calibration,
    read_kitti_calib_file,
)
from sparse_depth_node.data.datasets import (
    DdadReader,
    KittiObjectReader,
    NuscenesReader,
    open_dataset,
)


def camera_info(p, width=1242, height=375):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo()
    info.width, info.height = width, height
    info.p = [float(x) for x in p]
    info.k = [p[0], 0.0, p[2], 0.0, p[5], p[6], 0.0, 0.0, 1.0]
    return info


def test_from_camera_info_uses_p_and_keeps_its_translation_column():
    # a right stereo camera: Tx = -fx * baseline (0.54 m)
    p = [
        721.5377,
        0.0,
        609.5593,
        -721.5377 * 0.54,
        0.0,
        721.5377,
        172.854,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
    ]
    cam = PinholeCamera.from_camera_info(camera_info(p))
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (721.5377, 721.5377, 609.5593, 172.854)
    assert cam.shift == pytest.approx((-0.54, 0.0, 0.0))
    np.testing.assert_allclose(cam.P, np.reshape(p, (3, 4)))


def test_from_camera_info_applies_roi_and_binning():
    p = [700.0, 0.0, 600.0, 35.0, 0.0, 700.0, 180.0, 0.0, 0.0, 0.0, 1.0, 0.01]
    info = camera_info(p, 1200, 360)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 20, 800, 300
    info.binning_x = info.binning_y = 2
    cam = PinholeCamera.from_camera_info(info)
    assert (cam.width, cam.height) == (400, 150)
    x = np.array([1.0, -0.5, 10.0, 1.0])
    full = np.reshape(p, (3, 4)) @ x
    u_full, v_full = full[:2] / full[2]
    got = cam.P @ x
    assert got[0] / got[2] == pytest.approx((u_full - 100) / 2)
    assert got[1] / got[2] == pytest.approx((v_full - 20) / 2)


def test_from_rosbags_camera_info_is_duck_typed():
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    ci = ts.types["sensor_msgs/msg/CameraInfo"]
    hdr = ts.types["std_msgs/msg/Header"](
        stamp=ts.types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="cam"
    )
    roi = ts.types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    p = np.array([500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0])
    msg = ci(
        header=hdr,
        height=480,
        width=640,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([500.0, 0, 320, 0, 500, 240, 0, 0, 1]),
        r=np.eye(3).ravel(),
        p=p,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    cam = PinholeCamera.from_camera_info(msg)
    assert (cam.fx, cam.cx, cam.width, cam.height) == (500.0, 320.0, 640, 480)


@pytest.mark.parametrize(
    "bad",
    [
        [0.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1, 0],  # uncalibrated: K[0] == 0
        [500.0, 0, 320, 0, 0, np.nan, 240, 0, 0, 0, 1, 0],  # NaN
        [500.0, 0, 320, 0, 0, 500, 240, 0, 0, 0, 1],  # 11 values
    ],
)
def test_bad_camera_info_raises_value_error(bad):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo()
    info.width, info.height = 640, 480
    if len(bad) == 12:
        info.p = [float(x) for x in bad]
        with pytest.raises(ValueError):
            PinholeCamera.from_camera_info(info)
    else:

        class Short:  # a rosbags-style message whose p has the wrong length
            p = np.array(bad)
            roi, binning_x, binning_y, width, height = info.roi, 0, 0, 640, 480

        with pytest.raises(ValueError, match="12 values"):
            PinholeCamera.from_camera_info(Short)


def test_kitti_raw_calibration_reproduces_the_documented_chain(kitti_dir):
    cam, t = kitti_raw_calibration(kitti_dir / "calib")
    c2c = read_kitti_calib_file(kitti_dir / "calib" / "calib_cam_to_cam.txt")
    v2c = read_kitti_calib_file(kitti_dir / "calib" / "calib_velo_to_cam.txt")
    r = np.eye(4)
    r[:3, :3] = c2c["R_rect_00"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3, :3], tr[:3, 3] = v2c["R"].reshape(3, 3), v2c["T"]
    expected = c2c["P_rect_02"].reshape(3, 4) @ r @ tr
    np.testing.assert_allclose(cam.P @ t, expected, rtol=1e-12, atol=1e-12)
    assert (cam.width, cam.height) == (1242, 375)
    assert cam.shift[0] == pytest.approx(
        4.485728e01 / 7.215377e02 - 609.5593 * 2.745884e-03 / 721.5377, rel=1e-9
    )


def test_kitti_object_layout_reads_nonconsecutive_frames(tmp_path, kitti_dir):
    """A KITTI object folder built from the raw drive: P2, R0_rect, Tr_velo_to_cam per frame."""
    c2c = read_kitti_calib_file(kitti_dir / "calib" / "calib_cam_to_cam.txt")
    v2c = read_kitti_calib_file(kitti_dir / "calib" / "calib_velo_to_cam.txt")
    for d in ("calib", "velodyne", "image_2"):
        (tmp_path / d).mkdir()
    tr = np.c_[v2c["R"].reshape(3, 3), v2c["T"]].ravel()
    for src, fid in ((1, "000007"), (2, "000123")):
        lines = [f"P{i}: " + " ".join(map(str, c2c[f"P_rect_0{i}"])) for i in range(4)]
        lines += [
            "R0_rect: " + " ".join(map(str, c2c["R_rect_00"])),
            "Tr_velo_to_cam: " + " ".join(map(str, tr)),
        ]
        (tmp_path / "calib" / f"{fid}.txt").write_text("\n".join(lines) + "\n")
        (tmp_path / "velodyne" / f"{fid}.bin").write_bytes(
            (kitti_dir / "velodyne_points/data" / f"{src:010d}.bin").read_bytes()
        )
        (tmp_path / "image_2" / f"{fid}.png").write_bytes(
            (kitti_dir / "image_02/data" / f"{src:010d}.png").read_bytes()
        )
    reader = open_dataset(tmp_path, "kitti-object")
    assert isinstance(reader, KittiObjectReader) and reader.frame_ids() == ["000007", "000123"]
    f = reader.read("000123")
    raw = open_dataset(kitti_dir, "kitti-raw").read(2)
    np.testing.assert_array_equal(f.points, raw.points)
    np.testing.assert_allclose(
        f.camera.P @ f.t_cam_from_lidar, raw.camera.P @ raw.t_cam_from_lidar, atol=1e-9
    )
    cam, _ = kitti_object_calibration(tmp_path / "calib" / "000007.txt", 1242, 375)
    assert cam.fx == 721.5377


@pytest.mark.parametrize("scene", ["scene_01", "scene_02"])
def test_ddad_calibration_matches_the_exported_transform(ddad_dir, scene):
    export = json.loads((ddad_dir / scene / "calib_export.json").read_text())
    calib = next((ddad_dir / scene / "calibration").glob("*.json"))
    for name, entry in export["cameras"].items():
        cam, t = ddad_calibration(calib, name, 1936, 1216)
        np.testing.assert_allclose(t, entry["T_cam_from_lidar"], atol=1e-9)
        np.testing.assert_allclose(cam.K, entry["K"], atol=1e-9)
    reader = DdadReader(ddad_dir / scene)
    f = reader.read(0)
    assert (
        f.rgb.shape == (1216, 1936, 3)
        and f.points.dtype == np.float32
        and 40000 <= len(f.points) <= 50000
    )


def test_nuscenes_frame(nuscenes_dir):
    reader = NuscenesReader(nuscenes_dir)
    assert "CAM_FRONT" in reader.frame_ids() and len(reader.frame_ids()) == 6
    f = reader.read("CAM_FRONT")
    assert f.points.shape == (34688, 3) and f.rgb.shape == (900, 1600, 3)
    assert set(np.unique(f.ring)) <= set(range(32))
    cam, t = exported_calibration(nuscenes_dir / "calib_export.json", "CAM_FRONT", 1600, 900)
    assert cam.fx == pytest.approx(1266.417203046554) and t.shape == (4, 4)


def test_camera_scaled_keeps_the_pixel_centre_convention():
    cam = PinholeCamera(100.0, 100.0, 19.5, 9.5, 40, 20)  # principal point at the image centre
    half = cam.scaled(0.5)
    assert (half.width, half.height, half.cx, half.cy, half.fx) == (20, 10, 9.5, 4.5, 50.0)


def test_unknown_frame_and_format_raise_value_error(kitti_dir):
    with pytest.raises(ValueError, match="no frame"):
        open_dataset(kitti_dir, "kitti-raw").read(500)
    with pytest.raises(ValueError, match="unknown format"):
        open_dataset(kitti_dir, "waymo")


@pytest.mark.validation
def test_the_full_kitti_drive_reads_78_sweeps_with_a_truncated_last_one(full_data):
    reader = open_dataset(full_data / "kitti_raw_2011_09_26", "kitti-raw")
    assert len(reader.frame_ids()) == 78
    first, last = reader.read(0), reader.read(77)
    assert 100_000 < len(first.points) < 130_000 and 60_000 < len(last.points) < 80_000
    assert first.rgb.shape == (375, 1242, 3)


def _utc(*args) -> float:
    from datetime import datetime, timezone

    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_every_reader_stamps_its_frames_in_unix_seconds(tmp_path, kitti_dir, ddad_dir):
    """Oracles: DDAD's scene JSON gives scene_01's first CAMERA_01 image as
    2463-05-15T00:38:58.415230Z (its file stems are microseconds); the nuScenes export's
    timestamp; a KITTI drive's timestamps.txt; without one, 10 Hz from the recording day."""
    ddad = open_dataset(ddad_dir / "scene_01", "ddad").read(0)
    assert ddad.stamp == pytest.approx(_utc(2463, 5, 15, 0, 38, 58, 415230), abs=1e-5)
    nus = open_dataset(FIXTURES / "nuscenes_demo", "nuscenes").read("CAM_FRONT")
    assert nus.stamp == pytest.approx(1532402927.61246, abs=1e-6)  # 2018-07-24, in the export
    day = _utc(2011, 9, 26)
    raw = open_dataset(kitti_dir, "kitti-raw")  # the folder's name gives 2011_09_26
    assert [raw.read(i).stamp for i in (0, 2)] == pytest.approx([day, day + 0.2], abs=1e-6)
    drive = tmp_path / "2011_09_28_drive_0002_sync"
    shutil.copytree(kitti_dir, drive)
    assert open_dataset(drive, "kitti-raw").read(1).stamp == pytest.approx(
        _utc(2011, 9, 28) + 0.1, abs=1e-6
    )
    lines = ["2011-09-28 12:00:00.000000000", "2011-09-28 12:00:00.103750000"]
    (drive / "image_02" / "timestamps.txt").write_text("\n".join(lines * 3) + "\n")
    assert open_dataset(drive, "kitti-raw").read(1).stamp == pytest.approx(
        _utc(2011, 9, 28, 12) + 0.10375, abs=1e-6
    )
