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
  read them at batch boundaries (at most every 0.2 s).
- A task lost to a system failure (worker or node died, Ray's memory monitor)
  is retried once, then reported ``failed``. A candidate that runs out of GPU
  memory on a fractional GPU is retried with ``num_gpus = 1`` (alone on a
  GPU); on CPU-only clusters "alone" means nothing else in flight.

Thread count: each task trains with ``torch.set_num_threads(1)`` (one CPU per
task), so its result equals a sequential run made with one torch thread.

It must not decide what is trained, write to the run directory or publish
events (callbacks only, on the session thread), and it must not print: Ray's
worker logs are not forwarded to the driver's terminal.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Collection, Sequence

from .control import Control, StopRequested
from .evaluator import Job, OnDone, OnEpoch, OnStart
from .parallel import (
    POLL_S,
    _Task,
    control_state,
    failed_result,
    one_line,
    pack_dataset,
    simulated_oom_model,
    unpack_dataset,
)
from .train import TrainConfig

__all__ = ["RayEvaluator", "import_ray", "RAY_MISSING"]

RAY_MISSING = "executor.kind = 'ray' needs Ray, which is not installed: pip install 'nas3d-tui[ray]' (or 'ray[default]>=2.9')"


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        engine.session.SessionError: Ray is not installed (one line, exit code 2 in the CLI).
    """
    try:
        import ray
    except ImportError:
        from .session import SessionError

        raise SessionError(RAY_MISSING) from None
    return ray


# ---------------------------------------------------------------------------------------------
# Inside Ray workers
# ---------------------------------------------------------------------------------------------

_DATA_CACHE: dict[tuple[str, str], Any] = {}


class _Hub:
    """Ray actor: progress messages from tasks, pause / stop flags from the session."""

    def __init__(self) -> None:
        self.messages: list[tuple] = []
        self.flags = (False, False)

    def push(self, message: tuple) -> None:
        self.messages.append(message)

    def drain(self) -> list[tuple]:
        out, self.messages = self.messages, []
        return out

    def set_flags(self, paused: bool, stopped: bool) -> None:
        self.flags = (paused, stopped)

    def get_flags(self) -> tuple[bool, bool]:
        return self.flags


class _HubControl:
    """``Control``-like object inside a task: reads the hub's flags at batch boundaries (at most every 0.2 s)."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.last = 0.0
        self.flags = (False, False)

    def _read(self) -> tuple[bool, bool]:
        import ray

        now = time.monotonic()
        if now - self.last >= 0.2:
            self.flags = tuple(ray.get(self.hub.get_flags.remote()))
            self.last = now
        return self.flags

    def checkpoint(self) -> None:
        paused, stopped = self._read()
        while paused and not stopped:
            time.sleep(0.2)
            paused, stopped = self._read()
        if stopped:
            raise StopRequested()


def _ray_train(
    data_ref: list,
    config: TrainConfig,
    cid: int,
    attempt: int,
    genotype: Any,
    seed: int,
    hub: Any,
    simulate_oom: bool,
) -> tuple:
    """A Ray task: train one candidate; returns ``(kind, worker, result)``.

    ``data_ref`` is a one-element list so that Ray hands over the reference,
    not the value: the data is fetched once per worker process and cached.
    """
    import ray
    import torch

    from .model import build_network
    from .train import train_candidate

    torch.set_num_threads(1)
    gpu_ids = ray.get_gpu_ids()
    device = "cuda:0" if gpu_ids else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned
    node = ray.util.get_node_ip_address()
    worker = f"ray:{node}:cuda:{gpu_ids[0]}" if gpu_ids else f"ray:{node}:cpu"
    hub.push.remote(("start", cid, attempt, worker))
    key = (data_ref[0].hex(), device)
    start = time.perf_counter()
    try:
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()
            _DATA_CACHE[key] = unpack_dataset(ray.get(data_ref[0]), device)
        result = train_candidate(
            genotype,
            _DATA_CACHE[key],
            dataclasses.replace(config, seed=seed),
            device=device,
            control=_HubControl(hub),
            on_epoch=lambda record: hub.push.remote(("epoch", cid, attempt, record)),
            model_fn=simulated_oom_model if simulate_oom else build_network,
        )
        return ("done", worker, result)
    except StopRequested:
        return ("stopped", worker, None)
    except Exception as exc:  # noqa: BLE001 - reported as a failed candidate
        return ("done", worker, failed_result(one_line(exc), time.perf_counter() - start))


def _ray_warm() -> int:
    """A Ray task that only imports the trainer (benchmarks time worker startup apart)."""
    import torch  # noqa: F401

    from . import train  # noqa: F401

    return os.getpid()


# ---------------------------------------------------------------------------------------------
# Session side
# ---------------------------------------------------------------------------------------------


class RayEvaluator:
    """Trains candidates as Ray tasks (see the module docstring).

    Args:
        data: the search subset (``engine.data.Dataset``).
        config: training settings; each job's seed replaces ``config.seed``.
        device: the session's resolved device (only informs the default of ``use_gpus``).
        control: the session's pause / stop flags.
        address: Ray address; empty starts a local instance.
        workers: most candidates in flight (times ``per_gpu`` with GPUs).
        per_gpu: candidates sharing one GPU (``num_gpus = 1 / per_gpu``).
        use_gpus: request GPUs when the cluster has them.
        simulate_oom: TEST ONLY, see ``engine.parallel.make_parallel_evaluator``.
        stop_grace: seconds to wait for in-flight candidates after a stop.

    Raises:
        engine.session.SessionError: Ray is not installed.
    """

    name = "ray"

    def __init__(
        self,
        data: Any,
        config: TrainConfig,
        device: str,
        control: Control | None = None,
        address: str = "",
        workers: int = 1,
        per_gpu: int = 1,
        use_gpus: bool = True,
        simulate_oom: Collection[int] = (),
        stop_grace: float = 10.0,
    ) -> None:
        self.ray = import_ray()
        self.data = data
        self.config = config
        self.device = device
        self.control = control
        self.address = address
        self.workers = max(1, int(workers))
        self.per_gpu = max(1, int(per_gpu))
        self.use_gpus = use_gpus
        self.simulate_oom = frozenset(int(c) for c in simulate_oom)
        self.stop_grace = stop_grace
        self.trace: list[tuple[str, int, str, int, bool]] = []
        self._started = False
        self._owns_ray = False
        self._hub = None
        self._data_ref = None
        self._remote = None
        self._gpu_share = 0.0
        self._closed = False
        self._flags = (False, False)

    # ------------------------------------------------------------------ setup
    def _ensure(self) -> None:
        if self._started:
            return
        from .session import SessionError

        ray = self.ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            try:
                if self.address:
                    engine_dir = str(Path(__file__).resolve().parent)
                    ray.init(address=self.address, runtime_env={"py_modules": [engine_dir]}, **kwargs)
                else:
                    ray.init(**kwargs)
                    self._owns_ray = True
            except Exception as exc:  # connection refused, bad address, ...
                where = self.address or "a local instance"
                raise SessionError(f"cannot start Ray ({where}): {one_line(exc)}") from None
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        self._gpu_share = (1.0 / self.per_gpu) if (gpus > 0 and self.use_gpus) else 0.0
        self._hub = ray.remote(num_cpus=0)(_Hub).remote()
        self._remote = ray.remote(_ray_train)
        self._data_ref = ray.put({k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in pack_dataset(self.data).items()})
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
    def evaluate(self, jobs: Sequence[Job], on_start: OnStart, on_epoch: OnEpoch, on_done: OnDone) -> None:
        """Train every job as a Ray task; callbacks run on this thread.

        Raises:
            StopRequested: a stop was asked for; candidates that finished were reported.
            engine.session.SessionError: Ray cannot be started or reached.
        """
        if not jobs:
            return
        self._ensure()
        ray = self.ray
        paused, stopped = control_state(self.control)
        if stopped:
            raise StopRequested()
        self._set_flags(paused, False)
        queue: collections.deque[_Task] = collections.deque(_Task(job) for job in jobs)
        inflight: dict[Any, _Task] = {}
        cb = (on_start, on_epoch, on_done)
        while queue or inflight:
            paused, stopped = control_state(self.control)
            if stopped:
                self._abort(inflight, cb)
                raise StopRequested()
            self._set_flags(paused, False)
            if not paused:
                self._submit(queue, inflight)
            if inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
            else:
                ready = []
                time.sleep(POLL_S)
            self._drain(inflight, cb)
            for ref in ready:
                self._finish(ref, inflight, queue, cb)

    def _set_flags(self, paused: bool, stopped: bool) -> None:
        if (paused, stopped) != self._flags:
            self._flags = (paused, stopped)
            self.ray.get(self._hub.set_flags.remote(paused, stopped))

    def _submit(self, queue: collections.deque[_Task], inflight: dict[Any, _Task]) -> None:
        for task in list(queue):
            if len(inflight) >= self.max_in_flight:
                return
            if any(t.alone and not self._gpu_share for t in inflight.values()):
                return  # a CPU task running alone
            if task.alone and not self._gpu_share and inflight:
                return  # wait until nothing else runs (and place nothing new meanwhile)
            queue.remove(task)
            task.attempt += 1
            task.started, task.epochs = False, 0
            task.shared = bool(inflight) if not self._gpu_share else self._gpu_share < 1.0
            for t in inflight.values():
                if not self._gpu_share:
                    t.shared = True
            options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
            if self._gpu_share:
                options["num_gpus"] = 1.0 if task.alone else self._gpu_share
            job = task.job
            simulate = job.candidate_id in self.simulate_oom and not task.alone
            ref = self._remote.options(**options).remote(
                [self._data_ref], self.config, job.candidate_id, task.attempt, job.genotype, job.seed, self._hub, simulate
            )
            inflight[ref] = task

    def _drain(self, inflight: dict[Any, _Task], cb: tuple) -> None:
        on_start, on_epoch, _ = cb
        by_id = {(t.job.candidate_id, t.attempt): t for t in inflight.values()}
        for msg in self.ray.get(self._hub.drain.remote()):
            task = by_id.get((msg[1], msg[2]))
            if task is None:
                continue  # about an attempt that is over
            if msg[0] == "start" and not task.started:
                self._started_on(task, msg[3], on_start)
            elif msg[0] == "epoch" and task.started:
                task.epochs += 1
                on_epoch(task.job, msg[3])

    def _started_on(self, task: _Task, worker: str, on_start: OnStart) -> None:
        task.started = True
        self.trace.append(("start", task.job.candidate_id, worker, task.attempt, task.alone))
        on_start(task.job, worker)

    def _finish(self, ref: Any, inflight: dict[Any, _Task], queue: collections.deque[_Task] | None, cb: tuple) -> None:
        on_start, on_epoch, on_done = cb
        ray = self.ray
        task = inflight.pop(ref)
        try:
            kind, worker, result = ray.get(ref)
        except Exception as exc:  # the task's worker or node died, or Ray killed it (memory monitor)
            task.deaths += 1
            self.trace.append(("died", task.job.candidate_id, "ray", task.attempt, task.alone))
            if queue is None:
                return
            if task.deaths >= 2:
                if not task.started:
                    self._started_on(task, "ray", on_start)
                on_done(task.job, failed_result(f"Ray worker lost twice while training it: {one_line(exc)}"), "ray")
            else:
                queue.appendleft(task)
            return
        if kind == "stopped":
            self.trace.append(("stopped", task.job.candidate_id, worker, task.attempt, task.alone))
            return
        if result.status == "oom" and task.shared and not task.alone:
            if queue is None:
                return
            self.trace.append(("oom-retry", task.job.candidate_id, worker, task.attempt, task.alone))
            task.alone = True
            queue.appendleft(task)
            return
        if not task.started:
            self._started_on(task, worker, on_start)
        for record in result.history[task.epochs :]:  # epochs whose messages had not arrived yet
            on_epoch(task.job, dict(record))
        self.trace.append(("done", task.job.candidate_id, worker, task.attempt, task.alone))
        on_done(task.job, result, worker)

    def _abort(self, inflight: dict[Any, _Task], cb: tuple) -> None:
        ray = self.ray
        self._set_flags(False, True)
        deadline = time.monotonic() + self.stop_grace
        while inflight and time.monotonic() < deadline:
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
            self._drain(inflight, cb)
            for ref in ready:
                self._finish(ref, inflight, None, cb)
        for ref in list(inflight):
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
            inflight.pop(ref)
