"""``build_comparison``: from two or more run directories' journals to one HTML + Markdown report.

This module owns the comparison's inputs and outputs: it reads each run's
``events.jsonl`` with the single-run report's checked reader (``read_run``),
refuses a run given twice, prepares the output folder and writes
``comparison.html``, ``comparison.md`` and their ``figures/``. Every problem a
user can cause is an ``engine.errors.UserError`` naming the path.

It reads nothing of the runs but their journals; no torch, no Textual.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from engine.errors import UserError, os_error_message

from .build import _prepare, _write_text, read_run
from .compare import Comparison, compare
from .compare_figures import write_comparison_figures
from .compare_render import render_comparison_html, render_comparison_markdown
from .figures import FigureFile
from .summary import summarise

__all__ = ["ComparisonFiles", "build_comparison", "HTML", "MARKDOWN"]

HTML, MARKDOWN = "comparison.html", "comparison.md"


@dataclass(frozen=True)
class ComparisonFiles:
    """What ``build_comparison`` wrote, and the comparison it drew from."""

    html: Path
    markdown: Path
    figures: tuple[FigureFile, ...]
    comparison: Comparison


def build_comparison(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> ComparisonFiles:
    """Write ``comparison.html``, ``comparison.md`` and ``figures/`` for ``run_dirs`` side by side.

    Args:
        run_dirs: two or more run directories (finished, stopped, crashed or running), in the order to show.
        out_dir: the folder to write to (created).

    Raises:
        UserError: fewer than two runs, a run given twice, a bad run directory
            or journal, or an output folder that cannot be written.
    """
    if len(run_dirs) < 2:
        raise UserError(f"a comparison needs two or more runs; got {len(run_dirs)}")
    seen: dict[Path, str] = {}
    runs = []
    for given in run_dirs:
        journal, events = read_run(given)
        where = journal.parent.resolve()
        if where in seen:
            raise UserError(f"{given}: the same run as {seen[where]}; give each run once")
        seen[where] = str(given)
        runs.append((Path(given).expanduser(), journal, events, summarise(events)))
    comparison = compare(runs)
    out = Path(out_dir).expanduser()
    if out.resolve() in seen:
        raise UserError(f"{out}: a run directory; write the comparison elsewhere")
    figures_dir = _prepare(out)
    try:
        figures = tuple(write_comparison_figures(comparison, figures_dir))
        html_path, md_path = out / HTML, out / MARKDOWN
        _write_text(html_path, render_comparison_html(comparison, figures, out))
        _write_text(md_path, render_comparison_markdown(comparison, figures, out))
    except OSError as exc:
        raise UserError(f"cannot write the comparison: {os_error_message(exc)}") from None
    return ComparisonFiles(html_path, md_path, figures, comparison)
