"""The event vocabulary of a run: what the engine tells its watchers.

This module owns the vocabulary between the engine and everything that watches
it (dashboard, journal, headless console). Events are immutable dataclasses
with JSON-safe fields; ``to_dict``/``event_from_dict`` round-trip (every field
checked by ``engine.schema`` against its annotation and the values a run
writes), so the journal (``engine.journal``) can rebuild anything
a watcher has shown. The bus that carries them is ``engine.bus``.

Kinds renamed since older journals were written (``LEGACY_KINDS``) still read:
``checkpoint_saved`` is a ``StateSaved``.

It must not import torch or any UI library.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import schema
from .errors import CorruptFileError
from .records import CandidateRecord, RecordFields
from .vocab import CandidatePhase, EpochPhase, Fitness, RunKind

__all__ = [
    "Event",
    "RunStarted",
    "CandidateStarted",
    "EpochFinished",
    "CandidateFinished",
    "GenerationFinished",
    "Jump",
    "ResourceSample",
    "WarmupStarted",
    "WarmupFinished",
    "TrainingResumed",
    "Paused",
    "Resumed",
    "Stopping",
    "StateSaved",
    "FinalStarted",
    "FinalResult",
    "RunFinished",
    "RunFailed",
    "Log",
    "EVENT_TYPES",
    "LEGACY_KINDS",
    "event_from_dict",
    "final_result_from_dict",
]


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Event:
    """Base of all events: a ``kind`` (class constant) and a wall-clock timestamp."""

    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=_now, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kind"] = self.kind
        return d


@dataclass(frozen=True)
class RunStarted(Event):
    """A run (fresh or resumed) began driving its run directory."""

    kind: ClassVar[str] = "run_started"
    run_name: str
    run_dir: str
    dataset: str
    size: int
    device: str
    budget: int
    population: int
    num_classes: int
    task: str
    fitness: Fitness = "val_acc"
    resumed: bool = False
    pid: int = 0
    profile: dict[str, Any] = field(default_factory=dict)
    run_kind: RunKind = "search"  # search | train (one architecture retrained over seeds)


@dataclass(frozen=True)
class CandidateStarted(Event):
    """A feasible, new candidate begins training."""

    kind: ClassVar[str] = "candidate_started"
    candidate_id: int
    generation: int
    phase: CandidatePhase  # init | opposite | trial | jump | random | exhaustive | seed
    key: str
    genotype: dict[str, Any]
    vector: list[float] = field(default_factory=list)
    params: int = 0
    flops: int = 0
    worker: str = "local"


@dataclass(frozen=True)
class EpochFinished(Event):
    """One training epoch of one candidate finished (search or final phase)."""

    kind: ClassVar[str] = "epoch_finished"
    candidate_id: int
    epoch: int
    train_loss: float
    val_loss: float
    val_acc: float
    val_auc: float
    seconds: float
    max_epochs: int = 0
    phase: EpochPhase = "search"  # search | final
    seed: int | None = None  # a final retraining's seed (retrainings of one finalist may run side by side)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if d["seed"] is None:  # a search epoch's line stays as it always was
            del d["seed"]
        return d


@dataclass(frozen=True)
class CandidateFinished(RecordFields, Event):
    """A candidate has a result (ok / infeasible / duplicate / oom / failed): its ``CandidateRecord``.

    The record's fields read as the event's own (``event.fitness``, explicit
    properties); in the journal they are written flat, beside ``budget`` (the epochs' history stays
    in the run directory's record file).
    """

    kind: ClassVar[str] = "candidate_finished"
    record: CandidateRecord
    budget: int = 0

    @property
    def genotype(self) -> dict[str, Any]:
        return self.record.genotype

    @property
    def test_acc(self) -> float | None:
        return self.record.test_acc

    @property
    def test_auc(self) -> float | None:
        return self.record.test_auc

    def to_dict(self) -> dict[str, Any]:
        d = self.record.to_dict(history=False)
        d.update(budget=self.budget, ts=self.ts, kind=self.kind)
        return d

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> "CandidateFinished":
        """The event from its journal form: the record's fields, flat, beside ``budget`` and ``ts``."""
        try:
            # (the two fields alone: msgspec reads every key of the object it is given)
            envelope = schema.load(_Envelope, {k: data[k] for k in ("budget", "ts") if k in data}, _written_by_a_run)
        except schema.SchemaError as exc:
            raise ValueError(f"{cls.kind}: {exc}") from None
        try:
            # (budget, ts and kind are no record fields: the record's check ignores them, as any key it does not know)
            record = CandidateRecord.from_dict(data, where="candidate_finished event")
        except CorruptFileError as exc:
            raise ValueError(str(exc)) from None
        return cls(record=record, budget=envelope.budget, ts=envelope.ts)


@dataclass(frozen=True)
class _Envelope:
    """What a ``candidate_finished`` line holds beside its record's fields."""

    budget: int = 0
    ts: float = 0.0


@dataclass(frozen=True)
class GenerationFinished(Event):
    """Fitness summary of the population after a generation (0 = initialisation)."""

    kind: ClassVar[str] = "generation_finished"
    generation: int
    best: float
    mean: float
    worst: float
    trained: int
    budget: int
    best_candidate_id: int | None = None


@dataclass(frozen=True)
class Jump(Event):
    """Generation jumping happened: opposites against the population bounds."""

    kind: ClassVar[str] = "jump"
    generation: int
    proposed: int


@dataclass(frozen=True)
class ResourceSample(Event):
    """Periodic resource reading; GPU fields are None on a machine without CUDA."""

    kind: ClassVar[str] = "resource_sample"
    device: str
    rss_mb: float
    gpu_name: str | None = None
    gpu_mem_used_mb: float | None = None
    gpu_mem_total_mb: float | None = None
    gpu_util: float | None = None
    peak_memory_mb: float | None = None
    note: str = ""
    devices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class WarmupStarted(Event):
    """The device is being prepared (CUDA context, library loading) before the first candidate."""

    kind: ClassVar[str] = "warmup_started"
    device: str


@dataclass(frozen=True)
class WarmupFinished(Event):
    """The device is ready; ``seconds`` the warm-up took."""

    kind: ClassVar[str] = "warmup_finished"
    device: str
    seconds: float


@dataclass(frozen=True)
class TrainingResumed(Event):
    """A training continues from its per-epoch checkpoint after ``epoch`` finished epochs."""

    kind: ClassVar[str] = "training_resumed"
    candidate_id: int
    epoch: int
    max_epochs: int
    phase: EpochPhase = "search"  # search | final
    seed: int | None = None


@dataclass(frozen=True)
class Paused(Event):
    """The engine stopped at a batch boundary and waits (published by the engine when it happens)."""

    kind: ClassVar[str] = "paused"


@dataclass(frozen=True)
class Resumed(Event):
    """The run continues after a pause."""

    kind: ClassVar[str] = "resumed"


@dataclass(frozen=True)
class Stopping(Event):
    """A stop was asked for; the run will checkpoint and end at the next batch boundary."""

    kind: ClassVar[str] = "stop_requested"
    source: str = "user"


@dataclass(frozen=True)
class StateSaved(Event):
    """The search state (``checkpoint.json``) was written atomically.

    Journals written before the rename carry it as kind ``checkpoint_saved``.
    """

    kind: ClassVar[str] = "state_saved"
    path: str
    trained: int
    generation: int


@dataclass(frozen=True)
class FinalStarted(Event):
    """The final phase (retraining the top-k on the full training set) begins."""

    kind: ClassVar[str] = "final_started"
    candidate_ids: list[int]
    epochs: int
    seeds: list[int]


@dataclass(frozen=True)
class FinalResult(Event):
    """Test metrics of one retrained finalist (one seed)."""

    kind: ClassVar[str] = "final_result"
    candidate_id: int
    key: str
    seed: int
    test_auc: float
    test_acc: float
    val_acc: float
    params: int
    flops: int
    epochs: int
    seconds: float
    weights_path: str = ""
    genotype_path: str = ""
    # the test ACC of always answering the test split's most frequent class
    # (None in journals written before it was recorded): a finalist at or below
    # it, or at test AUC <= 0.5, learned nothing the majority class does not know
    majority_acc: float | None = None
    best_epoch: int = 0


@dataclass(frozen=True)
class RunFinished(Event):
    """The run ended: ``reason`` is budget / time / space (an exhaustive run proposed every cell) / stopped."""

    kind: ClassVar[str] = "run_finished"
    reason: str
    trained: int
    seconds: float
    best_candidate_id: int | None = None
    best_fitness: float | None = None


@dataclass(frozen=True)
class RunFailed(Event):
    """The engine hit an error it cannot go on from; finished work is kept."""

    kind: ClassVar[str] = "run_failed"
    error: str


@dataclass(frozen=True)
class Log(Event):
    """A free-form line for the log panel."""

    kind: ClassVar[str] = "log"
    message: str
    level: str = "info"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        CandidateStarted,
        EpochFinished,
        CandidateFinished,
        GenerationFinished,
        Jump,
        ResourceSample,
        WarmupStarted,
        WarmupFinished,
        TrainingResumed,
        Paused,
        Resumed,
        Stopping,
        StateSaved,
        FinalStarted,
        FinalResult,
        RunFinished,
        RunFailed,
        Log,
    )
}

# Kinds that older versions wrote, and the kind each is now: a journal of an old
# run still attaches, exports and reports. They read as the current class, so
# they are in ``EVENT_TYPES`` too (a reader that skips unknown kinds keeps them).
LEGACY_KINDS: dict[str, str] = {"checkpoint_saved": StateSaved.kind}
EVENT_TYPES.update({old: EVENT_TYPES[new] for old, new in LEGACY_KINDS.items()})


def event_from_dict(data: object) -> Event:
    """Rebuild an event from ``to_dict`` output, checking every field (``engine.schema``: against its
    annotation, and every number against the values a run writes).

    Unknown extra fields (written by a newer version) are ignored.

    Raises:
        ValueError: unknown ``kind``, a missing field, or a field of the wrong type or value
            (``CorruptFileError``, a ValueError too, for a malformed candidate record).
    """
    if not isinstance(data, dict):
        raise ValueError(f"an event must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    cls = EVENT_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    if cls is CandidateFinished:
        return CandidateFinished.from_fields(data)
    try:
        return schema.load(cls, data, _written_by_a_run)
    except schema.SchemaError as exc:
        raise ValueError(f"{kind}: {exc}") from None


def final_result_from_dict(data: object, where: str) -> FinalResult:
    """A retraining's ``result.json`` (the ``FinalResult`` event's dict), checked as any event.

    Raises:
        CorruptFileError: not a valid final result (one line naming ``where``).
    """
    try:
        event = event_from_dict(data)
    except ValueError as exc:
        raise CorruptFileError(f"{where} is corrupt: {exc}; cannot resume") from None
    if not isinstance(event, FinalResult):
        raise CorruptFileError(f"{where} is corrupt: not a final result; cannot resume")
    return event


# Every number an event carries is a count, a time, a size or a metric: none is
# negative or infinite; a metric or loss may be NaN (undefined), and metrics lie in [0, 1].
_UNIT = frozenset({"best", "mean", "worst", "val_acc", "val_auc", "test_acc", "test_auc", "best_fitness", "majority_acc"})
_LATEST_TS = 1e10  # the year 2286: a later time stamp is damage, not a clock


def _written_by_a_run(name: str, value: float) -> str:
    """The schema's rule of an event's floats: "" for a value a run writes, else what it would write."""
    if math.isnan(value):
        return "" if name != "ts" else "expected a time stamp"
    if math.isinf(value) or value < 0:
        return "expected a finite number >= 0"
    if name in _UNIT and value > 1:
        return "expected a number in [0, 1]"
    if name == "ts" and value > _LATEST_TS:
        return "expected a time stamp"
    return ""
