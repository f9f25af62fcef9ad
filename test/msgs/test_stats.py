"""The node's counters: every name it counts is one of COUNTERS (docs/NODE.md lists them from
there), so a counter cannot appear in /diagnostics undocumented."""

import pytest

from sparse_depth_node.msgs.stats import COUNTERS, PipelineStats, counter_entry


@pytest.mark.parametrize(
    "name, entry",
    [
        ("in_cloud", "in_<input>"),
        ("lost.image", "lost.<input>"),
        ("incompatible_qos.info", "incompatible_qos.<input>"),
        ("frames_out", "frames_out"),
        ("dropped_busy", "dropped_busy"),
    ],
)
def test_counted_names_map_to_their_entry(name, entry):
    assert counter_entry(name) == entry


@pytest.mark.parametrize("name", ["bogus", "frames_outs", "lost.", "in_", "dropped"])
def test_an_unlisted_counter_is_refused(name):
    stats = PipelineStats()
    with pytest.raises(ValueError, match="COUNTERS"):
        stats.count(name)
    assert stats.snapshot() == {}


def test_counts_rates_and_ages():
    stats = PipelineStats(window=60.0)
    stats.count("in_cloud")
    stats.count("lost.cloud", 3)
    assert stats.snapshot() == {"in_cloud": 1, "lost.cloud": 3}
    assert stats.recent("lost.cloud") == 3 and stats.rate("lost.cloud") == pytest.approx(0.05)
    assert stats.age("in_cloud") < 1.0 and stats.age("frames_out") == float("inf")
    assert all(isinstance(v, str) and v for v in COUNTERS.values())
