"""Headless console sink: a rich progress bar over the budget and one line per notable event.

Used by ``nas3d-tui run --headless`` and ``resume --headless`` for batch jobs
(nohup, tmux, a cluster scheduler). It only consumes events; the words come
from ``tui.narrate.describe``, the same chain the dashboard's log uses.
"""
from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn, TaskID

from engine import events as ev
from tui.fmt import duration
from tui.narrate import describe

__all__ = ["ConsoleSink"]

_STYLE = {"warning": "yellow", "error": "bold red"}
_EMPHASIS = {
    ev.GenerationFinished: "bold cyan",
    ev.Jump: "cyan",
    ev.FinalResult: "green",
    ev.RunFinished: "bold",
}


class ConsoleSink:
    """Prints a run's events to a terminal (or a log file, without the live bar)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=False, highlight=False, soft_wrap=True)
        self._lock = threading.RLock()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._finals_total = 0  # finalist × seed trainings announced by FinalStarted
        self._finals_done = 0

    def _bar(self, total: int, done: int) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("trained"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
                disable=not self.console.is_terminal,
            )
            self._progress.start()
            self._task = self._progress.add_task("search", total=total, completed=done)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None

    def __call__(self, e: ev.Event) -> None:
        with self._lock:
            self._handle(e)

    def _handle(self, e: ev.Event) -> None:
        if isinstance(e, ev.CandidateStarted):
            return  # one line per candidate: its result
        if isinstance(e, ev.EpochFinished):
            if e.phase == "final":  # a final retraining runs for minutes: show that it moves
                self.console.print(self._final_epoch(e), style="dim", markup=False)
            return
        if isinstance(e, ev.FinalStarted):
            self._finals_total, self._finals_done = len(e.candidate_ids) * max(1, len(e.seeds)), 0
        elif isinstance(e, ev.FinalResult):
            self._finals_done += 1
        line = describe(e)
        if isinstance(e, (ev.RunFinished, ev.RunFailed)):
            self.close()
        if line is not None:
            level, text = line
            style = _STYLE.get(level) or _EMPHASIS.get(type(e))
            if isinstance(e, ev.CandidateFinished) and e.status == "infeasible":
                style = "dim"
            self.console.print(text, style=style, markup=False)
        if isinstance(e, ev.RunStarted):
            self.console.print(f"  run dir: {e.run_dir}", markup=False)
            self._bar(e.budget, 0)
        elif self._progress is not None and self._task is not None:
            # a resumed run starts its bar at 0: the first checkpoint or result says how far it is
            if isinstance(e, (ev.CandidateFinished, ev.GenerationFinished)) and e.budget:
                self._progress.update(self._task, completed=e.trained, total=e.budget)
            elif isinstance(e, ev.StateSaved):
                self._progress.update(self._task, completed=e.trained)

    def _final_epoch(self, e: ev.EpochFinished) -> str:
        of = f"/{e.max_epochs}" if e.max_epochs else ""
        done = f" ({self._finals_done}/{self._finals_total} retrainings done)" if self._finals_total else ""
        seed = f" seed {e.seed}" if e.seed is not None else ""
        return (f"  final #{e.candidate_id}{seed} epoch {e.epoch}{of}: train loss {e.train_loss:.4f}"
                f" · val loss {e.val_loss:.4f} · val ACC {e.val_acc:.4f} · val AUC {e.val_auc:.4f}"
                f" · {duration(e.seconds)}{done}")
