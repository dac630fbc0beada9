"""Text drawing of a cell (a NAS-Bench-101 style DAG) for the Cell panel.

Pure functions over a plain adjacency matrix and operation indices, so the
drawing can be tested without Textual. No torch; the operation names come
from ``engine.operations.OPERATIONS`` (no numpy).

The drawing puts one vertex per line, ordered by layer (longest path from the
input), and draws every edge as a vertical lane on the left, like a
``git log --graph``: a lane leaves its source with ``┐``/``┬`` and joins its
target with ``┘``/``┴``. Each line also lists the vertex's predecessors in
text (``← 0,2``), so every edge can be read without following lanes.
"""
from __future__ import annotations

from typing import Sequence

__all__ = ["op_label", "layers", "render_cell", "INPUT_LABEL", "OUTPUT_LABEL"]

INPUT_LABEL = "input"
OUTPUT_LABEL = "output"


def op_label(index: int) -> str:
    """Short name of an operation index (``conv3·IN·ReLU``), or ``op?N`` if unknown."""
    from engine.operations import OPERATIONS  # (no numpy: the first drawing of a cell stays quick)

    if 0 <= int(index) < len(OPERATIONS):
        return OPERATIONS[int(index)].short
    return f"op?{index}"


def _edges(matrix: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    n = len(matrix)
    return [(i, j) for i in range(n) for j in range(n) if i != j and matrix[i][j]]


def layers(matrix: Sequence[Sequence[int]]) -> list[int]:
    """Layer of every vertex: the length of the longest path from vertex 0 (0 if unreachable)."""
    n = len(matrix)
    depth = [0] * n
    # The matrix is upper-triangular (topological order), so one forward pass suffices.
    for j in range(n):
        for i in range(j):
            if matrix[i][j]:
                depth[j] = max(depth[j], depth[i] + 1)
    return depth


def _assign_lanes(edges: list[tuple[int, int]], row_of: dict[int, int]) -> list[int]:
    """Lane (column) of every edge.

    Short edges are placed first so they sit next to the vertices and long ones
    run outside them (fewer crossings); two edges share a lane only when their
    row spans do not touch.
    """
    spans = [(row_of[i], row_of[j]) for i, j in edges]
    order = sorted(range(len(edges)), key=lambda e: (spans[e][1] - spans[e][0], spans[e][0]))
    taken: list[list[tuple[int, int]]] = []  # row spans already drawn in each lane
    lane_of = [0] * len(edges)
    for e in order:
        top, bottom = spans[e]
        for lane, used in enumerate(taken):
            if all(bottom < a or top > b for a, b in used):
                lane_of[e] = lane
                used.append((top, bottom))
                break
        else:
            lane_of[e] = len(taken)
            taken.append([(top, bottom)])
    return lane_of


def render_cell(matrix: Sequence[Sequence[int]], ops: Sequence[int], spacious: bool = True) -> list[str]:
    """Draw a cell as lines of text.

    Args:
        matrix: pruned adjacency (n×n, 0/1, upper-triangular), vertex 0 the
            input and vertex n-1 the output.
        ops: operation indices of the n-2 intermediate vertices.
        spacious: put a line of lanes between vertex lines (False: one line per vertex).

    Returns:
        One line per vertex (its marker ``●``, or ``◉`` for the input and the
        output, the edge lanes, its id, its operation or ``▸ input`` /
        ``◂ output``, and ``← predecessors``), with a spacer line of lanes
        between vertices unless ``spacious`` is False. A matrix with fewer
        than two vertices gives a one-line explanation instead.
    """
    n = len(matrix)
    if n < 2:
        return [f"{INPUT_LABEL} ╳ {OUTPUT_LABEL}  (no input→output path)"]
    names = [f"▸ {INPUT_LABEL}"] + [op_label(o) for o in list(ops)[: n - 2]] + [f"◂ {OUTPUT_LABEL}"]
    while len(names) < n:  # ops shorter than the matrix: keep drawing, mark unknown
        names.insert(-1, "op?")
    depth = layers(matrix)
    order = sorted(range(n), key=lambda v: (v == n - 1, depth[v], v))  # output always last
    row_of = {v: r for r, v in enumerate(order)}
    edges = _edges(matrix)
    lane_of = _assign_lanes(edges, row_of)
    n_lanes = max(lane_of, default=-1) + 1

    def lane_span(e: int) -> tuple[int, int]:
        return row_of[edges[e][0]], row_of[edges[e][1]]

    label_width = max(len(s) for s in names)
    lines: list[str] = []
    for r, v in enumerate(order):
        starts = {lane_of[e] for e in range(len(edges)) if lane_span(e)[0] == r}
        ends = {lane_of[e] for e in range(len(edges)) if lane_span(e)[1] == r}
        passing = {lane_of[e] for e in range(len(edges)) if lane_span(e)[0] < r < lane_span(e)[1]}
        reach = max(starts | ends, default=-1)
        graph = "◉" if v in (0, n - 1) else "●"
        for lane in range(n_lanes):
            joint = "─" if lane <= reach else " "
            if lane in starts:
                ch = "┐" if lane == reach else "┬"
            elif lane in ends:
                ch = "┘" if lane == reach else "┴"
            elif lane in passing:
                ch = "┼" if lane < reach else "│"
            else:
                ch = "─" if lane < reach else " "
            graph += joint + ch
        preds = sorted(i for i, j in edges if j == v)
        ident = f"{v}".rjust(len(str(n - 1)))
        text = f"{ident} {names[v].ljust(label_width)}"
        if v != 0:
            text += f"  ← {','.join(map(str, preds))}" if preds else "  ← (none)"
        lines.append(f"{graph}  {text}".rstrip())
        if spacious and r < n - 1:
            spacer = " "
            for lane in range(n_lanes):
                active = any(
                    lane_of[e] == lane and lane_span(e)[0] <= r < lane_span(e)[1] for e in range(len(edges))
                )
                spacer += " " + ("│" if active else " ")
            lines.append(spacer.rstrip())
    return lines
