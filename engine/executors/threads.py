"""The thread executor: several candidates at once in the session's process, one CUDA stream each.

``executor.concurrency = "threads"`` (the default on CUDA) with ``per_gpu >
1`` or ``workers > 1``. Why threads: the candidates of a search are small 3D
networks whose kernels leave most of an H100/H200 idle, and processes sharing
one GPU are time-sliced by the driver (measured 2.1x slower than a single
process on an H200). Threads of one process share one CUDA context, so
kernels issued on different streams can run at the same time; the search
subset is resident once per device and shared by every thread reading it;
and the GIL is released inside every kernel launch and cuDNN call.

Each slot is a long-lived thread with its own ``torch.cuda.Stream`` (none on
the CPU). Pause and stop use the session's gate (``SessionGate``) directly:
the slot threads pass it at every batch boundary, and the first that waits
reports ``paused``. Isolation is
weaker than with processes: an out-of-memory error in one thread can be
caused by its neighbours, which is exactly the case ``TaskCore`` retries
alone; a crash of the process takes every candidate with it, and a resume
retrains them (they have no record yet).

On the CPU this executor works too (the tests run it there), but processes
are the better choice: Python threads contend for the GIL between kernels.

It must not decide what is trained, write to the run directory (beyond the
epoch checkpoint files the jobs name) or publish events.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from typing import TYPE_CHECKING, Sequence

from ..control import SessionGate
from ..errors import StopRequested
from ..training.data_protocol import TrainData
from ..training.loop import ModelFactory
from .base import Callbacks, Job, TrainSpec
from .plan import WorkerSlot
from .tasks import Slot, Task, TaskCore, Trace, control_flags, drain_with_grace, place
from .worker import Finished, Stopped, WorkerMessage, run_job

if TYPE_CHECKING:
    import torch

    from ..data import Dataset

__all__ = ["ThreadEvaluator"]

POLL_S = 0.05


class _ThreadSlot(Slot):
    """A slot served by one long-lived thread with its own inbox (a job, or None: exit)."""

    def __init__(self, plan: WorkerSlot) -> None:
        super().__init__(name=plan.name, device=plan.device)
        self.plan = plan
        self.inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None


class ThreadEvaluator:
    """Trains several candidates at once in threads of this process (see the module docstring).

    Args:
        data: the search subset (``engine.data.Dataset``) resident on the session's device.
        spec: training settings and fitness.
        control: the session's gate (``None``: never paused); the threads pass it themselves.
        slots: the plan (``engine.executors.plan.plan_workers``); slots on a
            device other than the data's get their own resident copy.
        model_factory: builds each network (None: ``engine.model.build_network``);
            tests inject failures with it.
        stop_grace: seconds to wait, after a stop, for in-flight candidates.

    Attributes:
        trace: ``(what, candidate_id, worker, attempt, alone)`` tuples (``TaskCore``).
    """

    name = "threads"

    def __init__(
        self,
        data: Dataset,
        spec: TrainSpec,
        control: SessionGate | None = None,
        slots: Sequence[WorkerSlot] = (),
        model_factory: ModelFactory | None = None,
        stop_grace: float = 10.0,
    ) -> None:
        if not slots:
            raise ValueError("a thread executor needs at least one slot")
        self.data = data
        self.spec = spec
        self.control = control
        self.model_factory = model_factory
        self.stop_grace = stop_grace
        self.trace: Trace = []
        self._slots = [_ThreadSlot(p) for p in slots]
        self._outbox: queue.SimpleQueue[tuple[_ThreadSlot, WorkerMessage]] = queue.SimpleQueue()
        self._data: dict[str, TrainData] = {}
        self._closed = False
        self._core: TaskCore | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ threads
    def _data_on(self, device: str) -> TrainData:
        """The search subset resident on ``device`` (copied once per device)."""
        with self._lock:
            if device not in self._data:
                if str(self.data.device) == device or (device == "cpu" and self.data.device.type == "cpu"):
                    self._data[device] = self.data
                else:
                    from .packing import pack_dataset, unpack_dataset

                    self._data[device] = unpack_dataset(pack_dataset(self.data), device)
            return self._data[device]

    def _ensure_threads(self) -> None:
        if self._closed:
            raise RuntimeError("the thread executor was closed")
        for slot in self._slots:
            if slot.thread is None or not slot.thread.is_alive():
                slot.thread = threading.Thread(target=self._serve, args=(slot,), name=f"nas3d-{slot.name}", daemon=True)
                slot.thread.start()

    def _serve(self, slot: _ThreadSlot) -> None:
        """A slot's thread: train the jobs it is given (``run_job``), report through the outbox."""
        import torch

        stream: torch.cuda.Stream | None = None
        if slot.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(slot.device))
            stream = torch.cuda.Stream(device=slot.device)  # type: ignore[no-untyped-call]
        while True:
            job = slot.inbox.get()
            if job is None:
                return
            ctx = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
            with ctx:
                reply = run_job(
                    job,
                    lambda: self._data_on(slot.device),
                    self.spec,
                    slot.device,
                    self.control,
                    lambda message: self._outbox.put((slot, message)),
                    worker=slot.name,
                    model_factory=self.model_factory,
                )
            self._outbox.put((slot, reply))

    def close(self) -> None:
        """End the threads once their current candidate has stopped."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            if slot.thread is not None:
                slot.inbox.put(None)
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout=30)

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Train every job on the threads; callbacks run on this (the session's) thread.

        Raises:
            StopRequested: a stop was asked for; candidates that finished were reported.
        """
        if not jobs:
            return
        self._ensure_threads()
        if control_flags(self.control)[1]:
            raise StopRequested()
        core = self._core = TaskCore(jobs, callbacks, self.trace)
        try:
            while core.queue or self._busy():
                paused, stopped = control_flags(self.control)
                if stopped:
                    core.stopping = True
                    drain_with_grace(self._busy, lambda: self._pump(POLL_S), self.stop_grace)
                    raise StopRequested()
                if not paused:
                    for task, slot in place(core.queue, self._slots):
                        self._send(core, task, slot)
                self._pump(POLL_S)
        finally:
            self._core = None

    def _busy(self) -> bool:
        return any(s.task is not None for s in self._slots)

    def _send(self, core: TaskCore, task: Task, slot: _ThreadSlot) -> None:
        core.assign(task, slot, self._slots)
        slot.inbox.put(task.job)

    def _pump(self, timeout: float) -> None:
        """Handle what the threads reported, waiting up to ``timeout`` for the first message."""
        try:
            msg = self._outbox.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._handle(*msg)
            try:
                msg = self._outbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, slot: _ThreadSlot, message: WorkerMessage) -> None:
        task, core = slot.task, self._core
        if task is None or core is None or task.job.candidate_id != message.cid:
            return  # about a candidate abandoned after a stop
        match message:
            case Stopped():
                slot.task = None
                core.stopped(task, slot.name)
            case Finished(result=result):
                slot.task = None
                core.finished(task, result, slot.name)
            case _:
                core.progress(task, message)
