"""SparseConv2d's density invariance, mask propagation and gradients; the networks; checkpoints."""

import pickle

import pytest
import torch
import torch.nn.functional as F

from sparse_depth_node.core.completion import DepthCompleter
from sparse_depth_node.core.methods import NETWORKS
from sparse_depth_node.core.models import (
    DepthNetwork,
    SparseConv2d,
    SparseConvNet,
    SparseMultiScaleNet,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from sparse_depth_node.core.models.multiscale import sparse_downsample, upsample_to


def random_mask(density, shape=(2, 1, 48, 64), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).float()


@pytest.mark.parametrize("density", [0.02, 0.1, 0.5, 1.0])
def test_sparse_conv_of_a_constant_is_that_constant_wherever_the_mask_reaches(density):
    layer = SparseConv2d(1, 1, 5)
    with torch.no_grad():
        layer.weight.fill_(1.0)  # normalised by the valid count: the mean of the valid pixels
        layer.bias.zero_()
    mask = random_mask(density)
    out, mask_out = layer(torch.full_like(mask, 7.0) * mask, mask)
    reach = mask_out > 0
    assert reach.any()
    # the mean of the valid pixels of a constant is exactly the constant, at any density
    torch.testing.assert_close(out[reach], torch.full_like(out[reach], 7.0), rtol=1e-6, atol=1e-6)
    assert torch.all(out[~reach] == 0)


@pytest.mark.parametrize("density", [0.03, 0.3, 1.0])
@pytest.mark.parametrize("k", [1, 3, 11])
def test_sparse_conv_is_the_papers_equation_for_any_weights(density, k):
    """out = sum(m x w) / sum(m) + b where sum(m) > 0, else 0; mask' = max-pool(m)."""
    torch.manual_seed(1)
    layer = SparseConv2d(2, 3, k)
    mask = random_mask(density)
    x = torch.randn(2, 2, 48, 64) * mask
    out, mask_out = layer(x, mask)
    num = F.conv2d(x * mask, layer.weight, padding=k // 2)
    cnt = F.conv2d(mask, torch.ones(1, 1, k, k), padding=k // 2)
    expect = torch.where(
        cnt > 0, num / cnt.clamp(min=1) + layer.bias.view(1, -1, 1, 1), torch.zeros_like(num)
    )
    torch.testing.assert_close(out, expect, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mask_out, F.max_pool2d(mask, k, 1, k // 2))


def test_all_zero_mask_yields_zero_mask_and_zero_output():
    layer = SparseConv2d(4, 8, 7)
    out, m = layer(torch.zeros(1, 4, 20, 30), torch.zeros(1, 1, 20, 30))
    assert torch.all(m == 0) and torch.all(out == 0)


def test_sparse_conv_half_precision_has_no_nan():
    layer = SparseConv2d(1, 2, 3).half()
    mask = random_mask(0.05).half()
    out, _ = layer(torch.full_like(mask, 3.0), mask)
    assert torch.isfinite(out).all()


def test_gradients_flow_to_every_parameter():
    net = SparseConvNet()
    mask = random_mask(0.1)
    depth = torch.rand_like(mask) * 50 * mask
    out, conf = net(depth, mask)
    (out * conf).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_sparse_conv_net_has_the_papers_shape_and_a_12_px_mask_dilation():
    net = SparseConvNet()
    kernels = [layer.kernel_size for layer in net.layers] + [net.head.kernel_size]
    assert kernels == [11, 7, 5, 3, 3, 1]
    assert sum(p.numel() for p in net.parameters()) == 25585
    mask = torch.zeros(1, 1, 40, 40)
    mask[0, 0, 20, 20] = 1
    depth = mask * 10
    _, conf = net(depth, mask)
    rows = torch.nonzero(conf[0, 0].sum(dim=1)).flatten()
    assert rows.min() == 8 and rows.max() == 32  # 20 -/+ 12


def test_sparse_conv_net_output_does_not_depend_on_values_under_empty_pixels():
    net = SparseConvNet()
    mask = random_mask(0.2)
    depth = torch.rand_like(mask) * 30 * mask
    noisy = depth + (1 - mask) * 1000.0
    a, _ = net(depth, mask)
    b, _ = net(noisy, mask)
    torch.testing.assert_close(a, b)


def test_sparse_downsample_averages_the_valid_pixels_of_each_block():
    x = torch.tensor([[[[2.0, 4.0, 0.0], [0.0, 6.0, 0.0], [1.0, 0.0, 0.0]]]])
    mask = (x > 0).float()
    low, low_mask = sparse_downsample(x, mask)
    torch.testing.assert_close(low, torch.tensor([[[[4.0, 0.0], [1.0, 0.0]]]]))
    assert low_mask.tolist() == [[[[1.0, 0.0], [1.0, 0.0]]]]
    up, up_mask = upsample_to(low, low_mask, (3, 3))
    assert up[0, 0].tolist() == [[4.0, 4.0, 0.0], [4.0, 4.0, 0.0], [1.0, 1.0, 0.0]]
    assert torch.equal(up_mask, (up > 0).float())


@pytest.mark.parametrize("offset", range(8))
def test_multiscale_reach_is_within_its_support_margin_and_confidence_in_unit_range(offset):
    torch.manual_seed(offset)
    net = SparseMultiScaleNet().eval()
    mask = torch.zeros(1, 1, 160, 170)
    mask[0, 0, 70 + offset, 80 + offset] = 1
    with torch.no_grad():
        _, conf = net(mask * 12.0, mask)
    ys, xs = torch.nonzero(conf[0, 0] > 0, as_tuple=True)
    reach = max((ys - 70 - offset).abs().max(), (xs - 80 - offset).abs().max())
    assert 30 < reach <= net.support_margin
    assert conf.min() >= 0 and conf.max() <= 1


def test_multiscale_ignores_values_under_empty_pixels_and_trains_every_parameter():
    net = SparseMultiScaleNet()
    mask = random_mask(0.05, shape=(2, 1, 64, 96))
    depth = torch.rand_like(mask) * 30 * mask
    a, ca = net(depth, mask)
    b, cb = net(depth + (1 - mask) * 1000.0, mask)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ca, cb)
    (a * ca).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_checkpoint_round_trip_keeps_weights_config_and_provenance(tmp_path):
    net = build_model("sparseconv", {"channels": 8, "kernels": [5, 3], "depth_scale": 20.0})
    path = tmp_path / "m.pt"
    save_checkpoint(path, "sparseconv", net, {"command": "test", "seed": 3, "metrics": "{}"})
    loaded, meta = load_checkpoint(path)
    assert meta["config"] == {"channels": 8, "kernels": [5, 3], "depth_scale": 20.0}
    assert meta["provenance"]["seed"] == 3 and meta["model"] == "sparseconv"
    for a, b in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


class _Exploit:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_checkpoints_never_execute_pickled_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": _Exploit()}, str(path))
    with pytest.raises(ValueError) as refused:
        load_checkpoint(path)
    line = str(refused.value)  # one line naming what it refused, nothing of torch's
    assert "\n" not in line and "refused without running them" in line and "print" in line
    assert "weights_only" not in line
    out = capsys.readouterr()
    assert "pickle code ran" not in out.out and out.err == ""
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ValueError):
        load_checkpoint(raw)
    assert "pickle code ran" not in capsys.readouterr().out


def test_missing_truncated_and_mismatched_weights_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    good = tmp_path / "good.pt"
    save_checkpoint(good, "sparseconv", SparseConvNet(), {})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot be read: not a checkpoint, or damaged"):
        load_checkpoint(cut)
    ckpt = torch.load(str(good), weights_only=True)
    ckpt["config"]["channels"] = 4
    torch.save(ckpt, str(tmp_path / "bad.pt"))
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(tmp_path / "bad.pt")


def _checkpoint(tmp_path, name, **changes):
    """A valid zip (torch.save of plain data) made from a real SparseConvNet checkpoint, then
    changed: what a wrong config, a cut state dict or a hostile file would hold."""
    from sparse_depth_node.core.models.checkpoint import FORMAT

    net = SparseConvNet()
    ckpt = {
        "format": FORMAT,
        "model": "sparseconv",
        "config": dict(net.config),
        "state_dict": net.state_dict(),
        "provenance": {},
    }
    ckpt.update(changes)
    path = tmp_path / f"{name}.pt"
    torch.save(ckpt, str(path))
    return path


@pytest.mark.parametrize(
    "name, changes, reason",
    [
        ("unknown_model", {"model": "resnet"}, "unknown model 'resnet'"),
        ("wrong_config_key", {"config": {"layers": 3}}, "cannot be built from its config"),
        ("config_not_a_dict", {"config": [1, 2]}, "no model config"),
        ("no_state", {"state_dict": None}, "no state dict"),
        ("huge", {"config": {"channels": 1_000_000_000}}, "cannot be built from its config"),
        ("large", {"config": {"channels": 100_000}}, "does not fit model 'sparseconv'"),
    ],
)
def test_an_inconsistent_checkpoint_is_refused_with_a_reason(tmp_path, name, changes, reason):
    with pytest.raises(ValueError, match=reason):
        load_checkpoint(_checkpoint(tmp_path, name, **changes))


def test_missing_or_misshapen_tensors_are_refused(tmp_path):
    state = SparseConvNet().state_dict()
    missing = dict(state)
    missing.pop(next(iter(missing)))
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(_checkpoint(tmp_path, "missing", state_dict=missing))
    bent = {k: (v[..., :1] if v.ndim == 4 else v) for k, v in state.items()}
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(_checkpoint(tmp_path, "bent", state_dict=bent))


def _state(change) -> dict:
    """A real SparseConvNet's state dict with ``change(state)`` applied."""
    state = SparseConvNet().state_dict()
    change(state)
    return state


MALFORMED = [  # loadable (plain data), safe, and wrong: what each must be refused for
    (
        "non_tensor",
        {"state_dict": _state(lambda s: s.update({"head.bias": "abc"}))},
        "real floating",
    ),
    (
        "integer",
        {
            "state_dict": _state(
                lambda s: s.update({"head.bias": torch.zeros(1, dtype=torch.int64)})
            )
        },
        "real floating",
    ),
    (
        "complex",
        {
            "state_dict": _state(
                lambda s: s.update({"head.bias": torch.zeros(1, dtype=torch.complex64)})
            )
        },
        "real floating",
    ),
    ("nan", {"state_dict": _state(lambda s: s["head.weight"].fill_(float("nan")))}, "not finite"),
    ("no_layers", {"config": {"kernels": []}}, "does not fit"),
    ("scale_text", {"config": {"depth_scale": "abc"}}, "fails on a test frame: TypeError"),
    ("scale_zero", {"config": {"depth_scale": 0.0}}, "not finite"),
    ("channels_zero", {"config": {"channels": 0}}, "does not fit|cannot be built|fails"),
]


@pytest.mark.parametrize("name, changes, reason", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_but_loadable_checkpoint_is_refused_before_its_first_frame(
    tmp_path, name, changes, reason
):
    """Refused at load (ValueError naming the file and why), so that the node falls back and
    ``complete --weights`` says one line; the network is run on a test frame before use."""
    path = _checkpoint(tmp_path, name, **changes)
    with pytest.raises(ValueError, match=reason) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError):
        DepthCompleter(str(path), "cpu")


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_network_keeps_the_contract_it_states(name):
    """base.DepthNetwork: rebuilt from its config; called as (depth, mask, rgb, fill); no
    output farther than support_margin from a return; nothing changes an output row from
    farther than receptive_radius (given the same prefill); confidence in [0, 1]."""
    torch.manual_seed(0)
    net = build_model(name).eval()
    assert isinstance(net, DepthNetwork)
    rebuilt = build_model(name, net.config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in net.state_dict().items()
    }
    if name == "guided":  # a trained-like head, so that the output is not the fill itself
        torch.nn.init.normal_(net.head[-1].weight, std=0.1)
    g = torch.Generator().manual_seed(1)
    h, w = 400, 256
    mask = torch.zeros(1, 1, h, w)
    mask[..., 180:200, 100:130] = (torch.rand(1, 1, 20, 30, generator=g) < 0.3).float()
    depth = (5 + 20 * torch.rand(1, 1, h, w, generator=g)) * mask
    rgb = torch.rand(1, 3, h, w, generator=g)
    with torch.no_grad():
        fill = net.prefill(depth, mask)
        dense, conf = net(depth, mask, rgb, fill)
        assert dense.shape == conf.shape == (1, 1, h, w)
        assert float(conf.min()) >= 0 and float(conf.max()) <= 1
        m = net.support_margin
        near = F.max_pool2d(mask, 2 * m + 1, stride=1, padding=m) > 0
        assert torch.all(dense[~near] == 0) and torch.all(conf[~near] == 0)
        assert (dense[near] > 0).any()
        # inputs beyond the receptive radius of rows 180..199 changed: those rows are the same
        far = torch.zeros(1, 1, h, w, dtype=torch.bool)
        far[..., 200 + net.receptive_radius :, :] = True
        mask2 = torch.where(far, (torch.rand(1, 1, h, w, generator=g) < 0.3).float(), mask)
        depth2 = torch.where(far, 3 + 40 * torch.rand(1, 1, h, w, generator=g), depth) * mask2
        rgb2 = torch.where(far, torch.rand(1, 3, h, w, generator=g), rgb)
        dense2, conf2 = net(depth2, mask2, rgb2, fill)
    torch.testing.assert_close(dense2[..., 180:200, :], dense[..., 180:200, :], rtol=0, atol=1e-5)
    torch.testing.assert_close(conf2[..., 180:200, :], conf[..., 180:200, :], rtol=0, atol=1e-6)
    assert not torch.equal(dense2, dense)  # the change did reach the rows near it
