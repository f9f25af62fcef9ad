"""Approximate pairing of cloud, image and camera_info: slop, offsets, newest wins, bounded
queues."""

import pytest

from sparse_depth_node.msgs.sync import ApproximateSync


def test_pairs_within_slop_in_any_arrival_order():
    s = ApproximateSync(slop=0.03)
    assert s.add("image", "img1", 10.00) is None
    assert s.add("cloud", "cld1", 10.02) is None
    m = s.add("info", "inf1", 10.00)
    assert (m.cloud, m.image, m.info, m.cloud_stamp, m.image_stamp) == (
        "cld1",
        "img1",
        "inf1",
        10.02,
        10.00,
    )
    assert all(len(q) == 0 for q in s.queues.values()) and s.dropped == 0


def test_outside_slop_does_not_pair_until_a_closer_one_arrives():
    s = ApproximateSync(slop=0.03)
    s.add("image", "img", 10.0)
    s.add("info", "inf", 10.0)
    assert s.add("cloud", "late", 10.05) is None
    m = s.add("cloud", "close", 10.01)
    assert m.cloud == "close"


def test_time_offset_shifts_a_sensor_before_pairing():
    s = ApproximateSync(slop=0.01, offsets={"image": 0.1, "info": 0.1})
    s.add("image", "img", 9.9)
    s.add("info", "inf", 9.9)
    m = s.add("cloud", "cld", 10.0)
    assert m is not None and m.image_stamp == 9.9


def test_newest_complete_set_wins_and_older_are_dropped_and_counted():
    s = ApproximateSync(slop=0.02, queue_size=10)
    for t in (1.0, 1.1, 1.2):
        s.add("image", f"img{t}", t)
        s.add("info", f"inf{t}", t)
    m = s.add("cloud", "cld", 1.2)
    assert m.image == "img1.2" and m.info == "inf1.2"
    assert s.dropped == 4  # two older images and two older infos never paired
    assert all(len(q) == 0 for q in s.queues.values())


def test_queues_are_bounded_no_backlog():
    s = ApproximateSync(slop=0.001, queue_size=3)
    for i in range(100):
        s.add("image", i, i * 0.1)
        s.add("info", i, i * 0.1)
    assert len(s.queues["image"]) == 3 and len(s.queues["info"]) == 3 and s.dropped == 194


def test_backward_time_jump_resets_the_queues():
    s = ApproximateSync(slop=0.01)
    s.add("image", "a", 100.0)
    s.add("info", "a", 100.0)
    assert s.add("image", "b", 5.0) is None  # a looping bag
    assert s.resets == 1 and len(s.queues["info"]) == 0 and len(s.queues["image"]) == 1
    s.add("info", "b", 5.0)
    assert s.add("cloud", "b", 5.0).image == "b"


def test_bad_arguments():
    with pytest.raises(ValueError):
        ApproximateSync(slop=-1)
    with pytest.raises(ValueError, match="unknown stream"):
        ApproximateSync().add("radar", None, 0.0)


@pytest.mark.parametrize("lagging", ["cloud", "image", "info"])
@pytest.mark.parametrize("hz, delay", [(10.0, 0.5), (1.0, 2.5)])
def test_a_stream_arriving_seconds_late_still_pairs(lagging, hz, delay):
    """Messages arrive in the order a lagging driver delivers them: the ``lagging`` stream's
    message for stamp t comes after the others' for t + delay."""
    s = ApproximateSync(slop=0.01, queue_size=10)
    n, lag = 50, round(delay * hz)
    arrivals = []
    for k in range(n + lag):
        for stream in ("cloud", "image", "info"):
            j = k - lag if stream == lagging else k
            if 0 <= j < n:
                arrivals.append((stream, j))
    paired = [m for stream, j in arrivals if (m := s.add(stream, j, 100.0 + j / hz))]
    assert len(paired) >= 0.95 * n and s.resets == 0
    assert all(m.cloud == m.image == m.info for m in paired)


def test_a_small_jitter_backwards_is_not_a_reset_but_a_loop_is():
    s = ApproximateSync(slop=0.01)
    s.add("image", "a", 10.0)
    s.add("image", "b", 9.8)  # out of order by 0.2 s
    assert s.resets == 0
    s.add("image", "c", 1.0)  # the bag looped
    assert s.resets == 1
