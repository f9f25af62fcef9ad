"""The TF buffer against motions whose poses are known in closed form: a turn about a fixed axis
at a constant rate (slerp between samples is then exact) and a straight line at constant speed
(so is linear interpolation); and every way it refuses, by name."""

import numpy as np
import pytest

from sparse_depth_node.core.transforms import make_transform, matrix_to_quaternion
from sparse_depth_node.msgs.tf_buffer import TfBuffer, TfUnavailable

S = 10**9  # ns per second
T0 = 1_700_000_000 * S


def yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def base_pose(t: float) -> np.ndarray:
    """T_odom<-base at t s: 3 m/s along x and 0.5 m/s up, turning 1 rad/s about z."""
    return make_transform(yaw(1.0 * t), [3.0 * t, 0.0, 0.5 * t])


def add(tf: TfBuffer, parent, child, t_ns, m, static=False):
    tf.add(parent, child, t_ns, m[:3, 3], matrix_to_quaternion(m[:3, :3]), static)


@pytest.fixture
def tf():
    """odom -> base_link at 20 Hz over 2 s; base_link -> lidar and base_link -> camera static."""
    tf = TfBuffer()
    for t in np.arange(0, 2.0001, 0.05):
        add(tf, "odom", "base_link", T0 + round(t * S), base_pose(t))
    add(tf, "base_link", "lidar", 0, make_transform(yaw(0.3), [0.1, 0.2, 1.7]), static=True)
    add(tf, "/base_link", "camera", 0, make_transform(np.eye(3), [0.3, 0.0, 1.5]), static=True)
    return tf


def test_between_samples_the_pose_is_the_exact_one_of_a_constant_rate_turn_and_line(tf):
    t_base_lidar = make_transform(yaw(0.3), [0.1, 0.2, 1.7])
    for t in (0.0, 0.0125, 0.731, 1.999, 2.0):
        got = tf.lookup("odom", "lidar", T0 + round(t * S))
        np.testing.assert_allclose(got, base_pose(t) @ t_base_lidar, atol=1e-9)


def test_lookup_full_carries_the_source_at_its_times_through_the_fixed_frame(tf):
    """T_camera(t_image)<-lidar(t) = T_camera<-odom(t_image) T_odom<-lidar(t), for many t."""
    t_base_lidar = make_transform(yaw(0.3), [0.1, 0.2, 1.7])
    t_base_cam = make_transform(np.eye(3), [0.3, 0.0, 1.5])
    times = np.linspace(0.4, 0.5, 7)
    got = tf.lookup_full(
        "camera", T0 + round(0.55 * S), "lidar", T0 + np.round(times * S).astype(np.int64), "odom"
    )
    cam_odom = np.linalg.inv(base_pose(0.55) @ t_base_cam)
    for g, t in zip(got, times):
        np.testing.assert_allclose(g, cam_odom @ base_pose(t) @ t_base_lidar, atol=1e-9)
    # both frames on one rigid body at one instant: the static chain, whatever the fixed frame
    same = tf.lookup_full("camera", T0 + S, "lidar", np.array([T0 + S]), "odom")[0]
    np.testing.assert_allclose(same, np.linalg.inv(t_base_cam) @ t_base_lidar, atol=1e-12)


def test_every_refusal_names_the_link_and_the_time_and_says_whether_to_wait(tf):
    with pytest.raises(TfUnavailable) as future:
        tf.lookup("odom", "lidar", T0 + round(2.03 * S))
    assert future.value.later and future.value.needed_ns == T0 + round(2.03 * S)
    assert "odom -> base_link" in str(future.value) and "1700000002.030" in str(future.value)
    assert "future" in str(future.value)
    with pytest.raises(TfUnavailable) as past:
        tf.lookup("odom", "lidar", T0 - S)
    assert not past.value.later and "past" in str(past.value)
    with pytest.raises(TfUnavailable) as unknown:
        tf.lookup("odom", "velodyne", T0)
    assert "'velodyne' is not in TF" in str(unknown.value) and "lidar" in str(unknown.value)
    add(tf, "map", "landmark", 0, np.eye(4), static=True)
    with pytest.raises(TfUnavailable) as apart:
        tf.lookup("landmark", "lidar", T0)
    assert "not connected" in str(apart.value) and "'odom'" in str(apart.value)


def test_a_gap_wider_than_the_limit_is_not_interpolated_across():
    tf = TfBuffer(max_gap_s=0.5)
    for t in (0.0, 0.1, 0.9, 1.0):  # 0.8 s without odometry between 0.1 and 0.9
        add(tf, "odom", "base", T0 + round(t * S), base_pose(t))
    np.testing.assert_allclose(tf.lookup("odom", "base", T0 + S // 20), base_pose(0.05), atol=1e-9)
    with pytest.raises(TfUnavailable) as gap:
        tf.lookup("odom", "base", T0 + S // 2)
    assert "gap of 0.800 s" in str(gap.value) and not gap.value.later


def test_the_buffer_keeps_its_window_and_takes_samples_out_of_order():
    tf = TfBuffer(keep_s=1.0)
    for t in np.arange(0, 3.0, 0.1):
        add(tf, "odom", "base", T0 + round(t * S), base_pose(t))
    off_path = base_pose(2.45) @ make_transform(np.eye(3), [1.0, 0.0, 0.0])
    add(tf, "odom", "base", T0 + round(2.45 * S), off_path)  # late, inside the window
    np.testing.assert_allclose(tf.lookup("odom", "base", T0 + round(2.45 * S)), off_path)
    halfway = tf.lookup("odom", "base", T0 + round(2.475 * S))  # between it and 2.5's
    np.testing.assert_allclose(halfway[:3, 3], (off_path[:3, 3] + base_pose(2.5)[:3, 3]) / 2)
    with pytest.raises(TfUnavailable, match="past"):  # older than 1 s behind the newest
        tf.lookup("odom", "base", T0 + round(1.8 * S))
    assert tf.newest_ns == T0 + round(2.9 * S)
    np.testing.assert_allclose(tf.lookup("odom", "base", None), base_pose(2.9), atol=1e-9)


def test_moving_links_and_the_root_of_a_frame(tf):
    assert tf.moving_links("lidar") == ["odom -> base_link"]
    assert tf.root("camera") == "odom"
    add(tf, "base_link", "mast", 0, np.eye(4), static=True)
    assert tf.moving_links("mast") == ["odom -> base_link"]
    static = TfBuffer()
    add(static, "base", "lidar", 0, np.eye(4), static=True)
    assert static.moving_links("lidar") == [] and static.moving_links("nowhere") == []
