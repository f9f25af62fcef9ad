"""How well a confidence tells a planner which depth pixels to trust, pooled over the pixels of
all frames: calibration (ECE) and ordering (sparsification, AUSE and AURG).

- ECE, the expected calibration error of "the probability that the depth is within
  GOOD_FRACTION (5 %) of the truth", over ECE_BINS equal bins of confidence: the mean over
  pixels of |share good in the pixel's bin - mean confidence in it|.
- Sparsification (Ilg et al., ECCV 2018): the error (RMSE or MAE) of the pixels left after the
  least confident fraction f is dropped, for f from 0 to 1, over the error of all; the oracle
  drops the largest errors first; a random order leaves 1 throughout. AUSE is the area between
  the method's curve and the oracle's (0: it orders as the errors do), AURG the area between
  random's and the method's (0: no better than random; it can be negative). AURG >= AUSE: the
  order recovers at least half of what the oracle's does. Ties in confidence (a constant 1) are
  broken at random, seeded, so a constant scores as random.
"""

from __future__ import annotations

import numpy as np

from ..core.models import GOOD_FRACTION

ECE_BINS = 10
FRACTIONS = np.linspace(0.0, 0.98, 50)  # the dropped fractions of a sparsification curve


def good(err: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) bool: the error ``err`` is within GOOD_FRACTION of the true depth ``truth`` (same
    unit)."""
    return np.asarray(np.abs(err) <= GOOD_FRACTION * np.abs(truth))


def ece(conf: np.ndarray, is_good: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of confidences ``conf`` (N,) in [0, 1] against outcomes
    ``is_good`` (N,) bool; NaN for no pixel."""
    if conf.size == 0:
        return float("nan")
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    hits = np.bincount(which, weights=is_good.astype(np.float64), minlength=bins)
    mean_conf = np.bincount(which, weights=conf.astype(np.float64), minlength=bins)
    used = count > 0
    gap = np.abs(hits[used] - mean_conf[used])  # = count * |accuracy - confidence|
    return float(gap.sum() / conf.size)


def _curve(err: np.ndarray, order: np.ndarray, metric: str) -> np.ndarray:
    """The metric of the pixels left after dropping each FRACTIONS share first in ``order``,
    over the metric of all."""
    e = np.abs(err[order]).astype(np.float64)
    tail = e**2 if metric == "rmse" else e
    # the mean of the kept tail for each starting index, from the cumulative sum from the end
    sums = np.cumsum(tail[::-1])[::-1]
    n = len(e)
    start = np.minimum((FRACTIONS * n).astype(np.int64), n - 1)
    means = sums[start] / (n - start)
    values = np.sqrt(means) if metric == "rmse" else means
    return np.asarray(values / values[0])


def sparsification(err: np.ndarray, conf: np.ndarray, seed: int = 0) -> dict[str, object]:
    """Sparsification of errors ``err`` (N,) by confidences ``conf`` (N,): for "rmse" and
    "mae", the method's and the oracle's curves (lists over FRACTIONS) and their AUSE and AURG;
    NaN areas for fewer than 2 pixels."""
    out: dict[str, object] = {"fractions": FRACTIONS.tolist()}
    if err.size < 2:
        for metric in ("rmse", "mae"):
            out[metric] = {"ause": float("nan"), "aurg": float("nan")}
        return out
    shuffle = np.random.default_rng(seed).permutation(err.size)
    by_conf = shuffle[np.argsort(conf[shuffle], kind="stable")]  # least confident first
    by_error = np.argsort(-np.abs(err), kind="stable")  # the oracle: largest errors first
    for metric in ("rmse", "mae"):
        method, oracle = _curve(err, by_conf, metric), _curve(err, by_error, metric)
        out[metric] = {
            "curve": method.tolist(),
            "oracle": oracle.tolist(),
            "ause": float(np.mean(method - oracle)),
            "aurg": float(np.mean(1.0 - method)),
        }
    return out
