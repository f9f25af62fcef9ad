"""Plot how much data a network needs: each judge's error, relative to a reference method, of
networks trained on more and more frames (docs/EVALUATION.md, "How much data").

Usage: python scripts/plot_data_curve.py JUDGE.json OUT.png REFERENCE LABEL=FRAMES=METHOD ...
JUDGE.json is what ``sparse-depth evaluate --bags … --json JUDGE.json`` writes; METHOD a method
name in it (a checkpoint's path as given to --models), FRAMES the frames it trained on, LABEL its
name on the x axis. Needs matplotlib (pip install matplotlib==3.11.2), which the package does not.
"""

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("error: this plot needs matplotlib: pip install matplotlib==3.11.2", file=sys.stderr)
        return 2
    judge_path, out, reference, *runs = argv
    with open(judge_path) as f:
        judges = json.load(f)
    photo, held = judges["photometric"]["methods"], judges["held_out"]["methods"]
    acc = judges.get("accumulated", {}).get("methods", {})

    def ratio(table: dict, key: str):
        return lambda m: table[m][key] / table[reference][key]

    series = {
        "photometric error between the returns": ratio(photo, "between"),
        "photometric error at image edges": ratio(photo, "edges"),
        "held-out RMSE": ratio(held, "rmse_mm"),
    }
    if acc:
        series["MAE between the returns (neighbouring sweeps)"] = ratio(acc, "mae_mm")
    labels, frames, methods = zip(*(r.split("=", 2) for r in runs))
    x = list(range(len(runs)))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for name, of in series.items():
        ax.plot(x, [of(m) for m in methods], marker="o", label=name)
    ax.axhline(1.0, color="grey", linewidth=1, linestyle="--")
    ax.set_xticks(x, [f"{lab}\n{n} frames" for lab, n in zip(labels, frames)])
    ax.set_ylabel(f"relative to {reference} (below 1: better)")
    ax.set_title("guided, trained on more frames, judged on frames never trained on", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
