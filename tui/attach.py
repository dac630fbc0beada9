"""``AttachHandle``: watch and steer a run that another process drives.

Events come from ``RUN_DIR/events.jsonl``: first its history (every complete
line it holds when the dashboard starts, delivered at once; ``catching_up``
says it is still being delivered, so the dashboard folds it without drawing
each event), then the lines appended after it, as they come. Commands go to
``RUN_DIR/control.json``, which the running session polls at batch
boundaries. Closing only stops the tailing: the run goes on.
No torch, no Textual.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

from engine import control
from engine import events as ev
from engine.journal import open_history, tail_journal
from engine.rundir import RunDir

from .handle import HandleError, Sink

__all__ = ["AttachHandle", "AttachError"]


class AttachError(HandleError):
    """The run directory cannot be attached to (the message is one line for the CLI)."""


class AttachHandle:
    """Tails ``run_dir/events.jsonl`` in a daemon thread and writes commands to ``control.json``.

    Args:
        run_dir: the run directory.
        poll: seconds between looks at the journal once its history is delivered.
        history: the journal's events so far and the offset after them, when the
            caller has already opened it (``engine.journal.open_history``: it is
            then not read twice). The events may be an iterator: they are
            delivered one at a time, a long run's never all in memory at once.

    Raises:
        AttachError: ``run_dir`` is not a directory or holds no journal.
    """

    attached = True

    def __init__(self, run_dir: str | Path, poll: float = 0.2, history: tuple[Iterable[ev.Event], int] | None = None) -> None:
        path = Path(run_dir)
        if not path.is_dir():
            raise AttachError(f"cannot attach: no run directory at {path}")
        layout = RunDir(path, resolve=False)
        self._journal = layout.journal_path
        self._control = layout.control_path
        if not self._journal.is_file():
            raise AttachError(f"cannot attach: {path} has no {self._journal.name} (not a run directory, or not started yet)")
        self.run_dir = path
        self.poll = poll
        self._stop = threading.Event()
        self._ended = threading.Event()  # a RunFinished / RunFailed was read
        self._caught_up = threading.Event()  # the history was delivered
        self._history = history
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self, sink: Sink) -> None:
        self._thread = threading.Thread(target=self._tail, args=(sink,), name="attach-tail", daemon=True)
        self._thread.start()

    def _tail(self, sink: Sink) -> None:
        try:
            if self._history is None:
                opened = open_history(self._journal)
                self._history = (opened.events, opened.offset)
            history, offset = self._history
            self._history = None
            for event in history:
                self._deliver(sink, event)
            self._caught_up.set()
            for event in tail_journal(self._journal, self._stop, poll=self.poll, start_at=offset):
                self._deliver(sink, event)
        except OSError as exc:  # the journal vanished or became unreadable
            self.error = f"reading {self._journal}: {exc}"
            sink(ev.RunFailed(error=self.error))
        finally:
            self._caught_up.set()

    def _deliver(self, sink: Sink, event: ev.Event) -> None:
        sink(event)
        # Keep tailing after the end: a `resume` of this run appends to the same journal.
        if isinstance(event, (ev.RunFinished, ev.RunFailed)):
            self._ended.set()
        elif isinstance(event, ev.RunStarted):
            self._ended.clear()

    def pause(self) -> None:
        control.write_command(self._control, "pause")

    def resume(self) -> None:
        control.write_command(self._control, "resume")

    def stop(self) -> None:
        control.write_command(self._control, "stop")

    def close(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(min(timeout, max(1.0, 5 * self.poll)))

    @property
    def finished(self) -> bool:
        return self._ended.is_set()

    @property
    def catching_up(self) -> bool:
        """True while the journal's history is being delivered (the dashboard draws once it is in)."""
        return self._thread is not None and not self._caught_up.is_set()
