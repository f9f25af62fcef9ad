"""Which model to run on this robot (lab/recordings.py, ``evaluate --bags``): the verdict rule on
hand-made tables, and the command end to end on the bundled sample's bag."""

import json
import os
import subprocess
import sys

from conftest import REPO

from sparse_depth_node.lab.recordings import verdict

BAG = REPO / "sample" / "kitti_2011_09_26_sample"


def tables(photometric: dict, held_rmse: dict) -> dict:
    """A result with the photometric (between, edges, kept) and held-out RMSE of each method."""
    return {
        "photometric": {
            "methods": {
                n: dict(zip(("between", "edges", "kept"), v)) for n, v in photometric.items()
            }
        },
        "held_out": {"methods": {n: {"rmse_mm": v} for n, v in held_rmse.items()}},
    }


def test_a_network_is_run_only_when_it_wins_by_the_margin_everywhere_the_rule_asks():
    ref = (0.100, 0.200, 0.96)
    better = (0.097, 0.195, 0.96)  # -3 % between, -2.5 % at edges
    result = tables(
        {"classic-refined": ref, "net": better}, {"classic-refined": 3000, "net": 2900}
    )
    assert verdict(result, ["net"]).startswith("run net on this robot: against classic-refined")
    assert "-3.0% photometric error between the returns" in verdict(result, ["net"])
    for photo, rmse, why in (
        ((0.099, 0.195, 0.96), 2900, "only 1 % between the returns"),
        (better, 3100, "worse at held-out points"),
        ((0.097, 0.195, 0.90), 2900, "keeps too few returns"),
    ):
        result = tables(
            {"classic-refined": ref, "net": photo}, {"classic-refined": 3000, "net": rmse}
        )
        line = verdict(result, ["net"])
        assert line.startswith("run classic-refined on this robot: no network beats it"), why
        assert "the best, net:" in line


def test_evaluate_bags_judges_every_method_and_says_which_to_run(tmp_path):
    env_cache = {"SPARSE_DEPTH_CACHE": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.cli", "evaluate", "--bags", str(BAG)]
        + ["--models", "classic-refined,classic-multiscale,guided", "--device", "cpu"]
        + ["--quiet", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        env={**os.environ, **env_cache},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert any(x.startswith("protocol random:0.5, 3 frames") for x in lines)
    assert any(x.startswith("protocol accumulated:5") for x in lines)
    assert any(x.startswith("whole image: photometric error") for x in lines)
    assert lines[-1].startswith("run ") and "on this robot" in lines[-1]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["verdict"] == lines[-1]
    assert set(result["photometric"]["methods"]) >= {"classic-refined", "guided"}


def test_evaluate_bags_with_any_set_of_models_exits_0_and_says_what_it_lacks(tmp_path):
    """Without the default among --models (it crashed with KeyError: 'classic-refined' after
    printing its tables) the verdict says what is missing."""
    out = subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.cli", "evaluate", "--bags", str(BAG)]
        + ["--models", "classic,nearest", "--device", "cpu", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "SPARSE_DEPTH_CACHE": str(tmp_path / "cache")},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.splitlines()[-1]
    assert last.startswith("no verdict: the default, classic-refined, was not judged"), last
