"""Evaluation backends: turn a list of training jobs into results.

The session decides *what* is trained (feasible, new architectures, within
the budget) and records results; an evaluator only decides *where and how
concurrently*. Every backend reports through the same three callbacks, called
on the session's thread, so events, records and resume behave alike.

``SequentialEvaluator`` trains in this process, one candidate at a time (the
published behaviour, ``executor.kind = "local"`` with ``workers = 1``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from .control import Control
from .train import CandidateResult, TrainConfig, train_candidate

__all__ = ["Job", "Evaluator", "SequentialEvaluator", "candidate_seed"]


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    """Training seed of a candidate: fixed by the run seed and its id, not by who trains it."""
    return (int(run_seed) * 1_000_003 + int(candidate_id)) % (2**31 - 1)


@dataclass(frozen=True)
class Job:
    """One candidate to train."""

    candidate_id: int
    genotype: Any  # engine.space.Genotype
    seed: int


OnStart = Callable[[Job, str], None]
OnEpoch = Callable[[Job, dict], None]
OnDone = Callable[[Job, CandidateResult, str], None]


class Evaluator(Protocol):
    """What the session needs from a backend."""

    name: str

    def evaluate(self, jobs: Sequence[Job], on_start: OnStart, on_epoch: OnEpoch, on_done: OnDone) -> None:
        """Train every job; call ``on_done`` for each (in any order).

        Raises:
            engine.control.StopRequested: a stop was asked for; finished jobs were reported.
        """

    def close(self) -> None: ...


class SequentialEvaluator:
    """Trains one candidate at a time in this process."""

    name = "local"

    def __init__(self, data: Any, config: TrainConfig, device: str, control: Control | None = None) -> None:
        self.data = data
        self.config = config
        self.device = device
        self.control = control
        self.worker = f"local:{device}"

    def evaluate(self, jobs: Sequence[Job], on_start: OnStart, on_epoch: OnEpoch, on_done: OnDone) -> None:
        for job in jobs:
            on_start(job, self.worker)
            result = train_candidate(
                job.genotype,
                self.data,
                dataclasses.replace(self.config, seed=job.seed),
                device=self.device,
                control=self.control,
                on_epoch=lambda rec, job=job: on_epoch(job, rec),
            )
            on_done(job, result, self.worker)

    def close(self) -> None:
        pass
