"""The training script end to end on real frames (the bundled sample, one DDAD frame): a few
steps, a checkpoint with provenance."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.models import load_checkpoint
from sparse_depth_node.lab.train import main as train_main


def mean(pair: "tuple[torch.Tensor, torch.Tensor]") -> float:
    """A loss term's mean from its (sum, count)."""
    return float(pair[0] / pair[1].clamp(min=1))


def few_steps(kitti_dir, ddad_dir) -> list[str]:
    """Two steps of batch 1 on two sample frames (one for validation) and one DDAD frame."""
    return [
        "--extra",
        "",
        "--rig",
        "",
        "--data",
        str(kitti_dir),
        "--ddad",
        str(ddad_dir / "scene_01"),
        "--train-frames",
        "0:2",
        "--val-frames",
        "2:3",
        "--steps",
        "2",
        "--eval-every",
        "2",
        "--batch",
        "1",
        "--crop",
        "64",
        "128",
        "--threads",
        "1",
        "--quiet",
    ]


def test_train_writes_a_loadable_checkpoint_with_command_and_metrics(
    tmp_path, kitti_dir, ddad_dir
):
    out = tmp_path / "m.pt"
    rc = train_main(
        few_steps(kitti_dir, ddad_dir)
        + ["--model", "sparseconv", "--seed", "3", "--out", str(out)]
    )
    assert rc == 0
    model, meta = load_checkpoint(out)
    prov = meta["provenance"]
    assert prov["seed"] == 3 and prov["steps"] == 2 and "--model sparseconv" in prov["command"]
    metrics = json.loads(prov["metrics"])
    assert (
        metrics["model"]["step"] == 2
        and metrics["classic-full"]["kitti random:0.5"]["rmse_mm"] > 0
    )
    completer = DepthCompleter(str(out), "cpu")
    assert completer.method == "sparseconv" and completer.trained
    assert "2 steps" in completer.description
    depth, mask = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    depth[..., 16, 16], mask[..., 16, 16] = 10.0, 1.0
    dense, conf = completer.complete(depth, mask)
    assert dense.shape == (1, 1, 32, 32) and conf[0, 0, 16, 16] == 1


def test_confidence_only_training_keeps_the_depth_weights_of_its_init(
    tmp_path, kitti_dir, ddad_dir
):
    from sparse_depth_node.core.models import SparseMultiScaleNet, save_checkpoint

    init = tmp_path / "init.pt"
    start = SparseMultiScaleNet()
    save_checkpoint(init, "multiscale", start, {"command": "made by the test"})
    out = tmp_path / "conf.pt"
    rc = train_main(
        few_steps(kitti_dir, ddad_dir)
        + ["--model", "multiscale", "--init", str(init), "--train", "confidence"]
        + ["--out", str(out)]
    )
    assert rc == 0
    model, meta = load_checkpoint(out)
    trained, before = model.state_dict(), start.state_dict()
    for name, value in before.items():
        if name.startswith("confidence."):
            continue
        assert torch.equal(trained[name], value), name
    assert any(
        not torch.equal(trained[n], before[n]) for n in before if n.startswith("confidence.")
    )
    prov = meta["provenance"]
    assert prov["trained"] == "confidence" and "made by the test" in prov["init"]


def kitti_object_copy(kitti_dir, folder, frames=(0, 1, 2)):
    """The sample's frames in the KITTI object layout (P2, R0_rect, Tr_velo_to_cam)."""
    from sparse_depth_node.data.calibration import read_kitti_calib_file

    cam = read_kitti_calib_file(kitti_dir / "calib" / "calib_cam_to_cam.txt")
    velo = read_kitti_calib_file(kitti_dir / "calib" / "calib_velo_to_cam.txt")
    tr = np.hstack([np.reshape(velo["R"], (3, 3)), np.reshape(velo["T"], (3, 1))])
    for sub in ("image_2", "velodyne", "calib"):
        (folder / sub).mkdir(parents=True)
    for i in frames:
        name = f"{i:010d}"
        shutil.copy(
            kitti_dir / "image_02" / "data" / f"{name}.png", folder / "image_2" / f"{i:06d}.png"
        )
        shutil.copy(
            kitti_dir / "velodyne_points" / "data" / f"{name}.bin",
            folder / "velodyne" / f"{i:06d}.bin",
        )
        lines = [
            "P2: " + " ".join(map(str, np.ravel(cam["P_rect_02"]))),
            "R0_rect: " + " ".join(map(str, np.ravel(cam["R_rect_00"]))),
            "Tr_velo_to_cam: " + " ".join(map(str, tr.ravel())),
        ]
        (folder / "calib" / f"{i:06d}.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_guided_trains_on_images_with_held_out_drives_and_a_rig_for_selection(
    tmp_path, kitti_dir, ddad_dir
):
    """A few guided steps: the other drives' held-out frames and the other rig are validation
    sets, the weights kept are those of the best score on them, the history is recorded."""
    extra = kitti_object_copy(kitti_dir, tmp_path / "extra")
    rig = kitti_object_copy(kitti_dir, tmp_path / "rig", frames=(2,))
    out = tmp_path / "g.pt"
    args = few_steps(kitti_dir, ddad_dir)[4:] + ["--extra", str(extra), "--extra-val", "000001"]
    args += ["--rig", str(rig), "--model", "guided", "--steps", "4", "--eval-every", "2"]
    args += ["--ring-holdout", "0.5", "--loss", "l1+l2", "--smoothness", "2", "--out", str(out)]
    assert train_main(args) == 0
    _, meta = load_checkpoint(out)
    prov = meta["provenance"]
    history = json.loads(prov["history"])
    assert [h["step"] for h in history] == [2, 4]
    assert set(history[0]) >= {
        "kitti random:0.5",
        "kitti lines:4",
        "extra random:0.5",
        "extra lines:4",
        "rig random:0.5",
        "score",
        "loss",
    }
    best = min(history, key=lambda h: h["score"])
    assert prov["kept_step"] == best["step"]
    assert "000001 (val)" in prov["data"] and "other rig" in prov["data"]
    completer = DepthCompleter(str(out), "cpu")
    assert completer.needs_image and completer.method == "guided"


def test_colour_jitter_keeps_images_in_range_and_changes_each_differently():
    from sparse_depth_node.lab.trainer import colour_jitter

    rgb = torch.rand(3, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    out = colour_jitter(rgb, torch.Generator().manual_seed(1))
    assert out.shape == rgb.shape and out.min() >= 0 and out.max() <= 1
    ratios = (out.mean(dim=(1, 2, 3)) / rgb.mean(dim=(1, 2, 3))).tolist()
    assert len({round(r, 4) for r in ratios}) == 3


def test_ring_inputs_are_the_projections_of_every_kth_scan_line(kitti_frame0):
    from sparse_depth_node.lab.evaluate import split_frame
    from sparse_depth_node.lab.train_data import RING_STEPS, ring_inputs

    variants = ring_inputs(kitti_frame0, 0.5, 100.0)
    assert variants.shape[1] == 2 * sum(RING_STEPS)
    # variant 2 (k = 4, phase 0) is exactly the lines:4 protocol's input
    lines = split_frame(kitti_frame0, "lines:4", 0)
    first_k4 = 2 * RING_STEPS[0]
    assert torch.equal(variants[:, first_k4 : first_k4 + 1], lines.input_depth)
    assert torch.equal(variants[:, first_k4 + 1 : first_k4 + 2], lines.input_mask)
    # the two phases of k = 2 together hold (almost) every projected pixel, each about half
    half_a, half_b = variants[:, 1], variants[:, 3]
    full = ((half_a + half_b) > 0).sum()
    assert 0.4 < half_a.sum() / full < 0.6 and 0.4 < half_b.sum() / full < 0.6


def test_row_smoothness_costs_stripes_not_planes_and_not_across_image_edges():
    from sparse_depth_node.lab.train_losses import row_smoothness

    y = torch.arange(64.0).view(1, 1, 64, 1).expand(1, 1, 64, 80)
    plane = 10 + 0.1 * y  # depth growing smoothly with the row, as a road does
    stripes = plane * torch.exp(0.05 * (-1.0) ** y)  # rows alternating by +-5 %
    flat = torch.full((1, 3, 64, 80), 0.5)
    # second difference of log depth: 4 x 0.05 on every row of the stripes
    assert mean(row_smoothness(stripes, flat)) == pytest.approx(0.2, rel=0.05)
    assert mean(row_smoothness(plane, flat)) < 1e-3
    # a depth edge (10 m above row 32, 20 m below) costs where the image is flat, not where
    # the image has an edge at the same rows
    rows = torch.arange(64.0).view(1, 1, 64, 1).expand(1, 1, 64, 80)
    edge_depth = torch.where(rows < 32, 10.0, 20.0)
    edge_image = torch.where(rows < 32, 0.1, 0.9).expand(1, 3, 64, 80)
    assert mean(row_smoothness(edge_depth, flat)) > 0.01
    assert mean(row_smoothness(edge_depth, edge_image)) < 1e-6


def test_parallax_cleaning_drops_the_background_returns_beside_a_nearer_edge():
    """Oracle: a 5 m block beside a 20 m wall; wall returns within 3 px of the block are more
    than 10 % behind the nearest return there, so they go; the rest stay."""
    from sparse_depth_node.lab.train_losses import visible

    depth = torch.full((1, 1, 20, 40), 20.0)
    depth[..., :, :10] = 5.0
    mask = torch.ones_like(depth)
    v = visible(depth, mask, 0.1)
    cols = v[0, 0, 10]
    assert torch.all(cols[:10] == 1) and torch.all(cols[10:13] == 0) and torch.all(cols[13:] == 1)
    assert torch.equal(visible(depth, mask, 0.0), mask)


def test_photometric_loss_of_a_crop_is_zero_for_the_true_depth_and_the_same_flipped():
    """The plane pair of test_photometric: a crop of the target with the true depth warps the
    full source onto it exactly (the crop's K is shifted by its corner); a flipped crop (as
    random_crop hands it) scores the same, in the same batch; a wrong depth scores worse; a crop
    without views adds nothing."""
    from photometric_oracle import Z, plane_pair

    from sparse_depth_node.lab.train_data import Neighbours
    from sparse_depth_node.lab.train_losses import batch_photometric_loss

    source, target, k, t = plane_pair()
    nb = Neighbours(k, source, t[None])
    y, x, h, w = 8, 20, 24, 48
    rgb = target[..., y : y + h, x : x + w].expand(1, 3, h, w)  # grey = the same values
    depth = torch.full((1, 1, h, w), Z)
    total, count = batch_photometric_loss(depth, rgb, [(y, x, False)], [nb])
    assert int(count) > 0.5 * h * w and float(total / count) < 0.01
    both = batch_photometric_loss(
        torch.cat([depth, depth.flip(-1), depth]),
        torch.cat([rgb, rgb.flip(-1), rgb]),
        [(y, x, False), (y, x, True), (y, x, False)],
        [nb, nb, None],
    )
    torch.testing.assert_close(both[0], 2 * total)
    assert int(both[1]) == 2 * int(count)
    nowhere = torch.zeros_like(depth, dtype=torch.bool)
    assert batch_photometric_loss(depth, rgb, [(y, x, False)], [nb], nowhere)[1] == 0
    everywhere = batch_photometric_loss(depth, rgb, [(y, x, False)], [nb], ~nowhere)
    assert torch.equal(everywhere[0], total) and everywhere[1] == count
    wrong = batch_photometric_loss(depth * 1.2, rgb, [(y, x, False)], [nb])
    assert float(wrong[0] / wrong[1].clamp(min=1)) > 2 * float(total / count) + 0.01
    assert batch_photometric_loss(depth, rgb, [(y, x, False)], [None])[1] == 0


def test_photometric_and_keep_input_training_runs_on_the_sample(tmp_path, kitti_dir, ddad_dir):
    out = tmp_path / "g.pt"
    args = few_steps(kitti_dir, ddad_dir) + ["--model", "guided", "--out", str(out)]
    args += [
        "--photometric",
        "10",
        "--baseline",
        "0.2",
        "--keep-input",
        "1",
        "--clean-targets",
        "0.1",
    ]
    args[args.index("--train-frames") + 1] = "0:3"  # ~0.25 m a frame: each has a view 0.2 m away
    assert train_main(args) == 0
    _, meta = load_checkpoint(out)
    assert "photometric: 3 of the training frames" in meta["provenance"]["data"]


def test_depth_weight_0_leaves_a_network_untouched_by_the_held_out_points(
    tmp_path, kitti_dir, ddad_dir
):
    """With the held-out depth loss weighted 0 and no other term, no gradient reaches the
    weights (Adam moves nothing on zero gradients): the checkpoint is its init; weighted 1, the
    same steps change it."""
    from sparse_depth_node.core.models import SparseConvNet, save_checkpoint

    init = tmp_path / "init.pt"
    start = SparseConvNet()
    save_checkpoint(init, "sparseconv", start, {"command": "made by the test"})
    for weight, same in (("0", True), ("1", False)):
        out = tmp_path / f"w{weight}.pt"
        args = few_steps(kitti_dir, ddad_dir) + ["--model", "sparseconv", "--init", str(init)]
        assert train_main(args + ["--depth-weight", weight, "--out", str(out)]) == 0
        trained = load_checkpoint(out)[0].state_dict()
        unchanged = all(torch.equal(trained[n], v) for n, v in start.state_dict().items())
        assert unchanged == same, weight


@pytest.mark.cuda
def test_on_cuda_training_with_every_loss_follows_the_cpu(kitti_dir, ddad_dir):
    """The same seed, data and options on the CPU and on CUDA (the data, the crops, every loss
    on the device): the same losses step by step, within float rounding."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none on this machine); the CPU path is tested above")
    from sparse_depth_node.lab.train_data import load_training_data
    from sparse_depth_node.lab.train_options import parser
    from sparse_depth_node.lab.trainer import Trainer

    base = few_steps(kitti_dir, ddad_dir) + ["--model", "guided", "--out", "unused"]
    base[base.index("--train-frames") + 1] = "0:3"
    base += ["--photometric", "10", "--keep-input", "1", "--smoothness", "1"]
    base += ["--ring-holdout", "0.5", "--clean-targets", "0.1", "--batch", "4"]
    losses = {}
    for device in ("cpu", "cuda"):
        args = parser().parse_args(base + ["--device", device])
        torch.manual_seed(args.seed)
        dev = torch.device(device)
        trainer = Trainer(args, load_training_data(args, dev), dev)
        losses[device] = [trainer.step() for _ in range(4)]
    np.testing.assert_allclose(losses["cuda"], losses["cpu"], rtol=1e-3)


SAMPLE_BAG = Path(__file__).resolve().parents[2] / "sample" / "kitti_2011_09_26_sample"


def test_a_bag_splits_by_time_with_a_gap():
    from sparse_depth_node.lab.train_data import time_split

    stamps = [0.1 * i for i in range(20)]
    train, val = time_split(stamps, 0.25, 0.35)
    assert list(val) == list(range(15, 20)) and list(train) == list(range(12))
    assert stamps[val[0]] - stamps[train[-1]] >= 0.35  # no neighbours on both sides
    with pytest.raises(ValueError, match="none to train on"):
        time_split(stamps[:3], 0.5, 1.0)


def test_training_from_a_bag_equals_training_from_the_folder_it_was_converted_from(
    kitti_dir, tmp_path, monkeypatch
):
    """The sample bag (convert-kitti of the sample folder), decoded once into the frame cache:
    the same frames, the same split and seed give the same losses step by step (bit for bit
    without the photometric loss; with it, within 1 %: the bag's TF folds camera 2's offset
    into the extrinsic, a different frame for the views' poses, which the photometric error of
    small crops feels). The cache is reused."""
    from sparse_depth_node.bag.frames import cache_frames
    from sparse_depth_node.lab.train_data import load_training_data
    from sparse_depth_node.lab.train_options import parser
    from sparse_depth_node.lab.trainer import Trainer

    monkeypatch.setenv("SPARSE_DEPTH_CACHE", str(tmp_path))
    common = ["--ddad", "", "--extra", "", "--rig", "", "--model", "guided", "--batch", "2"]
    common += ["--crop", "96", "192", "--ring-holdout", "0.5", "--smoothness", "1"]
    common += ["--keep-input", "1", "--clean-targets", "0.1", "--out", "unused", "--steps", "4"]
    sources = {
        "folder": ["--data", str(kitti_dir), "--train-frames", "0:2", "--val-frames", "2:3"],
        "bag": ["--bags", str(SAMPLE_BAG), "--val-fraction", "0.34", "--gap", "0"],
    }
    for extra, rtol in (([], 0.0), (["--photometric", "10"], 1e-2)):
        losses = {}
        for name, source in sources.items():
            args = parser().parse_args(source + common + extra)
            torch.manual_seed(0)
            trainer = Trainer(
                args, load_training_data(args, torch.device("cpu")), torch.device("cpu")
            )
            losses[name] = [trainer.step() for _ in range(4)]
        np.testing.assert_allclose(losses["bag"], losses["folder"], rtol=rtol)
    cache = cache_frames(SAMPLE_BAG)
    assert len(list(Path(tmp_path, "frames").iterdir())) == 1  # decoded once, then reused
    assert (cache / "frames.json").stat().st_mtime_ns == cache_frames(SAMPLE_BAG).joinpath(
        "frames.json"
    ).stat().st_mtime_ns


def test_near_returns_is_the_chebyshev_neighbourhood_of_the_returns():
    from sparse_depth_node.lab.train_losses import near_returns

    mask = torch.zeros(1, 1, 9, 9)
    mask[0, 0, 4, 4] = 1.0
    near = near_returns(mask, 2)[0, 0]
    assert near[2:7, 2:7].all() and int(near.sum()) == 25
    assert near_returns(mask, 0) is None


def few_steps_bag(tmp_path) -> list[str]:
    return [
        "--bags", str(SAMPLE_BAG), "--val-fraction", "0.34", "--gap", "0", "--steps", "4",
        "--eval-every", "2", "--batch", "4", "--crop", "64", "128", "--threads", "1", "--quiet",
        "--model", "guided", "--photometric", "10", "--keep-input", "1", "--smoothness", "1",
        "--ring-holdout", "0.5",
    ]  # fmt: skip


def test_two_processes_take_the_step_one_process_takes(tmp_path):
    """PyTorch DDP under torchrun, 2 processes on the CPU (gloo), the same global batch of 4
    crops: the same weights as 1 process (float rounding of the summed gradients apart). Each
    run decodes the bag into a cache of its own: torchrun's processes make theirs at once.

    The rounding, measured after these 4 steps: up to 8.0e-6 (ATen's AVX2 kernels; CI and two
    fresh clones saw the same 8.0e-6) and 1.6e-6 (its default kernels); a DDP that trained on
    another global batch (2 crops instead of 4) ends 1.2e-2 away. The tolerance, 1e-4, sits
    12x above the first and 120x below the second (docs/TRAINING.md)."""
    cli = [sys.executable, "-m", "sparse_depth_node.cli", "train", *few_steps_bag(tmp_path)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    torchrun += ["--master-port", str(29500 + os.getpid() % 400), "-m", "sparse_depth_node.cli"]
    torchrun += ["train", *few_steps_bag(tmp_path)]
    for cmd, out in ((cli, "one.pt"), (torchrun, "two.pt")):
        run = subprocess.run(
            [*cmd, "--out", str(tmp_path / out)],
            capture_output=True,
            text=True,
            env=dict(os.environ, SPARSE_DEPTH_CACHE=str(tmp_path / f"cache-{out}")),
            timeout=300,
        )
        # a process's own error comes before torchrun's report of it
        assert run.returncode == 0, run.stdout[-1500:] + run.stderr[:2500]
    one, two = (load_checkpoint(tmp_path / n)[0].state_dict() for n in ("one.pt", "two.pt"))
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=0, atol=1e-4)
    assert "2 processes" in run.stdout


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """Stopped after its first validation (step 2 of 4), then --resume: the same weights, the
    same history, and TensorBoard events of the losses, validations and a preview image."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from sparse_depth_node.lab import train as train_module

    monkeypatch.setenv("SPARSE_DEPTH_CACHE", str(tmp_path / "cache"))
    args = few_steps_bag(tmp_path)
    assert train_main(args + ["--out", str(tmp_path / "straight.pt")]) == 0
    step = train_module.Trainer.step
    calls = []

    def stop_at_three(self):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(train_module.Trainer, "step", stop_at_three)
    with pytest.raises(KeyboardInterrupt):
        train_main(args + ["--out", str(tmp_path / "resumed.pt")])
    monkeypatch.setattr(train_module.Trainer, "step", step)
    assert train_main(args + ["--out", str(tmp_path / "resumed.pt"), "--resume"]) == 0
    a, meta_a = load_checkpoint(tmp_path / "straight.pt")
    b, meta_b = load_checkpoint(tmp_path / "resumed.pt")
    for name, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], value), name
    history = [json.loads(m["provenance"]["history"]) for m in (meta_a, meta_b)]
    assert [h["loss"] for h in history[0]] == [h["loss"] for h in history[1]]
    events = EventAccumulator(str(tmp_path / "resumed.pt.tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("val/score")] == [2, 4]
    assert [e.step for e in events.Images("val/depth")] == [2, 4]
