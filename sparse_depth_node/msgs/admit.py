"""What the node admits: each input message's declared size against the caps (``max_points``,
``max_image_pixels``, 16384 px a side) before anything is decoded or allocated for it, so that
one hostile or garbled message cannot cost the robot its memory. A compressed image's size is
read from its header (Pillow reads only the header); a payload without one is undecodable.
The node's callbacks run it on every message, the frame path on every set."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from .errors import UndecodableImage
from .types import CompressedImageLike

MAX_SIDE = 16384  # px: no camera has a longer side; the warm-up's limit too


def compressed_size(msg: CompressedImageLike) -> tuple[int, int]:
    """(width, height) a CompressedImage declares in its JPEG or PNG header; UndecodableImage
    when it has none."""
    from PIL import Image, UnidentifiedImageError

    data = bytes(msg.data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            return int(width), int(height)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UndecodableImage(
            f"CompressedImage ({len(data)} bytes, format '{msg.format}') has no readable image "
            f"header: {exc}"
        ) from None


def image_size_problem(
    width: int, height: int, what: str, values: Mapping[str, Any]
) -> "str | None":
    """Why an image of ``width`` x ``height`` is refused, or None."""
    cap = values["max_image_pixels"]
    if width > MAX_SIDE or height > MAX_SIDE or width * height > cap:
        return (
            f"{what} of {width}x{height} exceeds max_image_pixels ({cap}) or {MAX_SIDE} px a "
            "side: refused before decoding"
        )
    return None


def size_problem(stream: str, msg: Any, values: Mapping[str, Any]) -> "str | None":
    """Why the input message ``msg`` of ``stream`` (cloud, image, info) is refused for its
    declared size, or None. UndecodableImage for a compressed image without a header."""
    if stream == "cloud":
        points = int(msg.width) * int(msg.height)
        if points > values["max_points"]:
            return (
                f"PointCloud2 of {msg.width}x{msg.height} points exceeds max_points "
                f"({values['max_points']}): refused before decoding"
            )
        return None
    if stream == "image" and isinstance(msg, CompressedImageLike):
        width, height = compressed_size(msg)
        return image_size_problem(width, height, "CompressedImage", values)
    kind = "Image" if stream == "image" else "CameraInfo"
    return image_size_problem(int(msg.width), int(msg.height), kind, values)
