"""The task core every concurrent executor shares: retry rules, placement, the trace, stop with grace.

A ``Task`` is a job and what happened to it so far. ``TaskCore`` owns the
rules that must not differ between backends:

* a candidate that runs out of GPU memory while another candidate shared its
  device is retried *alone* (its device drained first); only an
  out-of-memory error with the device to itself is reported ``oom``;
* a candidate whose worker died (killed, segfault, a lost Ray node) is
  retried once, then reported ``failed``;
* after a stop, candidates that finish within a grace period are reported
  and the rest are abandoned (a resume trains them again);
* every step is appended to ``trace`` as ``(what, candidate_id, worker,
  attempt, alone)`` for tests and diagnostics.

``place`` is the device-slot scheduler of the local backends (processes and
threads): least-loaded device first, an alone task waits for its reserved
device to empty and nothing else starts there meanwhile.

It calls the session's callbacks and nothing else: no I/O, no events.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence, TypeVar

from ..control import SessionGate
from ..training.loop import CandidateResult, EpochRecord
from .base import Callbacks, Job
from .worker import EpochDone, Notice, Progress, Resumed, Started

__all__ = [
    "Task",
    "TaskCore",
    "Slot",
    "place",
    "shares_device",
    "drain_with_grace",
    "control_flags",
    "Trace",
    "TraceEntry",
]

TraceEntry = tuple[str, int, str, int, bool]  # (what, candidate_id, worker, attempt, alone)
Trace = list[TraceEntry]


@dataclass(eq=False)
class Task:
    """A job and what happened to it so far."""

    job: Job
    attempt: int = 0  # dispatches so far
    deaths: int = 0  # workers that died while training it
    alone: bool = False  # must have its device to itself (retry after an OOM while shared)
    shared: bool = False  # another candidate ran on its device while it ran
    reserved: str | None = None  # the device drained for it (alone tasks)
    started: bool = False  # on_start called for the current attempt
    epochs: int = 0  # epochs reported for the current attempt
    t0: float = field(default_factory=time.perf_counter)


class TaskCore:
    """The queue of one ``evaluate`` call and the rules applied to what its tasks report."""

    def __init__(self, jobs: Sequence[Job], callbacks: Callbacks, trace: Trace) -> None:
        self.queue: collections.deque[Task] = collections.deque(Task(job) for job in jobs)
        self.cb = callbacks
        self.trace = trace
        self.stopping = False  # after a stop: nothing is retried, abandoned work is not reported

    def _note(self, what: str, task: Task, worker: str) -> None:
        self.trace.append((what, task.job.candidate_id, worker, task.attempt, task.alone))

    def dispatched(self, task: Task, shared: bool) -> None:
        """A new attempt of ``task`` was handed to a worker."""
        task.attempt += 1
        task.started, task.epochs = False, 0
        task.shared = shared

    def assign(self, task: Task, slot: "Slot", slots: Sequence["Slot"]) -> None:
        """Hand ``task`` to ``slot``; it and its device neighbours now share the device."""
        neighbours = shares_device(slot, slots)
        self.dispatched(task, shared=bool(neighbours))
        for other in neighbours:
            other.shared = True
        slot.task = task

    def started(self, task: Task, worker: str) -> None:
        """The current attempt began training on ``worker``."""
        if task.started:
            return
        task.started = True
        self._note("start", task, worker)
        self.cb.on_start(task.job, worker)

    def progress(self, task: Task, message: Progress) -> None:
        """Hand on what a worker reported about ``task``'s current attempt (gate messages are the backend's)."""
        match message:
            case Started(worker=worker):
                self.started(task, worker)
            case EpochDone(record=record):
                self.epoch(task, record)
            case Resumed(epoch=epoch):
                self.resumed(task, epoch)
            case Notice(text=text):
                self.notice(task, text)

    def epoch(self, task: Task, record: EpochRecord) -> None:
        task.epochs += 1
        self.cb.on_epoch(task.job, record)

    def resumed(self, task: Task, epoch: int) -> None:
        self.cb.on_resume(task.job, epoch)

    def notice(self, task: Task, text: str) -> None:
        self.cb.on_notice(task.job, text)

    def finished(self, task: Task, result: CandidateResult, worker: str) -> None:
        """A result arrived: report it, or put the task back to be retried alone after a shared OOM."""
        if result.status == "oom" and task.shared and not task.alone:
            if self.stopping:  # not retried now, so not reported (a resume trains it)
                return
            self._note("oom-retry", task, worker)
            task.alone = True
            self.queue.appendleft(task)
            return
        if not task.started:
            self.started(task, worker)
        for record in result.history[task.epochs :]:  # epochs whose messages had not arrived yet
            self.epoch(task, record)
        self._note("done", task, worker)
        self.cb.on_done(task.job, result, worker)

    def stopped(self, task: Task, worker: str) -> None:
        """The task's worker obeyed a stop at a batch boundary."""
        self._note("stopped", task, worker)

    def died(self, task: Task, worker: str, why: str) -> None:
        """The task's worker died: retry once, then report ``failed`` (nothing while stopping)."""
        task.deaths += 1
        self._note("died", task, worker)
        if self.stopping:
            return
        if task.deaths >= 2:
            if not task.started:
                self.started(task, worker)
            message = f"worker died twice while training it (last: {worker}, {why})"
            self._note("done", task, worker)
            self.cb.on_done(task.job, CandidateResult.failure(message, time.perf_counter() - task.t0), worker)
            return
        self.queue.appendleft(task)  # retried once, on a respawned (or another) worker


@dataclass(eq=False)
class Slot:
    """One place a candidate can train (a worker process or thread) and what it trains now."""

    name: str
    device: str
    task: Task | None = None
    ready: bool = True

    @property
    def idle(self) -> bool:
        return self.ready and self.task is None


S = TypeVar("S", bound=Slot)


def place(queue: collections.deque[Task], slots: Sequence[S]) -> list[tuple[Task, S]]:
    """Which queued tasks start now on which idle slots (the local backends' scheduler).

    Tasks go to the least-loaded device. A task that must run alone gets a
    reserved device: nothing new starts there until it is empty, then the
    task runs with the device to itself. The chosen tasks are removed from
    ``queue``; the caller dispatches them and marks ``slot.task``.
    """
    running: collections.Counter[str] = collections.Counter(s.device for s in slots if s.task is not None)
    exclusive = {s.device for s in slots if s.task is not None and s.task.alone}
    devices = sorted({s.device for s in slots})
    busy: set[int] = set()
    chosen: list[tuple[Task, S]] = []
    for task in list(queue):
        idle = [s for s in slots if s.idle and id(s) not in busy]
        if not idle:
            break
        reserved = {t.reserved for t in queue if t.alone and t.reserved}
        if task.alone:
            if task.reserved is None:
                free = [d for d in devices if d not in reserved and d not in exclusive] or devices
                task.reserved = min(free, key=lambda d: (running[d], d))
            if running[task.reserved] == 0:
                slot = next((s for s in idle if s.device == task.reserved), None)
                if slot is not None:
                    queue.remove(task)
                    chosen.append((task, slot))
                    busy.add(id(slot))
                    running[slot.device] += 1
                    exclusive.add(slot.device)
            continue
        fits = [s for s in idle if s.device not in exclusive and s.device not in reserved]
        if not fits:
            continue
        slot = min(fits, key=lambda s: (running[s.device], slots.index(s)))
        queue.remove(task)
        chosen.append((task, slot))
        busy.add(id(slot))
        running[slot.device] += 1
    return chosen


def shares_device(slot: Slot, slots: Iterable[Slot]) -> list[Task]:
    """The tasks running beside ``slot`` on its device."""
    return [s.task for s in slots if s is not slot and s.task is not None and s.device == slot.device]


def drain_with_grace(busy: Callable[[], bool], pump: Callable[[], None], grace: float) -> None:
    """After a stop: keep handling messages until nothing is busy or ``grace`` seconds passed."""
    deadline = time.monotonic() + grace
    while busy() and time.monotonic() < deadline:
        pump()


def control_flags(control: SessionGate | None) -> tuple[bool, bool]:
    """``(paused, stopped)`` of the session's gate, after it read ``RUN_DIR/control.json`` (``poll``).

    ``Gate.at_batch_boundary()`` would block while paused; the session thread
    must keep handling results then, so the flags are read directly.
    """
    if control is None:
        return False, False
    control.poll()
    return bool(control.paused), bool(control.stopped)

