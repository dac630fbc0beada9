"""``build_report``: from a run directory's journal to ``report.html``, ``report.md`` and figures.

This module owns the report's inputs and outputs: it checks the run
directory and its ``events.jsonl`` (read with ``engine.read_journal``,
which skips the torn last line of a crashed run), prepares the output folder,
and writes the two documents and the ``figures/`` beside them. Every problem
a user can cause is an ``engine.errors.UserError`` naming the path.

It reads nothing of the run but the journal (and, given one, a table file:
``overlay``), and it never imports torch or Textual.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine import events as ev

from engine.atomic import atomic_write_text
from engine.errors import UserError, os_error_message
from engine.journal import read_journal
from engine.rundir import RunDir

from .figures import FigureFile, write_figures
from .overlay import TableOverlay, load_overlay
from .render import render_html, render_markdown
from .summary import RunSummary, summarise

__all__ = ["FIGURES", "DEFAULT_TOP_K", "ReportFiles", "read_run", "default_output", "build_report"]

FIGURES = "figures"  # folder of PNG / SVG files beside the documents
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class ReportFiles:
    """What ``build_report`` wrote, and the summary it drew from."""

    html: Path
    markdown: Path
    figures: tuple[FigureFile, ...]
    summary: RunSummary
    table: TableOverlay | None = None


def read_run(run_dir: str | os.PathLike[str]) -> tuple[Path, list[ev.Event]]:
    """The journal path of ``run_dir`` and its readable events.

    Raises:
        UserError: no such directory, no ``events.jsonl`` (or not a file), an
            unreadable journal, or one without a single readable event.
    """
    path = Path(run_dir).expanduser()
    if not path.exists():
        raise UserError(f"no run directory at {path}")
    if not path.is_dir():
        raise UserError(f"{path} is not a run directory (not a directory)")
    journal = RunDir(path, resolve=False).journal_path
    if not journal.exists():
        raise UserError(f"{path} has no {journal.name}: not a run directory, or the run has not started")
    if not journal.is_file():
        raise UserError(f"{journal} is not a file")
    try:
        events = read_journal(journal, strict=True)  # a corrupt line is an error; a torn last one is not
    except OSError as exc:
        raise UserError(f"cannot read the journal: {os_error_message(exc, journal)}") from None
    if not events:
        raise UserError(f"{journal} holds no readable event")
    return journal, events


def default_output(run_dir: str | os.PathLike[str]) -> Path:
    """Where the report goes without ``-o``: ``RUN_DIR/report``."""
    return RunDir(Path(run_dir).expanduser(), resolve=False).report_dir


def _prepare(out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"cannot write the report to {out_dir}: it is a file, not a folder")
    figures = out_dir / FIGURES
    try:
        figures.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".report-write-test"
        probe.write_text("")
        probe.unlink()
        # Cells of an earlier report of this run may outnumber this one's.
        for old in figures.glob("cell_rank*.*"):
            old.unlink()
    except OSError as exc:
        raise UserError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    return figures


def _write_text(path: Path, text: str) -> None:
    # a path that is not UTF-8 (a lone surrogate from os.fsdecode) is shown as U+FFFD: the page stays valid UTF-8
    atomic_write_text(path, text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def build_report(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
    table: str | os.PathLike[str] | None = None,
) -> ReportFiles:
    """Write ``report.html``, ``report.md`` and ``figures/`` for the run in ``run_dir``.

    Args:
        run_dir: a run directory (finished, stopped, crashed or still running).
        out_dir: the folder to write to (created); default ``RUN_DIR/report``.
        top_k: how many of the best cells to draw.
        table: a table file (``nas3d-tui bench table``) whose optimum and
            random-search expectation the anytime curve shows; its
            ``search.fitness`` must be the run's.

    Returns:
        The written files and the summary of the journal.

    Raises:
        UserError: a bad run directory or journal, an output folder that
            cannot be written (the message names the path), or a bad table
            or one of another fitness (``TableError``); nothing is written then.
    """
    journal, events = read_run(run_dir)
    summary = summarise(events)
    overlay = load_overlay(table, summary.fitness_metric) if table is not None else None
    out = Path(out_dir).expanduser() if out_dir is not None else default_output(run_dir)
    figures_dir = _prepare(out)
    try:
        figures = tuple(write_figures(summary, figures_dir, top_k=top_k, table=overlay))
        html_path, md_path = out / "report.html", out / "report.md"
        _write_text(html_path, render_html(summary, figures, out, journal, top_k, overlay))
        _write_text(md_path, render_markdown(summary, figures, out, journal, top_k, overlay))
    except OSError as exc:
        raise UserError(f"cannot write the report: {os_error_message(exc)}") from None
    return ReportFiles(html_path, md_path, figures, summary, overlay)
