"""Depth-completion networks and their checkpoint format."""

from .checkpoint import build_model, load_checkpoint, save_checkpoint, MODELS
from .convnet import ConvNet
from .sparse_conv import SparseConv2d, SparseConvNet

__all__ = ["ConvNet", "SparseConv2d", "SparseConvNet", "build_model", "load_checkpoint",
           "save_checkpoint", "MODELS"]
