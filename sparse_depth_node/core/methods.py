"""The one registry of completion methods: networks (with the class that builds each) and
classical fillers. Plain names, no torch: the CLI lists them without loading a network."""

from __future__ import annotations

# network name -> "module:Class" under core.models, imported only when a network is built
NETWORKS = {
    "sparseconv": "sparse_conv:SparseConvNet",
    "multiscale": "multiscale:SparseMultiScaleNet",
    "guided": "guided:GuidedNet",
}
FILLERS = ("classic", "classic-full", "classic-multiscale", "classic-refined", "nearest")
METHODS = (*NETWORKS, *FILLERS)
# the node, the tools and the demo use it unless told otherwise: judged on the whole image (the
# neighbouring frames warped with each depth, docs/EVALUATION.md) no network beats
# classic-multiscale; its refinement scores the same and keeps the returns, without stripes
DEFAULT_METHOD = "classic-refined"
FALLBACK_METHOD = "classic"  # what the node runs when the configured model cannot load
