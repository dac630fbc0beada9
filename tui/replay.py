"""``ReplayHandle``: a recorded journal played back as a run.

Used by the tests and by ``nas3d-tui attach`` on a run that has already ended.
Commands are recorded (``commands``) and, while events are still being played,
answered the way a live engine would (``Paused`` / ``Resumed`` / ``Stopping``).
No torch, no Textual.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

from engine import events as ev

from engine.journal import read_journal
from engine.rundir import RunDir
from engine.vocab import Command

from .handle import HandleError, Sink

__all__ = ["ReplayHandle"]


class ReplayHandle:
    """Replays ``events`` to the sink in a daemon thread, ``delay`` seconds apart.

    Args:
        events: the journal, in order.
        delay: pause between events (0 delivers them all at once, still from a thread).
        run_dir: where exports go; defaults to the journal's ``RunStarted.run_dir``.
        echo_commands: answer pause / resume / stop with the events a live run would emit.
    """

    attached = True

    def __init__(
        self,
        events: Iterable[ev.Event],
        delay: float = 0.0,
        run_dir: str | Path | None = None,
        echo_commands: bool = True,
    ) -> None:
        self.events = list(events)
        self.delay = delay
        if run_dir is None:
            started = next((e for e in self.events if isinstance(e, ev.RunStarted)), None)
            run_dir = started.run_dir if started else "."
        self.run_dir = Path(run_dir)
        self.echo_commands = echo_commands
        self.commands: list[str] = []
        self.closed = False
        self._sink: Sink | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, delay: float = 0.0) -> "ReplayHandle":
        """Replay ``run_dir/events.jsonl``.

        Raises:
            HandleError: no such directory, or no journal in it.
        """
        path = Path(run_dir)
        if not path.is_dir():
            raise HandleError(f"no run directory at {path}")
        journal = RunDir(path, resolve=False).journal_path
        if not journal.is_file():
            raise HandleError(f"{path} has no {journal.name}: not a run directory")
        return cls(read_journal(journal), delay=delay, run_dir=path, echo_commands=False)

    # -- RunHandle ------------------------------------------------------------------
    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._play, name="replay", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        try:
            for event in self.events:
                if self._stop.is_set():
                    return
                self._deliver(event)
                if self.delay:
                    self._stop.wait(self.delay)
        finally:
            self._done.set()

    def _deliver(self, event: ev.Event) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink(event)

    def _command(self, name: Command, answer: ev.Event | None) -> None:
        self.commands.append(name)
        if answer is not None and self.echo_commands and self._sink is not None:
            self._deliver(answer)

    def pause(self) -> None:
        self._command("pause", ev.Paused())

    def resume(self) -> None:
        self._command("resume", ev.Resumed())

    def stop(self) -> None:
        self._command("stop", ev.Stopping(source="user"))

    def close(self, timeout: float = 30) -> None:
        self.commands.append("close")
        self.closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every event was delivered (tests)."""
        return self._done.wait(timeout)
