"""DepthCompleter: one object that turns a sparse depth image into dense depth + confidence.

Methods: ``guided`` (image-guided: it also takes the camera image), ``multiscale`` and
``sparseconv`` (networks, from the package's shipped weights or a checkpoint path), the
classical fillers of classic.py (IP-Basic in OpenCV, no weights, on the CPU): ``classic`` (fast
fill; it leaves pixels above the LiDAR's top empty), ``classic-full`` (the same, extrapolated to
every pixel as IP-Basic's benchmark setting), ``classic-multiscale`` (the paper's multi-scale
fill), ``classic-refined`` (that fill interpolated between scan lines, the returns kept:
classic.refine), and ``nearest`` (nearest valid pixel within a window). It picks the device,
moves the model once, and runs inference without autograd. Networks run on the window that
holds the LiDAR's support plus their ``support_margin`` (for the sparse networks the result is
the same as on the whole image; ``guided``, whose image stream sees every pixel, is defined on
that window, which holds everything it outputs), optionally at a lower resolution
(``inference_scale``) and in reduced precision (``precision``); see inference.py; ``backend``
chooses what runs a network (backends.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .backends import CudaGraphs, OnnxNetwork, resolve_backend
from .classic import FILLS, fill_tensor
from .inference import autocast_dtype, downsample_sparse, support_window, upsample_dense
from .methods import DEFAULT_METHOD, FILLERS, METHODS, NETWORKS
from .models import DepthNetwork, build_model, load_checkpoint
from .runtime import exact_float32_on_cuda
from .settings import scale_factor

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cpu``, ``cuda``, ``cuda:N`` as given. A CUDA
    device computes float32 as float32 from then on (runtime.exact_float32_on_cuda).

    Raises ValueError for an unknown name or a CUDA device that is not there.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device '{device}'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device '{device}' asked for but CUDA is not available: use device cpu or auto, "
                "or install a PyTorch built with CUDA"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device '{device}' asked for but only {torch.cuda.device_count()} CUDA "
                "devices exist"
            )
        exact_float32_on_cuda()
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device '{device}' (auto, cpu, cuda, cuda:N)")
    return dev


def default_weights(name: str) -> Path:
    """Path of the shipped weights of network ``name`` (may not exist)."""
    return WEIGHTS_DIR / f"{name}.pt"


def nearest_fill(depth: torch.Tensor, mask: torch.Tensor, radius: int = 12) -> torch.Tensor:
    """Each empty pixel within ``radius`` px of a valid one takes the depth of the nearest.

    Grows the filled region one pixel (8-neighbourhood) at a time, so the distance is the
    Chebyshev distance; among equally near candidates the smaller depth wins.
    """
    far = torch.finfo(torch.float32).max
    filled = torch.where(mask > 0, depth, torch.full_like(depth, far))
    for _ in range(radius):
        grown = -F.max_pool2d(-filled, 3, stride=1, padding=1)
        filled = torch.where(filled < far, filled, grown)
    return torch.where(filled < far, filled, torch.zeros_like(filled))


def image_tensor(rgb: "torch.Tensor | np.ndarray") -> torch.Tensor:
    """An (H, W, 3) uint8 RGB image (array or tensor) as the (1, 3, H, W) float tensor in
    [0, 1] that ``DepthCompleter.complete`` takes, on the image's device."""
    t = rgb if isinstance(rgb, torch.Tensor) else torch.from_numpy(np.array(rgb))
    return t.permute(2, 0, 1)[None].to(torch.float32).div_(255.0)


BAND_PIXELS = 1_500_000  # a window larger than this runs in bands (peak memory; KITTI: one band)


@dataclass(frozen=True)
class CompleterOptions:
    """Everything that makes a completer, in plain values: what rebuilds it, in another
    process too (``DepthCompleter(**asdict(options))``). ``method``: a name in METHODS or a
    checkpoint path; ``device``: auto, cpu, cuda, cuda:N; ``allow_untrained``: a network
    without shipped weights runs with its random initialisation; ``max_depth``: metres (the
    classical fills' inversion); ``inference_scale``: 1, 1/2, 1/3, ... of the resolution;
    ``precision``: fp32, bf16, fp16 (CUDA), the network's autocast; ``channels_last``: the
    network's memory format (the same result, faster); ``backend``: what runs a network
    (core.backends; a classical filler ignores it); ``judge``: a classical fill's confidence
    from the shipped judge of that fill (weights/judge.pt, core.models.judge) where there is
    one, else 1 wherever it fills (a mask, not a probability). Adding an option: a field here
    and the code that reads it."""

    method: str = DEFAULT_METHOD
    device: str = "auto"
    allow_untrained: bool = False
    max_depth: float = 100.0
    inference_scale: float = 1.0
    precision: str = "fp32"
    channels_last: bool = True
    backend: str = "torch"
    judge: bool = True

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], **overrides: Any) -> "CompleterOptions":
        """The options the settings (core.settings) ask for: ``model``, ``device``, ``backend``,
        ``inference_scale``, ``precision``, ``max_depth``; keyword ``overrides`` win."""
        settings = dict(
            method=values["model"],
            device=values["device"],
            backend=values["backend"],
            inference_scale=float(values["inference_scale"]),
            precision=values["precision"],
            max_depth=float(values["max_depth"]),
        )
        return cls(**{**settings, **overrides})


def load_network(
    options: CompleterOptions,
) -> tuple["DepthNetwork | None", dict[str, Any], bool]:
    """The network ``options.method`` names, its checkpoint's metadata, and whether it is
    trained: a checkpoint path's, a network's shipped weights (or, with ``allow_untrained``,
    its random initialisation), a classical filler's judge (``judged_fill``) or (None, {},
    True) for a classical filler without one. ValueError when the weights cannot be used
    (checkpoint.load_checkpoint)."""
    if options.method not in METHODS:  # a checkpoint path
        return (*load_checkpoint(Path(options.method)), True)
    if options.method not in NETWORKS:
        return (*judged_fill(options), True)
    path = default_weights(options.method)
    if path.is_file():
        return (*load_checkpoint(path), True)
    if options.allow_untrained:
        note = {"note": "untrained: random initialisation"}
        return build_model(options.method), {"model": options.method, "provenance": note}, False
    raise ValueError(
        f"no weights for '{options.method}' at {path}; train them or pass allow_untrained"
    )


def judged_fill(options: CompleterOptions) -> tuple["DepthNetwork | None", dict[str, Any]]:
    """The shipped judge of the classical fill ``options.method`` (weights/judge.pt, when it
    judges that fill and ``options.judge``) and its metadata, or (None, {})."""
    path = default_weights("judge")
    if not options.judge or not path.is_file():
        return None, {}
    judge, meta = load_checkpoint(path)
    return (judge, meta) if judge.config.get("prefill") == options.method else (None, {})


class DepthCompleter:
    """Completes sparse depth (1, 1, H, W) metres + mask into dense depth and confidence.

    Made from ``CompleterOptions`` (``method`` and ``device``, and the other options by
    keyword; ``weights``, a checkpoint path, stands for ``method``). ``model`` passes a network
    in hand (named ``method``) instead of loading one. ``trained`` says whether a network runs
    with trained weights; ``backend_reason`` what runs the network and why. BackendUnavailable
    (a ValueError) names the install a backend lacks.
    """

    def __init__(
        self,
        method: str = DEFAULT_METHOD,
        device: str = "auto",
        *,
        weights: "str | Path | None" = None,
        model: "DepthNetwork | None" = None,
        **options: Any,
    ) -> None:
        method = method if weights is None else str(weights)
        self.device = resolve_device(device)
        self.options = CompleterOptions(method=method, device=str(self.device), **options)
        self.max_depth = self.options.max_depth
        self.factor = scale_factor(self.options.inference_scale)
        self.precision = self.options.precision
        self.autocast = autocast_dtype(self.precision, self.device)
        # a network in hand (training's validation) is used as it is
        self.model, self.meta, self.trained = (
            (model, {}, True) if model is not None else load_network(self.options)
        )
        self.method = self.meta.get("model", method) if method not in METHODS else method
        if self.model is not None:
            layout = torch.channels_last if self.options.channels_last else torch.contiguous_format
            self.model.to(self.device).eval()
            self.model.to(memory_format=layout)  # type: ignore[call-overload]  # nn.Module.to takes it
        self.backend, self.backend_reason, self.runner = self._runner()

    def _runner(self) -> tuple[str, str, Any]:
        """What runs the network: itself (on CUDA replayed from CUDA graphs), or its export in
        ONNX Runtime; the backend's name and why (a classical filler imports neither ONNX
        Runtime nor the exporter)."""
        if self.model is None:
            return "torch", "a classical filler: OpenCV or PyTorch", None
        backend, reason = resolve_backend(
            self.options.backend, self.device, self.precision, self.model.onnx_on_cpu
        )
        if backend != "torch":
            return backend, reason, OnnxNetwork(self.model, backend, self.device, self.precision)
        if self.device.type == "cuda":
            return backend, reason + "; replayed from CUDA graphs", CudaGraphs(self.model)
        return backend, reason, self.model

    def replace(self, **changes: Any) -> "DepthCompleter":
        """This completer with some of its options changed (``device``, ``precision``,
        ``inference_scale``, ``max_depth``, ``channels_last``, ``backend``): the same network,
        checkpoint metadata and training state. The network object is shared and moved to the
        new device and memory format (this completer's moves with it: the move to the CPU after
        a CUDA out-of-memory wants exactly that); ``model=`` puts another network in its place (a
        copy, a compiled one)."""
        model = changes.pop("model", self.model)
        if {"method", "allow_untrained"} & set(changes):
            raise ValueError(f"replace() changes the options but the method, got {changes}")
        options = dataclasses.replace(self.options, **changes)  # TypeError: an unknown option
        kept = {k: v for k, v in asdict(options).items() if k not in ("method", "allow_untrained")}
        new = DepthCompleter(self.method, model=model, **kept)
        new.meta, new.trained = self.meta, self.trained
        new.options = dataclasses.replace(options, device=str(new.device))
        return new

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], **overrides: Any) -> "DepthCompleter":
        """The completer the settings (core.settings) ask for (CompleterOptions.from_settings);
        keyword ``overrides`` win."""
        return cls(**asdict(CompleterOptions.from_settings(values, **overrides)))

    @property
    def description(self) -> str:
        """One line naming the method, the weights' state, the device and the backend."""
        state = "" if self.model is None else f" ({self.training_state})"
        if self.model is not None and self.method in FILLERS:
            state = f" (confidence by its judge, {self.training_state})"
        network = self.model is not None
        extras = (
            ([self.precision] if network and self.precision != "fp32" else [])
            + ([self.backend] if self.backend != "torch" else [])
            + ([f"at 1/{self.factor} resolution"] if self.factor > 1 else [])
        )
        return f"{self.method}{state} on {self.device}" + "".join(f", {e}" for e in extras)

    @property
    def training_state(self) -> str:
        """ "trained" (with the steps and validation coverage its checkpoint records), or why not:
        untrained weights, or a checkpoint whose recorded validation output covers almost no
        target pixel (a few steps of training)."""
        if not self.trained:
            return "UNTRAINED weights"
        prov = self.meta.get("provenance", {})
        try:
            coverage = float(json.loads(prov["metrics"])["model"]["coverage"])
        except (KeyError, TypeError, ValueError):
            return "trained"
        steps = f"{prov['steps']} steps, " if "steps" in prov else ""
        if "kept_step" in prov and prov["kept_step"] != prov.get("steps"):
            steps = f"{prov['steps']} steps, weights of step {prov['kept_step']}, "
        if coverage < 0.5:
            return (
                f"BARELY TRAINED: {steps}its output covered {100 * coverage:.0f} % of validation"
            )
        return f"trained, {steps}{100 * coverage:.0f} % validation coverage"

    @property
    def needs_image(self) -> bool:
        """Whether the method completes from the camera image as well (``guided``)."""
        return self.model is not None and self.model.needs_image

    @torch.inference_mode()
    def complete(
        self, depth: torch.Tensor, mask: torch.Tensor, rgb: "torch.Tensor | None" = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense depth (1, 1, H, W) metres, 0 = no estimate, and confidence in [0, 1].

        ``rgb``: the camera image (1, 3, H, W) in [0, 1] (see ``image_tensor``); required by a
        method that ``needs_image``, ignored by the others. ValueError when it is missing or
        its size is not the depth's."""
        depth = depth.to(self.device, torch.float32)
        mask = mask.to(self.device, torch.float32)
        size = (depth.shape[-2], depth.shape[-1])
        if self.needs_image:
            if rgb is None or tuple(rgb.shape[-2:]) != size:
                got = "none" if rgb is None else f"{tuple(rgb.shape[-2:])}"
                raise ValueError(
                    f"model '{self.method}' needs the camera image of size {size}, got {got}"
                )
            rgb = rgb.to(self.device, torch.float32)
            if self.factor > 1:
                low = tuple(-(-s // self.factor) for s in size)
                rgb = F.interpolate(rgb, size=low, mode="area")
        depth, mask = downsample_sparse(depth, mask, self.factor)
        if self.model is not None:
            dense, conf = self._run_network(depth, mask, rgb if self.needs_image else None)
        elif self.method in FILLS:
            dense = fill_tensor(self.method, depth * mask, self.max_depth)
            conf = (dense > 0).to(torch.float32)
        else:
            dense = nearest_fill(depth, mask)
            conf = (dense > 0).to(torch.float32)
        return upsample_dense(dense, conf, size)

    def _run_network(
        self, depth: torch.Tensor, mask: torch.Tensor, rgb: "torch.Tensor | None"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network on the support window of ``mask`` (all of it for a network whose
        ``support_margin`` is None), in bands of rows when the window exceeds BAND_PIXELS,
        pasted into zeros."""
        dense, conf = torch.zeros_like(depth), torch.zeros_like(mask)
        net = self.model
        assert net is not None  # complete() runs a network only when there is one
        margin, multiple = net.support_margin, net.support_multiple
        h, w = depth.shape[-2:]
        y0, y1, x0, x1 = (0, h, 0, w) if margin is None else support_window(mask, margin, multiple)
        if y1 <= y0:
            return dense, conf
        # Large windows run in bands of rows, each with the network's receptive radius of input
        # rows on both sides, rounded to the pooling grid:
        # exact, since no output depends on inputs farther away, and the feature maps of one
        # band, not of the whole window, are alive. A network that corrects a classical fill
        # gets the fill of the whole window, cropped to each band (the fill is not local).
        band, halo, fill = y1 - y0, 0, None
        if margin is not None and (y1 - y0) * (x1 - x0) > BAND_PIXELS:
            band = max(multiple, BAND_PIXELS // (x1 - x0) // multiple * multiple)
            halo = -(-(net.receptive_radius or 0) // multiple) * multiple
            fill = net.prefill(depth[..., y0:y1, x0:x1], mask[..., y0:y1, x0:x1])
        for a in range(y0, y1, band):
            b = min(a + band, y1)
            ya, yb = max(y0, a - halo), min(y1, b + halo)
            with torch.autocast(
                self.device.type,
                dtype=self.autocast or torch.float32,
                enabled=self.autocast is not None and self.backend == "torch",
                cache_enabled=False,  # a CUDA graph must not capture cached weight casts
            ):
                d, c = self.runner(
                    depth[..., ya:yb, x0:x1],
                    mask[..., ya:yb, x0:x1],
                    None if rgb is None else rgb[..., ya:yb, x0:x1],
                    None if fill is None else fill[..., ya - y0 : yb - y0, :],
                )
            d, c = d[..., a - ya : b - ya, :].float(), c[..., a - ya : b - ya, :].float()
            dense[..., a:b, x0:x1] = torch.where(c > 0, d.clamp(min=0.0), torch.zeros_like(c))
            conf[..., a:b, x0:x1] = c
        return dense, conf
