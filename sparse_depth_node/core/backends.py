"""Where a completion network runs: eager torch, or its exact ONNX export in ONNX Runtime (CPU or
CUDA provider) or TensorRT (ONNX Runtime's TensorRT provider, on a CUDA device).

The exported graph is the network's ``forward`` over (depth, mask[, rgb][, fill]), all
(1, C, H, W) float32 with dynamic H and W (``graph_inputs``), returning (dense, confidence)
(1, 1, H, W): the contract of models/base.py. A network's classical prefill (OpenCV morphology,
which ONNX does not express: median filters, a column scan) is a graph input, computed on the
CPU as the torch path computes it. The completer keeps the support window, the bands and the
pasting in torch for every backend, so a backend replaces the network's arithmetic only.

``onnxruntime`` and ``tensorrt`` need the optional packages named in ``INSTALL``; exporting
takes about 10 s per network on a CPU, so the export is kept in a cache folder keyed by the
network's weights (``export_cache``) and made once.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import BackendUnavailable
from .models import DepthNetwork
from .models.base import probe_frame
from .runtime import signals_noted
from .settings import BACKENDS

# what each backend needs beside torch, as the one line that says how to get it
INSTALL = {
    "onnxruntime": ("onnxruntime", "pip install onnxruntime onnx onnxscript"),
    "tensorrt": ("onnxruntime", "pip install onnxruntime-gpu tensorrt onnx onnxscript"),
}
EXPORT_MODULES = ("onnx", "onnxscript")  # torch.onnx.export's own needs
OUTPUTS = ("dense", "confidence")
OPSET = 18
# TensorRT builds one engine for a range of window sizes (px, height x width): the support
# windows of a rig change from frame to frame by a few rows
TRT_PROFILE = {"min": (16, 16), "opt": (384, 1248), "max": (2176, 3840)}


def graph_inputs(net: DepthNetwork) -> tuple[str, ...]:
    """The exported graph's inputs, in order: depth and mask, the image when the network
    ``needs_image``, the classical fill when it ``has_prefill``."""
    return (
        ("depth", "mask")
        + (("rgb",) if net.needs_image else ())
        + (("fill",) if net.has_prefill else ())
    )


class GraphForward(nn.Module):
    """``net``'s forward over the graph's inputs, positionally (``graph_inputs``)."""

    def __init__(self, net: DepthNetwork) -> None:
        super().__init__()
        self.net, self.names = net, graph_inputs(net)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        given = dict(zip(self.names, inputs))
        out: tuple[torch.Tensor, torch.Tensor] = self.net(
            given["depth"], given["mask"], given.get("rgb"), given.get("fill")
        )
        return out


def example_inputs(net: DepthNetwork) -> tuple[torch.Tensor, ...]:
    """Inputs to trace the export with: base.probe_frame (its size is arbitrary, the graph's H
    and W are dynamic; odd, so that no size-dependent padding is traced as zero) and the
    network's own prefill."""
    frame = probe_frame()
    fill = net.prefill(frame["depth"], frame["mask"]) if net.has_prefill else None
    named = {**frame, **({"fill": fill} if fill is not None else {})}
    return tuple(named[n] for n in graph_inputs(net))


class NetworkRunner:
    """Runs ``net``'s forward in its place, called as the network is: ``(depth, mask, rgb,
    fill) -> (dense, confidence)``, (B, C, H, W) tensors. When the network corrects a classical
    prefill and no ``fill`` is given, the network's own prefill runs eagerly first; ``run``
    gets the four inputs (None where the network takes none)."""

    def __init__(self, net: DepthNetwork) -> None:
        self.net = net

    def __call__(
        self,
        depth: torch.Tensor,
        mask: torch.Tensor,
        rgb: "torch.Tensor | None" = None,
        fill: "torch.Tensor | None" = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if fill is None and self.net.has_prefill:
            fill = self.net.prefill(depth, mask)
        return self.run([depth, mask, rgb, fill])

    def run(self, inputs: "list[torch.Tensor | None]") -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class CudaGraphs(NetworkRunner):
    """``net`` on CUDA replayed from CUDA graphs: one graph per set of input shapes (a rig's
    support windows take a few), captured at its first call, holding the same kernels as the
    eager network, launched at once; eager PyTorch spends most of a small network's time on a
    GPU launching them one by one. The classical prefill, which waits on the device, runs
    eagerly before the graph. The last ``keep`` shapes' graphs are kept, sharing one memory
    pool; a shape whose capture fails runs eagerly (said once). Outputs are the graph's own
    buffers: valid until the next call. A completer's precision is fixed, so the autocast state
    of the calls (which the graph records) is too."""

    def __init__(self, net: DepthNetwork, keep: int = 8) -> None:
        super().__init__(net)
        self.keep = keep
        self.graphs: dict[tuple[Any, ...], tuple[list[Any], Any, Any]] = {}
        self.eager: set[tuple[Any, ...]] = set()
        self.pool: Any = None

    def run(self, inputs: "list[torch.Tensor | None]") -> tuple[torch.Tensor, torch.Tensor]:
        key = tuple(None if x is None else (tuple(x.shape), x.dtype) for x in inputs)
        if key in self.eager:
            return self.eager_run(inputs)
        if key not in self.graphs:
            try:
                self.graphs[key] = self._capture(inputs)
            except RuntimeError as exc:
                self.eager.add(key)
                logging.getLogger(__name__).warning(
                    "CUDA graph capture failed for inputs %s (%s): running eagerly", key, exc
                )
                return self.eager_run(inputs)
            while len(self.graphs) > self.keep:
                self.graphs.pop(next(iter(self.graphs)))
        static, out, graph = self.graphs.pop(key)
        self.graphs[key] = (static, out, graph)  # most recently used last
        for s, x in zip(static, inputs):
            if x is not None:
                s.copy_(x)
        graph.replay()
        dense, confidence = out
        return dense, confidence

    def eager_run(self, inputs: "list[torch.Tensor | None]") -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.net(*inputs)
        return out

    def _capture(self, inputs: "list[torch.Tensor | None]") -> tuple[list[Any], Any, Any]:
        static = [None if x is None else x.clone() for x in inputs]
        side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture: kernels chosen, memory held
            for _ in range(2):
                self.net(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = self.net(*static)
        self.pool = graph.pool()
        return static, out, graph


def installed(module: str) -> bool:
    """Whether ``module`` imports here."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def missing_export_modules() -> list[str]:
    return [m for m in EXPORT_MODULES if not installed(m)]


def export_onnx(net: DepthNetwork, path: "str | Path") -> Path:
    """``net`` (on the CPU, fp32) as an ONNX graph at ``path``, dynamic in H and W, checked by
    ``onnx.checker``. BackendUnavailable when the exporter's packages are missing."""
    missing = missing_export_modules()
    if missing:
        raise BackendUnavailable(
            f"exporting to ONNX needs {', '.join(missing)}: pip install onnx onnxscript"
        )
    import onnx
    from torch.export import Dim

    graph = GraphForward(
        copy.deepcopy(net).to("cpu", torch.float32).to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    ).eval()
    inputs = example_inputs(graph.net)
    dims = tuple({2: Dim.AUTO, 3: Dim.AUTO} for _ in inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # torch's loggers list the ops it skips and the exceptions it passes on: the caller says
    # why in one line
    quiet = logging.getLogger("torch")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), torch.no_grad(), signals_noted() as signals:
            warnings.simplefilter("ignore")
            try:
                program = torch.onnx.export(
                    graph,
                    inputs,
                    input_names=list(graph.names),
                    output_names=list(OUTPUTS),
                    dynamic_shapes=(dims,),
                    opset_version=OPSET,
                    dynamo=True,
                    verbose=False,
                )
            except Exception:
                if signals:  # a Ctrl-C the exporter turned into an error of its own
                    raise KeyboardInterrupt(signals[0]) from None
                raise
    finally:
        quiet.setLevel(level)
    if program is None:
        raise BackendUnavailable("torch.onnx.export gave no program")
    program.save(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def network_digest(net: DepthNetwork) -> str:
    """A digest of what the export depends on: the class, its config, every weight, torch."""
    h = hashlib.sha256(f"{type(net).__name__}{net.config}{torch.__version__}{OPSET}".encode())
    for name, value in net.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where exports and TensorRT engines are kept: $SPARSE_DEPTH_CACHE, else
    $XDG_CACHE_HOME/sparse_depth_node, else ~/.cache/sparse_depth_node."""
    if os.environ.get("SPARSE_DEPTH_CACHE"):
        return Path(os.environ["SPARSE_DEPTH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sparse_depth_node"


def export_cache(net: DepthNetwork, announce: bool = False) -> Path:
    """The network's ONNX export in the cache (made now when it is not there, saying so on
    stderr when ``announce``: it takes seconds)."""
    path = cache_dir() / "onnx" / f"{type(net).__name__}-{network_digest(net)}.onnx"
    if not path.is_file():
        if announce:
            print(
                f"sparse-depth: exporting {type(net).__name__} to ONNX once (10-20 s on a CPU), "
                f"kept in {path.parent}",
                file=sys.stderr,
                flush=True,
            )
        partial = path.with_suffix(f".{os.getpid()}.partial")
        try:
            export_onnx(net, partial)
        except BaseException:  # a failure or a Ctrl-C: no half-written file stays behind
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)  # atomic: a node started beside this one never reads half a file
    return path


def backend_problem(backend: str, device: torch.device, precision: str) -> "str | None":
    """Why ``backend`` cannot run here at ``precision`` on ``device`` (one line naming the fix),
    or None."""
    if backend not in BACKENDS:
        return f"backend must be one of {', '.join(BACKENDS)}, got '{backend}'"
    if backend == "torch":
        return None
    module, install = INSTALL[backend]
    if not installed(module) or missing_export_modules():
        return f"backend {backend} is not installed: {install}"
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if backend == "tensorrt":
        if device.type != "cuda":
            return (
                "backend tensorrt runs on a CUDA device: set device cuda, or backend onnxruntime"
            )
        if "TensorrtExecutionProvider" not in providers:
            return f"backend tensorrt: this ONNX Runtime has no TensorRT provider: {install}"
        if precision == "bf16":
            return "backend tensorrt runs fp32 or fp16, not bf16"
        return None
    if device.type == "cuda" and "CUDAExecutionProvider" not in providers:
        return "backend onnxruntime on CUDA needs its CUDA provider: pip install onnxruntime-gpu"
    if precision != "fp32":
        return (
            f"backend onnxruntime runs fp32 only, not {precision}: use backend torch, or "
            "tensorrt for fp16"
        )
    return None


def largest_difference(
    net: DepthNetwork, runner: "OnnxNetwork", frames: list[tuple[torch.Tensor, ...]]
) -> float:
    """The largest |depth| difference (m) between ``net`` in eager torch and ``runner`` over
    every pixel of ``frames`` (depth, mask, rgb), each at its full size."""
    worst = 0.0
    with torch.inference_mode():
        for depth, mask, rgb in frames:
            image = rgb if net.needs_image else None
            a, b = net(depth, mask, image)[0], runner(depth, mask, image)[0]
            worst = max(worst, float((a - b).abs().max()))
    return worst


def resolve_backend(
    backend: str, device: torch.device, precision: str, onnx_on_cpu: bool = True
) -> tuple[str, str]:
    """The backend that runs for ``backend`` ("auto" or one of BACKENDS), and why: ``auto`` is
    onnxruntime on the CPU at fp32 when it can run there (exact and faster: docs/SPEED.md) for
    a network it runs faster (``onnx_on_cpu``), else torch. ValueError for an unknown name."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise ValueError(
                f"backend must be auto or one of {', '.join(BACKENDS)}, got '{backend}'"
            )
        return backend, "as configured"
    if device.type != "cpu":
        return "torch", "auto: torch on CUDA (backend tensorrt or onnxruntime to choose them)"
    if not onnx_on_cpu:
        return "torch", "auto: torch runs this network faster on the CPU"
    reason = backend_problem("onnxruntime", device, precision)
    return ("torch", f"auto: {reason}") if reason else ("onnxruntime", "auto: the CPU default")


def session_providers(
    backend: str, device: torch.device, precision: str, inputs: tuple[str, ...]
) -> list[Any]:
    """ONNX Runtime's providers, with their options, for ``backend`` on ``device`` and a graph
    with ``inputs`` (graph_inputs: TensorRT's shape profile names each)."""
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    index = device.index or 0
    cuda = ("CUDAExecutionProvider", {"device_id": index})
    if backend == "onnxruntime":
        return [cuda, "CPUExecutionProvider"]

    def shape(key: str) -> str:
        h, w = TRT_PROFILE[key]
        return ",".join(f"{n}:1x{3 if n == 'rgb' else 1}x{h}x{w}" for n in inputs)

    trt = {
        "device_id": index,
        "trt_fp16_enable": precision == "fp16",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir() / "tensorrt"),
        "trt_profile_min_shapes": shape("min"),
        "trt_profile_opt_shapes": shape("opt"),
        "trt_profile_max_shapes": shape("max"),
    }
    return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]


class OnnxNetwork(NetworkRunner):
    """A network run by ONNX Runtime from its export, tensors on ``device``; the prefill is
    the torch network's. ``path``: an export of ``net`` to run (default: the cache's, made when
    missing)."""

    def __init__(
        self,
        net: DepthNetwork,
        backend: str,
        device: torch.device,
        precision: str = "fp32",
        path: "str | Path | None" = None,
    ) -> None:
        reason = backend_problem(backend, device, precision)
        if reason:
            raise BackendUnavailable(reason)
        import onnxruntime as ort

        super().__init__(net)
        self.device, self.names = device, graph_inputs(net)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        # waiting threads sleep (as torch's and OpenCV's do with the node's settings)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            path = export_cache(net, announce=True) if path is None else path
            self.session = ort.InferenceSession(
                str(path),
                options,
                providers=session_providers(backend, device, precision, self.names),
            )
        except BackendUnavailable:
            raise
        except Exception as exc:  # an exporter or a runtime that cannot take this network
            raise BackendUnavailable(
                f"backend {backend} cannot run this network: {type(exc).__name__}: {exc}"
            ) from exc
        self.providers = self.session.get_providers()

    def run(self, inputs: "list[torch.Tensor | None]") -> tuple[torch.Tensor, torch.Tensor]:
        given = dict(zip(("depth", "mask", "rgb", "fill"), inputs))
        feeds = {}
        for n in self.names:
            tensor = given[n]
            if tensor is None:
                raise ValueError(f"the exported network needs its input '{n}'")
            feeds[n] = tensor.to(torch.float32).contiguous()
        if self.device.type == "cuda":
            return self._run_on_device(feeds)
        out = self.session.run(list(OUTPUTS), {n: t.numpy() for n, t in feeds.items()})
        return torch.from_numpy(out[0]), torch.from_numpy(out[1])

    def _run_on_device(self, feeds: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and outputs stay in CUDA memory (bound by pointer), on torch's stream order."""
        index = self.device.index or 0
        torch.cuda.current_stream(self.device).synchronize()
        binding = self.session.io_binding()
        for name, t in feeds.items():
            binding.bind_input(name, "cuda", index, np.float32, tuple(t.shape), t.data_ptr())
        b, _, h, w = feeds["depth"].shape
        outputs = [torch.empty((b, 1, h, w), device=self.device) for _ in OUTPUTS]
        for name, t in zip(OUTPUTS, outputs):
            binding.bind_output(name, "cuda", index, np.float32, tuple(t.shape), t.data_ptr())
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return outputs[0], outputs[1]
