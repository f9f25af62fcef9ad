"""Training, evaluation and benchmarks: the lab that decides what ships."""

from .. import lazy_layer

# the layer's public names and the module each lives in, imported on first use
__all__, __getattr__ = lazy_layer(
    __name__,
    {
        "Trainer": "train",
        "evaluate": "evaluate",
        "judge_recordings": "recordings",
        "verdict": "recordings",
    },
)
