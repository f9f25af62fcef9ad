"""Depth-completion networks and their checkpoint format."""

from .base import GOOD_FRACTION, DepthNetwork
from .checkpoint import build_model, load_checkpoint, model_class, save_checkpoint
from .guided import GuidedNet
from .judge import JudgeNet
from .multiscale import SparseMultiScaleNet
from .sparse_conv import SparseConv2d, SparseConvNet

__all__ = [
    "GOOD_FRACTION",
    "DepthNetwork",
    "GuidedNet",
    "JudgeNet",
    "SparseConv2d",
    "SparseConvNet",
    "SparseMultiScaleNet",
    "build_model",
    "load_checkpoint",
    "model_class",
    "save_checkpoint",
]
