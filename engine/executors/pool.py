"""The process pool: several candidates at once in local worker processes.

``executor.concurrency = "processes"`` (the default on the CPU) with
``workers > 1`` or ``per_gpu > 1``. One *process* per concurrent candidate
(spawn context): a process isolates what a candidate does to its neighbours
(a CUDA out-of-memory error, a leaked tensor, a crash) and, on the CPU, escapes
the GIL. On CUDA, processes sharing one GPU are time-sliced by the driver
(measured 2.1x slower than one process on an H200), so threads are the
default there (``engine.executors.threads``).

- The search subset is written once to a temporary file; every worker loads
  it once (CPU: memory-mapped, so the pages are shared; CUDA: copied to its
  GPU) and keeps it resident. The pool starts on the first ``evaluate`` and
  lives until ``close()``.
- Pause and stop reach the workers through two shared events, checked at
  every batch boundary; a worker reports when it actually waits, and the
  session's gate reports ``paused`` once every busy worker does (the pump
  shared with Ray, ``engine.executors.pump``, hands on what workers say).
- A worker that dies is replaced; the retry rules are ``TaskCore``'s.

Results: each candidate is seeded by its id, so a worker gives the fitness a
sequential run gives *with the same torch thread count* (on the CPU the
thread count changes the summation order of the convolutions; a pool of N
workers on C cores reproduces a sequential run made with
``torch.set_num_threads(C // N)``).

It must not decide what is trained, write to the run directory (beyond the
epoch checkpoint files the jobs name) or publish events; workers never write to
the terminal (their output goes to a log file in the pool's folder).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union

from ..control import SessionGate
from ..errors import StopRequested, one_line
from ..training.loop import ModelFactory
from .base import Callbacks, Job, TrainSpec
from .packing import pack_dataset, unpack_dataset
from .plan import WorkerSlot
from .pump import MessagePump
from .tasks import Slot, Task, TaskCore, Trace, control_flags, drain_with_grace, place
from .worker import Finished, Paused, Running, Stopped, WorkerMessage, run_job

if TYPE_CHECKING:
    from ..data import Dataset

__all__ = ["LocalPoolEvaluator", "PoolError"]

POLL_S = 0.05  # how often the session thread looks at the control flags and the workers


class PoolError(RuntimeError):
    """The worker pool cannot run (a worker keeps failing to start)."""


# What the session sends a worker, and what a worker says about itself (its candidates' messages
# are ``engine.executors.worker``'s).


@dataclass(frozen=True)
class _Train:
    """Session -> worker: train this job."""

    job: Job


@dataclass(frozen=True)
class _Exit:
    """Session -> worker: end the process."""


@dataclass(frozen=True)
class _Ready:
    """Worker -> session: the data is resident, jobs can come."""


@dataclass(frozen=True)
class _Fatal:
    """Worker -> session: the worker cannot start (it exits next)."""

    error: str


_ToWorker = Union[_Train, _Exit]
_FromWorker = Union[_Ready, _Fatal, WorkerMessage]


# ---------------------------------------------------------------------------------------------
# Worker process side
# ---------------------------------------------------------------------------------------------


class _SharedGate:
    """The batch gate inside a worker: the pool's two shared events (a ``Gate``).

    Blocks while the pause event is set (telling the session once), raises
    ``StopRequested`` once the stop event is set, and ends the process when
    the session process has gone (a ``kill -9`` of the session must not leave
    workers holding a GPU).
    """

    def __init__(self, pause: Event, stop: Event, parent_pid: int, tell: Callable[[WorkerMessage], None], cid: int) -> None:
        self.pause = pause
        self.stop = stop
        self.parent_pid = parent_pid
        self.tell = tell
        self.cid = cid

    @property
    def paused(self) -> bool:
        return self.pause.is_set()

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def _orphaned(self) -> bool:
        return os.getppid() != self.parent_pid

    def at_batch_boundary(self) -> None:
        if self._orphaned():
            os._exit(3)
        if self.pause.is_set() and not self.stop.is_set():
            self.tell(Paused(self.cid, 0))
            while self.pause.is_set() and not self.stop.is_set():
                self.stop.wait(0.1)
                if self._orphaned():
                    os._exit(3)
            self.tell(Running(self.cid, 0))
        if self.stop.is_set():
            raise StopRequested()


def _redirect_output(log_path: str) -> None:
    """Workers must never draw over the dashboard: stdout and stderr go to a log file."""
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
    except OSError:
        pass


def _worker_main(
    conn: Connection,
    slot: WorkerSlot,
    data_file: str,
    spec: TrainSpec,
    pause: Event,
    stop: Event,
    parent_pid: int,
    log_path: str,
    model_factory: ModelFactory | None,
) -> None:
    """Entry point of a worker process: load the data once, then train jobs (``run_job``) until told to exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the session's to handle
    _redirect_output(log_path)
    try:
        import torch

        torch.set_num_threads(slot.threads)
        if slot.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(slot.device))
        packed = torch.load(data_file, mmap=True, weights_only=True)
        data = unpack_dataset(packed, slot.device)
        del packed
    except BaseException as exc:  # noqa: BLE001 - reported to the session, then exit
        try:
            conn.send(_Fatal(one_line(exc)))
        finally:
            return
    try:
        conn.send(_Ready())
        while True:
            order: _ToWorker = conn.recv()
            if not isinstance(order, _Train):
                return
            job = order.job
            gate = _SharedGate(pause, stop, parent_pid, conn.send, job.candidate_id)
            reply = run_job(job, lambda: data, spec, slot.device, gate, conn.send, worker=slot.name,
                            model_factory=model_factory)
            conn.send(reply)
    except (EOFError, OSError, BrokenPipeError):  # the session went away
        return


# ---------------------------------------------------------------------------------------------
# Session side
# ---------------------------------------------------------------------------------------------


def _remove_stale_pool_dirs() -> None:
    """Remove the temporary folders of pools whose session process is gone (after a ``kill -9``)."""
    for path in Path(tempfile.gettempdir()).glob("nas3d-pool-*-*"):
        try:
            pid = int(path.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue


@dataclass(eq=False)
class _Worker(Slot):
    plan: WorkerSlot | None = None
    proc: SpawnProcess | None = None
    conn: Connection | None = None
    failed_starts: int = 0
    last_error: str = ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.conn is not None

    @property
    def idle(self) -> bool:
        return self.alive and self.ready and self.task is None


class LocalPoolEvaluator:
    """Trains several candidates at once in local worker processes (see the module docstring).

    Args:
        data: the search subset (``engine.data.Dataset``), on any device.
        spec: training settings and fitness.
        control: the session's gate (``None``: never paused).
        slots: the worker plan (``engine.executors.plan.plan_workers``).
        model_factory: builds each network inside the workers (None:
            ``engine.model.build_network``); it must pickle. Tests inject failures with it.
        stop_grace: seconds ``evaluate`` waits, after a stop, for in-flight
            candidates to finish or to reach a batch boundary.

    Attributes:
        trace: ``(what, candidate_id, worker, attempt, alone)`` tuples (``TaskCore``).
    """

    name = "processes"

    def __init__(
        self,
        data: Dataset,
        spec: TrainSpec,
        control: SessionGate | None = None,
        slots: Sequence[WorkerSlot] = (),
        model_factory: ModelFactory | None = None,
        stop_grace: float = 10.0,
    ) -> None:
        self.data = data
        self.spec = spec
        self.control = control
        self.model_factory = model_factory
        self.stop_grace = stop_grace
        self.plan = list(slots)
        if not self.plan:
            raise ValueError("a worker pool needs at least one slot")
        self.trace: Trace = []
        self._workers: list[_Worker] = []
        self._tmp: Path | None = None
        self._data_file: str = ""
        self._ctx = mp.get_context("spawn")
        self._pause: Event = self._ctx.Event()
        self._stop: Event = self._ctx.Event()
        self._closed = False
        self._core: TaskCore | None = None
        self._messages = MessagePump()

    # ------------------------------------------------------------------ pool
    def _ensure_pool(self) -> None:
        if self._closed:
            raise PoolError("the worker pool was closed")
        if self._tmp is None:
            import torch

            _remove_stale_pool_dirs()
            self._tmp = Path(tempfile.mkdtemp(prefix=f"nas3d-pool-{os.getpid()}-"))
            self._data_file = str(self._tmp / "search_data.pt")
            torch.save(pack_dataset(self.data), self._data_file)
            self._workers = [_Worker(name=p.name, device=p.device, ready=False, plan=p) for p in self.plan]
        for w in self._workers:
            if not w.alive:
                self._spawn(w)

    def warm_up(self, timeout: float = 300.0) -> float:
        """Start the pool now and wait until every worker has loaded the data; returns the seconds taken.

        Raises:
            PoolError: a worker cannot start, or not within ``timeout`` seconds.
        """
        t0 = time.perf_counter()
        self._ensure_pool()
        while not all(w.ready for w in self._workers):
            if time.perf_counter() - t0 > timeout:
                raise PoolError(f"the worker pool did not start within {timeout:.0f} s")
            for w in self._workers:
                if not w.alive:
                    self._spawn(w)
            self._pump(POLL_S)
        return time.perf_counter() - t0

    def _log_path(self, w: _Worker) -> Path:
        assert self._tmp is not None
        return self._tmp / f"{w.name.replace(':', '_')}.log"

    def _spawn(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, w.plan, self._data_file, self.spec, self._pause, self._stop, os.getpid(), str(self._log_path(w)),
                  self.model_factory),
            name=f"nas3d-{w.name}",
            daemon=True,
        )
        proc.start()
        child.close()
        w.proc, w.conn, w.ready = proc, parent, False

    def _bury(self, w: _Worker) -> int | None:
        """Forget a dead (or stuck) worker's process; returns its exit code."""
        code = None
        if w.proc is not None:
            if w.proc.is_alive():
                w.proc.kill()
            w.proc.join(timeout=5)
            code = w.proc.exitcode
        if w.conn is not None:
            try:
                w.conn.close()
            except OSError:
                pass
        w.proc = w.conn = None
        w.ready = False
        return code

    def _log_tail(self, w: _Worker) -> str:
        try:
            lines = self._log_path(w).read_text(errors="replace").strip().splitlines()
        except (OSError, AssertionError):
            return ""
        return lines[-1][:200] if lines else ""

    def close(self) -> None:
        """Ask every worker to exit (stopping in-flight candidates), then remove the temporary files."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for w in self._workers:
            if w.conn is not None:
                try:
                    w.conn.send(_Exit())
                except (OSError, BrokenPipeError):
                    pass
        deadline = time.monotonic() + 10.0
        for w in self._workers:
            if w.proc is not None:
                w.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            self._bury(w)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __del__(self) -> None:  # a forgotten close() must not leave processes behind
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Train every job on the pool; callbacks run on this thread.

        Raises:
            StopRequested: a stop was asked for; candidates that finished were reported.
            PoolError: a worker cannot start (e.g. its device is unusable).
        """
        if not jobs:
            return
        self._ensure_pool()
        paused, stopped = control_flags(self.control)
        if stopped:
            raise StopRequested()
        self._stop.clear()
        core = self._core = TaskCore(jobs, callbacks, self.trace)
        try:
            while core.queue or self._busy():
                paused, stopped = control_flags(self.control)
                if stopped:
                    self._abort(core)
                    raise StopRequested()
                if paused != self._pause.is_set():
                    (self._pause.set if paused else self._pause.clear)()
                self._messages.report_pause(self.control, paused, self._tasks())
                for w in self._workers:
                    if not w.alive:
                        self._spawn(w)
                if not paused:
                    for task, w in place(core.queue, self._workers):
                        self._send(core, task, w)
                self._pump(POLL_S)
        finally:
            self._core = None

    def _busy(self) -> bool:
        return any(w.task is not None for w in self._workers)

    def _tasks(self) -> list[Task]:
        """The tasks the workers train now."""
        return [w.task for w in self._workers if w.task is not None]

    def _send(self, core: TaskCore, task: Task, w: _Worker) -> None:
        assert w.conn is not None
        try:
            w.conn.send(_Train(task.job))
        except (OSError, BrokenPipeError):  # died while idle: not the candidate's fault
            core.queue.appendleft(task)
            self._bury(w)
            return
        core.assign(task, w, self._workers)
        core.started(task, w.name)  # a ready worker starts at once

    # ------------------------------------------------------------------ messages
    def _pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for worker messages or deaths and handle them."""
        live = [w for w in self._workers if w.alive]
        if not live:
            time.sleep(timeout)
            return
        by_obj: dict[Connection | int, _Worker] = {}
        for w in live:
            assert w.conn is not None and w.proc is not None
            by_obj[w.conn] = w
            by_obj[w.proc.sentinel] = w
        ready = wait_for(list(by_obj), timeout=timeout)
        for obj, w in by_obj.items():
            if obj not in ready:
                continue
            conn, proc = w.conn, w.proc
            if conn is None or proc is None:
                continue
            dead = False
            try:
                while conn.poll():
                    self._handle(w, conn.recv())
            except (EOFError, OSError):
                dead = True
            if dead or not proc.is_alive():
                self._died(w)

    def _handle(self, w: _Worker, message: _FromWorker) -> None:
        """A worker's own message, or one about its current task (handed to the shared pump)."""
        if isinstance(message, _Ready):
            w.ready, w.failed_starts = True, 0
            return
        if isinstance(message, _Fatal):
            w.last_error = message.error
            return
        task, core = w.task, self._core
        if task is None or core is None or task.job.candidate_id != message.cid:
            return  # a message about an abandoned candidate
        if isinstance(message, (Finished, Stopped)):
            w.task = None
        self._messages.handle(core, task, message)

    def _died(self, w: _Worker) -> None:
        was_ready = w.ready
        task, w.task = w.task, None
        if task is not None:
            self._messages.ended(task)
        code = self._bury(w)
        why = f"exit code {code}" if code is None or code >= 0 else f"signal {signal.Signals(-code).name}"
        if not was_ready:
            w.failed_starts += 1
            if w.failed_starts >= 3:
                detail = w.last_error or self._log_tail(w) or why
                raise PoolError(f"worker {w.name} could not start: {detail}")
        if task is None or self._core is None:
            return
        tail = self._log_tail(w)
        self._core.died(task, w.name, f"{why}: {tail}" if tail else why)

    def _abort(self, core: TaskCore) -> None:
        """After a stop: tell the workers, report what finishes within the grace period, abandon the rest."""
        core.stopping = True
        self._stop.set()
        self._pause.clear()
        drain_with_grace(self._busy, lambda: self._pump(POLL_S), self.stop_grace)
        for w in self._workers:
            if w.task is not None:  # stuck past the grace period
                self._messages.ended(w.task)
                w.task = None
                self._bury(w)
