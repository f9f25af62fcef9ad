"""The confidence metrics on cases whose answers are known: a constant confidence, an exactly
calibrated one, the oracle order and its reverse, and a curve worked out by hand."""

import numpy as np
import pytest

from sparse_depth_node.lab.uncertainty import FRACTIONS, ece, good, sparsification


def test_ece_of_a_constant_is_its_distance_from_the_share_good():
    conf = np.ones(1000)
    outcome = np.arange(1000) < 600  # 60 % good
    assert ece(conf, outcome) == pytest.approx(0.4)
    assert ece(np.full(1000, 0.6), outcome) == pytest.approx(0.0)


def test_ece_of_outcomes_drawn_with_the_stated_probability_is_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200_000)
    outcome = rng.uniform(0, 1, conf.size) < conf
    assert ece(conf, outcome) < 0.01
    assert ece(1 - conf, outcome) > 0.3  # the same confidences, reversed


def test_good_is_within_five_percent_of_the_truth():
    assert good(np.array([0.5, -0.5, 0.51]), np.array([10.0, 10.0, 10.0])).tolist() == [
        True,
        True,
        False,
    ]


def test_a_curve_by_hand_and_the_oracle_and_random_orders():
    err = np.array([4.0, 1.0, 3.0, 2.0])
    conf = np.array([0.1, 0.9, 0.3, 0.6])  # least confident first: 4, 3, 2, 1 (the oracle's)
    s = sparsification(err, conf)
    assert s["rmse"]["ause"] == pytest.approx(0.0) and s["mae"]["ause"] == pytest.approx(0.0)
    # dropping a fraction f of 4 pixels drops floor(4 f): MAE of the rest over all's 2.5
    by_dropped = {0: 2.5 / 2.5, 1: 2.0 / 2.5, 2: 1.5 / 2.5, 3: 1.0 / 2.5}
    for f, value in zip(FRACTIONS, s["mae"]["curve"]):
        assert value == pytest.approx(by_dropped[int(np.floor(4 * f + 1e-9))]), f
    rng = np.random.default_rng(1)
    err = rng.normal(size=20_000) * rng.uniform(0.1, 3, 20_000)
    oracle = sparsification(err, -np.abs(err))
    constant = sparsification(err, np.ones_like(err))
    backwards = sparsification(err, np.abs(err))
    assert oracle["rmse"]["ause"] == pytest.approx(0.0, abs=1e-9)
    assert oracle["rmse"]["aurg"] > 0.4
    assert abs(constant["rmse"]["aurg"]) < 0.03  # ties broken at random: no better than random
    assert backwards["rmse"]["aurg"] < 0 and backwards["mae"]["aurg"] < 0
