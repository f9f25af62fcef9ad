"""Training, evaluation and benchmarks: the lab that decides what ships."""

from importlib import import_module

# the layer's public names and the module each lives in, imported on first use (a name of this
# layer costs nothing until it is used: the CLI's --help and the bag tools stay free of torch)
_WHERE = {
    "Trainer": "train",
    "evaluate": "evaluate",
    "judge_recordings": "recordings",
    "verdict": "recordings",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
