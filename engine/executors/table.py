"""The table executor: a candidate's training is looked up in a tabular benchmark instead of run.

``executor.kind = "table"`` with ``executor.table = "TABLE.json"`` (a file
``nas3d-tui bench table`` wrote). Each job's cell is looked up by its
architecture key and training seed (``engine.bench_table.BenchTable.lookup``:
the entry of that seed, else the cell's first entry) and its epochs are
replayed through the same callbacks a training reports through: on_start,
one on_epoch per epoch, on_done. The job's pruning bars are applied epoch by
epoch as the trainer applies them (after early stopping, never at the last
epoch), and the best epoch is chosen as the trainer chooses it (strictly
better, the earlier epoch wins a tie), so duplicates, pruning, tie-breaks
and budgets behave exactly as in a live run. A cell the table does not hold,
or one the table's run pruned earlier than this search would, is an error
(one line): the table cannot say what that training would have done.

No torch: a search against a table runs anywhere, in seconds.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence, cast

from ..bench_table import BenchTable, TableEntry, TableError
from ..control import Gate
from ..records import EpochRecord
from ..vocab import CandidateStatus
from .base import Callbacks, Job, TrainSpec

__all__ = ["TableEvaluator", "ReplayedResult", "replay"]


@dataclass(frozen=True)
class ReplayedResult:
    """What a training would have returned (the fields ``engine.records.TrainingResult`` reads)."""

    status: CandidateStatus
    fitness: float | None
    val_acc: float | None
    val_auc: float | None
    epochs: int
    seconds: float
    peak_memory_mb: float | None
    error: str | None
    history: tuple[EpochRecord, ...] = ()
    pruned_at: int | None = None
    resumed_from: int = 0
    test_acc: float | None = None
    test_auc: float | None = None


def _better(value: float, best: float | None) -> bool:
    return not math.isnan(value) and (best is None or value > best)


def replay(
    entry: TableEntry, job: Job, spec: TrainSpec, on_epoch: Callable[[EpochRecord], None] | None = None
) -> ReplayedResult:
    """The result ``job`` gets from ``entry``, its epochs passed to ``on_epoch`` as they are replayed.

    Raises:
        TableError: the entry was pruned earlier than ``job.prune`` would prune it.
    """
    r = entry.record
    select, max_epochs = spec.fitness, spec.config.epochs
    history: list[EpochRecord] = []
    best: float | None = None
    best_acc: float | None = None
    best_auc: float | None = None
    pruned_at: int | None = None
    for epoch, h in enumerate(r.history, start=1):
        record = EpochRecord.from_dict(h)  # (a record's epoch, or its JSON object: the same values)
        history.append(record)
        if _better(float(record.metric(select)), best):
            best, best_acc, best_auc = float(record.metric(select)), float(record.val_acc), float(record.val_auc)
        if on_epoch is not None:
            on_epoch(record)
        last = epoch == len(r.history)
        if last and r.status != "pruned":  # early stopping, the last epoch, or a failure ended it here
            break
        if job.prune is not None and epoch < max_epochs and job.prune.prunes(epoch, best):
            pruned_at = epoch
            break
        if last:
            raise TableError(
                f"the table's training of cell {r.key} (seed {entry.seed}) was pruned at epoch {epoch}; this search "
                "would train it further: search against a table built with search.pruning = \"none\""
            )
    seconds = r.seconds if len(history) == len(r.history) else sum(float(h.seconds) for h in history)
    if r.status in ("oom", "failed") and pruned_at is None:
        return ReplayedResult(r.status, None, None, None, len(history), seconds, r.peak_memory_mb, r.error, tuple(history))
    if pruned_at is not None and best is not None and job.prune is not None:
        bar = job.prune.bar(pruned_at)
        error = (
            f"pruned at epoch {pruned_at}: best {select} {best:.4f} "
            f"< {bar:.4f} ({job.prune.reference or 'bar'})"
        )
        return ReplayedResult("pruned", best, best_acc, best_auc, len(history), seconds, r.peak_memory_mb, error,
                              tuple(history), pruned_at)
    if best is None:
        return ReplayedResult("failed", None, None, None, len(history), seconds, r.peak_memory_mb,
                              f"{select} was undefined in every epoch (one class in the validation split?)", tuple(history))
    # The table's test metrics belong to its training's best epoch: a replay that ends the same way has them.
    same = len(history) == len(r.history) and r.status == "ok"
    return ReplayedResult("ok", best, best_acc, best_auc, len(history), seconds, r.peak_memory_mb, None, tuple(history),
                          test_acc=r.test_acc if same else None, test_auc=r.test_auc if same else None)


class TableEvaluator:
    """Answers every job from a ``BenchTable``, in order, on the session's thread.

    Args:
        table: the checked table (``engine.bench_table.read_table``).
        spec: training settings and fitness (must be the table's protocol: ``check_protocol``).
        control: the batch gate; a stop is honoured between candidates.
        where: the table's path, for messages.
    """

    name = "table"

    def __init__(self, table: BenchTable, spec: TrainSpec, control: Gate | None = None, where: str = "table") -> None:
        self.table = table
        self.spec = spec
        self.control = control
        self.where = where
        self.worker = "table"

    def evaluate(self, jobs: Sequence[Job], callbacks: Callbacks) -> None:
        """Replay every job's training from the table.

        Raises:
            TableError: a cell the table does not hold (or holds pruned too early).
            engine.errors.StopRequested: a stop was asked for; finished jobs were reported.
        """
        for job in jobs:
            if self.control is not None:
                self.control.at_batch_boundary()
            key = job.genotype.key or ""
            entry = self.table.lookup(key, job.seed)
            if entry is None:
                raise TableError(
                    f"{self.where} has no training of cell {job.genotype.compact} (key {key}); "
                    "a search against a table can only propose cells the table holds"
                )
            callbacks.on_start(job, self.worker)
            result = replay(entry, job, self.spec, functools.partial(callbacks.on_epoch, job))
            callbacks.on_done(job, cast(Any, result), self.worker)

    def close(self) -> None:
        pass
