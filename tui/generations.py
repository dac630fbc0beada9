"""Per-generation fitness made readable at any number of generations (pure, no Textual, no torch).

A long search has hundreds of generations and as many generation jumps; drawn
one point and one full-height line each, the plot is a wall. The dashboard
shows a window of the most recent generations (``recent``); the report, which
shows the whole run, merges consecutive generations into bins (``binned``).
Either way the jumps are counted per shown point, so a plot can mark them
with a small tick instead of a line each (``sparse_jumps``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["GenerationPoint", "points", "recent", "binned", "sparse_jumps", "MAX_JUMP_LINES"]

MAX_JUMP_LINES = 6  # more jumps than this in view: ticks, not lines


@dataclass(frozen=True)
class GenerationPoint:
    """Generations ``first``..``last`` (one or a bin): best of the bests, mean of the means, worst of the worsts."""

    first: int
    last: int
    best: float
    mean: float
    worst: float
    jumps: int = 0  # generation jumps in first..last

    @property
    def x(self) -> float:
        return (self.first + self.last) / 2


def points(gens: Sequence[int], best: Sequence[float], mean: Sequence[float], worst: Sequence[float],
           jumps: Iterable[int] = ()) -> list[GenerationPoint]:
    """One point per generation, in generation order."""
    jumped: dict[int, int] = {}
    for g in jumps:
        jumped[g] = jumped.get(g, 0) + 1
    rows = sorted(zip(gens, best, mean, worst))
    return [GenerationPoint(g, g, b, m, w, jumped.get(g, 0)) for g, b, m, w in rows]


def recent(pts: Sequence[GenerationPoint], window: int) -> list[GenerationPoint]:
    """The last ``window`` points (all of them when there are fewer)."""
    return list(pts[-max(1, window):])


def binned(pts: Sequence[GenerationPoint], max_points: int) -> list[GenerationPoint]:
    """At most ``max_points`` points: consecutive generations merged into bins of equal size (the last may be short)."""
    if len(pts) <= max_points:
        return list(pts)
    size = math.ceil(len(pts) / max(1, max_points))
    out = []
    for k in range(0, len(pts), size):
        chunk = pts[k:k + size]
        out.append(GenerationPoint(
            chunk[0].first, chunk[-1].last,
            max(p.best for p in chunk),
            sum(p.mean for p in chunk) / len(chunk),
            min(p.worst for p in chunk),
            sum(p.jumps for p in chunk),
        ))
    return out


def sparse_jumps(pts: Sequence[GenerationPoint]) -> tuple[list[float], bool]:
    """Where the shown points had jumps, and whether so few that each may get a full line."""
    xs = [p.x for p in pts if p.jumps]
    return xs, len(xs) <= MAX_JUMP_LINES
