"""The report's figures, drawn with matplotlib and written as PNG and SVG.

This module owns the pictures: fitness per generation (generation jumps
marked), the anytime curve (best fitness against trained candidates),
fitness against FLOPs and against parameters with the Pareto front
highlighted, and the top-k cells (through ``cellplot``). Given a table
(``overlay.TableOverlay``), the anytime curve also shows the table's optimum
and the random-search expectation. Every figure has a
fixed pixel size (``CHART_SIZE`` / ``CELL_SIZE`` at ``DPI``) so pages and
tests can rely on it.

It draws on ``matplotlib.figure.Figure`` objects with the Agg canvas and
never uses pyplot, so it changes no global backend and is safe in any
process. It reads only a ``RunSummary``; no torch, no Textual.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from engine.atomic import atomic_write
from tui.fmt import si
from tui.generations import MAX_JUMP_LINES, binned, points, sparse_jumps

from .cellplot import cost_line, draw_cell
from .overlay import TableOverlay
from .summary import RunSummary, pareto_mask, ranked_fitness as _fitness

__all__ = ["FigureFile", "DPI", "CHART_SIZE", "CELL_SIZE", "pixel_size", "write_figures", "draw_chart"]

DPI = 100
CHART_SIZE = (8.0, 4.5)  # inches: 800 × 450 px
CELL_SIZE = (5.6, 6.4)  # inches: 560 × 640 px
BEST, MEAN, WORST, FRONT, CLOUD = "#15803d", "#1d4ed8", "#b91c1c", "#dc2626", "#9ca3af"
JUMP = "#7c3aed"
OPTIMUM, EXPECTED = "#111827", "#d97706"  # a table's optimum and random-search expectation
MAX_GENERATION_POINTS = 60  # more generations than this are binned
MARKERS_UP_TO = 30  # points drawn with markers; more: plain lines
CHARTS = ("fitness_by_generation", "anytime", "pareto_flops", "pareto_params")


@dataclass(frozen=True)
class FigureFile:
    """One written figure: its PNG and SVG files, pixel size, title and caption."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path
    size: tuple[int, int]  # PNG width × height in pixels


def pixel_size(figsize: tuple[float, float]) -> tuple[int, int]:
    """Width and height in pixels of a figure of ``figsize`` inches at ``DPI``."""
    return round(figsize[0] * DPI), round(figsize[1] * DPI)


def _new(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280", fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _plot_generations(fig: Figure, s: RunSummary) -> str:
    ax = fig.add_subplot()
    ax.set_title("Population fitness per generation")
    ax.set_xlabel("generation (0 = opposition-based initialisation)")
    ax.set_ylabel(s.fitness_metric)
    partial = unfinished_generation(s)
    if not s.generations and partial is None:
        _empty(ax, "no generation finished yet")
        return "No generation finished before the journal ends."
    gens = [g.generation for g in s.generations]
    every = points(gens, [g.best for g in s.generations], [g.mean for g in s.generations],
                   [g.worst for g in s.generations], [j.generation for j in s.jumps])
    # Hundreds of generations: bins of consecutive ones, so the curves stay lines and not a wall of markers.
    shown = binned(every, MAX_GENERATION_POINTS)
    style = ("o-", "s--", "^:") if len(shown) <= MARKERS_UP_TO else ("-", "--", ":")
    xs = [p.x for p in shown]
    if shown:
        ax.plot(xs, [p.best for p in shown], style[0], color=BEST, label="best", ms=4)
        ax.plot(xs, [p.mean for p in shown], style[1], color=MEAN, label="mean", ms=4)
        ax.plot(xs, [p.worst for p in shown], style[2], color=WORST, label="worst", ms=4)
    jumps, as_lines = sparse_jumps(shown)
    if as_lines:
        for k, x in enumerate(jumps):
            ax.axvline(x, color=JUMP, ls="-.", lw=1.2, alpha=0.8, label="generation jump" if k == 0 else None)
    elif jumps:  # many: a tick each along the top edge, no lines across the curves
        ax.plot(jumps, [1.0] * len(jumps), "|", color=JUMP, ms=6, mew=1.2, clip_on=False,
                transform=ax.get_xaxis_transform(), label="generation jump (tick at the top)")
    if partial is not None:
        g, best, mean, worst, n = partial
        ax.plot([g] * 3, [best, mean, worst], "o", mfc="none", color="#374151", ms=7,
                label=f"generation {g}, unfinished ({n} trained)")
        xs.append(g)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    if max(xs) - min(xs) < 2:  # one or two generations: a tick on each, not fractions of one
        ax.set_xticks(sorted(set(xs)))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)  # outside: hides no point
    jumped = sorted({j.generation for j in s.jumps})
    if not jumped:
        jump_text = " No generation jump."
    elif len(jumped) <= MAX_JUMP_LINES:
        jump_text = f" Generation jumps in generation {', '.join(map(str, jumped))}."
    else:
        jump_text = f" {len(jumped)} generations had a generation jump (ticks at the top)."
    text = (f"Best, mean and worst {s.fitness_metric} of the population after each of {len(gens)} generations"
            if gens else "No generation finished")
    if len(shown) < len(every):
        size = shown[0].last - shown[0].first + 1
        text += f", in bins of {size} consecutive generations (best of the bests, mean of the means, worst of the worsts)"
    text += "." + jump_text
    if partial is not None:
        g, _, _, _, n = partial
        text += (f" The run ended inside generation {g}: its {n} trained candidates are drawn as open circles"
                 " (best, mean, worst of those trained).")
    return text


def unfinished_generation(s: RunSummary) -> tuple[int, float, float, float, int] | None:
    """(generation, best, mean, worst, count) of the trained candidates of a generation the journal never finished."""
    done = max((g.generation for g in s.generations), default=-1)
    later = [e for e in s.ranked if e.generation > done]
    if not later:
        return None
    g = max(e.generation for e in later)
    fits = [_fitness(e) for e in later if e.generation == g]
    return g, max(fits), sum(fits) / len(fits), min(fits), len(fits)


def _plot_anytime(fig: Figure, s: RunSummary, table: TableOverlay | None = None) -> str:
    ax = fig.add_subplot()
    ax.set_title("Best fitness so far (anytime curve)")
    ax.set_xlabel("trained candidates")
    ax.set_ylabel(s.fitness_metric)
    if not s.anytime:
        _empty(ax, "no candidate trained yet")
        note = f" The table {table.path.name} has an optimum of {table.optimum:.4f}." if table else ""
        return "No candidate was trained before the journal ends." + note
    xs = [p.trained for p in s.anytime]
    ax.scatter(xs, [p.fitness for p in s.anytime], s=14, color=CLOUD, label="each candidate", zorder=2)
    ax.step(xs, [p.best for p in s.anytime], where="post", color=BEST, lw=2, label="best so far", zorder=3)
    if s.budget:
        ax.axvline(s.budget, color="#6b7280", ls=":", lw=1, label=f"budget {s.budget}")
    table_text = _overlay_table(ax, s, table) if table else ""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)  # outside: hides no point
    last = s.anytime[-1]
    best = max(s.anytime, key=lambda p: (p.fitness, -p.trained))
    return (
        f"Best {s.fitness_metric} found against the number of trained candidates: "
        f"{last.best:.4f} after {last.trained}, first reached by #{best.candidate_id}." + table_text
    )


def _overlay_table(ax: Axes, s: RunSummary, t: TableOverlay) -> str:
    """Draw a table's optimum and random-search expectation over the run's budget; their caption."""
    last = s.anytime[-1].trained
    shown = min(t.cells, max(last, s.budget or 0))  # the run's own range: the curve keeps its scale
    ax.axhline(t.optimum, color=OPTIMUM, ls="--", lw=1.2, label=f"table optimum {t.optimum:.4f}", zorder=1)
    budgets = list(range(1, shown + 1))
    ax.step(budgets, list(t.expectation[:shown]), where="post", color=EXPECTED, ls="-.", lw=1.5,
            label="random search, expected", zorder=2)
    return (
        f" Dashed: the optimum of the table {t.path.name}, the best {t.fitness_metric} the search is told by any "
        f"of its {t.cells} cells ({t.optimum:.4f}). Dash-dotted: the random-search expectation, the expected best "
        f"after b distinct cells of the table drawn uniformly at random without replacement "
        f"({t.expected_at(last):.4f} after {min(last, t.cells)}, against this run's {s.anytime[-1].best:.4f}); it "
        "assumes each distinct cell equally likely, which random sampling of chromosomes only approximates "
        "(a cell that more chromosomes decode to is drawn more often)."
    )


def _plot_pareto(fig: Figure, s: RunSummary, cost: str) -> str:
    label = "FLOPs" if cost == "flops" else "parameters"
    ax = fig.add_subplot()
    ax.set_title(f"Fitness against {label}")
    ax.set_ylabel(s.fitness_metric)
    pts = [
        (float(getattr(e, cost)), _fitness(e), e.candidate_id)
        for e in s.ranked
        if getattr(e, cost) is not None and float(getattr(e, cost)) > 0
    ]
    if not pts:
        ax.set_xlabel(label)
        _empty(ax, "no trained candidate yet")
        return f"No trained candidate with a {label} count before the journal ends."
    mask = pareto_mask([p[0] for p in pts], [p[1] for p in pts])
    front = sorted((p for p, m in zip(pts, mask, strict=True) if m), key=lambda p: (p[0], -p[1]))
    rest = [p for p, m in zip(pts, mask, strict=True) if not m]
    ax.scatter([p[0] for p in rest], [p[1] for p in rest], s=18, color=CLOUD, label="trained candidate", zorder=2)
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=FRONT, lw=1.2, alpha=0.7, zorder=3)
    ax.scatter([p[0] for p in front], [p[1] for p in front], s=42, color=FRONT, edgecolor="black",
               label="Pareto front", zorder=4)
    for c, f, cid in front:
        ax.annotate(f"#{cid}", (c, f), textcoords="offset points", xytext=(4, 5), fontsize=8, zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel(f"{label} (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=9)
    ids = ", ".join(f"#{cid} ({si(c)}, {f:.4f})" for c, f, cid in front)
    return (
        f"{s.fitness_metric} of {len(pts)} trained candidates against {label}; the Pareto front "
        f"(highest fitness for its cost) is {ids}."
    )


Plot = Callable[[Figure, RunSummary, TableOverlay | None], str]  # draws on the figure, returns the caption
_CHARTS: dict[str, tuple[str, Plot]] = {
    "fitness_by_generation": ("Fitness per generation", lambda fig, s, t: _plot_generations(fig, s)),
    "anytime": ("Anytime curve", _plot_anytime),
    "pareto_flops": ("Fitness against FLOPs", lambda fig, s, t: _plot_pareto(fig, s, "flops")),
    "pareto_params": ("Fitness against parameters", lambda fig, s, t: _plot_pareto(fig, s, "params")),
}


def draw_chart(name: str, summary: RunSummary, table: TableOverlay | None = None) -> tuple[Figure, str, str]:
    """The figure, title and caption of chart ``name`` (one of ``CHARTS``); ``table`` adds to the anytime curve."""
    title, plot = _CHARTS[name]
    fig = _new(CHART_SIZE)
    caption = plot(fig, summary, table)
    fig.tight_layout()
    return fig, title, caption


def _save(fig: Figure, out_dir: Path, name: str, title: str, caption: str) -> FigureFile:
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    atomic_write(png, lambda fh: fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None}))
    with matplotlib.rc_context({"svg.hashsalt": "nas3d-tui", "svg.fonttype": "path"}):
        atomic_write(svg, lambda fh: fig.savefig(fh, format="svg", dpi=DPI, metadata={"Date": None}))
    w, h = fig.get_size_inches()
    return FigureFile(name, title, caption, png, svg, pixel_size((w, h)))


def write_figures(summary: RunSummary, out_dir: Path, top_k: int = 5,
                  table: TableOverlay | None = None) -> list[FigureFile]:
    """Write every chart and the top-``top_k`` cells into ``out_dir`` (which must exist).

    ``table``: a table's optimum and random-search expectation, drawn on the anytime curve.

    Returns the figures in report order: the four charts, then ``cell_rank1`` … .

    Raises:
        OSError: a file cannot be written.
    """
    files = []
    for name in CHARTS:
        fig, title, caption = draw_chart(name, summary, table)
        files.append(_save(fig, out_dir, name, title, caption))
    for rank, e in enumerate(summary.top(top_k), start=1):
        fig = _new(CELL_SIZE)
        title = f"rank {rank} · #{e.candidate_id} · gen {e.generation} {e.phase}"
        fitness = float(e.fitness) if e.fitness is not None and math.isfinite(e.fitness) else None
        draw_cell(fig, dict(e.genotype or {}), title=title,
                  footer=cost_line(e.params, e.flops, fitness, summary.fitness_metric))
        caption = f"Cell of candidate #{e.candidate_id}, rank {rank} by {summary.fitness_metric}."
        files.append(_save(fig, out_dir, f"cell_rank{rank}", f"Rank {rank}: #{e.candidate_id}", caption))
    return files
