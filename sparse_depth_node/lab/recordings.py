"""Which model to run on this robot: every method judged on the robot's own held-out recordings
(``sparse-depth evaluate --bags``), by the three judges of docs/EVALUATION.md, and one line that
says which to run and by how much.

- held out: a random half of each frame's returns the input, the other half the target;
- accumulated: the whole sweep the input, the returns of the neighbouring sweeps moved into the
  frame the targets (depth between the frame's own returns);
- photometric: the whole sweep the input, the neighbouring images warped into the frame with
  each method's depth (the whole image, silhouettes included).

The verdict follows the rule the default follows: a network replaces the classical default
when it lowers the photometric error between the returns and at image edges by at least
``MARGIN``, is not worse at held-out points, and keeps at least ``KEPT`` of the returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.completion import DepthCompleter
from ..core.methods import DEFAULT_METHOD
from .accumulate import accumulated_frames
from .evaluate import evaluate
from .views import sequence_views
from .whole_image import evaluate_whole_image

MARGIN = 0.02  # at least 2 % lower photometric error between returns and at edges
KEPT = 0.95  # at least 95 % of the input returns kept within 1 %
SPAN = 5  # neighbouring sweeps each side for the accumulated targets


def judge_recordings(
    readers: list[Any],
    methods: dict[str, DepthCompleter],
    seed: int = 0,
    tick: "Callable[[], object] | None" = None,
) -> dict:
    """The three judges over every frame of ``readers`` (one sequence each, e.g. bag.BagFrames):
    {"held_out", "accumulated", "photometric": the tables of lab.evaluate and
    lab.whole_image}. ``tick`` after each frame of each judge."""
    frames, acc_frames, acc_splits, views = [], [], [], []
    for reader in readers:
        ids = reader.frame_ids()
        frames += [reader.read(i) for i in ids]
        f, s = accumulated_frames(reader, ids, SPAN, tick)
        acc_frames += f
        acc_splits += s
        views += sequence_views(reader, ids, tick=tick)
    out = {"held_out": evaluate(frames, methods, "random:0.5", seed, tick=tick)}
    if acc_frames:
        out["accumulated"] = evaluate(
            acc_frames, methods, f"accumulated:{SPAN}", seed, tick=tick, splits=acc_splits
        )
    out["photometric"] = evaluate_whole_image(views, methods, tick=tick)
    return out


def verdict(result: dict, networks: list[str], reference: str = DEFAULT_METHOD) -> str:
    """One line: the network to run instead of ``reference`` and by how much, or ``reference``
    and what the best network would cost."""
    photo, held = result["photometric"]["methods"], result["held_out"]["methods"]
    if reference not in photo:
        return (
            f"no verdict: the default, {reference}, was not judged (add it to --models to "
            "weigh the others against it)"
        )
    ref_p, ref_h = photo[reference], held[reference]

    def gains(name: str) -> tuple[float, float, float]:
        p = photo[name]
        return (
            p["between"] / ref_p["between"] - 1,
            p["edges"] / ref_p["edges"] - 1,
            held[name]["rmse_mm"] / ref_h["rmse_mm"] - 1,
        )

    def said(name: str) -> str:
        between, edges, rmse = gains(name)
        return (
            f"{between:+.1%} photometric error between the returns, {edges:+.1%} at image "
            f"edges, {rmse:+.1%} held-out RMSE, {photo[name]['kept']:.1%} of the returns kept"
        )

    winners = [
        n
        for n in networks
        if max(gains(n)[:2]) <= -MARGIN and gains(n)[2] <= 0 and photo[n]["kept"] >= KEPT
    ]
    if winners:
        best = min(winners, key=lambda n: sum(gains(n)[:2]))
        return f"run {best} on this robot: against {reference} {said(best)}"
    if not networks:
        return f"run {reference} on this robot (no network was judged)"
    best = min(networks, key=lambda n: sum(gains(n)[:2]))
    return (
        f"run {reference} on this robot: no network beats it here by {MARGIN:.0%} between the "
        f"returns and at edges without losing at held-out points; the best, {best}: {said(best)}"
    )
