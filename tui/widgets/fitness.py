"""The population fitness panel: best / mean / worst per generation, and fitness against cost."""
from __future__ import annotations

import math
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual_plotext import PlotextPlot

from ..fmt import si
from ..generations import points, recent, sparse_jumps
from ..state import DashboardState

__all__ = ["FitnessPanel", "GENERATION_WINDOW"]

GENERATION_WINDOW = 40  # generations shown in the dashboard; the report shows all of them, binned


class FitnessPanel(Horizontal):
    """Two plots side by side; replotted only when a generation or a candidate finishes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seen = -1
        self.x_axis = "flops"  # or "params"
        # The scatter's thinned points, extended as candidates finish (``DashboardState.points_log``):
        # a redraw costs what the new points cost, not what the whole run's do.
        self._thinned_for: tuple[int, int, str] | None = None
        self._thinned = ThinnedPoints()

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="fitness-lines")
        yield PlotextPlot(id="fitness-scatter")

    def toggle_x_axis(self, state: DashboardState) -> str:
        """Switch the scatter between FLOPs and parameters; returns the new axis."""
        self.x_axis = "params" if self.x_axis == "flops" else "flops"
        self._seen = -1
        self.sync(state)
        return self.x_axis

    def sync(self, state: DashboardState) -> None:
        """Replot if the fitness data changed since the last call."""
        rev = state.revision["fitness"]
        if rev == self._seen:
            return
        self._seen = rev
        self._plot_generations(state)
        self._plot_scatter(state)

    def _plot_generations(self, state: DashboardState) -> None:
        widget = self.query_one("#fitness-lines", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        gens, best, mean, worst = state.fitness_series()
        # A long run shows its recent generations: hundreds of points and jump lines are a wall.
        shown = recent(points(gens, best, mean, worst, state.jumps), GENERATION_WINDOW)
        window = f" last {len(shown)}/{len(gens)}" if len(shown) < len(gens) else ""
        # Distinct markers instead of a legend box: readable without colour, covers no data.
        plt.title("● best  + mean  · worst")
        jumps, as_lines = sparse_jumps(shown)
        if shown:
            xs = [p.first for p in shown]
            plt.plot(xs, [p.best for p in shown], marker="●", color="green")
            plt.plot(xs, [p.mean for p in shown], marker="+", color="blue")
            plt.plot(xs, [p.worst for p in shown], marker="·", color="red")
            if as_lines:
                for g in jumps:
                    plt.vline(g, "gray")
            else:  # many jumps: a small mark above each, no lines across the curves
                hi, lo = max(p.best for p in shown), min(p.worst for p in shown)
                top = hi + 0.05 * ((hi - lo) or 0.01)
                plt.scatter(jumps, [top] * len(jumps), marker="▾", color="gray")
            step = max(1, len(xs) // 8)
            ticks: list[float] = list(xs[::step])
            plt.xticks(ticks)
        else:
            plt.plot([0], [0], marker=" ")
            plt.yticks([])
            plt.xticks([])
        mark = ("  (│ jump)" if as_lines else "  (▾ jump)") if jumps else ""
        plt.xlabel(("gen" + window if window else "generation") + mark)
        widget.refresh()

    def _plot_scatter(self, state: DashboardState) -> None:
        widget = self.query_one("#fitness-scatter", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        label = "FLOPs" if self.x_axis == "flops" else "params"
        key = (id(state), state.points_epoch, self.x_axis)
        if key != self._thinned_for:
            self._thinned_for, self._thinned = key, ThinnedPoints()
        axis = 1 if self.x_axis == "flops" else 2
        self._thinned.extend(state.points_log, axis)
        thinned = self._thinned
        plt.title(f"fitness vs {label}  ★ best")
        if thinned.kept:
            best = state.best()
            best_id = best.candidate_id if best else None
            rest = [(x, y) for x, y, cid in thinned.kept if cid != best_id]
            point = state.scatter_point(best_id) if best_id is not None else None
            x_best = point[axis] if point is not None else None
            top = [(x_best, point[3])] if point is not None and x_best else []
            if rest:
                plt.scatter([x for x, _ in rest], [y for _, y in rest], marker="•", color="blue")
            if top:
                plt.scatter([x for x, _ in top], [y for _, y in top], marker="★", color="green")
            plt.xscale("log")
            ticks = decade_ticks([thinned.low, thinned.high])
            plt.xticks(ticks, [si(t, 0) for t in ticks])
        else:
            plt.plot([1], [0], marker=" ")
            plt.yticks([])
            plt.xticks([])
        plt.xlabel(f"{label} (log scale)")
        widget.refresh()


class ThinnedPoints:
    """``thin_points`` kept up to date: one point per grid cell, fed the points as they come."""

    def __init__(self) -> None:
        self.consumed = 0  # points of the log already seen
        self.cells: set[tuple[int, int]] = set()
        self.kept: list[tuple[float, float, int]] = []  # (x, fitness, candidate id)
        self.low = math.inf  # the x range of every point (not only the kept ones)
        self.high = -math.inf

    def extend(self, log: list[tuple[int, float | None, float | None, float]], axis: int) -> None:
        """Take the points of ``log`` not seen yet (x: the point's ``axis``-th field; none: skipped)."""
        for point in log[self.consumed:]:
            x, y = point[axis], point[3]
            if not x:
                continue
            self.low, self.high = min(self.low, x), max(self.high, x)
            cell = _cell(x, y)
            if cell not in self.cells:
                self.cells.add(cell)
                self.kept.append((x, y, point[0]))
        self.consumed = len(log)


def _cell(x: float, y: float, x_step: float = 0.01, y_step: float = 0.002) -> tuple[int, int]:
    return (math.floor(math.log10(x) / x_step) if x > 0 else -(10**9), math.floor(y / y_step))


def thin_points(points: list[tuple[float, float]], x_step: float = 0.01, y_step: float = 0.002) -> list[tuple[float, float]]:
    """One point per cell of a grid finer than any terminal draws (``x_step`` decades of a log x axis, ``y_step``
    of fitness): what the scatter shows is unchanged, and what it costs to draw stops growing with the run
    (thousands of candidates fall on a few hundred cells)."""
    seen: set[tuple[int, int]] = set()
    kept: list[tuple[float, float]] = []
    for x, y in points:
        cell = _cell(x, y, x_step, y_step)
        if cell not in seen:
            seen.add(cell)
            kept.append((x, y))
    return kept


def decade_ticks(values: list[float]) -> list[float]:
    """Powers of ten spanning ``values`` (at least two)."""
    lo, hi = min(values), max(values)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if last == first:
        last += 1
    return [10.0**k for k in range(first, last + 1)]
