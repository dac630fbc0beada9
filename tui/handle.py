"""The run handle: what the dashboard drives, whatever runs the search.

A handle delivers events to a sink (from any thread) and takes commands. The
in-process session handle (``nas3d_tui``), ``AttachHandle`` (another process,
through ``events.jsonl`` and ``control.json``) and ``ReplayHandle`` (a recorded
journal) all satisfy ``RunHandle``. A handle that first delivers a run's
history may say so with a ``catching_up`` property (True while it does): the
dashboard then folds those events without drawing until they are all in.
No torch, no Textual.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from engine.errors import UserError
from engine.events import Event

__all__ = ["RunHandle", "Sink", "HandleError"]

Sink = Callable[[Event], None]


class HandleError(UserError, ValueError):
    """A handle cannot be opened (missing run directory, no journal); the message is one line."""


@runtime_checkable
class RunHandle(Protocol):
    """A search run the dashboard watches and steers."""

    run_dir: Path
    attached: bool  # True when quitting only detaches and the run goes on

    def start(self, sink: Sink) -> None:
        """Begin delivering events to ``sink`` (any thread), replaying existing ones first."""

    def pause(self) -> None:
        """Ask the run to pause at the next batch boundary."""

    def resume(self) -> None:
        """Ask a paused run to continue."""

    def stop(self) -> None:
        """Ask the run to stop, saving its search state (non-blocking)."""

    def close(self, timeout: float = 30) -> None:
        """Quit: in-process, stop and join the engine; attached, stop watching only."""

    @property
    def finished(self) -> bool:
        """True once no more events will come."""
