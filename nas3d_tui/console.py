"""Headless console sink: a rich progress bar over the budget and one line per candidate.

Used by ``nas3d-tui run --headless`` and ``resume --headless`` for batch jobs
(nohup, tmux, a cluster scheduler). It only consumes events.
"""
from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from engine import events as ev

__all__ = ["ConsoleSink"]


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


class ConsoleSink:
    """Prints a run's events to a terminal (or a log file, without the live bar)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=False, highlight=False, soft_wrap=True)
        self._lock = threading.RLock()
        self._progress: Progress | None = None
        self._task = None

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
        out = self.console.print
        if isinstance(e, ev.RunStarted):
            verb = "resumed" if e.resumed else "started"
            out(
                f"[bold]{e.run_name}[/] {verb}: {e.dataset} {e.size}³ on {e.device}, "
                f"budget {e.budget}, NP {e.population}, fitness {e.fitness}\n  run dir: {e.run_dir}"
            )
            self._bar(e.budget, 0)
        elif isinstance(e, ev.CandidateFinished):
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, completed=e.trained, total=e.budget)
            if e.status == "ok":
                out(
                    f"#{e.candidate_id:<4} g{e.generation} {e.phase:<8} ok       fitness {_fmt(e.fitness)} "
                    f"auc {_fmt(e.val_auc)} params {e.params:,} FLOPs {e.flops:,} "
                    f"{e.epochs} ep {e.seconds:.1f}s  [{e.trained}/{e.budget}]"
                )
            elif e.status == "duplicate":
                out(f"#{e.candidate_id:<4} g{e.generation} {e.phase:<8} duplicate of #{e.duplicate_of}")
            elif e.status == "infeasible":
                out(f"#{e.candidate_id:<4} g{e.generation} {e.phase:<8} infeasible ({e.error})", style="dim")
            else:
                out(f"#{e.candidate_id:<4} g{e.generation} {e.phase:<8} {e.status.upper()}: {e.error}", style="red")
        elif isinstance(e, ev.GenerationFinished):
            out(
                f"generation {e.generation}: best {_fmt(e.best)} mean {_fmt(e.mean)} worst {_fmt(e.worst)} "
                f"({e.trained}/{e.budget} trained)",
                style="bold cyan",
            )
        elif isinstance(e, ev.Jump):
            out(f"generation {e.generation}: generation jumping ({e.proposed} opposites)", style="cyan")
        elif isinstance(e, ev.Paused):
            out("paused (resume from an attached dashboard)", style="yellow")
        elif isinstance(e, ev.Resumed):
            out("resumed", style="yellow")
        elif isinstance(e, ev.StopRequested):
            out("stop requested: finishing at the next batch boundary and writing a checkpoint", style="yellow")
        elif isinstance(e, ev.FinalStarted):
            out(f"final phase: retraining candidates {e.candidate_ids} for {e.epochs} epochs, seeds {e.seeds}")
        elif isinstance(e, ev.FinalResult):
            out(
                f"final #{e.candidate_id} seed {e.seed}: test AUC {e.test_auc:.4f} ACC {e.test_acc:.4f} "
                f"(val ACC {e.val_acc:.4f}) → {e.weights_path}",
                style="green",
            )
        elif isinstance(e, ev.RunFinished):
            self.close()
            best = f"best #{e.best_candidate_id} fitness {_fmt(e.best_fitness)}" if e.best_candidate_id is not None else "no result"
            out(f"run {e.reason}: {e.trained} trained in {e.seconds / 60:.1f} min, {best}", style="bold")
        elif isinstance(e, ev.RunFailed):
            self.close()
            out(f"run failed: {e.error}", style="bold red")
