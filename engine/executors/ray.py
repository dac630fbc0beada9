"""The Ray backend: candidates as Ray tasks on an existing cluster or a local Ray instance.

This module owns ``RayEvaluator`` (``executor.kind = "ray"``) and
``import_ray`` (Ray is optional: without it, choosing ``ray`` is a one-line
``SessionError``, which the CLI turns into exit code 2).

Design:

- Connects with ``ray.init(address=executor.address)`` (``"auto"`` or
  ``"ray://host:port"``); an empty address starts a local instance (shut down
  again by ``close()``). When Ray is already initialised in this process it is
  used as it is (and left running).
- The search subset goes into the object store once (``ray.put`` of numpy
  arrays); each Ray worker process materialises it once per device and keeps
  it in a module-level cache across tasks.
- One task per candidate: ``num_cpus = 1`` and, when the cluster has GPUs and
  ``run.device`` is not ``"cpu"``, ``num_gpus = 1 / per_gpu`` (so ``per_gpu``
  candidates share a GPU). At most ``workers`` candidates (``workers x
  per_gpu`` with GPUs) are in flight; the cluster's resources may allow fewer.
- A small hub actor carries progress (start, epochs) from the tasks to the
  session thread and pause / stop flags from the session to the tasks, which
  read them at batch boundaries (at most every 0.2 s). It is pinned to the
  driver's node (``NodeAffinitySchedulingStrategy``, not soft): on a cluster,
  nothing the run needs lives only on a worker node.
- A task lost to a system failure (worker or node died, Ray's memory monitor)
  is retried once, then reported ``failed``; a notice names the lost node
  (``HOST/NODEID``, the worker column's name for it) and the retried
  candidate. When no live node with a CPU is left, ``evaluate`` raises a
  one-line ``SessionError`` (the session keeps its search state).
- ``ray.init`` installs its own SIGTERM handler; the run's handlers (SIGINT,
  SIGTERM, SIGUSR1: stop with the search state saved, exit 130) are put back after it. A candidate that runs out of GPU
  memory on a fractional GPU is retried with ``num_gpus = 1`` (alone on a
  GPU); on CPU-only clusters "alone" means nothing else in flight.

Thread count: each task trains with ``torch.set_num_threads(1)`` (one CPU per
task), so its result equals a sequential run made with one torch thread.

It must not decide what is trained, write to the run directory or publish
events (callbacks only, on the session thread), and it must not print: Ray's
worker logs are not forwarded to the driver's terminal.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence

from ..control import SessionGate
from ..errors import SessionError, StopRequested, one_line
from ..training.data_protocol import TrainData
from ..training.loop import ModelFactory
from .base import Callbacks, Job, TrainSpec
from .packing import pack_dataset, unpack_dataset
from .pump import MessagePump, attempt_of
from .tasks import Task, TaskCore, Trace, control_flags, drain_with_grace
from .worker import Paused, Progress, Reply, Running, run_job

if TYPE_CHECKING:
    from ..data import Dataset

__all__ = ["RayEvaluator", "import_ray", "RAY_MISSING"]

POLL_S = 0.05

RAY_MISSING = "executor.kind = 'ray' needs Ray, which is not installed: pip install 'nas3d-tui[ray]' (or 'ray[default]>=2.9')"


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        engine.errors.SessionError: Ray is not installed (one line, exit code 2 in the CLI).
    """
    try:
        import ray
    except ImportError:
        raise SessionError(RAY_MISSING) from None
    return ray


def node_label(hostname: str, node_id: str) -> str:
    """How the worker column names a Ray node: its host name and the start of its node id
    (two raylets on one machine share the host name and the IP, never the node id)."""
    return f"{hostname}/{node_id[:8]}"


# ---------------------------------------------------------------------------------------------
# Inside Ray workers
# ---------------------------------------------------------------------------------------------

_DATA_CACHE: dict[tuple[str, str], TrainData] = {}


class _Hub:
    """Ray actor: progress messages from tasks, pause / stop flags from the session."""

    def __init__(self) -> None:
        self.messages: list[Progress] = []
        self.flags = (False, False)

    def push(self, message: Progress) -> None:
        self.messages.append(message)

    def drain(self) -> list[Progress]:
        out, self.messages = self.messages, []
        return out

    def set_flags(self, paused: bool, stopped: bool) -> None:
        self.flags = (paused, stopped)

    def get_flags(self) -> tuple[bool, bool]:
        return self.flags


class _HubGate:
    """The batch gate inside a task (a ``Gate``): reads the hub's flags at batch boundaries (at most
    every 0.2 s) and tells the hub when it waits in a pause."""

    def __init__(self, hub: Any, cid: int, attempt: int) -> None:  # Any: a Ray actor handle of _Hub; Ray ships no types
        self.hub = hub
        self.cid = cid
        self.attempt = attempt
        self.last = 0.0
        self.flags = (False, False)

    def _read(self) -> tuple[bool, bool]:
        import ray

        now = time.monotonic()
        if now - self.last >= 0.2:
            paused, stopped = ray.get(self.hub.get_flags.remote())
            self.flags = (bool(paused), bool(stopped))
            self.last = now
        return self.flags

    @property
    def paused(self) -> bool:
        return self._read()[0]

    @property
    def stopped(self) -> bool:
        return self._read()[1]

    def at_batch_boundary(self) -> None:
        paused, stopped = self._read()
        if paused and not stopped:
            self.hub.push.remote(Paused(self.cid, self.attempt))
            while paused and not stopped:
                time.sleep(0.2)
                paused, stopped = self._read()
            self.hub.push.remote(Running(self.cid, self.attempt))
        if stopped:
            raise StopRequested()


def _ray_train(
    data_ref: list[Any], spec: TrainSpec, job: Job, attempt: int,
    hub: Any,  # Any: a Ray actor handle of _Hub; Ray ships no types
    model_factory: ModelFactory | None,
) -> Reply:
    """A Ray task: train one candidate (``run_job``); returns ``Finished`` or ``Stopped``.

    ``data_ref`` is a one-element list so that Ray hands over the reference,
    not the value: the data is fetched once per worker process and cached.
    """
    import ray
    import torch

    torch.set_num_threads(1)
    gpu_ids = ray.get_gpu_ids()
    device = "cuda:0" if gpu_ids else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned
    node = node_label(socket.gethostname(), ray.get_runtime_context().get_node_id())
    worker = f"ray:{node}:cuda:{gpu_ids[0]}" if gpu_ids else f"ray:{node}:cpu"
    key = (data_ref[0].hex(), device)

    def data() -> TrainData:
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()
            _DATA_CACHE[key] = unpack_dataset(ray.get(data_ref[0]), device)
        return _DATA_CACHE[key]

    gate = _HubGate(hub, job.candidate_id, attempt)
    return run_job(job, data, spec, device, gate, lambda message: hub.push.remote(message), worker=worker,
                   attempt=attempt, model_factory=model_factory)


def _ray_warm() -> int:
    """A Ray task that only imports the trainer (benchmarks time worker startup apart)."""
    import torch  # noqa: F401

    from ..training import loop  # noqa: F401

    return os.getpid()


# ---------------------------------------------------------------------------------------------
# Session side
# ---------------------------------------------------------------------------------------------


class _keep_signal_handlers:
    """``ray.init`` installs its own SIGTERM (and SIGINT) handlers on the main thread; the run's own
    (search state saved, exit 130: SIGINT, SIGTERM and SIGUSR1, a batch scheduler's warning) must stay in place."""

    def __enter__(self) -> None:
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            self.saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}

    def __exit__(self, *exc: object) -> None:
        if self.main:
            for s, handler in self.saved.items():
                if handler is not None:
                    signal.signal(s, handler)


class RayEvaluator:
    """Trains candidates as Ray tasks (see the module docstring).

    Args:
        data: the search subset (``engine.data.Dataset``).
        spec: training settings and fitness.
        control: the session's gate (``None``: never paused).
        address: Ray address; empty starts a local instance.
        workers: most candidates in flight (times ``per_gpu`` with GPUs).
        per_gpu: candidates sharing one GPU (``num_gpus = 1 / per_gpu``).
        use_gpus: request GPUs when the cluster has them.
        model_factory: builds each network inside the tasks (None:
            ``engine.model.build_network``); it must pickle. Tests inject failures with it.
        stop_grace: seconds to wait for in-flight candidates after a stop.

    Raises:
        engine.errors.SessionError: Ray is not installed.
    """

    name = "ray"

    def __init__(
        self,
        data: Dataset,
        spec: TrainSpec,
        control: SessionGate | None = None,
        address: str = "",
        workers: int = 1,
        per_gpu: int = 1,
        use_gpus: bool = True,
        model_factory: ModelFactory | None = None,
        stop_grace: float = 10.0,
    ) -> None:
        self.ray = import_ray()
        self.data = data
        self.spec = spec
        self.control = control
        self.address = address
        self.workers = max(1, int(workers))
        self.per_gpu = max(1, int(per_gpu))
        self.use_gpus = use_gpus
        self.model_factory = model_factory
        self.stop_grace = stop_grace
        self.trace: Trace = []
        self._started = False
        self._owns_ray = False
        self._hub: Any = None  # a Ray actor handle of _Hub
        self._data_ref: Any = None  # a Ray object reference
        self._remote: Any = None  # the Ray remote function of _ray_train
        self._gpu_share = 0.0
        self._closed = False
        self._flags = (False, False)
        self._inflight: dict[Any, Task] = {}
        self._messages = MessagePump()  # which attempts wait in a pause, and where each started
        self._driver_node = ""
        self.lost_nodes: list[str] = []  # node labels seen to die, in order
        self._deaths = 0  # tasks whose worker died (from then on: is any node left to train?)

    # ------------------------------------------------------------------ setup
    def _ensure(self) -> None:
        if self._started:
            return
        ray = self.ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            try:
                with _keep_signal_handlers():
                    if self.address:
                        engine_dir = str(Path(__file__).resolve().parents[1])
                        ray.init(address=self.address, runtime_env={"py_modules": [engine_dir]}, **kwargs)
                    else:  # "local": a new instance, never a cluster that happens to run on this machine
                        ray.init(address="local", **kwargs)
                        self._owns_ray = True
            except Exception as exc:  # connection refused, bad address, ...
                where = self.address or "a local instance"
                raise SessionError(f"cannot start Ray ({where}): {one_line(exc)}") from None
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        self._gpu_share = (1.0 / self.per_gpu) if (gpus > 0 and self.use_gpus) else 0.0
        # The hub lives on the driver's node: a lost worker node cannot take it (and the run) along.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._driver_node = ray.get_runtime_context().get_node_id()
        here = NodeAffinitySchedulingStrategy(node_id=self._driver_node, soft=False)
        self._hub = ray.remote(num_cpus=0, max_restarts=0)(_Hub).options(scheduling_strategy=here).remote()
        self._remote = ray.remote(_ray_train)
        packed = pack_dataset(self.data)
        self._data_ref = ray.put({k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in packed.items()})
        self._started = True

    def warm_up(self, timeout: float = 300.0) -> float:
        """Connect (or start Ray), ship the data, and have ``max_in_flight`` workers import the trainer.

        Returns the seconds taken. Optional: ``evaluate`` connects by itself.
        """
        t0 = time.perf_counter()
        self._ensure()
        warm = self.ray.remote(_ray_warm)
        self.ray.get([warm.options(num_cpus=1).remote() for _ in range(self.max_in_flight)], timeout=timeout)
        return time.perf_counter() - t0

    @property
    def max_in_flight(self) -> int:
        return self.workers * (self.per_gpu if self._gpu_share else 1)

    def close(self) -> None:
        """Kill the hub; shut Ray down when this evaluator started it."""
        if self._closed:
            return
        self._closed = True
        ray = self.ray
        if self._started and ray.is_initialized():
            try:
                ray.kill(self._hub)
            except Exception:
                pass
            if self._owns_ray:
                ray.shutdown()

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Train every job as a Ray task; callbacks run on this thread.

        Raises:
            StopRequested: a stop was asked for; candidates that finished were reported.
            engine.errors.SessionError: Ray cannot be started or reached.
        """
        if not jobs:
            return
        self._ensure()
        paused, stopped = control_flags(self.control)
        if stopped:
            raise StopRequested()
        self._set_flags(paused, False)
        core = TaskCore(jobs, callbacks, self.trace)
        inflight = self._inflight = {}
        next_capacity_check = 0.0
        while core.queue or inflight:
            paused, stopped = control_flags(self.control)
            if stopped:
                core.stopping = True
                self._set_flags(False, True)
                drain_with_grace(lambda: bool(inflight), lambda: self._pump(core), self.stop_grace)
                for ref in list(inflight):
                    try:
                        self.ray.cancel(ref, force=True)
                    except Exception:
                        pass
                    self._messages.ended(inflight.pop(ref))
                raise StopRequested()
            self._set_flags(paused, False)
            self._messages.report_pause(self.control, paused, inflight.values())
            if not paused:
                self._submit(core)
            self._pump(core)
            if self._deaths and time.monotonic() >= next_capacity_check:
                next_capacity_check = time.monotonic() + 2.0
                self._check_capacity()

    def _lost(self, task: Task, core: TaskCore, exc: BaseException) -> None:
        """A task's worker died: say which node (when the node died with it) and that it is retried once."""
        self._deaths += 1
        worker = self._messages.ended(task) or "ray"
        cause = one_line(exc, limit=160)
        node_gone = self._dead_node_of(worker, node_died="NodeDied" in type(exc).__name__)
        if node_gone and node_gone not in self.lost_nodes:
            self.lost_nodes.append(node_gone)
        where = f"node {node_gone} was lost" if node_gone else f"its Ray worker ({worker}) was lost"
        if not core.stopping:
            then = "retrying it once on the remaining nodes" if task.deaths == 0 else "it is reported failed"
            core.notice(task, f"{where}; {then} ({cause})")
        core.died(task, worker, f"Ray worker lost: {cause}")

    def _dead_node_of(self, worker: str, node_died: bool = False) -> str:
        """The node label in ``worker`` when that node died (Ray said so, or it is no longer alive), else ""."""
        parts = worker.split(":")
        label = parts[1] if len(parts) > 2 else ""
        node8 = label.rsplit("/", 1)[-1] if "/" in label else ""
        if not node8:
            return ""
        if node_died:
            return label
        alive = {n.get("NodeID", "")[:8] for n in self._nodes() if n.get("Alive")}
        return label if node8 not in alive else ""

    def _nodes(self) -> list[dict[str, Any]]:
        try:
            return list(self.ray.nodes())
        except Exception:  # noqa: BLE001 - diagnostics only
            return []

    def _check_capacity(self) -> None:
        """With work waiting and no live node that can run a task, stop (the session keeps its search state).

        Raises:
            engine.errors.SessionError: every node that could train a candidate is gone.
        """
        nodes = self._nodes()
        if not nodes:
            return
        if any(n.get("Alive") and float(n.get("Resources", {}).get("CPU", 0.0)) >= 1.0 for n in nodes):
            return
        lost = ", ".join(self.lost_nodes) or "all of them"
        raise SessionError(
            f"every Ray node that can train a candidate is gone (lost: {lost}); finished candidates and the "
            "search state are kept: add nodes to the cluster, then resume"
        )

    def _set_flags(self, paused: bool, stopped: bool) -> None:
        if (paused, stopped) != self._flags:
            self._flags = (paused, stopped)
            self.ray.get(self._hub.set_flags.remote(paused, stopped))

    def _submit(self, core: TaskCore) -> None:
        inflight = self._inflight
        for task in list(core.queue):
            if len(inflight) >= self.max_in_flight:
                return
            if any(t.alone and not self._gpu_share for t in inflight.values()):
                return  # a CPU task running alone
            if task.alone and not self._gpu_share and inflight:
                return  # wait until nothing else runs (and place nothing new meanwhile)
            core.queue.remove(task)
            shared = bool(inflight) if not self._gpu_share else self._gpu_share < 1.0
            core.dispatched(task, shared)
            if not self._gpu_share:
                for t in inflight.values():
                    t.shared = True
            options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
            if self._gpu_share:
                options["num_gpus"] = 1.0 if task.alone else self._gpu_share
            ref = self._remote.options(**options).remote(
                [self._data_ref], self.spec, task.job, task.attempt, self._hub, self.model_factory
            )
            inflight[ref] = task

    def _pump(self, core: TaskCore) -> None:
        """Wait briefly for a finished task; hand on progress messages (hub) and results (return values)."""
        inflight = self._inflight
        if inflight:
            ready, _ = self.ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
        else:
            ready = []
            time.sleep(POLL_S)
        by_id = {attempt_of(t): t for t in inflight.values()}
        message: Progress
        for message in self.ray.get(self._hub.drain.remote()):
            task = by_id.get((message.cid, message.attempt))
            if task is None:
                continue  # about an attempt that is over
            self._messages.handle(core, task, message)
        for ref in ready:
            self._finish(ref, core)

    def _finish(self, ref: Any, core: TaskCore) -> None:  # Any: a Ray ObjectRef; Ray ships no types
        task = self._inflight.pop(ref)
        try:
            reply: Reply = self.ray.get(ref)
        except Exception as exc:  # the task's worker or node died, or Ray killed it (memory monitor)
            self._lost(task, core, exc)
            return
        self._messages.handle(core, task, reply)
