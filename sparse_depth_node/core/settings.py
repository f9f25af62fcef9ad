"""The one parameter schema: every setting of the node, with its default, description, range
and whether it can change at run time. The ROS layer declares the node's parameters from it,
the pipeline, the completer and the synchroniser read their settings from it, and the CLI
takes its defaults from it. No torch, no rclpy.

Adding a per-frame setting: one ``Setting`` here, and the code that reads it
(``values["name"]`` in the pipeline or the frame path).
"""

from __future__ import annotations

import array
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .methods import DEFAULT_METHOD, METHODS

PRECISIONS = ("fp32", "bf16", "fp16")
BACKENDS = ("torch", "onnxruntime", "tensorrt")  # what can run a network (core.backends)
INPUT_QOS = ("auto", "reliable", "best_effort")
IMAGE_TRANSPORTS = ("raw", "compressed")
TIME_UNITS = ("auto", "s", "ms", "us", "ns")
UNSET = float("nan")  # a calibration value nobody gave: never guessed


@dataclass(frozen=True)
class Setting:
    """One setting. ``bounds`` (lo, hi) for numbers, inclusive; ``choices`` for strings;
    ``read_only``: fixed after start-up (the node refuses changes)."""

    name: str
    default: Any
    description: str
    bounds: "tuple[float, float] | None" = None
    choices: "tuple[str, ...] | None" = None
    read_only: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "model",
        DEFAULT_METHOD,
        ", ".join(METHODS) + ", or a checkpoint path",
        read_only=True,
    ),
    Setting("device", "auto", "auto, cpu, cuda or cuda:N", read_only=True),
    Setting(
        "inference_scale",
        1.0,
        "complete at this fraction of the image resolution (1, 0.5, 0.25, ...)",
        (0.05, 1.0),
        read_only=True,
    ),
    Setting(
        "precision",
        "fp32",
        "network precision: fp32, bf16 (CPUs with AVX512-BF16/AMX, CUDA), fp16 (CUDA)",
        choices=PRECISIONS,
        read_only=True,
    ),
    Setting(
        "backend",
        "auto",
        "what runs the network: auto (onnxruntime on the CPU at fp32 when it is installed, "
        "else torch), torch, onnxruntime (the network's exact ONNX export; CPU, or CUDA with "
        "onnxruntime-gpu) or tensorrt (ONNX Runtime's TensorRT provider: CUDA, fp32 or fp16); "
        "the classical fillers run in OpenCV on the CPU and in PyTorch on a GPU whatever it says",
        choices=("auto", *BACKENDS),
        read_only=True,
    ),
    Setting(
        "threads",
        0,
        "CPU threads for torch and OpenCV (0: all cores but one, left to the drivers and DDS; "
        "waiting threads sleep instead of spinning, so a busy neighbour process does not "
        "stall the pipeline)",
        (0, 256),
        read_only=True,
    ),
    Setting(
        "strict",
        False,
        "fail instead of falling back when the model or device is unavailable",
        read_only=True,
    ),
    Setting("min_depth", 0.5, "nearest depth kept, metres", (0.01, 1000.0)),
    Setting("max_depth", 100.0, "farthest depth kept, metres", (0.1, 1000.0)),
    Setting(
        "confidence_threshold",
        0.8,
        "pixels whose confidence is lower get no estimate (NaN), but for those holding a LiDAR "
        "return; 0: every pixel the model fills. The default's confidence is the probability "
        "that its depth is within 5 % of the truth: 0.8 keeps about 90 % of a KITTI frame's "
        "filled pixels, their RMSE 0.5 m against 3.8 m for those dropped (docs/MODELS.md)",
        (0.0, 1.0),
    ),
    Setting("cloud_stride", 1, "keep every n-th row and column in depth/points", (1, 64)),
    Setting(
        "cloud_voxel",
        0.0,
        "depth/points keeps one point per cube of this size, m (the mean of its points): what a "
        "planner's occupancy grid of that cell size or coarser sees, with far fewer points "
        "(0: one point per pixel)",
        (0.0, 10.0),
    ),
    Setting("colorize_cloud", True, "add an rgb field (offset 16, point_step 32) to depth/points"),
    Setting("organized_cloud", False, "publish depth/points as an H x W cloud with NaN holes"),
    Setting(
        "sync_slop",
        0.05,
        "largest stamp difference within a cloud/image/camera_info set, s",
        (0.0, 1.0),
    ),
    Setting(
        "queue_size",
        10,
        "messages kept per input while pairing (queue_size / rate: how far one input may lag)",
        (1, 100),
        read_only=True,
    ),
    Setting(
        "input_qos",
        "auto",
        "reliability of the three input subscriptions: auto (reliable while every publisher "
        "of the topic offers reliable, else best effort; matched again as publishers come "
        "and go), reliable or best_effort",
        choices=INPUT_QOS,
        read_only=True,
    ),
    Setting(
        "image_transport",
        "raw",
        "camera image transport: raw (sensor_msgs/Image on camera/image) or compressed "
        "(sensor_msgs/CompressedImage, JPEG or PNG, on camera/image/compressed)",
        choices=IMAGE_TRANSPORTS,
        read_only=True,
    ),
    Setting(
        "max_points",
        4_000_000,
        "the most points an input cloud may hold; a larger one is refused, counted "
        "(rejected_input) and said before it is decoded. With max_image_pixels it bounds the "
        "node's memory (docs/RELIABILITY.md)",
        (1, 50_000_000),
        read_only=True,
    ),
    Setting(
        "max_image_pixels",
        3840 * 2160,
        "the most pixels (width x height) an image, a camera_info or warmup_size may have; a "
        "larger message is refused, counted (rejected_input) and said before anything is "
        "allocated for it, and no side may exceed 16384 px",
        (1, 16384 * 16384),
        read_only=True,
    ),
    Setting(
        "warmup_size",
        [0, 0],
        "image size [width, height], px, at which the network is warmed up before the node "
        "says ready, so that the first frame costs what every frame costs ([0, 0]: at the "
        "first camera_info's size, when it arrives)",
        read_only=True,
    ),
    Setting(
        "image_rectified",
        True,
        "the image is rectified: points go through camera_info's P (true), or it is the raw "
        "image: through K and D with its distortion_model (plumb_bob, rational_polynomial, "
        "equidistant), and depth/points back through the lens",
        read_only=True,
    ),
    Setting(
        "time_offset.image",
        0.0,
        "added to image and camera_info stamps before pairing, s",
        (-1.0, 1.0),
    ),
    Setting("time_offset.lidar", 0.0, "added to cloud stamps before pairing, s", (-1.0, 1.0)),
    Setting(
        "use_tf",
        True,
        "look T_camera<-lidar up in TF (/tf and /tf_static) when tf2_msgs is installed",
        read_only=True,
    ),
    Setting(
        "fixed_frame_id",
        "",
        "a frame fixed in the world (odom): each LiDAR point is carried through it from its "
        "firing time to the camera's instant, by the TF poses of the sweep (motion compensation; "
        "empty: the cloud is projected as it is)",
    ),
    Setting(
        "point_time.field",
        "",
        "the cloud's per-point time field (empty: found by name: time, t, timestamp, "
        "offset_time; without one the whole cloud moves from its stamp)",
    ),
    Setting(
        "point_time.unit",
        "auto",
        "unit of the per-point times (auto: near the stamp for absolute times, else s for a "
        "float field and ns for an integer one)",
        choices=TIME_UNITS,
    ),
    Setting(
        "point_time.reference",
        "auto",
        "what the per-point times count from: relative (the cloud's stamp), absolute (the "
        "clock of the stamps) or auto (absolute when they lie within 1 s of the stamp)",
        choices=("auto", "relative", "absolute"),
    ),
    Setting(
        "wait_for_transform",
        0.1,
        "how long a set waits for TF to reach the last time it needs, s",
        (0.0, 5.0),
    ),
    Setting(
        "extrinsic.translation",
        [UNSET] * 3,
        "LiDAR -> camera optical frame translation [x, y, z], m, used without TF "
        "(default: not set, NaN; never guessed)",
    ),
    Setting(
        "extrinsic.rotation",
        [UNSET] * 4,
        "LiDAR -> camera optical frame rotation [x, y, z, w], used without TF "
        "(default: not set, NaN; never guessed)",
    ),
    Setting("publish_cloud", True, "publish depth/points"),
    Setting("publish_confidence", False, "publish depth/confidence (32FC1 in [0, 1])"),
    Setting("publish_sparse", False, "publish depth/sparse (32FC1 projected LiDAR, NaN empty)"),
    Setting("publish_image_raw", False, "publish depth/image_raw (16UC1 mm, 0 invalid)"),
)
BY_NAME = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def scale_factor(inference_scale: float) -> int:
    """The integer downsampling factor of ``inference_scale`` (1, 1/2, 1/3, ...); ValueError
    otherwise."""
    if not 0.0 < inference_scale <= 1.0:
        raise ValueError(f"inference_scale must be in (0, 1], got {inference_scale}")
    factor = round(1.0 / inference_scale)
    if abs(factor * inference_scale - 1.0) > 1e-6:
        raise ValueError(
            "inference_scale must be 1/n for an integer n (1, 0.5, 0.25, ...), got "
            f"{inference_scale}"
        )
    return factor


def setting_problem(s: Setting, value: Any) -> "str | None":
    """Why ``value`` is not one setting ``s`` takes (its type, range or choices), or None."""
    default = s.default
    if isinstance(default, bool):
        return (
            None if isinstance(value, bool) else f"{s.name} must be true or false, got {value!r}"
        )
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{s.name} must be a number, got {value!r}"
        if isinstance(default, int) and not float(value).is_integer():
            return f"{s.name} must be an integer, got {value!r}"
        if not math.isfinite(value):
            return f"{s.name} must be finite, got {value!r}"
        if s.bounds and not s.bounds[0] <= value <= s.bounds[1]:
            return f"{s.name} must be in [{s.bounds[0]}, {s.bounds[1]}], got {value}"
        return None
    if isinstance(default, list):
        # rclpy hands array parameters as array.array ('d' or 'q'), as ros2 param set sends them
        if not isinstance(value, (list, tuple, array.array)) or len(value) != len(default):
            return f"{s.name} must be a list of {len(default)} numbers, got {value!r}"
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return f"{s.name} must hold numbers, got {list(value)}"
        if isinstance(default[0], int):
            if not all(float(v).is_integer() and 0 <= v <= 16384 for v in value):
                return f"{s.name} must hold integers in [0, 16384], got {list(value)}"
            return None
        finite = [math.isfinite(v) for v in value]
        if any(finite) and not all(finite):
            return f"{s.name} must be all finite numbers (or all NaN: not set), got {list(value)}"
        return None
    if not isinstance(value, str):
        return f"{s.name} must be a string, got {value!r}"
    if s.choices and value not in s.choices:
        return f"{s.name} must be one of {', '.join(s.choices)}, got '{value}'"
    return None


def problem(values: Mapping[str, Any], half_extrinsic: bool = False) -> "str | None":
    """Why ``values`` (a full set of settings) is not acceptable, or None: each value's type and
    range, then the cross-checks (min_depth < max_depth, inference_scale = 1/n, no voxel
    decimation of an organised cloud, a non-zero rotation quaternion, the extrinsic's two
    halves together unless ``half_extrinsic``: at run time, ``ros2 param set`` sends them one
    at a time)."""
    for name, value in values.items():
        if name not in BY_NAME:
            return f"unknown setting '{name}'"
        reason = setting_problem(BY_NAME[name], value)
        if reason:
            return reason
    if not values["min_depth"] < values["max_depth"]:
        return f"min_depth ({values['min_depth']}) must be below max_depth ({values['max_depth']})"
    try:
        scale_factor(float(values["inference_scale"]))
    except ValueError as exc:
        return str(exc)
    width, height = values["warmup_size"]
    if width * height > values["max_image_pixels"]:
        return (
            f"warmup_size {list(values['warmup_size'])} has more pixels than max_image_pixels "
            f"({values['max_image_pixels']})"
        )
    if values["cloud_voxel"] > 0 and values["organized_cloud"]:
        return "cloud_voxel and organized_cloud exclude each other: a voxel has no pixel"
    if len(extrinsic_halves(values)) == 1 and not half_extrinsic:
        return "extrinsic.translation and extrinsic.rotation must be given together"
    if extrinsic_set(values) and math.hypot(*values["extrinsic.rotation"]) < 1e-12:
        return f"extrinsic.rotation {list(values['extrinsic.rotation'])} is a zero quaternion"
    return None


EXTRINSIC = ("extrinsic.translation", "extrinsic.rotation")


def extrinsic_halves(values: Mapping[str, Any]) -> list[str]:
    """The halves of the extrinsic (EXTRINSIC) given: all finite (all NaN: not set)."""
    return [n for n in EXTRINSIC if all(math.isfinite(v) for v in values[n])]


def extrinsic_set(values: Mapping[str, Any]) -> bool:
    """Whether ``extrinsic.translation`` and ``extrinsic.rotation`` were both given (finite);
    a half-given extrinsic is as good as none."""
    return len(extrinsic_halves(values)) == len(EXTRINSIC)


def resolve(overrides: "Mapping[str, Any] | None" = None) -> dict[str, Any]:
    """The defaults updated by ``overrides`` (a parameter file's values, command-line options),
    checked; ValueError names the first problem. Integers given for float settings become floats;
    rclpy's own parameters (``use_sim_time``, ``qos_overrides.*``) are left to rclpy."""
    values = dict(DEFAULTS)
    for name, value in (overrides or {}).items():
        if name == "use_sim_time" or name.startswith("qos_overrides."):
            continue  # rclpy's own parameters
        if name not in BY_NAME:
            raise ValueError(f"unknown parameter '{name}' (known: {', '.join(BY_NAME)})")
        default = BY_NAME[name].default
        is_number = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(default, float) and is_number:
            value = float(value)
        values[name] = value
    reason = problem(values)
    if reason:
        raise ValueError(reason)
    return values
