"""``SessionHandle``: the dashboard's view of a search running in this process.

The engine runs in a background thread; events reach the dashboard through a
bus subscription (after a replay of the run's journal, so a resumed run shows
its history); commands go to the session's ``Control``. Satisfies
``tui.handle.RunHandle``.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from engine import events as ev

from engine.journal import read_journal
from engine.session import SessionOutcome
from engine.session.lifecycle import RunLifecycle
from tui.handle import RunHandle, Sink

__all__ = ["SessionHandle"]


class SessionHandle:
    attached = False

    def __init__(self, session: RunLifecycle[Any]) -> None:  # a search (Session) or a train run (Retrain)
        self.session = session
        self.run_dir: Path = session.run_dir.path
        self.outcome: SessionOutcome | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, sink: Sink) -> None:
        for event in read_journal(self.session.run_dir.journal_path):
            sink(event)
        self.session.bus.subscribe(sink)
        self._thread = threading.Thread(target=self._run, name="nas3d-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.outcome = self.session.run()
        except Exception as exc:  # a bad input found at start: show it as FAILED
            self.error = exc
            self.session.publish(ev.RunFailed(error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__))

    def pause(self) -> None:
        """p in the dashboard: the engine pauses at its next batch boundary (``Control.pause``)."""
        self.session.control.pause()

    def resume(self) -> None:
        self.session.control.resume()

    def stop(self) -> None:
        self.session.control.stop()

    def close(self, timeout: float = 30) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.session.control.stop()
            self._thread.join(timeout)

    @property
    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()


def _as_run_handle(handle: SessionHandle) -> RunHandle:
    """(For mypy: a ``SessionHandle`` is a ``RunHandle``, the dashboard's ``p`` / ``s`` reach its pause / stop.)"""
    return handle
