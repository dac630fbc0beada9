"""The runs list as text: one row of cells per ``engine.runs.RunInfo`` (pure, no Textual).

Shared by ``nas3d-tui runs`` (a plain table on stdout) and the run picker
(``tui.screens.runs``), so both say the same thing.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Sequence

from engine.runs import RunInfo

from .fmt import DASH, duration, metric

__all__ = ["COLUMNS", "cells", "state_text", "progress_text", "age", "table"]

COLUMNS = ("RUN", "KIND", "STATE", "PROGRESS", "BEST", "TEST AUC", "STARTED", "LAST EVENT")


def state_text(r: RunInfo, now: float | None = None) -> str:
    """``running (pid 123)``, ``crashed``, ... (a held lock whose PID is unknown: ``running``).

    A run driven on another host: ``running on HOST (pid 123, seen 3s ago)``;
    one whose heartbeat there stopped: ``stale — last seen on HOST 5m 00s ago``.
    """
    now = time.time() if now is None else now
    seen = None if r.seen is None else now - r.seen
    if r.state == "running" and r.host:
        pid = f"pid {r.pid}, " if r.pid is not None and r.pid > 0 else ""
        return f"running on {r.host} ({pid}seen {age(seen)})"
    if r.state == "stale" and r.host:
        return f"stale — last seen on {r.host} {age(seen)}"
    if r.state == "running" and r.pid is not None and r.pid > 0:
        return f"running (pid {r.pid})"
    return r.state


def progress_text(r: RunInfo) -> str:
    """``7/8 trained · gen 1 · final 2/2`` for a search, ``seeds 1/3`` for a train run."""
    if r.state == "damaged":
        return DASH
    if r.kind == "train":
        done = r.final_done if r.final_done is not None else (r.trained or 0)
        total = r.final_total if r.final_total is not None else r.budget
        return f"seeds {done}/{total if total is not None else '?'}"
    parts = [f"{r.trained if r.trained is not None else 0}/{r.budget if r.budget is not None else '?'} trained"]
    if r.generation is not None:
        parts.append(f"gen {r.generation}")
    if r.final_total is not None:
        parts.append(f"final {r.final_done or 0}/{r.final_total}")
    return " · ".join(parts)


def age(seconds: float | None) -> str:
    """``12s ago``, ``3m 05s ago``, ``2d 4h ago``."""
    if seconds is None:
        return DASH
    seconds = max(0.0, seconds)
    if seconds >= 86400:
        d, rest = divmod(int(seconds), 86400)
        return f"{d}d {rest // 3600}h ago"
    return f"{duration(seconds) if seconds >= 10 else f'{int(seconds)}s'} ago"


def _best(r: RunInfo) -> str:
    if r.best_fitness is None:
        return DASH
    return f"{metric(r.best_fitness)} #{r.best_candidate_id}"


def _auc(r: RunInfo) -> str:
    if r.test_auc is None:
        return DASH
    if r.test_auc_std is None:
        return metric(r.test_auc)
    return f"{metric(r.test_auc)} ± {metric(r.test_auc_std)}"


def _when(ts: float | None) -> str:
    return DASH if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def cells(r: RunInfo, now: float | None = None) -> tuple[str, ...]:
    """The row of ``r`` under ``COLUMNS``; a damaged run's error stands in its PROGRESS cell."""
    now = time.time() if now is None else now
    last = None if r.last_event is None else now - r.last_event
    if r.state == "damaged":
        return (r.name, r.kind or "?", state_text(r, now), r.error, DASH, DASH, DASH, DASH)
    return (r.name, r.kind, state_text(r, now), progress_text(r), _best(r), _auc(r), _when(r.started), age(last))


def _resume(path: str) -> str:
    return f"nas3d-tui resume {path}"


def table(runs: Sequence[RunInfo], now: float | None = None,
          resume_command: Callable[[str], str] = _resume) -> str:
    """A plain aligned table, one line per run; a failed run's error follows its line.

    A stale run's line is followed by the command that continues it
    (``resume_command(path)``), if its old driver is really gone.
    """
    rows = [COLUMNS] + [cells(r, now) for r in runs]
    damaged_col = COLUMNS.index("PROGRESS")
    # a damaged run's message does not widen its column for the others
    widths = [max(len(row[i]) for k, row in enumerate(rows)
                  if not (k and runs[k - 1].state == "damaged" and i == damaged_col)) for i in range(len(COLUMNS))]
    lines = []
    for k, row in enumerate(rows):
        r = runs[k - 1] if k else None
        if r is not None and r.state == "damaged":
            head = "  ".join(c.ljust(w) for c, w in zip(row[:damaged_col], widths))
            lines.append(f"{head}  {row[damaged_col]}")
            continue
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
        if r is not None and r.state == "failed" and r.error:
            line += f"  ({r.error})"
        if r is not None and r.state == "stale":
            line += f"  (presumed dead: continue it with {resume_command(r.path)})"
        lines.append(line)
    return "\n".join(lines)
