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
the CPU). Pause and stop use the session's ``Control`` directly (the first
thread that waits at a batch boundary reports ``paused``). Isolation is
weaker than with processes: an out-of-memory error in one thread can be
caused by its neighbours, which is exactly the case ``TaskCore`` retries
alone; a crash of the process takes every candidate with it, and a resume
retrains them (they have no record yet).

On the CPU this executor works too (the tests run it there), but processes
are the better choice: Python threads contend for the GIL between kernels.

It must not decide what is trained, write to the run directory (beyond the
checkpoint files the jobs name) or publish events.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Collection, Sequence

from ..errors import StopRequested, one_line
from ..training.loop import CandidateResult, train_candidate
from .base import Callbacks, Job, TrainSpec
from .packing import simulated_oom_model
from .plan import WorkerSlot
from .tasks import Slot, Task, TaskCore, Trace, control_flags, drain_with_grace, place

__all__ = ["ThreadEvaluator"]

POLL_S = 0.05


class _ThreadSlot(Slot):
    """A slot served by one long-lived thread with its own inbox."""

    def __init__(self, plan: WorkerSlot) -> None:
        super().__init__(name=plan.name, device=plan.device)
        self.plan = plan
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None


class ThreadEvaluator:
    """Trains several candidates at once in threads of this process (see the module docstring).

    Args:
        data: the search subset (``engine.data.Dataset``) resident on the session's device.
        spec: training settings and fitness.
        control: the session's pause / stop flags.
        slots: the plan (``engine.executors.plan.plan_workers``); slots on a
            device other than the data's get their own resident copy.
        simulate_oom: TEST ONLY -- candidate ids whose training raises a CUDA
            out-of-memory error whenever they do not have the device to themselves.
        stop_grace: seconds to wait, after a stop, for in-flight candidates.

    Attributes:
        trace: ``(what, candidate_id, worker, attempt, alone)`` tuples (``TaskCore``).
    """

    name = "threads"

    def __init__(
        self,
        data: Any,
        spec: TrainSpec,
        control: Any = None,
        slots: Sequence[WorkerSlot] = (),
        simulate_oom: Collection[int] = (),
        stop_grace: float = 10.0,
    ) -> None:
        if not slots:
            raise ValueError("a thread executor needs at least one slot")
        self.data = data
        self.spec = spec
        self.control = control
        self.simulate_oom = frozenset(int(c) for c in simulate_oom)
        self.stop_grace = stop_grace
        self.trace: Trace = []
        self._slots = [_ThreadSlot(p) for p in slots]
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._data: dict[str, Any] = {}
        self._closed = False
        self._core: TaskCore | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ threads
    def _data_on(self, device: str) -> Any:
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
        """A slot's thread: train the jobs it is given, report through the outbox."""
        import torch

        stream = None
        if slot.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(slot.device))
            stream = torch.cuda.Stream(device=slot.device)
        while True:
            msg = slot.inbox.get()
            if msg is None:
                return
            job, simulate_oom = msg
            self._outbox.put(("start", slot, job.candidate_id))
            self._outbox.put(self._train(slot, job, simulate_oom, stream))

    def _train(self, slot: _ThreadSlot, job: Job, simulate_oom: bool, stream: Any) -> tuple:
        import contextlib

        import torch

        from ..model import build_network

        cid = job.candidate_id
        start = time.perf_counter()
        ctx = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        try:
            with ctx:
                result = train_candidate(
                    job.genotype,
                    self._data_on(slot.device),
                    self.spec.config,
                    seed=job.seed,
                    fitness=self.spec.fitness,
                    device=slot.device,
                    control=self.control,
                    on_epoch=lambda record: self._outbox.put(("epoch", slot, cid, record)),
                    model_fn=simulated_oom_model if simulate_oom else build_network,
                    checkpoint=job.checkpoint,
                    prune=job.prune,
                    on_resume=lambda epoch: self._outbox.put(("resumed", slot, cid, epoch)),
                    on_notice=lambda text: self._outbox.put(("notice", slot, cid, text)),
                )
            return ("done", slot, cid, result)
        except StopRequested:
            return ("stopped", slot, cid)
        except BaseException as exc:  # noqa: BLE001 - a thread must always answer
            return ("done", slot, cid, CandidateResult.failure(one_line(exc), time.perf_counter() - start))

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
        simulate = task.job.candidate_id in self.simulate_oom and not task.alone
        slot.inbox.put((task.job, simulate))

    def _pump(self, timeout: float) -> None:
        """Handle what the threads reported, waiting up to ``timeout`` for the first message."""
        try:
            msg = self._outbox.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._handle(msg)
            try:
                msg = self._outbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, msg: tuple) -> None:
        kind, slot, cid = msg[0], msg[1], msg[2]
        task, core = slot.task, self._core
        if task is None or core is None or task.job.candidate_id != cid:
            return  # about a candidate abandoned after a stop
        if kind == "start":
            core.started(task, slot.name)
        elif kind == "epoch":
            core.epoch(task, msg[3])
        elif kind == "resumed":
            core.resumed(task, msg[3])
        elif kind == "notice":
            core.notice(task, msg[3])
        elif kind == "stopped":
            slot.task = None
            core.stopped(task, slot.name)
        elif kind == "done":
            slot.task = None
            core.finished(task, msg[3], slot.name)
