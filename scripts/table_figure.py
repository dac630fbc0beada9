"""The figure of docs/RESULTS.md's tabular benchmark: what each strategy finds for each budget.

    python benchmarks/search_quality.py --table quick-adrenalmnist3d --seeds 1000 --json /tmp/quality.json
    python scripts/table_figure.py /tmp/quality.json -o docs/img/table-quick.png

Left: the probability of having found a top-5 % cell against the budget (trained
cells), per strategy, with the 95 % interval as a band; ODE with the quick
profile's pruning (``parent``) dashed. Right: the mean test AUC of the cell each
search would hand back (the best it found by validation), with its 95 % interval.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

COLOURS = {"ode": "#2563eb", "random": "#dc2626", "exhaustive": "#6b7280"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stats", help="the --json file of benchmarks/search_quality.py --table")
    ap.add_argument("-o", "--output", required=True, help="the PNG to write")
    ap.add_argument("--max-budget", type=int, default=60, help="right end of the x axis (default 60)")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = json.loads(Path(args.stats).read_text())
    top5 = stats["top"]["top5"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    lines = [(mode, name, rows) for mode, per in stats["pruning"].items() for name, rows in per.items()
             if mode == "none" or name == "ode"]
    for mode, name, rows in lines:
        rows = rows[: args.max_budget]
        b = [r["budget"] for r in rows]
        style = dict(color=COLOURS.get(name, "black"), ls="-" if mode == "none" else "--",
                     label=name + ("" if mode == "none" else f", pruning {mode}"))
        p = [r["p_top5"] for r in rows]
        left.plot(b, [x[0] for x in p], **style)
        left.fill_between(b, [x[1] for x in p], [x[2] for x in p], color=style["color"], alpha=0.12, lw=0)
        t = [r["test_auc"] for r in rows]
        if all(x is not None for x in t):
            right.plot(b, [x[0] for x in t], **style)
            right.fill_between(b, [x[1] for x in t], [x[2] for x in t], color=style["color"], alpha=0.12, lw=0)
    left.axhline(0.8, color="black", lw=0.7, ls=":")
    left.set(xlabel="budget (trained cells)", ylabel=f"P(found a top-5 % cell) (best {top5} of {stats['cells']})",
             title=f"{stats['seeds']} searches per strategy", ylim=(0, 1.02))
    right.set(xlabel="budget (trained cells)", ylabel="test AUC of the chosen cell (mean)",
              title="what the search hands back")
    if stats.get("optimum_test_auc") is not None:
        right.axhline(stats["optimum_test_auc"], color="black", lw=0.7, ls=":", label="best cell by validation")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110, metadata={"Software": None})
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
