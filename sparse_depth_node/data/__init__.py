"""Data sets on disk: KITTI raw and object, DDAD, nuScenes readers (frames with their
calibration), depth PNGs and previews."""

from .. import lazy_layer

# the layer's public names and the module each lives in, imported on first use
__all__, __getattr__ = lazy_layer(
    __name__,
    {
        "FORMATS": "datasets",
        "Frame": "datasets",
        "KittiRawReader": "datasets",
        "open_dataset": "datasets",
    },
)
