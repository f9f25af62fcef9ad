"""The one parameter schema: defaults, ranges and cross-checks in one place."""

import pytest

from sparse_depth_node.core.settings import BY_NAME, DEFAULTS, problem, resolve


def test_defaults_pass_their_own_checks():
    assert problem(DEFAULTS) is None
    assert resolve() == DEFAULTS


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"min_depth": 50.0, "max_depth": 10.0}, "min_depth (50.0) must be below max_depth"),
        (
            {"extrinsic.translation": [0, 0, 0], "extrinsic.rotation": [0, 0, 0, 0]},
            "zero quaternion",
        ),
        ({"extrinsic.rotation": [0, 0, 0, 1]}, "must be given together"),
        ({"extrinsic.translation": [0.1, float("nan"), 0]}, "all finite numbers"),
        ({"inference_scale": 0.3}, "1/n for an integer n"),
        ({"precision": "fp64"}, "precision must be one of fp32, bf16, fp16"),
        ({"cloud_stride": 0}, "cloud_stride must be in [1, 64]"),
        ({"cloud_stride": 1.5}, "cloud_stride must be an integer"),
        ({"colorize_cloud": "yes"}, "colorize_cloud must be true or false"),
        ({"extrinsic.translation": [0, 0]}, "list of 3 numbers"),
        ({"max_depth": float("inf")}, "max_depth must be finite"),
        ({"modle": "classic"}, "unknown parameter 'modle'"),
    ],
)
def test_resolve_names_the_problem(overrides, reason):
    with pytest.raises(
        ValueError, match=reason.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        resolve(overrides)


def test_resolve_takes_integers_for_floats_and_leaves_rclpys_own_parameters_alone():
    v = resolve({"max_depth": 80, "use_sim_time": True, "qos_overrides./x.subscription.depth": 3})
    assert v["max_depth"] == 80.0 and isinstance(v["max_depth"], float)
    assert "use_sim_time" not in v


def test_every_setting_has_a_description_and_numbers_have_bounds_that_hold_the_default():
    for s in BY_NAME.values():
        assert s.description
        if isinstance(s.default, (int, float)) and not isinstance(s.default, bool):
            assert s.bounds and s.bounds[0] <= s.default <= s.bounds[1], s.name
