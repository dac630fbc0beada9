"""The sequential executor: one candidate at a time, in the session's thread (the published behaviour).

``executor.kind = "local"`` with one worker and one candidate per device.
Nothing shares the device, so an out-of-memory error is final (``oom``).
"""
from __future__ import annotations

import functools
from typing import Sequence

from ..control import Gate
from ..errors import StopRequested
from ..training.data_protocol import TrainData
from ..training.loop import ModelFactory
from .base import Callbacks, Job, TrainSpec
from .tasks import TaskCore
from .worker import Stopped, run_job

__all__ = ["SequentialEvaluator"]


class SequentialEvaluator:
    """Trains one candidate at a time in this thread.

    Args:
        data: the search subset (``engine.data.Dataset``) on ``device``.
        spec: training settings and fitness.
        device: where to train.
        control: the batch gate (the session's pause / stop flags).
        model_factory: builds each network (None: ``engine.model.build_network``).
    """

    name = "local"

    def __init__(
        self,
        data: TrainData,
        spec: TrainSpec,
        device: str,
        control: Gate | None = None,
        model_factory: ModelFactory | None = None,
    ) -> None:
        self.data = data
        self.spec = spec
        self.device = device
        self.control = control
        self.model_factory = model_factory
        self.worker = f"local:{device}"

    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Train every job in order (``TaskCore`` hands on what ``run_job`` reports).

        Raises:
            engine.errors.StopRequested: at the batch boundary after a stop.
        """
        core = TaskCore(jobs, callbacks, [])
        while core.queue:
            task = core.queue.popleft()
            core.dispatched(task, shared=False)
            reply = run_job(
                task.job,
                lambda: self.data,
                self.spec,
                self.device,
                self.control,
                functools.partial(core.progress, task),
                worker=self.worker,
                model_factory=self.model_factory,
            )
            if isinstance(reply, Stopped):
                raise StopRequested()
            core.finished(task, reply.result, self.worker)

    def close(self) -> None:
        pass
