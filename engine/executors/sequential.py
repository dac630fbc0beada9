"""The sequential executor: one candidate at a time, in the session's thread (the published behaviour).

``executor.kind = "local"`` with one worker and one candidate per device.
Nothing shares the device, so an out-of-memory error is final (``oom``).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..training.loop import train_candidate
from .base import Callbacks, Job, TrainSpec

__all__ = ["SequentialEvaluator"]


class SequentialEvaluator:
    """Trains one candidate at a time in this thread.

    Args:
        data: the search subset (``engine.data.Dataset``) on ``device``.
        spec: training settings and fitness.
        device: where to train.
        control: pause / stop flags, obeyed at every batch boundary.
    """

    name = "local"

    def __init__(self, data: Any, spec: TrainSpec, device: str, control: Any = None) -> None:
        self.data = data
        self.spec = spec
        self.device = device
        self.control = control
        self.worker = f"local:{device}"

    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Train every job in order.

        Raises:
            engine.errors.StopRequested: at the batch boundary after a stop.
        """
        for job in jobs:
            callbacks.on_start(job, self.worker)
            result = train_candidate(
                job.genotype,
                self.data,
                self.spec.config,
                seed=job.seed,
                fitness=self.spec.fitness,
                device=self.device,
                control=self.control,
                on_epoch=lambda record, job=job: callbacks.on_epoch(job, record),
                checkpoint=job.checkpoint,
                prune=job.prune,
                on_resume=lambda epoch, job=job: callbacks.on_resume(job, epoch),
                on_notice=lambda text, job=job: callbacks.on_notice(job, text),
            )
            callbacks.on_done(job, result, self.worker)

    def close(self) -> None:
        pass
