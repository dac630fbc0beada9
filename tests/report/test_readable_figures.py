"""The report's charts stay readable (issue 21): long runs, a run that ended inside generation 0, the legends."""
from __future__ import annotations

import random

import pytest
from matplotlib.lines import Line2D

from report_runs import synthetic_events
from engine import events as ev
from nas3d_tui.report import summarise
from nas3d_tui.report.figures import MAX_GENERATION_POINTS, draw_chart
from tui.generations import MAX_JUMP_LINES, binned, points, recent, sparse_jumps

pytestmark = pytest.mark.timeout(120)


def long_run(generations: int = 143, jump_every: int = 2) -> list[ev.Event]:
    """A run of ``generations`` DE generations, a generation jump in every ``jump_every``-th one."""
    rng = random.Random(3)
    out: list[ev.Event] = [ev.RunStarted(ts=0.0, run_name="long", run_dir="runs/long", dataset="adrenalmnist3d", size=28,
                                         device="cpu", budget=generations * 5, population=5, num_classes=2,
                                         task="binary-class")]
    best = 0.6
    for g in range(generations):
        best = min(0.95, best + rng.uniform(0, 0.004))
        out.append(ev.GenerationFinished(ts=g + 1.0, generation=g, best=best, mean=best - 0.05, worst=best - 0.1,
                                         trained=5 * (g + 1), budget=generations * 5, best_candidate_id=0))
        if g % jump_every == 1:
            out.append(ev.Jump(ts=g + 1.5, generation=g, proposed=5))
    return out


def lines_of(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


class TestGenerationPoints:
    def test_bins_merge_consecutive_generations_and_keep_their_extremes(self) -> None:
        gens = list(range(10))
        pts = points(gens, [g / 10 for g in gens], [g / 20 for g in gens], [g / 40 for g in gens], [1, 1, 7])
        merged = binned(pts, 4)
        assert [(p.first, p.last) for p in merged] == [(0, 2), (3, 5), (6, 8), (9, 9)]
        assert merged[0].best == 0.2 and merged[0].worst == 0.0 and merged[0].jumps == 2
        assert merged[2].jumps == 1 and merged[1].mean == pytest.approx((0.15 + 0.2 + 0.25) / 3)
        assert binned(pts, 10) == pts

    def test_the_window_is_the_most_recent_generations(self) -> None:
        pts = points(list(range(143)), [0.5] * 143, [0.4] * 143, [0.3] * 143)
        assert [p.first for p in recent(pts, 40)] == list(range(103, 143))

    def test_jumps_get_lines_only_when_few(self) -> None:
        few = points([0, 1, 2], [1, 1, 1], [1, 1, 1], [1, 1, 1], [1])
        many = points(list(range(20)), [1] * 20, [1] * 20, [1] * 20, range(20))
        assert sparse_jumps(few) == ([1.0], True)
        assert sparse_jumps(many)[1] is False and len(sparse_jumps(many)[0]) == 20 > MAX_JUMP_LINES


class TestGenerationChart:
    def test_143_generations_are_binned_with_a_tick_per_jump_and_no_jump_lines(self) -> None:
        fig, _, caption = draw_chart("fitness_by_generation", summarise(long_run()))
        ax = fig.axes[0]
        best = next(line for line in ax.get_lines() if line.get_label() == "best")
        assert len(best.get_xdata()) <= MAX_GENERATION_POINTS
        assert best.get_marker() in ("None", "", None)  # plain lines, not a wall of markers
        vertical = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]
        assert vertical == []  # no axvline per jump
        ticks = next(line for line in ax.get_lines() if "jump" in line.get_label())
        assert 0 < len(ticks.get_xdata()) <= MAX_GENERATION_POINTS
        assert "143 generations, in bins of 3" in caption and "71 generations had a generation jump" in caption

    def test_a_few_generations_keep_a_point_each_and_a_line_per_jump(self) -> None:
        fig, _, caption = draw_chart("fitness_by_generation", summarise(long_run(6, jump_every=4)))
        ax = fig.axes[0]
        best = next(line for line in ax.get_lines() if line.get_label() == "best")
        assert list(best.get_xdata()) == [0, 1, 2, 3, 4, 5] and best.get_marker() == "o"
        assert "Generation jumps in generation 1, 5." in caption

    def test_a_run_that_ended_inside_generation_0_shows_what_it_trained(self) -> None:
        events = synthetic_events()
        cut = next(i for i, e in enumerate(events) if isinstance(e, ev.GenerationFinished))
        trained = [e for e in events[:cut] if isinstance(e, ev.CandidateFinished) and e.status == "ok"]
        events = events[:cut] + [ev.RunFinished(ts=events[cut - 1].ts + 1, reason="budget", trained=len(trained),
                                                seconds=100.0)]
        fig, _, caption = draw_chart("fitness_by_generation", summarise(events))
        ax = fig.axes[0]
        assert not any("no generation finished" in t.get_text() for t in ax.texts)
        partial = next(line for line in ax.get_lines() if "unfinished" in line.get_label())
        fits = [e.fitness for e in trained]
        assert sorted(partial.get_ydata()) == pytest.approx(sorted([min(fits), sum(fits) / len(fits), max(fits)]))
        assert f"ended inside generation 0: its {len(trained)} trained candidates" in caption


@pytest.mark.parametrize("name", ["anytime", "fitness_by_generation"])
def test_legends_sit_outside_the_plotted_area(name) -> None:
    fig, _, _ = draw_chart(name, summarise(synthetic_events()))
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    area = ax.get_window_extent()
    assert legend.x0 >= area.x1 - 1  # right of the axes: it covers no point, the last ones included
    assert legend.x1 <= fig.bbox.x1 + 1  # and still inside the picture


# -- drawn cells: every edge on its own segments ------------------------------------------------

def _overlap(p: tuple, q: tuple, r: tuple, s: tuple, eps: float = 1e-9) -> float:
    """Length two segments pq and rs have in common (0 unless they lie on one line)."""
    d = (q[0] - p[0], q[1] - p[1])
    length = (d[0] ** 2 + d[1] ** 2) ** 0.5
    if length < eps:
        return 0.0
    cross = lambda a: d[0] * (a[1] - p[1]) - d[1] * (a[0] - p[0])  # noqa: E731
    if abs(cross(r)) > eps * length or abs(cross(s)) > eps * length:
        return 0.0
    t = sorted(((a[0] - p[0]) * d[0] + (a[1] - p[1]) * d[1]) / length for a in (r, s))
    return max(0.0, min(length, t[1]) - max(0.0, t[0]))


def random_cells(count: int, seed: int = 0) -> list[list[list[int]]]:
    """Upper-triangular cells of 2 to 7 nodes, dense and sparse, every node on an input→output path."""
    rng = random.Random(seed)
    cells = [[[1 if j > i else 0 for j in range(7)] for i in range(7)]]  # every edge of the space
    while len(cells) < count:
        n = rng.randint(2, 7)
        p = rng.choice([0.3, 0.5, 0.8])
        m = [[1 if j > i and rng.random() < p else 0 for j in range(n)] for i in range(n)]
        for v in range(1, n):  # reach every node from the input and the output from every node
            if not any(m[i][v] for i in range(v)):
                m[rng.randrange(v)][v] = 1
        for v in range(n - 1):
            if not any(m[v][j] for j in range(v + 1, n)):
                m[v][rng.randrange(v + 1, n)] = 1
        cells.append(m)
    return cells


@pytest.mark.parametrize("matrix", random_cells(150))
def test_no_two_edges_of_a_drawn_cell_share_a_segment(matrix) -> None:
    from nas3d_tui.report.cellplot import BOX_H, BOX_W, edge_routes, layered_layout

    placed = layered_layout(matrix)
    routes, _ = edge_routes(matrix, placed)
    assert len(routes) == sum(map(sum, matrix))
    segments = [[(a, b) for a, b in zip(route, route[1:])] for route in routes]
    for e, mine in enumerate(segments):
        for f in range(e + 1, len(segments)):
            for p, q in mine:
                for r, s in segments[f]:
                    assert _overlap(p, q, r, s) < 1e-6, (matrix, e, f, (p, q), (r, s))
    boxes = [(p.x - BOX_W / 2, -p.layer - BOX_H / 2, p.x + BOX_W / 2, -p.layer + BOX_H / 2) for p in placed]
    for route in routes:  # lanes and gap crossings run between boxes, never through one
        for (x0, y0), (x1, y1) in zip(route[1:-2], route[2:-1]):
            for bx0, by0, bx1, by1 in boxes:
                inside = max(x0, x1) > bx0 + 1e-9 and min(x0, x1) < bx1 - 1e-9 and \
                    max(y0, y1) > by0 + 1e-9 and min(y0, y1) < by1 - 1e-9
                assert not inside, (matrix, route)
