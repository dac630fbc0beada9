"""What a report draws from a tabular benchmark (``nas3d-tui report RUN_DIR --table TABLE.json``, issue 29).

This module owns the two yardsticks the anytime curve gets from a table:
the table's optimum (the best fitness the search could be told by any of
its cells) and the random-search expectation (``engine.bench_table.
random_expectation`` over one fitness per cell). Each cell counts once,
with its default result (``BenchTable.cells[key][0]``, what a search
through the table is told for a seed the table does not hold), and the
fitness is the told one (a pruned training's is 0), as in a search.

It reads the table with ``engine.bench_table.read_table`` and refuses one
whose fitness metric is not the run's; it draws and writes nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.bench_table import TableError, random_expectation, read_table

__all__ = ["TableOverlay", "load_overlay"]


@dataclass(frozen=True)
class TableOverlay:
    """A table's optimum and random-search expectation, for the run whose fitness it shares."""

    path: Path
    fitness_metric: str
    cells: int
    optimum: float
    expectation: tuple[float, ...]  # expected best after b = 1..cells distinct cells drawn at random

    def expected_at(self, budget: int) -> float:
        """The expected best after ``budget`` cells (the optimum once the budget covers the table)."""
        return self.expectation[min(max(budget, 1), self.cells) - 1]


def load_overlay(path: str | os.PathLike[str], fitness_metric: str) -> TableOverlay:
    """Read a table and compute its lines for a run whose fitness is ``fitness_metric``.

    Raises:
        TableError: (a ``UserError``, one line) the file is missing or bad, holds no cell,
            or was built with another fitness than the run's.
    """
    p = Path(path).expanduser()
    table = read_table(p)
    fitness = str(table.header["protocol"]["fitness"])
    if fitness != fitness_metric:
        raise TableError(
            f"{p} was built with search.fitness = {fitness!r}; the run's fitness is {fitness_metric!r}: "
            "its optimum and expectation would not be on the curve's scale (give a table of the run's fitness)"
        )
    values = [entries[0].record.told_fitness for entries in table.cells.values()]
    if not values:
        raise TableError(f"{p} holds no cell: there is no optimum or expectation to draw")
    return TableOverlay(p, fitness, len(values), max(values), tuple(random_expectation(values)))
