"""The comparison's figures: every run overlaid on one chart, one colour and marker per run.

Three charts, each written as PNG and SVG of ``CHART_SIZE`` like the
single-run report's: the anytime curves against trained candidates and
against run time, and the fitness-against-FLOPs Pareto fronts (each run's
trained candidates faint behind its front). Colours come from ``COLOURS`` in
run order, so a test or a reader can tell which curve is which.

Agg canvas, no pyplot; reads only a ``Comparison``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tui.fmt import duration, si

from .compare import ComparedRun, Comparison
from .figures import CHART_SIZE, FigureFile, _empty, _new, _save
from .summary import pareto_mask, ranked_fitness

__all__ = ["COLOURS", "MARKERS", "COMPARE_CHARTS", "write_comparison_figures", "time_unit"]

# Run k is drawn in COLOURS[k % len] with MARKERS[k % len] (distinct in grey print too).
COLOURS = ("#1d4ed8", "#dc2626", "#15803d", "#7c3aed", "#d97706", "#0891b2", "#db2777", "#4b5563")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
COMPARE_CHARTS = ("compare_anytime", "compare_anytime_time", "compare_pareto_flops")


def _style(k: int) -> dict[str, Any]:
    return {"color": COLOURS[k % len(COLOURS)], "marker": MARKERS[k % len(MARKERS)]}


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit (``s`` / ``min`` / ``h``) and divisor that keep ``seconds`` readable on an axis."""
    if seconds >= 3 * 3600:
        return "h", 3600.0
    if seconds >= 180:
        return "min", 60.0
    return "s", 1.0


def _curve(ax: Axes, k: int, r: ComparedRun, xs: list[float], end: float) -> None:
    """The best-so-far steps of run ``k``, markers where it improved, carried on to ``end``."""
    best = [p.best for p in r.summary.anytime]
    style = _style(k)
    ax.step(xs + [end], best + [best[-1]], where="post", color=style["color"], lw=2, label=r.label, zorder=3)
    improved = [i for i in range(len(best)) if i == 0 or best[i] > best[i - 1]]
    ax.scatter([xs[i] for i in improved], [best[i] for i in improved], s=30, color=style["color"],
               marker=style["marker"], edgecolor="black", linewidth=0.5, zorder=4)


def _reached(r: ComparedRun, by_time: bool) -> str:
    """When run ``r`` first reached its final best: after how many trained candidates, or how much run time."""
    points = r.summary.anytime
    i = next(k for k, p in enumerate(points) if p.best == points[-1].best)
    return f"after {duration(r.seconds[i])} of run time" if by_time else f"at {points[i].trained} trained"


def _plot_anytime(fig: Figure, c: Comparison, by_time: bool) -> str:
    ax = fig.add_subplot()
    ax.set_title("Best fitness so far, " + ("against run time" if by_time else "against trained candidates"))
    ax.set_ylabel(c.fitness_metric)
    drawn = [(k, r) for k, r in enumerate(c.runs) if r.summary.anytime]
    if not drawn:
        ax.set_xlabel("run time" if by_time else "trained candidates")
        _empty(ax, "no run has a trained candidate yet")
        return "No run trained a candidate before its journal ends."
    if by_time:
        longest = max(max(r.seconds[-1], r.summary.search_seconds) for _, r in drawn)
        unit, div = time_unit(longest)
        ax.set_xlabel(f"run time ({unit}, downtime left out)")
        for k, r in drawn:
            xs = [s / div for s in r.seconds]
            _curve(ax, k, r, xs, max(xs[-1], r.summary.search_seconds / div))
    else:
        ax.set_xlabel("trained candidates")
        for k, r in drawn:
            xs = [float(p.trained) for p in r.summary.anytime]
            _curve(ax, k, r, xs, max(xs[-1], float(r.summary.trained)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    ends = "; ".join(f"{r.label}: {r.summary.anytime[-1].best:.4f}, first reached " + _reached(r, by_time)
                     for _, r in drawn)
    what = "run time (the time a run was down before a resume is left out)" if by_time else "trained candidates"
    return f"Best {c.fitness_metric} found so far against {what}, one curve per run. Best reached: {ends}."


def _plot_fronts(fig: Figure, c: Comparison) -> str:
    ax = fig.add_subplot()
    ax.set_title("Fitness against FLOPs: Pareto fronts")
    ax.set_ylabel(c.fitness_metric)
    fronts = []
    for k, r in enumerate(c.runs):
        pts = [(float(e.flops), ranked_fitness(e), e.candidate_id) for e in r.summary.ranked
               if e.flops is not None and float(e.flops) > 0]
        if not pts:
            continue
        mask = pareto_mask([p[0] for p in pts], [p[1] for p in pts])
        front = sorted((p for p, m in zip(pts, mask, strict=True) if m), key=lambda p: (p[0], -p[1]))
        style = _style(k)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=20, color=style["color"], marker=style["marker"],
                   alpha=0.35, linewidth=0, zorder=2)
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=style["color"], lw=1.5, zorder=3)
        ax.scatter([p[0] for p in front], [p[1] for p in front], s=44, color=style["color"], marker=style["marker"],
                   edgecolor="black", linewidth=0.6, label=f"{r.label} ({len(front)} on the front)", zorder=4)
        fronts.append((r, front))
    if not fronts:
        ax.set_xlabel("FLOPs")
        _empty(ax, "no trained candidate yet")
        return "No run has a trained candidate with a FLOPs count before its journal ends."
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=9)
    parts = "; ".join(
        f"{r.label}: " + ", ".join(f"#{cid} ({si(flops)}, {fit:.4f})" for flops, fit, cid in front)
        for r, front in fronts
    )
    return (f"{c.fitness_metric} of every trained candidate (faint) against FLOPs, and each run's Pareto front "
            f"(highest fitness for its cost; bold markers). Fronts: {parts}.")


_CHARTS: dict[str, tuple[str, Callable[[Figure, Comparison], str]]] = {
    "compare_anytime": ("Anytime curves", lambda fig, c: _plot_anytime(fig, c, by_time=False)),
    "compare_anytime_time": ("Anytime curves against run time", lambda fig, c: _plot_anytime(fig, c, by_time=True)),
    "compare_pareto_flops": ("Pareto fronts against FLOPs", _plot_fronts),
}


def write_comparison_figures(c: Comparison, out_dir: Path) -> list[FigureFile]:
    """Write the three charts into ``out_dir`` (which must exist), in ``COMPARE_CHARTS`` order.

    Raises:
        OSError: a file cannot be written.
    """
    files = []
    for name in COMPARE_CHARTS:
        title, plot = _CHARTS[name]
        fig = _new(CHART_SIZE)
        caption = plot(fig, c)
        fig.tight_layout()
        files.append(_save(fig, out_dir, name, title, caption))
    return files
