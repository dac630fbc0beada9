"""Several candidates at once: a pool of local worker processes, and the factory for every parallel backend.

This module owns ``make_parallel_evaluator`` (which backend a profile asks
for), ``check_executor`` (can that backend run here; a one-line
``SessionError`` otherwise), the worker plan (``plan_workers``: which process
trains on which device with how many CPU threads) and ``LocalPoolEvaluator``,
the ``executor.kind = "local"`` backend with ``workers > 1`` (or
``per_gpu > 1`` on CUDA). The Ray backend lives in ``engine.ray_backend``.

Design (local pool):

- One *process* per concurrent candidate (spawn context). Processes, not
  threads, because a Python thread per candidate serialises on the GIL for
  everything but the kernels, and because a process isolates what a candidate
  does to its neighbours: a CUDA out-of-memory error, a leaked tensor or a
  crash stays in that process. On CUDA ``workers`` worker groups are spread
  over the visible GPUs (all of them for ``run.device = "auto" / "cuda"``,
  only N for ``"cuda:N"``) and each group holds ``per_gpu`` processes, so
  ``workers = GPUs`` and ``per_gpu = M`` gives M candidates on every GPU.
  On the CPU ``workers`` processes split the cores
  (``torch.set_num_threads(max(1, cores // workers))`` in each).
- The search subset is written once to a temporary file; every worker loads it
  once (CPU: memory-mapped, so the pages are shared; CUDA: copied to its GPU)
  and keeps it resident. The pool is created on the first ``evaluate`` and
  persists until ``close()``.
- Pause and stop reach the workers through two shared ``multiprocessing``
  events, checked at every batch boundary (``_SharedControl``). On stop,
  ``evaluate`` reports the candidates that finish within a short grace
  period, abandons the rest and raises ``StopRequested``.
- A worker that dies (killed, segfault) is replaced by a fresh process; its
  candidate is retried once, then reported as ``failed``.
- A candidate that runs out of CUDA memory while another candidate was running
  on the same device is retried *alone*: the device is drained (no new
  candidate is placed there), the candidate runs with the device to itself,
  and only an out-of-memory error then is reported as ``oom``.

Results: each candidate is seeded by its id (``candidate_seed``), so a worker
gives the fitness a sequential run gives *with the same torch thread count*.
On the CPU different ``torch.set_num_threads`` values change the summation
order of the convolutions (measured: the losses differ in the 3rd digit), so a
pool of N workers on C cores reproduces a sequential run made with
``torch.set_num_threads(C // N)``; a resumed run reproduces an uninterrupted
one with the same executor settings.

It must not decide what is trained (the session does: feasibility,
duplicates, budget), write to the run directory, or publish events: it only
calls the three callbacks, always on the calling (session) thread. Workers
never write to the terminal (their output goes to a log file in the pool's
temporary directory).
"""
from __future__ import annotations

import collections
import dataclasses
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Any, Collection, Sequence

from .control import Control, StopRequested
from .evaluator import Job, OnDone, OnEpoch, OnStart
from .train import CandidateResult, TrainConfig

__all__ = [
    "make_parallel_evaluator",
    "check_executor",
    "plan_workers",
    "WorkerSlot",
    "LocalPoolEvaluator",
    "PoolError",
    "available_cores",
]

POLL_S = 0.05  # how often the session thread looks at the control flags and the workers


# ---------------------------------------------------------------------------------------------
# Factory and checks
# ---------------------------------------------------------------------------------------------


def check_executor(executor: Any) -> None:
    """Fail early, with one line, when the ``[executor]`` section cannot run here.

    Raises:
        engine.session.SessionError: ``kind = "ray"`` and Ray is not installed.
    """
    if getattr(executor, "kind", "local") == "ray":
        from .ray_backend import import_ray

        import_ray()


def make_parallel_evaluator(
    profile: Any,
    search_data: Any,
    config: TrainConfig,
    device: str,
    control: Control | None = None,
    *,
    simulate_oom: Collection[int] = (),
) -> Any:
    """The evaluator for ``profile.executor`` (kind ``local`` with several workers, or ``ray``).

    Args:
        profile: the resolved profile (``executor`` and ``run.device`` are read).
        search_data: the search subset (``engine.data.Dataset``) on ``device``.
        config: training settings; each job's seed replaces ``config.seed``.
        device: the session's resolved device (``"cpu"``, ``"cuda:0"``, ...).
        control: pause / stop flags of the session.
        simulate_oom: TEST ONLY -- candidate ids whose training raises a CUDA
            out-of-memory error whenever they do not have the device to
            themselves (exercises the retry-alone path on a CPU machine).

    Raises:
        engine.session.SessionError: Ray was asked for and is not installed.
    """
    ex = profile.executor
    if ex.kind == "ray":
        from .ray_backend import RayEvaluator

        return RayEvaluator(
            search_data,
            config,
            device,
            control,
            address=ex.address,
            workers=ex.workers,
            per_gpu=ex.per_gpu,
            use_gpus=profile.run.device != "cpu",
            simulate_oom=simulate_oom,
        )
    return LocalPoolEvaluator(
        search_data,
        config,
        device,
        control,
        workers=ex.workers,
        per_gpu=ex.per_gpu,
        run_device=profile.run.device,
        simulate_oom=simulate_oom,
    )


# ---------------------------------------------------------------------------------------------
# Worker plan
# ---------------------------------------------------------------------------------------------


def available_cores() -> int:
    """CPU cores this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process: its name (the ``worker`` string of the callbacks), device and CPU threads."""

    name: str
    device: str
    threads: int


def plan_workers(
    device: str,
    workers: int,
    per_gpu: int = 1,
    run_device: str = "auto",
    cuda_devices: int = 0,
    cores: int | None = None,
) -> list[WorkerSlot]:
    """Which worker processes a pool starts.

    CPU (``device == "cpu"``): ``workers`` processes named ``w1:cpu`` ...,
    each with ``max(1, cores // workers)`` threads; ``per_gpu`` is ignored.

    CUDA: ``workers`` groups, group g on GPU ``gpus[g % len(gpus)]`` where
    ``gpus`` is every visible GPU (``run_device`` ``auto`` / ``cuda``) or the
    one named (``cuda:N``); each group is ``per_gpu`` processes, named
    ``w{g}:cuda:{i}`` (or ``w{g}.{m}:cuda:{i}`` when ``per_gpu > 1``).

    >>> [s.name for s in plan_workers("cuda:0", 2, 2, "auto", cuda_devices=2, cores=8)]
    ['w1.1:cuda:0', 'w1.2:cuda:0', 'w2.1:cuda:1', 'w2.2:cuda:1']
    >>> plan_workers("cpu", 2, 4, cores=2)
    [WorkerSlot(name='w1:cpu', device='cpu', threads=1), WorkerSlot(name='w2:cpu', device='cpu', threads=1)]
    """
    cores = cores or available_cores()
    workers = max(1, int(workers))
    per_gpu = max(1, int(per_gpu))
    if not device.startswith("cuda"):
        threads = max(1, cores // workers)
        return [WorkerSlot(f"w{i + 1}:cpu", "cpu", threads) for i in range(workers)]
    if run_device.startswith("cuda:"):
        gpus = [int(run_device.split(":", 1)[1])]
    else:
        gpus = list(range(max(1, cuda_devices))) if cuda_devices else [int(device.split(":", 1)[1]) if ":" in device else 0]
    total = workers * per_gpu
    threads = max(1, cores // total)
    slots = []
    for g in range(workers):
        gpu = gpus[g % len(gpus)]
        for m in range(per_gpu):
            name = f"w{g + 1}.{m + 1}" if per_gpu > 1 else f"w{g + 1}"
            slots.append(WorkerSlot(f"{name}:cuda:{gpu}", f"cuda:{gpu}", threads))
    return slots


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by engine.ray_backend)
# ---------------------------------------------------------------------------------------------


def failed_result(message: str, seconds: float = 0.0) -> CandidateResult:
    """A ``failed`` result for a candidate the backend could not train."""
    return CandidateResult(
        status="failed",
        fitness=None,
        val_acc=None,
        val_auc=None,
        epochs=0,
        seconds=seconds,
        peak_memory_mb=None,
        error=message,
        history=(),
    )


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def simulated_oom_model(genotype: Any, **_: Any) -> Any:
    """TEST ONLY ``model_fn``: raises the error a CUDA allocation failure raises."""
    import torch

    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated for a test: device shared)")


def pack_dataset(data: Any) -> dict[str, Any]:
    """The search subset as plain CPU tensors (train and val only) plus its metadata."""
    out: dict[str, Any] = {
        "flag": data.flag,
        "size": int(data.size),
        "task": data.task,
        "num_classes": int(data.num_classes),
        "path": str(data.path),
    }
    for name in ("train", "val"):
        split = getattr(data, name)
        out[f"{name}_x"] = split.x.detach().to("cpu").contiguous()
        out[f"{name}_y"] = split.y.detach().to("cpu").contiguous()
    return out


def unpack_dataset(packed: dict[str, Any], device: str) -> Any:
    """A ``Dataset`` resident on ``device`` from ``pack_dataset``'s dict (test = val: never used in search)."""
    import torch

    from .data import Dataset, Split

    def split(name: str) -> Split:
        x, y = packed[f"{name}_x"], packed[f"{name}_y"]
        if not isinstance(x, torch.Tensor):  # numpy arrays from Ray's object store (read-only)
            x, y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
        return Split(x.to(device), y.to(device))

    val = split("val")
    return Dataset(
        flag=packed["flag"],
        size=packed["size"],
        task=packed["task"],
        num_classes=packed["num_classes"],
        path=packed["path"],
        train=split("train"),
        val=val,
        test=val,
    )


def control_state(control: Any) -> tuple[bool, bool]:
    """``(paused, stopped)`` of the session's control, after reading ``RUN_DIR/control.json``.

    ``Control.checkpoint()`` would block while paused; the session thread must
    keep handling results then, so the file is polled directly.
    """
    if control is None:
        return False, False
    poll = getattr(control, "poll", None) or getattr(control, "_poll_file", None)
    if poll is not None:
        poll()
    return bool(control.paused), bool(control.stopped)


@dataclass(eq=False)
class _Task:
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


# ---------------------------------------------------------------------------------------------
# Worker process side
# ---------------------------------------------------------------------------------------------


class _SharedControl:
    """What ``train_candidate`` calls at every batch boundary inside a worker.

    Blocks while the pause event is set, raises ``StopRequested`` once the stop
    event is set, and ends the process when the session process has gone
    (a ``kill -9`` of the session must not leave workers holding a GPU).
    """

    def __init__(self, pause: Any, stop: Any, parent_pid: int) -> None:
        self.pause = pause
        self.stop = stop
        self.parent_pid = parent_pid

    def _orphaned(self) -> bool:
        return os.getppid() != self.parent_pid

    def checkpoint(self) -> None:
        if self._orphaned():
            os._exit(3)
        while self.pause.is_set() and not self.stop.is_set():
            self.stop.wait(0.1)
            if self._orphaned():
                os._exit(3)
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
    conn: Any,
    slot: WorkerSlot,
    data_file: str,
    config: TrainConfig,
    pause: Any,
    stop: Any,
    parent_pid: int,
    log_path: str,
) -> None:
    """Entry point of a worker process: load the data once, then train jobs until told to exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the session's to handle
    _redirect_output(log_path)
    try:
        import torch

        from .model import build_network
        from .train import train_candidate

        torch.set_num_threads(slot.threads)
        if slot.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(slot.device))
        packed = torch.load(data_file, mmap=True, weights_only=True)
        data = unpack_dataset(packed, slot.device)
        del packed
    except BaseException as exc:  # noqa: BLE001 - reported to the session, then exit
        try:
            conn.send(("fatal", one_line(exc)))
        finally:
            return
    control = _SharedControl(pause, stop, parent_pid)
    try:
        conn.send(("ready", os.getpid()))
        while True:
            msg = conn.recv()
            if msg[0] == "exit":
                return
            _, cid, genotype, seed, simulate_oom = msg
            start = time.perf_counter()

            def on_epoch(record: dict, cid: int = cid) -> None:
                conn.send(("epoch", cid, record))

            try:
                result = train_candidate(
                    genotype,
                    data,
                    dataclasses.replace(config, seed=seed),
                    device=slot.device,
                    control=control,
                    on_epoch=on_epoch,
                    model_fn=simulated_oom_model if simulate_oom else build_network,
                )
                reply: tuple = ("done", cid, result)
            except StopRequested:
                reply = ("stopped", cid)
            except Exception as exc:  # e.g. ValueError from a config that does not fit the data
                reply = ("done", cid, failed_result(one_line(exc), time.perf_counter() - start))
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
class _Worker:
    slot: WorkerSlot
    proc: Any = None
    conn: Any = None
    pid: int | None = None
    ready: bool = False
    task: _Task | None = None
    failed_starts: int = 0
    last_error: str = ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.conn is not None

    @property
    def idle(self) -> bool:
        return self.alive and self.ready and self.task is None


class PoolError(RuntimeError):
    """The worker pool cannot run (a worker keeps failing to start)."""


class LocalPoolEvaluator:
    """Trains several candidates at once in local worker processes (see the module docstring).

    Args:
        data: the search subset (``engine.data.Dataset``), on any device.
        config: training settings; each job's seed replaces ``config.seed``.
        device: the session's resolved device (``"cpu"`` or ``"cuda:N"``).
        control: the session's pause / stop flags (``None``: never paused).
        workers, per_gpu, run_device: see ``plan_workers``.
        simulate_oom: TEST ONLY, see ``make_parallel_evaluator``.
        stop_grace: seconds ``evaluate`` waits, after a stop, for in-flight
            candidates to finish or to reach a batch boundary.
        slots: an explicit worker plan (instead of ``plan_workers``).

    Attributes:
        trace: ``(what, candidate_id, worker, attempt, alone)`` tuples, ``what``
            in ``start`` / ``done`` / ``oom-retry`` / ``died`` / ``stopped`` --
            the order things happened in, for tests and diagnostics.
    """

    name = "workers"

    def __init__(
        self,
        data: Any,
        config: TrainConfig,
        device: str,
        control: Control | None = None,
        workers: int = 2,
        per_gpu: int = 1,
        run_device: str = "auto",
        simulate_oom: Collection[int] = (),
        stop_grace: float = 10.0,
        slots: Sequence[WorkerSlot] | None = None,
    ) -> None:
        self.data = data
        self.config = config
        self.device = device
        self.control = control
        self.simulate_oom = frozenset(int(c) for c in simulate_oom)
        self.stop_grace = stop_grace
        if slots is None:
            cuda = 0
            if device.startswith("cuda"):
                import torch

                cuda = torch.cuda.device_count()
            slots = plan_workers(device, workers, per_gpu, run_device, cuda_devices=cuda)
        self.slots = list(slots)
        self.trace: list[tuple[str, int, str, int, bool]] = []
        self._workers: list[_Worker] = []
        self._tmp: Path | None = None
        self._data_file: str = ""
        self._ctx = mp.get_context("spawn")
        self._pause = None
        self._stop = None
        self._closed = False

    # ------------------------------------------------------------------ pool
    def worker_pids(self) -> dict[str, int]:
        """``{worker name: pid}`` of the live worker processes."""
        return {w.slot.name: w.pid for w in self._workers if w.alive and w.pid}

    def _ensure_pool(self) -> None:
        if self._closed:
            raise PoolError("the worker pool was closed")
        if self._tmp is None:
            import torch

            _remove_stale_pool_dirs()
            self._tmp = Path(tempfile.mkdtemp(prefix=f"nas3d-pool-{os.getpid()}-"))
            self._data_file = str(self._tmp / "search_data.pt")
            torch.save(pack_dataset(self.data), self._data_file)
            self._pause = self._ctx.Event()
            self._stop = self._ctx.Event()
            self._workers = [_Worker(slot) for slot in self.slots]
        for w in self._workers:
            if not w.alive:
                self._spawn(w)

    def warm_up(self, timeout: float = 300.0) -> float:
        """Start the pool now and wait until every worker has loaded the data; returns the seconds taken.

        Optional: ``evaluate`` starts the pool itself. Benchmarks use it to time startup apart.

        Raises:
            PoolError: a worker cannot start, or not within ``timeout`` seconds.
        """
        t0 = time.perf_counter()
        self._ensure_pool()
        ignore = (lambda *a: None,) * 3
        while not all(w.ready for w in self._workers):
            if time.perf_counter() - t0 > timeout:
                raise PoolError(f"the worker pool did not start within {timeout:.0f} s")
            for w in self._workers:
                if not w.alive:
                    self._spawn(w)
            self._pump(None, ignore, POLL_S)
        return time.perf_counter() - t0

    def _spawn(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        log = str(self._tmp / f"{w.slot.name.replace(':', '_')}.log")
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, w.slot, self._data_file, self.config, self._pause, self._stop, os.getpid(), log),
            name=f"nas3d-{w.slot.name}",
            daemon=True,
        )
        proc.start()
        child.close()
        w.proc, w.conn, w.pid, w.ready = proc, parent, proc.pid, False

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
        w.pid = None
        w.ready = False
        return code

    def _log_tail(self, w: _Worker) -> str:
        try:
            lines = (self._tmp / f"{w.slot.name.replace(':', '_')}.log").read_text(errors="replace").strip().splitlines()
        except (OSError, TypeError):
            return ""
        return lines[-1][:200] if lines else ""

    def close(self) -> None:
        """Ask every worker to exit (stopping in-flight candidates), then remove the temporary files."""
        if self._closed:
            return
        self._closed = True
        if self._stop is not None:
            self._stop.set()
        for w in self._workers:
            if w.conn is not None:
                try:
                    w.conn.send(("exit",))
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
    def evaluate(self, jobs: Sequence[Job], on_start: OnStart, on_epoch: OnEpoch, on_done: OnDone) -> None:
        """Train every job on the pool; callbacks run on this thread.

        Raises:
            StopRequested: a stop was asked for; candidates that finished were reported.
            PoolError: a worker cannot start (e.g. its device is unusable).
        """
        if not jobs:
            return
        self._ensure_pool()
        paused, stopped = control_state(self.control)
        if stopped:
            raise StopRequested()
        self._stop.clear()
        queue: collections.deque[_Task] = collections.deque(_Task(job) for job in jobs)
        cb = (on_start, on_epoch, on_done)
        while queue or any(w.task is not None for w in self._workers):
            paused, stopped = control_state(self.control)
            if stopped:
                self._abort(cb)
                raise StopRequested()
            if paused != self._pause.is_set():
                (self._pause.set if paused else self._pause.clear)()
            for w in self._workers:
                if not w.alive:
                    self._spawn(w)
            if not paused:
                self._dispatch(queue, on_start)
            self._pump(queue, cb, POLL_S)

    # ------------------------------------------------------------------ scheduling
    def _dispatch(self, queue: collections.deque[_Task], on_start: OnStart) -> None:
        running: collections.Counter[str] = collections.Counter(w.slot.device for w in self._workers if w.task)
        exclusive = {w.slot.device for w in self._workers if w.task is not None and w.task.alone}
        devices = sorted({w.slot.device for w in self._workers})
        for task in list(queue):
            idle = [w for w in self._workers if w.idle]
            if not idle:
                return
            reserved = {t.reserved for t in queue if t.alone and t.reserved}
            if task.alone:
                if task.reserved is None:
                    free = [d for d in devices if d not in reserved and d not in exclusive] or devices
                    task.reserved = min(free, key=lambda d: (running[d], d))
                    reserved.add(task.reserved)
                if running[task.reserved] == 0:
                    chosen = next((w for w in idle if w.slot.device == task.reserved), None)
                    if chosen is not None:
                        queue.remove(task)
                        if self._send(chosen, task, on_start, queue):
                            running[chosen.slot.device] += 1
                            exclusive.add(chosen.slot.device)
                continue
            fits = [w for w in idle if w.slot.device not in exclusive and w.slot.device not in reserved]
            if not fits:
                continue
            chosen = min(fits, key=lambda w: (running[w.slot.device], self._workers.index(w)))
            queue.remove(task)
            if self._send(chosen, task, on_start, queue):
                running[chosen.slot.device] += 1

    def _send(self, w: _Worker, task: _Task, on_start: OnStart, queue: collections.deque[_Task]) -> bool:
        job = task.job
        simulate = job.candidate_id in self.simulate_oom and not task.alone
        try:
            w.conn.send(("job", job.candidate_id, job.genotype, job.seed, simulate))
        except (OSError, BrokenPipeError):  # died while idle: not the candidate's fault
            queue.appendleft(task)
            self._bury(w)
            return False
        w.task = task
        task.attempt += 1
        task.started, task.epochs = True, 0
        task.shared = False
        neighbours = [o.task for o in self._workers if o is not w and o.task is not None and o.slot.device == w.slot.device]
        if neighbours:
            task.shared = True
            for t in neighbours:
                t.shared = True
        self.trace.append(("start", job.candidate_id, w.slot.name, task.attempt, task.alone))
        on_start(job, w.slot.name)
        return True

    # ------------------------------------------------------------------ messages
    def _pump(self, queue: collections.deque[_Task] | None, cb: tuple, timeout: float) -> None:
        """Wait up to ``timeout`` for worker messages or deaths and handle them."""
        live = [w for w in self._workers if w.alive]
        if not live:
            time.sleep(timeout)
            return
        by_obj: dict[Any, _Worker] = {}
        for w in live:
            by_obj[w.conn] = w
            by_obj[w.proc.sentinel] = w
        for obj in wait_for(list(by_obj), timeout=timeout):
            w = by_obj[obj]
            if not w.alive:
                continue
            dead = False
            try:
                while w.conn.poll():
                    self._handle(w, w.conn.recv(), queue, cb)
            except (EOFError, OSError):
                dead = True
            if dead or not w.proc.is_alive():
                self._died(w, queue, cb)

    def _handle(self, w: _Worker, msg: tuple, queue: collections.deque[_Task] | None, cb: tuple) -> None:
        on_start, on_epoch, on_done = cb
        kind = msg[0]
        if kind == "ready":
            w.ready, w.pid, w.failed_starts = True, msg[1], 0
            return
        if kind == "fatal":
            w.last_error = msg[1]
            return
        task = w.task
        if task is None or task.job.candidate_id != msg[1]:
            return  # a message about an abandoned candidate
        if kind == "epoch":
            task.epochs += 1
            on_epoch(task.job, msg[2])
            return
        w.task = None
        if kind == "stopped":
            self.trace.append(("stopped", task.job.candidate_id, w.slot.name, task.attempt, task.alone))
            return
        result: CandidateResult = msg[2]
        if result.status == "oom" and task.shared and not task.alone:
            if queue is None:  # stopping: not retried now, so not reported (a resume trains it)
                return
            self.trace.append(("oom-retry", task.job.candidate_id, w.slot.name, task.attempt, task.alone))
            task.alone = True
            queue.appendleft(task)
            return
        self.trace.append(("done", task.job.candidate_id, w.slot.name, task.attempt, task.alone))
        on_done(task.job, result, w.slot.name)

    def _died(self, w: _Worker, queue: collections.deque[_Task] | None, cb: tuple) -> None:
        on_done = cb[2]
        was_ready = w.ready
        task, w.task = w.task, None
        code = self._bury(w)
        why = f"exit code {code}" if code is None or code >= 0 else f"signal {signal.Signals(-code).name}"
        if not was_ready:
            w.failed_starts += 1
            if w.failed_starts >= 3:
                detail = w.last_error or self._log_tail(w) or why
                raise PoolError(f"worker {w.slot.name} could not start: {detail}")
        if task is None:
            return
        task.deaths += 1
        self.trace.append(("died", task.job.candidate_id, w.slot.name, task.attempt, task.alone))
        if queue is None:  # stopping: in-flight work is abandoned
            return
        if task.deaths >= 2:
            message = f"worker died twice while training it (last: {w.slot.name}, {why})"
            tail = self._log_tail(w)
            if tail:
                message += f": {tail}"
            on_done(task.job, failed_result(message, time.perf_counter() - task.t0), w.slot.name)
            return
        queue.appendleft(task)  # retried once, on a respawned (or another) worker

    def _abort(self, cb: tuple) -> None:
        """After a stop: tell the workers, report what finishes within the grace period, abandon the rest."""
        self._stop.set()
        self._pause.clear()
        deadline = time.monotonic() + self.stop_grace
        while any(w.task is not None for w in self._workers) and time.monotonic() < deadline:
            self._pump(None, cb, POLL_S)
        for w in self._workers:
            if w.task is not None:  # stuck past the grace period
                w.task = None
                self._bury(w)
