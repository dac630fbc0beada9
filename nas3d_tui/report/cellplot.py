"""A cell (its pruned DAG) drawn as a graph with matplotlib.

This module owns the picture of one genotype: a layered layout (each node on
the layer of its longest path from the input, the output alone at the
bottom), boxes labelled with the operation names of ``engine.space`` (through
``tui.cellgraph``, the pure text-drawing module of the dashboard), arrows
for the edges (routed in side lanes when they skip layers), and the macro choices
(stacks / modules / filters) and cost underneath.

It draws onto a ``matplotlib.figure.Figure`` it is given and never touches
pyplot's global state, files, torch or Textual. The layout is pure and
tested on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from tui.cellgraph import INPUT_LABEL, OUTPUT_LABEL, layers, op_label
from tui.fmt import si

__all__ = ["Placed", "layered_layout", "edge_routes", "node_labels", "macro_line", "cost_line", "draw_cell"]

BOX_W, BOX_H = 0.9, 0.42  # node box, in layout units (columns 1 apart, layers 1 apart)
LANE_GAP = 0.16  # distance between the side lanes of skip edges
PORT = 0.22  # how far off a box's centre a skip edge leaves and enters it
MIN_LAYERS, MIN_HALF_WIDTH = 4, 1.6  # the smallest drawing area, so boxes keep one size
LABEL_POINTS = 8.5
COLOURS = {"input": "#cde8cf", "output": "#f6d2b8", "op": "#d5e3f3"}
EDGE = "#4a5563"


@dataclass(frozen=True)
class Placed:
    """A node of the layout: its index in the matrix, layer (0 = input) and x position."""

    node: int
    layer: int
    x: float


def layered_layout(matrix: Sequence[Sequence[int]]) -> list[Placed]:
    """Place the nodes of an upper-triangular adjacency matrix (input first, output last).

    Layer = length of the longest path from the input (``tui.cellgraph.layers``,
    the dashboard's own rule); the output goes one layer below every other
    node. Within a layer nodes are ordered by the mean x of their
    predecessors (fewer crossings), then by index, and centred on 0.

    Raises:
        ValueError: the matrix is empty or not square.
    """
    n = len(matrix)
    if n == 0 or any(len(row) != n for row in matrix):
        raise ValueError(f"a cell matrix must be square and non-empty, got {n} rows")
    layer = layers(matrix)
    if n > 1:
        layer[-1] = max(max(layer[:-1]) + 1, layer[-1])
    x: dict[int, float] = {}
    placed: list[Placed] = []
    for lv in range(max(layer) + 1):
        nodes = [v for v in range(n) if layer[v] == lv]

        def barycentre(v: int) -> float:
            px = [x[i] for i in range(v) if matrix[i][v] and i in x]
            return sum(px) / len(px) if px else 0.0

        nodes.sort(key=lambda v: (barycentre(v), v))
        for k, v in enumerate(nodes):
            x[v] = k - (len(nodes) - 1) / 2
            placed.append(Placed(v, lv, x[v]))
    return sorted(placed, key=lambda p: p.node)


def node_labels(n_nodes: int, ops: Sequence[int]) -> list[str]:
    """``input``, the operation names of the intermediate nodes, ``output``."""
    labels = [INPUT_LABEL] + [op_label(k) for k in ops[: max(0, n_nodes - 2)]]
    labels += ["?"] * (n_nodes - 1 - len(labels))
    return labels + [OUTPUT_LABEL] if n_nodes > 1 else labels


Point = tuple[float, float]


def edge_routes(matrix: Sequence[Sequence[int]], placed: Sequence[Placed]) -> tuple[list[list[Point]], int]:
    """The polyline of every edge (row-major order) and the most side lanes used on one side.

    An edge between adjacent layers is straight, centre to centre. A skip edge
    runs in its own side lane, outside every box; it leaves its source and
    enters its target through a port of its own (off-centre, towards its lane)
    and crosses each gap between layers on a height of its own, edges leaving
    a layer above edges entering the next. So no two edges share a segment:
    they may cross, never run on top of each other.
    """
    n = len(matrix)
    pos = {p.node: (p.x, -float(p.layer)) for p in placed}
    extent = max(abs(p.x) for p in placed) + BOX_W / 2
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if matrix[i][j]]
    skips = [(i, j) for i, j in edges if pos[i][1] - pos[j][1] > 1]
    side_of = {e: 1 if pos[e[0]][0] + pos[e[1]][0] >= 0 else -1 for e in skips}
    # ports: the k-th skip edge leaving (entering) a box on one side sits a step further out
    out_port: dict[tuple[int, int], float] = {}
    in_port: dict[tuple[int, int], float] = {}
    for ports, end in ((out_port, 0), (in_port, 1)):
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for e in skips:
            groups.setdefault((e[end], side_of[e]), []).append(e)
        for (_, side), group in groups.items():
            step = min(0.06, (BOX_W / 2 - PORT - 0.04) / max(1, len(group) - 1))
            for k, e in enumerate(group):
                ports[e] = pos[e[end]][0] + side * (PORT + k * step)
    # heights in the gap under layer L: leaving edges high, entering ones low, one height each
    gap_slots: dict[float, list[tuple[str, tuple[int, int]]]] = {}
    for e in skips:
        gap_slots.setdefault(pos[e[0]][1], []).append(("out", e))
    for e in skips:
        gap_slots.setdefault(pos[e[1]][1] + 1, []).append(("in", e))
    height: dict[tuple[str, tuple[int, int]], float] = {}
    room = 1 - BOX_H - 0.12  # the gap between boxes, less a margin at each box
    for top, slots in gap_slots.items():
        slots.sort(key=lambda s: (s[0] != "out", s[1]))
        step = room / max(1, len(slots) - 1) if len(slots) > 1 else 0.0
        for k, slot in enumerate(slots):
            height[slot] = top - BOX_H / 2 - 0.06 - k * step if len(slots) > 1 else top - 0.5
    lanes = {1: 0, -1: 0}
    routes = []
    for i, j in edges:
        (x0, y0), (x1, y1) = pos[i], pos[j]
        if (i, j) not in side_of:
            routes.append([(x0, y0 - BOX_H / 2), (x1, y1 + BOX_H / 2)])
            continue
        side = side_of[(i, j)]
        lanes[side] += 1
        lane = side * (extent + LANE_GAP * lanes[side])
        a, b = out_port[(i, j)], in_port[(i, j)]
        down, up = height[("out", (i, j))], height[("in", (i, j))]
        routes.append([(a, y0 - BOX_H / 2), (a, down), (lane, down), (lane, up), (b, up), (b, y1 + BOX_H / 2)])
    return routes, max(lanes.values())


def macro_line(genotype: dict[str, Any]) -> str:
    """``S1 · M2 · F16`` (stacks, modules per stack, initial filters)."""
    g = genotype
    return f"S{g.get('n_stacks', '?')} · M{g.get('n_modules', '?')} · F{g.get('n_filters', '?')}"


def draw_cell(fig: Figure, genotype: dict[str, Any], title: str = "", footer: str = "") -> None:
    """Draw ``genotype`` (the dict the engine publishes) onto ``fig``, filling it.

    Args:
        fig: an empty figure.
        genotype: keys ``matrix`` (pruned, input first, output last), ``ops``
            (operation indices of the intermediate nodes), ``n_stacks``,
            ``n_modules``, ``n_filters``.
        title: drawn above the graph.
        footer: an extra line under the macro choices (cost, fitness).
    """
    ax = fig.add_axes((0.02, 0.12, 0.96, 0.80))
    ax.set_axis_off()
    if title:
        fig.text(0.5, 0.965, title, ha="center", va="top", fontsize=11, fontweight="bold")
    macro = f"{macro_line(genotype)}   (stacks · modules · filters)"
    fig.text(0.5, 0.075, macro, ha="center", va="center", fontsize=10)
    if footer:
        fig.text(0.5, 0.03, footer, ha="center", va="center", fontsize=9, color="#374151")
    matrix = genotype.get("matrix") or []
    try:
        placed = layered_layout(matrix)
    except ValueError as exc:
        ax.text(0.5, 0.5, f"no cell to draw ({exc})", ha="center", va="center", transform=ax.transAxes)
        return
    labels = node_labels(len(matrix), genotype.get("ops") or [])
    pos = {p.node: (p.x, -float(p.layer)) for p in placed}
    layers = max(p.layer for p in placed)
    extent = max(abs(p.x) for p in placed) + BOX_W / 2
    routes, lanes = edge_routes(matrix, placed)
    for route in routes:
        path = MplPath(route, [MplPath.MOVETO] + [MplPath.LINETO] * (len(route) - 1))
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=11, color=EDGE, lw=1.1,
                                     joinstyle="round", zorder=1))
    n = len(matrix)
    half = max(MIN_HALF_WIDTH, extent + LANE_GAP * (lanes + 1))
    ax.set_xlim(-half, half)
    span = max(layers, MIN_LAYERS)  # small cells keep the box size of large ones
    middle = -layers / 2
    ax.set_ylim(middle - span / 2 - 0.45, middle + span / 2 + 0.45)
    # Labels fit their boxes: a wide layer makes the boxes narrower on paper.
    box_points = BOX_W / (2 * half) * ax.get_position().width * fig.get_figwidth() * 72
    size = min(LABEL_POINTS, box_points / (0.62 * max(len(t) for t in labels)))
    for p in placed:
        kind = "input" if p.node == 0 else "output" if p.node == n - 1 else "op"
        x, y = pos[p.node]
        ax.add_patch(
            FancyBboxPatch(
                (x - BOX_W / 2, y - BOX_H / 2),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=0,rounding_size=0.08",
                fc=COLOURS[kind],
                ec="#1f2937" if kind != "op" else "#6b7280",
                lw=1.6 if kind != "op" else 1.0,
                zorder=2,
            )
        )
        weight = "bold" if kind != "op" else "normal"
        ax.text(x, y, labels[p.node], ha="center", va="center", fontsize=size, fontweight=weight, zorder=3)


def cost_line(params: int | None, flops: int | None, fitness: float | None = None, metric: str = "fitness") -> str:
    """``params 18.0k · FLOPs 395.1M · val_auc 0.8123``."""
    parts = [f"params {si(params)}", f"FLOPs {si(flops)}"]
    if fitness is not None:
        parts.append(f"{metric} {fitness:.4f}")
    return " · ".join(parts)
