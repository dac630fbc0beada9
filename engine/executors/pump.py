"""The message pump of the executors whose workers run elsewhere: the process pool and Ray.

Their workers' messages travel differently (the pool's through a pipe per
worker process, Ray's through the hub actor and the tasks' return values) and
each backend finds the task a message is about its own way (the pool: the
worker's current task; Ray: the in-flight attempt). From there on both do
the one thing, here:

* ``handle`` hands a message on: progress to ``TaskCore`` (an epoch of an
  attempt whose start was not reported yet is dropped; ``TaskCore.finished``
  reports the epochs it missed); a worker's gate saying it waits at a batch
  boundary (``Paused``) or goes on (``Running``) marks or unmarks the
  attempt; the reply that ends an attempt (``Finished`` / ``Stopped``) is
  reported and the attempt forgotten;
* ``report_pause`` is the one pause report: a worker's gate cannot reach the
  session's ``SessionGate``, so with a pause asked for it calls ``halted()``
  once every started in-flight attempt waits, and without one ``running()``
  (``Control`` reports each once per pause; the session publishes
  ``Paused`` / ``Resumed`` from it).

An attempt stays marked waiting until its ``Running`` arrives or it ends: a
worker that did not see a short resume before the next pause still waits, and
the pause is still reported.

It calls ``TaskCore`` and the session's gate, nothing else: no I/O, no events.
"""
from __future__ import annotations

from typing import Iterable

from ..control import SessionGate
from .tasks import Task, TaskCore
from .worker import EpochDone, Finished, Paused, Running, Started, Stopped, WorkerMessage

__all__ = ["Attempt", "MessagePump", "attempt_of"]

Attempt = tuple[int, int]  # (candidate id, attempt number)


def attempt_of(task: Task) -> Attempt:
    """Which attempt ``task`` is on now."""
    return (task.job.candidate_id, task.attempt)


class MessagePump:
    """What the workers of one pool or Ray evaluator said about their in-flight attempts.

    Attributes:
        waiting: the attempts whose worker waits at a batch boundary.
        workers: the worker each in-flight attempt reported its start on
            (Ray names a lost node from it).
    """

    def __init__(self) -> None:
        self.waiting: set[Attempt] = set()
        self.workers: dict[Attempt, str] = {}

    def handle(self, core: TaskCore, task: Task, message: WorkerMessage) -> None:
        """Hand on one message about ``task``'s current attempt (the caller checked that it is)."""
        key = attempt_of(task)
        match message:
            case Started(worker=worker):
                self.workers[key] = worker
                core.started(task, worker)
            case EpochDone() if not task.started:
                pass  # its start was not reported: ``TaskCore.finished`` reports the epochs it missed
            case Paused():
                self.waiting.add(key)
            case Running():
                self.waiting.discard(key)
            case Finished(result=result, worker=worker):
                self.ended(task)
                core.finished(task, result, worker)
            case Stopped(worker=worker):
                self.ended(task)
                core.stopped(task, worker)
            case _:
                core.progress(task, message)

    def ended(self, task: Task) -> str | None:
        """Forget ``task``'s current attempt (it finished, stopped or its worker died); its worker, if it started."""
        key = attempt_of(task)
        self.waiting.discard(key)
        return self.workers.pop(key, None)

    def report_pause(self, control: SessionGate | None, paused: bool, inflight: Iterable[Task]) -> None:
        """Tell ``control`` whether the engine waits: ``halted()`` once every started attempt in
        ``inflight`` waits at a batch boundary (while a pause is asked for), else ``running()``."""
        if control is None:
            return
        if paused:
            if all(attempt_of(t) in self.waiting for t in inflight if t.started):
                control.halted()
        else:
            control.running()
