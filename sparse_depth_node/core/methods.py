"""The one registry of completion methods: networks (with the class that builds each) and
classical fillers. Plain names, no torch: the CLI lists them without loading a network."""

from __future__ import annotations

# network name -> "module:Class" under core.models, imported only when a network is built
NETWORKS = {
    "sparseconv": "sparse_conv:SparseConvNet",
    "multiscale": "multiscale:SparseMultiScaleNet",
    "guided": "guided:GuidedNet",
}
# the networks that judge a classical fill (its depth unchanged, a learned confidence): trained
# by `sparse-depth train --model judge`, shipped as weights/judge.pt for the fill they judge
JUDGES = {"judge": "judge:JudgeNet"}
TRAINABLE = {**NETWORKS, **JUDGES}
FILLERS = ("classic", "classic-full", "classic-multiscale", "classic-refined", "nearest")
METHODS = (*NETWORKS, *FILLERS)
# the node, the tools and the demo use it unless told otherwise: judged on the whole image (the
# neighbouring frames warped with each depth, docs/EVALUATION.md) no network beats
# classic-multiscale; its refinement scores the same and keeps the returns, without stripes
DEFAULT_METHOD = "classic-refined"
# what the node runs when the configured model cannot load: the default's classical fill,
# without its judge (whose weights may be what failed: its confidence is then 1 where it fills)
FALLBACK_METHOD = DEFAULT_METHOD
