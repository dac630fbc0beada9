"""``nas3d-tui report``: pictures and tables of a run, built from its journal (and, with ``--table``, a table file).

Modules, one concern each:

- ``summary``: the journal folded into a ``RunSummary`` (pure numbers);
- ``paper``: the published reference rows (the paper's Table 2);
- ``cellplot``: one cell drawn as a layered graph;
- ``overlay``: a table's optimum and random-search expectation (``--table``);
- ``figures``: the charts and cells as PNG and SVG (matplotlib, Agg, no pyplot);
- ``render``: the HTML page and the Markdown file;
- ``build``: checks the run directory, writes everything (``build_report``).

Nothing here imports torch or Textual; the report works on a machine that
only has the run directory.
"""
from __future__ import annotations

from .build import DEFAULT_TOP_K, ReportFiles, build_report, default_output, read_run
from .summary import RunSummary, summarise

__all__ = ["build_report", "default_output", "read_run", "ReportFiles", "RunSummary", "summarise", "DEFAULT_TOP_K"]
