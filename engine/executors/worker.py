"""The one worker body every executor runs, and the typed messages a worker sends back.

``run_job`` trains one ``Job`` with ``train_candidate`` and wraps stop and
failure the one way: a stop at a batch boundary answers ``Stopped``, any other
error of the training a ``failed`` (or ``oom``) ``CandidateResult`` in
``Finished``. The sequential executor calls it in the session's thread, the
thread executor in its slot threads, the process pool inside each worker
process and the Ray backend inside each task; only how the messages travel
(a direct call, a queue, a pipe, the hub actor) differs.

The messages are small frozen dataclasses (picklable for the process pool
and Ray); the receiving side matches on their type. ``cid`` and ``attempt``
say which attempt of which candidate a message is about (an attempt that is
over is ignored).

It must not decide what is trained, write anything but the epoch checkpoint
the job names, or publish events.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

from ..errors import StopRequested, one_line

if TYPE_CHECKING:
    from ..control import Gate
    from ..training.data_protocol import TrainData
    from ..training.loop import CandidateResult, EpochRecord, ModelFactory
    from .base import Job, TrainSpec

__all__ = [
    "Started",
    "EpochDone",
    "Resumed",
    "Notice",
    "Paused",
    "Running",
    "Finished",
    "Stopped",
    "Progress",
    "Reply",
    "WorkerMessage",
    "run_job",
]


@dataclass(frozen=True)
class Started:
    """The attempt began on ``worker``."""

    cid: int
    attempt: int
    worker: str


@dataclass(frozen=True)
class EpochDone:
    """One epoch finished: its record (as ``on_epoch`` gets it)."""

    cid: int
    attempt: int
    record: EpochRecord


@dataclass(frozen=True)
class Resumed:
    """An epoch checkpoint let the attempt start after ``epoch``."""

    cid: int
    attempt: int
    epoch: int


@dataclass(frozen=True)
class Notice:
    """A one-line warning (a refused epoch checkpoint)."""

    cid: int
    attempt: int
    text: str


@dataclass(frozen=True)
class Paused:
    """The attempt waits at a batch boundary (sent by a worker's gate)."""

    cid: int
    attempt: int


@dataclass(frozen=True)
class Running:
    """The attempt goes on after a pause (sent by a worker's gate)."""

    cid: int
    attempt: int


@dataclass(frozen=True)
class Finished:
    """The attempt ended with ``result`` (``ok``, ``pruned``, ``oom`` or ``failed``) on ``worker``."""

    cid: int
    attempt: int
    result: CandidateResult
    worker: str


@dataclass(frozen=True)
class Stopped:
    """The attempt obeyed a stop at a batch boundary on ``worker``."""

    cid: int
    attempt: int
    worker: str


Progress = Union[Started, EpochDone, Resumed, Notice, Paused, Running]
Reply = Union[Finished, Stopped]
WorkerMessage = Union[Progress, Reply]
Report = Callable[[Progress], None]


class _ReportFailed(Exception):
    """Carries an exception raised by ``report`` past the failure wrap (it is not the candidate's)."""

    def __init__(self, inner: BaseException) -> None:
        super().__init__(str(inner))
        self.inner = inner


def run_job(
    job: Job,
    data: Callable[[], TrainData],
    spec: TrainSpec,
    device: str,
    gate: Gate | None,
    report: Report,
    *,
    worker: str,
    attempt: int = 0,
    model_factory: ModelFactory | None = None,
) -> Reply:
    """Train ``job`` on ``device``; progress goes to ``report``, the outcome is returned.

    Args:
        job: the candidate, its seed, epoch checkpoint and prune rule.
        data: returns the search subset resident on ``device`` (called inside
            the failure wrap: a subset that cannot be made resident fails the
            candidate, not the worker).
        spec: training settings and fitness.
        device: where to train.
        gate: the batch gate training passes at every batch boundary.
        report: receives ``Started``, ``EpochDone``, ``Resumed`` and ``Notice``;
            its exceptions propagate unchanged.
        worker: the name the messages give the worker.
        attempt: the attempt number the messages carry.
        model_factory: builds the network (None: ``engine.model.build_network``).

    Returns:
        ``Finished`` (any error of the training is a ``failed`` or ``oom``
        result) or ``Stopped`` (the gate raised ``StopRequested``).
    """
    from ..model import build_network
    from ..training.loop import CandidateResult, train_candidate

    cid = job.candidate_id

    def send(message: Progress) -> None:
        try:
            report(message)
        except BaseException as exc:  # noqa: BLE001 - re-raised unchanged below
            raise _ReportFailed(exc) from None

    send(Started(cid, attempt, worker))
    start = time.perf_counter()
    try:
        result = train_candidate(
            job.genotype,
            data(),
            spec.config,
            seed=job.seed,
            fitness=spec.fitness,
            device=device,
            control=gate,
            on_epoch=lambda record: send(EpochDone(cid, attempt, record)),
            model_fn=model_factory if model_factory is not None else build_network,
            epoch_checkpoint=job.epoch_checkpoint,
            prune=job.prune,
            on_resume=lambda epoch: send(Resumed(cid, attempt, epoch)),
            on_notice=lambda text: send(Notice(cid, attempt, text)),
            score_test=spec.score_test,
        )
    except _ReportFailed as exc:
        raise exc.inner from None
    except StopRequested:
        return Stopped(cid, attempt, worker)
    except Exception as exc:  # noqa: BLE001 - e.g. a config that does not fit the data
        return Finished(cid, attempt, CandidateResult.failure(one_line(exc), time.perf_counter() - start), worker)
    return Finished(cid, attempt, result, worker)
