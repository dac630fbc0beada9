"""``AttachHandle``: watch and steer a run that another process drives.

Events come from tailing ``RUN_DIR/events.jsonl`` (replayed from the start);
commands go to ``RUN_DIR/control.json``, which the running session polls at
batch boundaries. Closing only stops the tailing: the run goes on.
No torch, no Textual.
"""
from __future__ import annotations

import threading
from pathlib import Path

from engine import control
from engine import events as ev
from engine.journal import tail_journal

from .handle import HandleError, Sink

__all__ = ["AttachHandle", "AttachError"]

JOURNAL = "events.jsonl"


class AttachError(HandleError):
    """The run directory cannot be attached to (the message is one line for the CLI)."""


class AttachHandle:
    """Tails ``run_dir/events.jsonl`` in a daemon thread and writes commands to ``control.json``.

    Raises:
        AttachError: ``run_dir`` is not a directory or holds no journal.
    """

    attached = True

    def __init__(self, run_dir: str | Path, poll: float = 0.2) -> None:
        path = Path(run_dir)
        if not path.is_dir():
            raise AttachError(f"cannot attach: no run directory at {path}")
        if not (path / JOURNAL).is_file():
            raise AttachError(f"cannot attach: {path} has no {JOURNAL} (not a run directory, or not started yet)")
        self.run_dir = path
        self.poll = poll
        self._stop = threading.Event()
        self._ended = threading.Event()  # a RunFinished / RunFailed was read
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self, sink: Sink) -> None:
        self._thread = threading.Thread(target=self._tail, args=(sink,), name="attach-tail", daemon=True)
        self._thread.start()

    def _tail(self, sink: Sink) -> None:
        try:
            for event in tail_journal(self.run_dir / JOURNAL, self._stop, poll=self.poll, from_start=True):
                sink(event)
                # Keep tailing after the end: a `resume` of this run appends to the same journal.
                if isinstance(event, (ev.RunFinished, ev.RunFailed)):
                    self._ended.set()
                elif isinstance(event, ev.RunStarted):
                    self._ended.clear()
        except OSError as exc:  # the journal vanished or became unreadable
            self.error = f"reading {self.run_dir / JOURNAL}: {exc}"
            sink(ev.RunFailed(error=self.error))

    def pause(self) -> None:
        control.write_command(self.run_dir, "pause")

    def resume(self) -> None:
        control.write_command(self.run_dir, "resume")

    def stop(self) -> None:
        control.write_command(self.run_dir, "stop")

    def close(self, timeout: float = 30) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(min(timeout, max(1.0, 5 * self.poll)))

    @property
    def finished(self) -> bool:
        return self._ended.is_set()
