"""Pause / resume / stop commands for a running search.

``Control`` is shared by the thread that issues commands (dashboard, signal
handler) and the engine threads that obey them at safe points (every batch
boundary). A command only sets a flag; the engine reports what actually
happened: ``on_change("paused")`` fires when training has stopped at a batch
boundary (not when ``p`` was pressed), ``"resumed"`` when it continues, and
``"stop"`` when a stop was asked for. A run started headless in another
process is steered through a small command file (``RUN_DIR/control.json``:
``RunDir.control_path`` names it and hands it here), which ``Control`` polls
cheaply; the dashboard in ``attach`` mode writes it with ``write_command``.

No torch, no UI imports.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from .atomic import atomic_write_json
from .errors import StopRequested, UserError
from .jsonfile import read_json
from .vocab import Command

__all__ = ["Control", "Gate", "SessionGate", "StopRequested", "write_command", "read_command"]


def write_command(command_file: str | os.PathLike[str], command: Command) -> None:
    """Atomically write ``pause`` / ``resume`` / ``stop`` to ``command_file`` (a run's ``RunDir.control_path``)."""
    if command not in ("pause", "resume", "stop"):
        raise ValueError(f"unknown command {command!r}: use pause, resume or stop")
    atomic_write_json(command_file, {"command": command, "ts": time.time(), "pid": os.getpid()})


def read_command(command_file: str | os.PathLike[str]) -> tuple[str, float] | None:
    """The last command written to ``command_file``, with its timestamp, or None (none, or garbage)."""
    try:
        data = read_json(command_file)
        return str(data["command"]), float(data["ts"])
    except (UserError, ValueError, KeyError, TypeError):
        return None


@runtime_checkable
class Gate(Protocol):
    """The batch gate: the pause / stop point training passes at every batch boundary.

    ``Control`` (the session's flags), the process pool's shared events and
    Ray's hub flags all implement it; the trainer takes a ``Gate | None``.
    The session's side of it, which the concurrent executors hold, is
    ``SessionGate``.
    """

    @property
    def paused(self) -> bool:
        """A pause was asked for (and not yet lifted)."""
        ...

    @property
    def stopped(self) -> bool:
        """A stop was asked for."""
        ...

    def at_batch_boundary(self) -> None:
        """Block while paused; raise ``StopRequested`` once a stop was asked for."""
        ...


@runtime_checkable
class SessionGate(Gate, Protocol):
    """The session's gate, as the executors hold it: the batch gate plus what a concurrent executor calls.

    ``Control`` implements it. The session thread of a concurrent executor
    cannot pass the gate itself (it would block while paused and results must
    keep arriving), so it reads the flags and mirrors them to its workers'
    own gates:

    * ``poll()`` then ``paused`` / ``stopped``: ``executors/tasks.py:
      control_flags``, once per loop of the threads, pool and Ray executors;
    * ``halted()`` / ``running()``: the pause report of the executors whose
      workers run elsewhere (``executors/pump.py: MessagePump``, the pool's
      and Ray's), since their workers' gates cannot reach this object;
    * ``at_batch_boundary()``: the trainer, where it runs in the session's
      process (the sequential and thread executors, the table's replay).
    """

    def poll(self) -> None:
        """Obey a command that arrived from outside (``RUN_DIR/control.json``) since the last look."""
        ...

    def halted(self) -> None:
        """The engine now waits at a batch boundary: report ``paused`` (once per pause)."""
        ...

    def running(self) -> None:
        """The engine goes on after a pause: report ``resumed`` (once; nothing when it was not halted)."""
        ...


class Control:
    """Thread-safe pause / stop flags, optionally mirrored from a control file (a ``SessionGate``).

    Args:
        command_file: when given (a run's ``RunDir.control_path``), commands
            written to it after this object was created are obeyed (polled at
            most every ``poll`` s).
        on_change: called with ``"paused"`` (the engine stopped at a batch
            boundary), ``"resumed"`` (it goes on) or ``"stop"`` (a stop was
            asked for); the session publishes events from it.
    """

    def __init__(
        self,
        command_file: str | os.PathLike[str] | None = None,
        on_change: Callable[[str], None] | None = None,
        poll: float = 0.25,
    ) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._command_file = Path(command_file) if command_file is not None else None
        self._poll = poll
        self._last_poll = 0.0
        self._seen_ts = time.time()
        self._halted = False  # the engine is actually waiting at a batch boundary
        self.on_change = on_change

    def watch(self, command_file: str | os.PathLike[str]) -> None:
        """Obey commands written to ``command_file`` (a run's ``RunDir.control_path``) from now on."""
        self._command_file = Path(command_file)
        self._seen_ts = time.time()

    # -- commands (any thread) ------------------------------------------------
    def pause(self) -> None:
        self._set(paused=True)

    def resume(self) -> None:
        self._set(paused=False)

    def stop(self) -> None:
        with self._cond:
            if self._stop:
                return
            self._stop = True
            self._paused = False
            self._cond.notify_all()
        self._emit("stop")

    def _set(self, paused: bool) -> None:
        with self._cond:
            if self._stop or self._paused == paused:
                return
            self._paused = paused
            self._cond.notify_all()

    def _emit(self, what: str) -> None:
        if self.on_change is not None:
            self.on_change(what)

    # -- state ----------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stop

    def poll(self) -> None:
        """Obey a command written to the command file since the last look."""
        self._poll_file()

    def _poll_file(self) -> None:
        if self._command_file is None:
            return
        now = time.monotonic()
        if now - self._last_poll < self._poll:
            return
        self._last_poll = now
        cmd = read_command(self._command_file)
        if cmd is None or cmd[1] <= self._seen_ts:
            return
        self._seen_ts = cmd[1]
        {"pause": self.pause, "resume": self.resume, "stop": self.stop}.get(cmd[0], lambda: None)()

    # -- engine side ------------------------------------------------------------
    def halted(self) -> None:
        """The engine now waits at a batch boundary: report ``paused`` (once)."""
        with self._cond:
            if self._halted:
                return
            self._halted = True
        self._emit("paused")

    def running(self) -> None:
        """The engine goes on after a pause: report ``resumed`` (once)."""
        with self._cond:
            if not self._halted:
                return
            self._halted = False
        self._emit("resumed")

    def at_batch_boundary(self) -> None:
        """Called by the engine at every batch boundary: blocks while paused, raises on stop.

        The first engine thread that blocks reports ``paused``; leaving the
        pause reports ``resumed``.

        Raises:
            StopRequested: a stop was asked for.
        """
        self._poll_file()
        if self._paused and not self._stop:
            self.halted()
            with self._cond:
                while self._paused and not self._stop:
                    self._cond.wait(timeout=self._poll)
                    self._poll_file()  # the condition's lock is re-entrant
            if self._stop:
                self._halted = False  # stopping, not resuming: the stop is what gets reported
            else:
                self.running()
        if self._stop:
            raise StopRequested()
