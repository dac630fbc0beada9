"""What every executor shares: the job, the callbacks, the protocol, and the seed of a candidate.

The session decides *what* is trained (feasible, new architectures, within
the budget) and records results; an executor only decides *where and how
concurrently*. Every backend reports through the same ``Callbacks``, called on
the session's thread, so events, records and resume behave alike whatever
trains the candidates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from ..profile.sections import TrainingConfig
from ..pruning import PruneRule
from ..vocab import Fitness

if TYPE_CHECKING:  # importing the trainer would import torch
    from ..space import Genotype
    from ..training.loop import CandidateResult, EpochRecord

__all__ = ["Job", "TrainSpec", "Callbacks", "Evaluator", "candidate_seed"]


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    """Training seed of a candidate: fixed by the run seed and its id, not by who trains it."""
    return (int(run_seed) * 1_000_003 + int(candidate_id)) % (2**31 - 1)


@dataclass(frozen=True)
class Job:
    """One candidate to train.

    Attributes:
        candidate_id: the strategy's proposal number.
        genotype: the feasible ``engine.space.Genotype``.
        seed: its training seed (``candidate_seed``).
        epoch_checkpoint: where its epoch checkpoint lives (None: none).
        prune: the bars its training must reach epoch by epoch
            (``engine.pruning``); None: trained to the end.
    """

    candidate_id: int
    genotype: Genotype
    seed: int
    epoch_checkpoint: str | None = None
    prune: PruneRule | None = None


@dataclass(frozen=True)
class TrainSpec:
    """How every job of a search is trained: the settings, the fitness, and whether
    each training also scores its best epoch on the test split (exhaustive runs)."""

    config: TrainingConfig
    fitness: Fitness = "val_acc"
    score_test: bool = False


@dataclass(frozen=True)
class Callbacks:
    """What an executor reports, always on the session's thread.

    ``on_start(job, worker)`` once per attempt; ``on_epoch(job, record)``
    after every epoch; ``on_done(job, result, worker)`` once per job with the
    final ``CandidateResult``; ``on_resume(job, epoch)`` when an epoch
    checkpoint let a job start after ``epoch``; ``on_notice(job, text)`` for a
    one-line warning (a refused epoch checkpoint).
    """

    on_start: Callable[[Job, str], None]
    on_epoch: Callable[[Job, EpochRecord], None]
    on_done: Callable[[Job, CandidateResult, str], None]
    on_resume: Callable[[Job, int], None] = lambda job, epoch: None
    on_notice: Callable[[Job, str], None] = lambda job, text: None


class Evaluator(Protocol):
    """What the session needs from a backend."""

    name: str

    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Train every job; ``callbacks.on_done`` once for each (in any order).

        Raises:
            engine.errors.StopRequested: a stop was asked for; finished jobs were reported.
        """

    def close(self) -> None: ...
