"""Plot what dropping the least trusted pixels buys: each method's sparsification curve (the RMSE
of the pixels left after dropping the least confident fraction, over the RMSE of all) beside the
oracle's, one panel per evaluation (docs/EVALUATION.md, "The confidence a planner can
threshold").

Usage: python scripts/plot_sparsification.py OUT.png TITLE=RESULT.json ...
RESULT.json is what ``sparse-depth evaluate … --json RESULT.json`` writes. Needs matplotlib
(pip install matplotlib==3.11.2), which the package does not.
"""

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        print(__doc__.strip().splitlines()[5], file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_sparsification: needs matplotlib: pip install matplotlib", file=sys.stderr)
        return 2
    panels = [a.split("=", 1) for a in argv[1:]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, path) in zip(axes[0], panels):
        result = json.load(open(path))
        for name, c in result["confidence"].items():
            line = ax.plot(
                c["fractions"], c["rmse"]["curve"], label=f"{name} ({c['rmse']['aurg']:.2f})"
            )
            ax.plot(c["fractions"], c["rmse"]["oracle"], ":", color=line[0].get_color(), lw=0.8)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("share of pixels dropped, least confident first")
        ax.set_ylim(0, 1.15)
        ax.legend(fontsize=7, title="method (AURG); dotted: oracle", title_fontsize=7)
    axes[0][0].set_ylabel("RMSE of the pixels left / RMSE of all")
    fig.tight_layout()
    fig.savefig(argv[0], dpi=110)
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
