"""The training script end to end on the real splits: a few steps, a checkpoint with provenance."""

import json

import torch

from sparse_depth_node.completion import DepthCompleter
from sparse_depth_node.models import load_checkpoint
from sparse_depth_node.train import main as train_main


def test_train_writes_a_loadable_checkpoint_with_command_and_metrics(tmp_path, kitti_dir, ddad_dir):
    out = tmp_path / "m.pt"
    rc = train_main(["--kitti", str(kitti_dir), "--ddad", str(ddad_dir / "scene_01"), "--model", "convnet",
                     "--steps", "2", "--eval-every", "2", "--batch", "1", "--crop", "64", "128",
                     "--threads", "1", "--seed", "3", "--out", str(out)])
    assert rc == 0
    model, meta = load_checkpoint(out)
    prov = meta["provenance"]
    assert prov["seed"] == 3 and prov["steps"] == 2 and "--model convnet" in prov["command"]
    metrics = json.loads(prov["metrics"])
    assert metrics["model"]["step"] == 2 and metrics["classic"]["rmse_mm"] > 0
    completer = DepthCompleter(str(out), "cpu")
    assert completer.method == "convnet" and completer.trained
    depth, mask = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    depth[..., 16, 16], mask[..., 16, 16] = 10.0, 1.0
    dense, conf = completer.complete(depth, mask)
    assert dense.shape == (1, 1, 32, 32) and conf[0, 0, 16, 16] == 1


def test_confidence_only_training_keeps_the_depth_weights_of_its_init(tmp_path, kitti_dir, ddad_dir):
    from sparse_depth_node.models import SparseMultiScaleNet, save_checkpoint

    init = tmp_path / "init.pt"
    start = SparseMultiScaleNet()
    save_checkpoint(init, "multiscale", start, {"command": "made by the test"})
    out = tmp_path / "conf.pt"
    rc = train_main(["--kitti", str(kitti_dir), "--ddad", str(ddad_dir / "scene_01"), "--model", "multiscale",
                     "--init", str(init), "--train", "confidence", "--steps", "2", "--eval-every", "2",
                     "--batch", "1", "--crop", "64", "128", "--threads", "1", "--out", str(out)])
    assert rc == 0
    model, meta = load_checkpoint(out)
    trained, before = model.state_dict(), start.state_dict()
    for name, value in before.items():
        if name.startswith("confidence."):
            continue
        assert torch.equal(trained[name], value), name
    assert any(not torch.equal(trained[n], before[n]) for n in before if n.startswith("confidence."))
    prov = meta["provenance"]
    assert prov["trained"] == "confidence" and "made by the test" in prov["init"]
