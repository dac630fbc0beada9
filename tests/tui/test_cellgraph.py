"""The text drawing of a cell: every node, every edge, input and output marked."""
from __future__ import annotations

import random
import re

import pytest

from engine.space import OPERATIONS
from tui.cellgraph import layers, op_label, render_cell

LANE_CHARS = set("◉●─┬┐┴┘┼│ ")

GRAPHS = {
    "reference": ([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], [4, 9, 10]),
    "skip": ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [2]),  # input → output skip edge
    "chain": ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [0, 14]),
    "seven": (
        [
            [0, 1, 0, 0, 0, 0, 1],
            [0, 0, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        [0, 3, 6, 9, 14],
    ),
    "full": ([[1 if j > i else 0 for j in range(7)] for i in range(7)], [1, 5, 7, 11, 13]),
}


def node_lines(lines: list[str]) -> dict[int, tuple[str, str]]:
    """vertex id -> (lane drawing, text after it) for every vertex line."""
    out = {}
    for line in lines:
        m = re.match(r"^([◉●─┬┐┴┘┼│ ]+?)\s+(\d+) (.*)$", line)
        if m and line[0] in "◉●":
            out[int(m.group(2))] = (m.group(1), m.group(3))
    return out


def edges(matrix):
    return [(i, j) for i in range(len(matrix)) for j in range(len(matrix)) if matrix[i][j]]


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_node_and_edge_is_shown(name: str) -> None:
    matrix, ops = GRAPHS[name]
    lines = render_cell(matrix, ops)
    nodes = node_lines(lines)
    n = len(matrix)
    assert sorted(nodes) == list(range(n))
    # input and output are marked, and drawn with their own symbol
    assert "▸ input" in nodes[0][1] and nodes[0][0].startswith("◉")
    assert "◂ output" in nodes[n - 1][1] and nodes[n - 1][0].startswith("◉")
    for v, op in enumerate(ops, start=1):
        assert OPERATIONS[op].short in nodes[v][1]
        assert nodes[v][0].startswith("●")
    for v in range(1, n):
        preds = sorted(i for i, j in edges(matrix) if j == v)
        listed = re.search(r"← ([\d,]+)", nodes[v][1])
        assert listed is not None, nodes[v]
        assert [int(x) for x in listed.group(1).split(",")] == preds
    # every edge is drawn as a lane: it leaves its source and joins its target
    for v in range(n):
        graph = nodes[v][0]
        out_degree = sum(1 for i, _ in edges(matrix) if i == v)
        in_degree = sum(1 for _, j in edges(matrix) if j == v)
        assert graph.count("┐") + graph.count("┬") == out_degree, (name, v, graph)
        assert graph.count("┘") + graph.count("┴") == in_degree, (name, v, graph)


def test_skip_edge_runs_from_input_to_output() -> None:
    matrix, ops = GRAPHS["skip"]
    nodes = node_lines(render_cell(matrix, ops))
    assert "← 0,1" in nodes[2][1]


def test_lanes_connect_vertically() -> None:
    """Between vertex lines, a lane continues exactly where an edge is still open."""
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(2, 7)
        matrix = [[1 if j > i and rng.random() < 0.4 else 0 for j in range(n)] for i in range(n)]
        ops = [rng.randrange(len(OPERATIONS)) for _ in range(n - 2)]
        lines = render_cell(matrix, ops)
        nodes = node_lines(lines)
        assert sorted(nodes) == list(range(n))
        for v in range(n):
            graph = nodes[v][0]
            assert graph.count("┐") + graph.count("┬") == sum(matrix[v])
            assert graph.count("┘") + graph.count("┴") == sum(row[v] for row in matrix)
        # lanes are continuous: what leaves a row downwards arrives in the next one
        graph_width = max(len(nodes[v][0].rstrip()) for v in nodes)
        grid = [line[:graph_width].ljust(graph_width) for line in lines]
        for r in range(len(grid) - 1):
            for c in range(1, graph_width):
                down = grid[r][c] in "┐┬┼│"
                up = grid[r + 1][c] in "┘┴┼│"
                assert down == up, ("\n".join(lines), r, c)


def test_layers_are_longest_paths() -> None:
    matrix, _ = GRAPHS["reference"]
    assert layers(matrix) == [0, 1, 1, 2, 3]
    assert layers(GRAPHS["skip"][0]) == [0, 1, 2]


def test_empty_cell_is_explained() -> None:
    (line,) = render_cell([], [])
    assert "input" in line and "output" in line and "no input→output path" in line


def test_op_labels_come_from_the_search_space() -> None:
    assert op_label(0) == "conv3·IN·ReLU"
    assert op_label(6) == "IN·Mish·conv3"
    assert op_label(14) == "Mish·conv7"
    assert op_label(99) == "op?99"
