"""One candidate, one record: the result the session stores, publishes, ranks and shows.

This module owns ``CandidateRecord`` -- the frozen value that crosses every
boundary (the run directory's ``candidates/NNNNNN.json``, the
``candidate_finished`` event, the leaderboard, the dashboard) -- its checked
JSON form, and the ranking of candidates: ``rank_key`` is the single
definition of "better" used by the search's "best", the finalists, the
leaderboard and the dashboard.

Ranking: status ``ok`` first; then fitness, higher first; when fitness values
are exactly equal, the tie-break (``search.tie_break``): ``"val_auc"`` (the
default) compares validation AUC, higher first, then FLOPs, fewer first;
``"none"`` (the paper's plain comparison) goes straight to the candidate id.
The candidate id (lower first) makes the order total.

Pure Python: no torch, no numpy, no I/O.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, SupportsFloat, cast

from . import schema
from .errors import CorruptFileError
from .vocab import CANDIDATE_STATUSES, TIE_BREAKS as _TIE_BREAKS, TRAINED_STATUSES as _TRAINED
from .vocab import CandidatePhase, CandidateStatus, Fitness, RecordStatus, TieBreak

__all__ = [
    "RecordFields",
    "STATUSES",
    "TRAINED_STATUSES",
    "TIE_BREAKS",
    "CandidateRecord",
    "EpochRecord",
    "Proposal",
    "TrainingResult",
    "rank_key",
    "selection_key",
    "best_record",
    "ranked",
    "finite_or_none",
    "LIGHT_GENOTYPE_KEYS",
]

STATUSES = CANDIDATE_STATUSES  # ("ok", "pruned", "infeasible", "duplicate", "oom", "failed"): engine.vocab
TRAINED_STATUSES = _TRAINED  # statuses that spent budget
TIE_BREAKS = _TIE_BREAKS


@dataclass(frozen=True, eq=False)
class EpochRecord(Mapping[str, float]):
    """One finished training epoch: what the trainer measured, what ``on_epoch`` gets, what a record's
    ``history`` holds and what an ``EpochFinished`` event carries.

    It reads as its JSON object too (a read-only mapping, keys in field order): ``dict(epoch)`` is
    the object a candidate file or an epoch checkpoint holds, byte for byte what it always was, and
    it equals that object (a mapping's equality). Values are kept as given (no conversion), so a
    record read back writes the same text.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_acc: float
    val_auc: float
    seconds: float

    def metric(self, name: Fitness) -> float:
        """The validation metric ``name`` (a fitness: ``val_acc`` or ``val_auc``)."""
        return self.val_auc if name == "val_auc" else self.val_acc

    def to_dict(self) -> dict[str, float]:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss,
                "val_acc": self.val_acc, "val_auc": self.val_auc, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EpochRecord":
        """The epoch of its JSON object (``to_dict``'s form; other keys are left). Raises KeyError for a missing one."""
        return cls(data["epoch"], data["train_loss"], data["val_loss"], data["val_acc"], data["val_auc"], data["seconds"])

    # -- the read-only mapping of its JSON object -------------------------------------
    def __getitem__(self, name: str) -> float:
        match name:
            case "epoch":
                return self.epoch
            case "train_loss":
                return self.train_loss
            case "val_loss":
                return self.val_loss
            case "val_acc":
                return self.val_acc
            case "val_auc":
                return self.val_auc
            case "seconds":
                return self.seconds
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(EPOCH_FIELDS)

    def __len__(self) -> int:
        return len(EPOCH_FIELDS)

    def __hash__(self) -> int:
        return hash((self.epoch, self.train_loss, self.val_loss, self.val_acc, self.val_auc, self.seconds))


EPOCH_FIELDS = ("epoch", "train_loss", "val_loss", "val_acc", "val_auc", "seconds")  # EpochRecord's, in order


class Proposal(Protocol):
    """An architecture as a record describes it (``engine.space.Genotype`` is one)."""

    @property
    def key(self) -> str | None: ...

    def to_dict(self) -> dict[str, Any]: ...


class TrainingResult(Protocol):
    """What a training returns, as a record reads it (``engine.training.CandidateResult`` is one)."""

    @property
    def status(self) -> CandidateStatus: ...
    @property
    def fitness(self) -> float | None: ...
    @property
    def val_acc(self) -> float | None: ...
    @property
    def val_auc(self) -> float | None: ...
    @property
    def epochs(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def peak_memory_mb(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def history(self) -> Sequence[EpochRecord]: ...
    @property
    def pruned_at(self) -> int | None: ...
    @property
    def test_acc(self) -> float | None: ...
    @property
    def test_auc(self) -> float | None: ...


@dataclass(frozen=True)
class CandidateRecord:
    """The result of one proposed candidate.

    Attributes:
        candidate_id: the strategy's proposal number.
        generation, phase: where the strategy proposed it.
        status: one of ``STATUSES``. ``pruned``: its training was stopped
            at ``pruned_at`` because it could no longer win (``engine.pruning``);
            it spent budget, loses its selection and is never a finalist.
        key: architecture key (``None`` when infeasible).
        genotype: ``Genotype.to_dict()``.
        vector: the proposed 29 numbers.
        fitness: best validation ACC (or AUC) over the epochs (for a pruned
            candidate: over the epochs it trained); for a duplicate, the result
            it reuses (None when that one failed); None when it did not train
            successfully.
        val_acc, val_auc: validation metrics of the epoch that gave the fitness.
        params, flops: model size (None when infeasible).
        epochs, seconds: training effort (0 for infeasible and duplicates).
        peak_memory_mb: CUDA peak allocation, or RSS growth on the CPU.
        error: one line for infeasible / oom / failed.
        worker: who trained it (``local:cpu``, ``w1:cuda:0``, ...).
        duplicate_of: the candidate whose result a duplicate reuses.
        trained: candidates trained (budget spent) once this one was recorded.
        history: one ``EpochRecord`` per epoch (epoch, train_loss, val_loss,
            val_acc, val_auc, seconds); kept in the run directory, not in events.
        pruned_at: the epoch its training was pruned at (a duplicate of a
            pruned candidate carries it too); None otherwise.
        test_acc, test_auc: the test metrics of the epoch that gave the
            fitness, when the run scored them (exhaustive runs: the tabular
            benchmark's source); None otherwise, and then left out of the
            candidate file and the events.
    """

    candidate_id: int
    generation: int
    phase: CandidatePhase
    status: RecordStatus
    key: str | None = None
    genotype: dict[str, Any] = field(default_factory=dict)
    vector: list[float] = field(default_factory=list)
    fitness: float | None = None
    val_acc: float | None = None
    val_auc: float | None = None
    params: int | None = None
    flops: int | None = None
    epochs: int = 0
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    error: str | None = None
    worker: str = ""
    duplicate_of: int | None = None
    trained: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    pruned_at: int | None = None
    test_acc: float | None = None
    test_auc: float | None = None

    @property
    def spent_budget(self) -> bool:
        """Whether training was attempted (ok, pruned, oom or failed)."""
        return self.status in TRAINED_STATUSES

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def pruned(self) -> bool:
        """Its result is a pruned training's (itself, or the original a duplicate reuses)."""
        return self.pruned_at is not None

    @property
    def told_fitness(self) -> float:
        """What the search strategy is told: the fitness; 0.0 for anything that did not train or was pruned."""
        if self.fitness is None or self.pruned:
            return 0.0
        return float(self.fitness)

    def replace(self, **changes: Any) -> "CandidateRecord":
        # ``Any``: mypy checks each keyword of dataclasses.replace against its field's type
        # and rejects any narrower ``**`` type (``object``, a union of the field types).
        return dataclasses.replace(self, **changes)

    def light(self) -> "CandidateRecord":
        """A copy for a view that keeps thousands of records (the dashboard): every field, but no
        ``vector`` and a genotype reduced to what is shown (``LIGHT_GENOTYPE_KEYS``).

        The unpruned ``raw_matrix`` / ``raw_ops`` stay only for an infeasible cell (they are all it
        has to draw), and the adjacency rows become tuples shared between records. A genotype
        without a ``compact`` form (another writer's) is kept whole. Costs about 3 µs: a copy of
        the fields, not a rebuilt, re-checked record. The record itself is not changed.
        """
        genotype = self.genotype
        if type(genotype) is dict and genotype.get("compact"):
            feasible = genotype.get("feasible", True)
            light = {k: genotype[k] for k in (LIGHT_GENOTYPE_KEYS if feasible else _LIGHT_INFEASIBLE_KEYS)
                     if k in genotype}
            for name in ("matrix", "raw_matrix") if not feasible else ("matrix",):
                if name in light:
                    light[name] = _shared_rows(light[name])
            genotype = light
        copy = object.__new__(CandidateRecord)
        fields = copy.__dict__  # a frozen dataclass refuses setattr, not a filled __dict__
        fields.update(self.__dict__)
        fields["genotype"], fields["vector"] = genotype, []
        for name in ("phase", "status", "worker"):  # a few words, thousands of times: one string each
            if type(fields[name]) is str:
                fields[name] = sys.intern(fields[name])
        return copy

    @classmethod
    def proposed(
        cls, candidate_id: int, generation: int, phase: CandidatePhase, genotype: Proposal, vector: Sequence[float] = ()
    ) -> "CandidateRecord":
        """The draft of a candidate before its result: where it was proposed and what it is (no status yet)."""
        return cls(
            candidate_id=candidate_id,
            generation=generation,
            phase=phase,
            status="",
            key=genotype.key,
            genotype=genotype.to_dict(),
            vector=list(vector),
        )

    def trained_with(
        self, result: TrainingResult, *, params: int | None, flops: int | None, worker: str
    ) -> "CandidateRecord":
        """This draft with the result of its training (the one place a training result becomes record fields)."""
        return self.replace(
            status=result.status,
            fitness=result.fitness,
            val_acc=result.val_acc,
            val_auc=result.val_auc,
            params=params,
            flops=flops,
            epochs=result.epochs,
            seconds=result.seconds,
            peak_memory_mb=result.peak_memory_mb,
            error=result.error,
            worker=worker,
            history=list(result.history),
            pruned_at=result.pruned_at,
            test_acc=result.test_acc,
            test_auc=result.test_auc,
        )

    def reuse(self, original: "CandidateRecord") -> "CandidateRecord":
        """This candidate as a duplicate of ``original`` (same architecture key): its result, no training."""
        return self.replace(
            status="duplicate",
            fitness=original.fitness,
            val_acc=original.val_acc,
            val_auc=original.val_auc,
            params=original.params,
            flops=original.flops,
            duplicate_of=original.candidate_id,
            pruned_at=original.pruned_at,
            test_acc=original.test_acc,
            test_auc=original.test_auc,
        )

    def to_dict(self, history: bool = True) -> dict[str, Any]:
        """JSON-safe form (the candidate file); ``history=False`` leaves the epochs out (events)."""
        d = {name: getattr(self, name) for name in _field_names(CandidateRecord)}
        d["genotype"] = dict(self.genotype)
        d["vector"] = list(self.vector)
        d["history"] = [dict(h) for h in self.history] if history else []
        if not history:
            del d["history"]
        for name in ("test_acc", "test_auc"):  # only exhaustive runs score them: other files stay as they were
            if d[name] is None:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "candidate record") -> "CandidateRecord":
        """Check and build a record (``engine.schema``: every field against its annotation and the
        values a run writes); unknown keys are ignored (a newer version may add some).

        Raises:
            CorruptFileError: a required field is missing, or any field has the wrong type or value.
        """
        try:
            record = schema.load(cls, data, _written_by_a_run)
        except schema.SchemaError as exc:
            raise CorruptFileError(f"{where} is corrupt: {exc}") from None
        if record.status not in STATUSES:
            raise CorruptFileError(
                f"{where} is corrupt: status = {record.status!r}; expected one of {', '.join(STATUSES)}"
            )
        if record.status == "ok" and (record.fitness is None or math.isnan(record.fitness)):
            raise CorruptFileError(f"{where} is corrupt: status 'ok' without a fitness")
        if record.status == "pruned" and (record.fitness is None or math.isnan(record.fitness) or not record.pruned_at):
            raise CorruptFileError(f"{where} is corrupt: status 'pruned' without a fitness and the epoch it stopped at")
        if record.pruned_at is not None and record.status not in ("pruned", "duplicate"):
            raise CorruptFileError(f"{where} is corrupt: pruned_at = {record.pruned_at} with status {record.status!r}")
        if record.status == "duplicate" and record.duplicate_of is None:
            raise CorruptFileError(f"{where} is corrupt: a duplicate without duplicate_of")
        if record.status != "infeasible" and not record.key:
            raise CorruptFileError(f"{where} is corrupt: status {record.status!r} without an architecture key")
        return record


class RecordFields:
    """A candidate record's fields read as the holder's own (``event.fitness``, ``row.fitness``): one typed
    property each, for the frozen dataclasses that carry a ``record`` (``CandidateFinished``, the
    leaderboard's ``Row``). Plain properties, no attribute forwarding; ``genotype`` and the test metrics
    are each holder's own (a row shows the compact genotype and the finalist's test metrics).
    """

    record: CandidateRecord

    @property
    def candidate_id(self) -> int:
        return self.record.candidate_id

    @property
    def generation(self) -> int:
        return self.record.generation

    @property
    def phase(self) -> CandidatePhase:
        return self.record.phase

    @property
    def status(self) -> RecordStatus:
        return self.record.status

    @property
    def key(self) -> str | None:
        return self.record.key

    @property
    def vector(self) -> list[float]:
        return self.record.vector

    @property
    def fitness(self) -> float | None:
        return self.record.fitness

    @property
    def val_acc(self) -> float | None:
        return self.record.val_acc

    @property
    def val_auc(self) -> float | None:
        return self.record.val_auc

    @property
    def params(self) -> int | None:
        return self.record.params

    @property
    def flops(self) -> int | None:
        return self.record.flops

    @property
    def epochs(self) -> int:
        return self.record.epochs

    @property
    def seconds(self) -> float:
        return self.record.seconds

    @property
    def peak_memory_mb(self) -> float | None:
        return self.record.peak_memory_mb

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def worker(self) -> str:
        return self.record.worker

    @property
    def duplicate_of(self) -> int | None:
        return self.record.duplicate_of

    @property
    def trained(self) -> int:
        return self.record.trained

    @property
    def pruned_at(self) -> int | None:
        return self.record.pruned_at

    @property
    def history(self) -> list[EpochRecord]:
        return self.record.history

    @property
    def ok(self) -> bool:
        return self.record.ok

    @property
    def spent_budget(self) -> bool:
        return self.record.spent_budget

    @property
    def pruned(self) -> bool:
        return self.record.pruned

    @property
    def told_fitness(self) -> float:
        return self.record.told_fitness


# What ``CandidateRecord.light`` keeps of a genotype (an infeasible one keeps its unpruned cell too).
LIGHT_GENOTYPE_KEYS = ("compact", "n_stacks", "n_modules", "n_filters", "feasible", "reason", "matrix", "ops")
_LIGHT_INFEASIBLE_KEYS = (*LIGHT_GENOTYPE_KEYS, "raw_matrix", "raw_ops")
_SHARED_ROWS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    """A dataclass's field names in order, looked up once (``to_dict`` runs for every record of a journal)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _shared_rows(matrix: Any) -> Any:
    """``matrix`` as a tuple of row tuples, equal rows the same object (0/1 rows of a cell are few: the
    cache stops growing at 65,536 rows); left as it is when it is not a list of lists of plain values."""
    if type(matrix) is not list:
        return matrix
    try:
        rows = list(map(tuple, matrix))
        share = _SHARED_ROWS.setdefault if len(_SHARED_ROWS) < 65536 else _SHARED_ROWS.get
        return tuple(map(share, rows, rows))
    except TypeError:  # a row that is not a sequence, or unhashable values: another writer's genotype
        return matrix


def _unit(v: float) -> bool:
    return 0.0 <= v <= 1.0


# Values a real run can write (a metric is nan when undefined, e.g. one class
# in the validation split; an "ok" fitness never is: such a candidate is "failed").
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "fitness": (lambda v: math.isnan(v) or _unit(v), "expected a number in [0, 1]"),
    "val_acc": (lambda v: math.isnan(v) or _unit(v), "expected a number in [0, 1] or NaN"),
    "val_auc": (lambda v: math.isnan(v) or _unit(v), "expected a number in [0, 1] or NaN"),
    "test_acc": (lambda v: math.isnan(v) or _unit(v), "expected a number in [0, 1] or NaN"),
    "test_auc": (lambda v: math.isnan(v) or _unit(v), "expected a number in [0, 1] or NaN"),
    "seconds": (lambda v: math.isfinite(v) and v >= 0, "expected a finite number >= 0"),
    "peak_memory_mb": (lambda v: math.isfinite(v) and v >= 0, "expected a finite number >= 0"),
}


def _written_by_a_run(name: str, value: float) -> str:
    """The schema's rule of a record's floats: metrics and times by ``_RANGES`` (its integers are counts)."""
    rule = _RANGES.get(name)
    return "" if rule is None or rule[0](value) else rule[1]


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def finite_or_none(value: object) -> float | None:
    """``value`` as a float when it is a finite number, else None (missing, NaN, text)."""
    try:
        v = float(cast("SupportsFloat | str", value))  # anything else: float() raises TypeError
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _num(value: float | int | None, missing: float) -> float:
    if value is None:
        return missing
    v = float(value)
    return missing if math.isnan(v) else v


def selection_key(
    fitness: float | None, val_auc: float | None, flops: int | None, tie_break: TieBreak = "val_auc"
) -> tuple[float, ...]:
    """Larger is better: what the strategy compares when it selects (without the id).

    ``tie_break="none"`` compares fitness alone (the paper's plain comparison).
    """
    f = _num(fitness, -math.inf)
    if tie_break == "none":
        return (f,)
    return (f, _num(val_auc, -math.inf), -_num(flops, math.inf))


def rank_key(record: CandidateRecord, tie_break: TieBreak = "val_auc") -> tuple[int, tuple[float, ...], int]:
    """Smaller is better: sort records with it (``sorted(records, key=...)``).

    Status ``ok`` before everything else; then ``selection_key`` (higher
    first); then the candidate id, lower first.
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie_break {tie_break!r}; allowed: {', '.join(TIE_BREAKS)}")
    key = selection_key(record.fitness, record.val_auc, record.flops, tie_break) if record.ok else ()
    return (0 if record.ok else 1, tuple(-k for k in key), record.candidate_id)


def ranked(records: Iterable[CandidateRecord], tie_break: TieBreak = "val_auc") -> list[CandidateRecord]:
    """The records with status ``ok``, best first."""
    return sorted((r for r in records if r.ok), key=lambda r: rank_key(r, tie_break))


def best_record(records: Iterable[CandidateRecord], tie_break: TieBreak = "val_auc") -> CandidateRecord | None:
    """The best ``ok`` record, or None."""
    top = ranked(records, tie_break)
    return top[0] if top else None
