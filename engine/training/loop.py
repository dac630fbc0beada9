"""Training one candidate (search) and retraining a finalist (final phase), paper §3.2.

This module owns the epoch loop both share: seeding, Adam, early stopping on
validation loss, the best epoch (by validation ACC or AUC), per-epoch
checkpoints and resuming from them, CUDA out-of-memory handling. The search
version (``train_candidate``) turns every error into a recorded result; the
final version (``final_train``) keeps the best epoch's weights, scores them on
the test split and returns them (the run directory writes them).

It must not publish events or write anything but its own checkpoint file:
progress goes out through plain callbacks, and pause / stop through
the batch gate (``engine.control.Gate``) at every batch boundary
(``StopRequested`` propagates to the caller). The data is anything that is a
``TrainData``; the network comes from a ``ModelFactory`` (default:
``engine.model.build_network``), which tests replace to inject failures.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

import torch
from torch import nn

from ..control import Gate
from ..errors import StopRequested, is_disk_full, one_line, os_error_message
from ..model import INIT_LOCK, build_network
from ..profile.sections import TrainingConfig
from ..pruning import PruneRule
from ..records import EpochRecord
from ..vocab import FITNESSES as _FITNESSES, CandidateStatus, Fitness, TieBreak
from ..space import Genotype
from .checkpoint import EpochCheckpoint
from .data_protocol import TrainData
from .device import cpu_has_native_bf16, is_out_of_memory, prepare_device, release
from .fitter import Fitter
from .memory import PeakMemory

__all__ = [
    "FITNESSES",
    "CandidateResult",
    "FinalOutcome",
    "EarlyStopping",
    "EpochRecord",
    "ModelFactory",
    "train_candidate",
    "final_train",
]

FITNESSES = _FITNESSES

# One finished epoch is an ``engine.records.EpochRecord`` (frozen): the fitter makes it, ``on_epoch``
# gets it, the result's ``history`` and the checkpoint's loop state keep it.
OnEpoch = Callable[[EpochRecord], None]
OnResume = Callable[[int], None]
OnNotice = Callable[[str], None]


class ModelFactory(Protocol):
    """Builds the network of a genotype (``engine.model.build_network`` is one).

    Executors pass one through to the trainer; a picklable one crosses into
    worker processes and Ray tasks (tests inject failures this way).
    """

    def __call__(self, genotype: Genotype, *, in_channels: int, num_classes: int) -> nn.Module: ...


@dataclass(frozen=True)
class CandidateResult:
    """Outcome of training one candidate.

    Attributes:
        status: ``"ok"``, ``"pruned"`` (stopped by its ``PruneRule``: it could
            no longer win), ``"oom"`` (CUDA out of memory; memory was released)
            or ``"failed"`` (any other error, see ``error``).
        fitness: best validation ACC (or AUC) over the epochs; None unless ok
            or pruned (then: the best before it was stopped).
        val_acc, val_auc: validation metrics of the epoch that gave the fitness.
        epochs: epochs completed.
        seconds: wall time of the whole call.
        peak_memory_mb: CUDA peak allocated memory, or on CPU the growth of the
            process resident set over the run (approximate); None if unknown.
        error: one-line message for oom / failed.
        history: one ``EpochRecord`` per epoch (as passed to ``on_epoch``).
        resumed_from: the epoch a checkpoint let it start after (0: from scratch).
        pruned_at: the epoch it was pruned at (status ``pruned``), else None.
        test_acc, test_auc: the test metrics of the epoch that gave the fitness
            (inference with that epoch's weights) when the training was asked to
            score the test split (``score_test``: exhaustive runs, whose table
            reports them); None otherwise.
    """

    status: CandidateStatus
    fitness: float | None
    val_acc: float | None
    val_auc: float | None
    epochs: int
    seconds: float
    peak_memory_mb: float | None
    error: str | None
    history: tuple[EpochRecord, ...] = ()
    resumed_from: int = 0
    pruned_at: int | None = None
    test_acc: float | None = None
    test_auc: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failure(
        cls, message: str, seconds: float = 0.0, status: Literal["failed", "oom"] = "failed"
    ) -> "CandidateResult":
        """A result for a candidate that could not be trained (``failed`` or ``oom``)."""
        return cls(status, None, None, None, 0, seconds, None, message, ())


@dataclass(frozen=True)
class FinalOutcome:
    """One retraining of a finalist: test metrics of its best-validation-ACC epoch, and those weights."""

    test_auc: float
    test_acc: float
    val_acc: float
    epochs: int
    best_epoch: int
    seconds: float
    seed: int
    peak_memory_mb: float | None = None
    resumed_from: int = 0
    history: tuple[EpochRecord, ...] = field(default=(), repr=False)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)


class EarlyStopping:
    """Stop when the validation loss has not improved for ``patience`` consecutive epochs.

    An epoch improves when its loss is strictly below the best so far; a nan
    loss never improves. ``patience=0`` never stops.

    >>> stopper = EarlyStopping(2)
    >>> [stopper.update(v) for v in (1.0, 0.9, 0.95, 0.91)]
    [False, False, False, True]
    """

    def __init__(self, patience: int) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.patience = patience
        self.best = math.inf
        self.bad_epochs = 0

    def update(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; True when training should stop now."""
        if val_loss < self.best:  # False for nan
            self.best = val_loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return self.patience > 0 and self.bad_epochs >= self.patience


class _CallbackError(Exception):
    """Wraps an exception raised by a callback so it is not recorded as a failed candidate."""

    def __init__(self, inner: BaseException) -> None:
        super().__init__(str(inner))
        self.inner = inner


@dataclass
class _Progress:
    """The loop's state after some epochs (what a checkpoint holds besides the fitter)."""

    epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    stop_best: float = math.inf
    stop_bad: int = 0
    best_value: float | None = None
    best_acc: float | None = None
    best_auc: float | None = None
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    pruned_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``loop`` state: plain values, each epoch as its JSON object (the file's form)."""
        return {
            "epoch": self.epoch, "history": [h.to_dict() for h in self.history], "stop_best": self.stop_best,
            "stop_bad": self.stop_bad, "best_value": self.best_value, "best_acc": self.best_acc,
            "best_auc": self.best_auc, "best_epoch": self.best_epoch, "best_state": self.best_state,
            "pruned_at": self.pruned_at,
        }  # (every field, in field order: the key order of the checkpoints written so far)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "_Progress":
        values = {fld.name: d.get(fld.name, fld.default) for fld in dataclasses.fields(cls) if fld.name in d}
        if "history" in values:
            values["history"] = [EpochRecord.from_dict(h) for h in values["history"]]
        return cls(**values)


class _ResumeNote:
    """Remembers the epoch a checkpoint resumed after, and passes it on."""

    def __init__(self, on_resume: OnResume | None) -> None:
        self.on_resume = on_resume
        self.epoch = 0

    def __call__(self, epoch: int) -> None:
        self.epoch = epoch
        if self.on_resume is not None:
            self.on_resume(epoch)


def _check(data: TrainData, config: TrainingConfig, fitness: str) -> None:
    if fitness not in FITNESSES:
        raise ValueError(f"fitness must be one of {', '.join(FITNESSES)}, got {fitness!r}")
    if config.loss == "bce" and data.task != "binary-class":
        raise ValueError(f"loss 'bce' needs a binary-class task; {data.flag} is {data.task}")


def _build(model_fn: ModelFactory, genotype: Genotype, data: TrainData, seed: int) -> nn.Module:
    with INIT_LOCK:
        torch.manual_seed(seed)
        return model_fn(genotype, in_channels=int(data.train.x.shape[1]), num_classes=data.num_classes)


def _better(value: float, best: float | None) -> bool:
    return not math.isnan(value) and (best is None or value > best)


def _finite(v: float) -> float:
    v = float(v)
    return -math.inf if math.isnan(v) else v


def epoch_rank(record: EpochRecord, select: Fitness, tie_break: TieBreak) -> tuple[float, ...]:
    """How epochs compare when the best one is kept (larger is better).

    ``select`` first; with ``tie_break="val_auc"`` an equal value is decided
    by validation AUC, then by the lower validation loss (the search's
    tie-break, so a final retraining whose validation ACC sits at the
    majority class in every epoch keeps the epoch that ranks the classes
    best, not the first one). ``"none"``: the paper's plain comparison. A NaN
    counts as the worst value.
    """
    first = _finite(record.metric(select))
    if tie_break == "none":
        return (first,)
    second = record.val_acc if select == "val_auc" else record.val_auc
    loss = float(record.val_loss)
    return (first, _finite(second), -math.inf if math.isnan(loss) else -loss)


def _improves(record: EpochRecord, progress: "_Progress", select: Fitness, tie_break: TieBreak) -> bool:
    """Whether ``record`` beats the best epoch so far (strictly; the earlier epoch wins a full tie)."""
    if tie_break == "none" or not 1 <= progress.best_epoch <= len(progress.history):
        return _better(record.metric(select), progress.best_value)
    best = progress.history[progress.best_epoch - 1]
    return epoch_rank(record, select, tie_break) > epoch_rank(best, select, tie_break)


def _call(fn: Callable[..., None] | None, *args: str | int | EpochRecord) -> None:
    """``fn(*args)`` for an ``on_notice`` (str), ``on_resume`` (int) or ``on_epoch`` (EpochRecord) callback."""
    if fn is None:
        return
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - re-raised unchanged by the caller
        raise _CallbackError(exc) from None


def _identity(
    genotype: Genotype, data: TrainData, config: TrainingConfig, seed: int, select: Fitness, keep_best: bool,
    score_test: bool = False,
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the architecture, the data, the seed and the settings."""
    settings = dataclasses.asdict(config)
    for volatile in ("cudnn_benchmark", "checkpoint_after_seconds"):  # do not change the result on the CPU
        settings.pop(volatile, None)
    return {
        "key": getattr(genotype, "key", None),
        "data": [data.flag, int(data.size), len(data.train), len(data.val)],
        "seed": int(seed),
        "select": select,
        "final": keep_best,
        "settings": settings,
    } | ({"score_test": True} if score_test else {})  # (absent otherwise: older checkpoints still match)


def _fit(
    make_fitter: Callable[[], Fitter],
    config: TrainingConfig,
    *,
    select: Fitness,
    keep_best_state: bool,
    control: Gate | None,
    on_epoch: OnEpoch | None,
    epoch_checkpoint: EpochCheckpoint | None,
    on_resume: OnResume | None,
    on_notice: OnNotice | None,
    memory: PeakMemory,
    tie_break: TieBreak = "none",
    prune: PruneRule | None = None,
    keep_improving_state: bool = False,
) -> tuple[Fitter, _Progress]:
    """Run epochs until early stopping or ``config.epochs``, resuming from ``epoch_checkpoint`` when it holds one.

    ``keep_best_state`` (a final): the best epoch's weights are kept, and the first
    epoch counts as best until one improves. ``keep_improving_state`` (a search
    candidate that scores the test split): the weights of the epoch that gave the
    fitness are kept, nothing else changes.
    """
    start = time.perf_counter()
    fitter = make_fitter()
    progress = _Progress()
    if epoch_checkpoint is not None:
        payload, reason = epoch_checkpoint.load()
        if payload is not None:
            try:
                fitter.load_state_dict(payload["fitter"])
                progress = _Progress.from_dict(payload["loop"])
                torch.set_rng_state(payload["rng_cpu"])
            except Exception as exc:  # noqa: BLE001 - weights that do not fit: never trust it half-read
                reason = f"{epoch_checkpoint.path} does not fit this training ({type(exc).__name__})"
                fitter, progress = make_fitter(), _Progress()
        if reason:
            epoch_checkpoint.remove()
            _call(on_notice, f"{reason}; restarting this training from epoch 0")
        elif progress.epoch:
            _call(on_resume, progress.epoch)
    stopper = EarlyStopping(config.patience)
    stopper.best, stopper.bad_epochs = progress.stop_best, progress.stop_bad
    for epoch in range(progress.epoch + 1, config.epochs + 1):
        record = fitter.run_epoch(epoch, control, memory)
        improves = _improves(record, progress, select, tie_break)
        progress.history.append(record)
        value = record.metric(select)
        if improves or (keep_best_state and progress.best_state is None):
            progress.best_value, progress.best_epoch = value, epoch
            progress.best_acc, progress.best_auc = record.val_acc, record.val_auc
            if keep_best_state or keep_improving_state:
                progress.best_state = fitter.weights()
        _call(on_epoch, record)
        stop = stopper.update(record.val_loss)
        progress.epoch, progress.stop_best, progress.stop_bad = epoch, stopper.best, stopper.bad_epochs
        if stop:
            break
        if prune is not None and epoch < config.epochs and prune.prunes(epoch, progress.best_value):
            progress.pruned_at = epoch
            break
        if epoch_checkpoint is not None and epoch < config.epochs and epoch_checkpoint.due(time.perf_counter() - start):
            try:
                epoch_checkpoint.save(fitter.state_dict(), progress.to_dict())
            except OSError as exc:  # a full disk: the last checkpoint stays whole; the training goes on
                if not is_disk_full(exc):
                    raise
                _call(on_notice, f"{os_error_message(exc)}; epoch {epoch}'s checkpoint was not written")
    return fitter, progress


class _Training:
    """One training's setup -- device, peak memory, bf16, its per-epoch checkpoint -- and its loop."""

    def __init__(
        self,
        genotype: Genotype,
        data: TrainData,
        config: TrainingConfig,
        seed: int,
        device: str | torch.device,
        *,
        select: Fitness,
        final: bool,
        model_fn: ModelFactory,
        epoch_checkpoint: str | Path | None,
        on_resume: OnResume | None,
        score_test: bool = False,
    ) -> None:
        _check(data, config, select)
        self.start = time.perf_counter()
        self.config, self.select, self.final = config, select, final
        self.dev = prepare_device(device, config.cudnn_benchmark)
        self.memory = PeakMemory(self.dev)
        cpu_bf16 = self.dev.type == "cpu" and cpu_has_native_bf16()
        amp = config.uses_amp(final=final, device_type=self.dev.type, cpu_bf16=cpu_bf16)
        self.make = lambda: Fitter(_build(model_fn, genotype, data, seed), data, config, self.dev, seed, amp)
        self.ckpt: EpochCheckpoint | None = None
        if epoch_checkpoint is not None:  # finals checkpoint every epoch; search candidates once they run long
            identity = _identity(genotype, data, config, seed, select, keep_best=final, score_test=score_test)
            self.ckpt = EpochCheckpoint(Path(epoch_checkpoint), identity, 0.0 if final else config.checkpoint_after_seconds)
        self.resumed = _ResumeNote(on_resume)

    def fit(
        self,
        control: Gate | None,
        on_epoch: OnEpoch | None,
        on_notice: OnNotice | None,
        *,
        tie_break: TieBreak = "none",
        prune: PruneRule | None = None,
        keep_improving_state: bool = False,
    ) -> tuple[Fitter, _Progress]:
        return _fit(
            self.make,
            self.config,
            select=self.select,
            keep_best_state=self.final,
            control=control,
            on_epoch=on_epoch,
            epoch_checkpoint=self.ckpt,
            on_resume=self.resumed,
            on_notice=on_notice,
            memory=self.memory,
            tie_break=tie_break,
            prune=prune,
            keep_improving_state=keep_improving_state,
        )

    def finished(self) -> None:
        """The training ended (not stopped): its checkpoint is no longer needed."""
        if self.ckpt is not None:
            self.ckpt.remove()


def train_candidate(
    genotype: Genotype,
    data: TrainData,
    config: TrainingConfig = TrainingConfig(),
    *,
    seed: int = 0,
    fitness: Fitness = "val_acc",
    device: str | torch.device = "cpu",
    control: Gate | None = None,
    on_epoch: OnEpoch | None = None,
    model_fn: ModelFactory = build_network,
    epoch_checkpoint: str | Path | None = None,
    on_resume: OnResume | None = None,
    on_notice: OnNotice | None = None,
    prune: PruneRule | None = None,
    score_test: bool = False,
) -> CandidateResult:
    """Train one candidate on ``data.train`` and score it on ``data.val``.

    Seeds torch with ``seed`` (on the CPU two runs give the same fitness),
    builds the network with ``model_fn``, trains with Adam for up to
    ``config.epochs`` epochs with early stopping on validation loss.

    Args:
        genotype: a feasible ``Genotype`` (passed to ``model_fn``).
        data: the (search-subset) dataset, resident on ``device``.
        config: training settings (bf16 when ``config.uses_amp(final=False)``).
        seed: seeds the initialisation and the batch order.
        fitness: ``"val_acc"`` or ``"val_auc"``: the best value over the epochs.
        device: where to train (the device ``data`` lives on).
        control: the batch gate, passed at every batch boundary (pause blocks, stop raises).
        on_epoch: called after every epoch with its ``EpochRecord`` (epoch,
            train_loss, val_loss, val_acc, val_auc, seconds); its exceptions propagate.
        model_fn: the ``ModelFactory`` ``(genotype, in_channels=, num_classes=) -> nn.Module``.
        epoch_checkpoint: a per-epoch checkpoint file; written once the training has
            run ``config.checkpoint_after_seconds``, resumed when it matches,
            removed when the training ends.
        on_resume: called with the epoch a checkpoint resumed after.
        on_notice: called with one line when a checkpoint was refused.
        prune: bars the best fitness so far must reach at the end of each
            epoch (``engine.pruning``); a training below one stops there.
        score_test: keep the weights of the epoch that gives the fitness and,
            once the training ends ``ok`` or ``pruned``, score them on
            ``data.test`` (``test_acc`` / ``test_auc``; inference only). The
            fitness, the epochs and the early stopping are the same either way.

    Returns:
        A ``CandidateResult``: ``ok`` with the fitness; ``pruned`` (with the
        best fitness so far and ``pruned_at``) when ``prune`` stopped it; ``oom`` when the GPU
        ran out of memory (memory is released first); ``failed`` with a
        one-line error for any other exception.

    Raises:
        StopRequested: ``control`` was stopped (at a batch boundary); the checkpoint stays.
        ValueError: ``config`` does not fit ``data`` (BCE on a multi-class task).
    """
    run = _Training(genotype, data, config, seed, device, select=fitness, final=False, model_fn=model_fn,
                    epoch_checkpoint=epoch_checkpoint, on_resume=on_resume, score_test=score_test)
    dev = run.dev
    progress = _Progress()
    status: CandidateStatus = "ok"
    error: str | None = None
    fitter: Fitter | None = None
    test_acc: float | None = None
    test_auc: float | None = None
    try:
        fitter, progress = run.fit(control, on_epoch, on_notice, prune=prune, keep_improving_state=score_test)
        if score_test and progress.best_state is not None and progress.best_value is not None:
            fitter.model.load_state_dict(progress.best_state)
            _, test_acc, test_auc, _ = fitter.evaluate(data.test, control)
            progress.best_state = None
        if progress.pruned_at is not None and progress.best_value is not None and prune is not None:
            status = "pruned"
            bar = prune.bar(progress.pruned_at)
            error = (
                f"pruned at epoch {progress.pruned_at}: best {fitness} {progress.best_value:.4f} "
                f"< {bar:.4f} ({prune.reference or 'bar'})"
            )
        elif progress.best_value is None:
            status, error = "failed", f"{fitness} was undefined in every epoch (one class in the validation split?)"
    except _CallbackError as exc:
        raise exc.inner from None
    except StopRequested:
        raise
    except Exception as exc:  # recorded, never raised through the search loop
        status = "oom" if is_out_of_memory(exc) else "failed"
        error = one_line(exc)
        # The traceback's frames hold the model and its activations; whoever else keeps
        # this exception object (a hook, a logger) must not pin that memory.
        exc.__traceback__ = None
    finally:
        fitter = None  # noqa: F841 - drop the model, optimizer and traceback frames before freeing
        if status != "ok" or dev.type == "cuda":
            release(dev)
    run.finished()
    ok = status in ("ok", "pruned")
    return CandidateResult(
        status=status,
        fitness=progress.best_value if ok else None,
        val_acc=progress.best_acc if ok else None,
        val_auc=progress.best_auc if ok else None,
        epochs=len(progress.history),
        seconds=time.perf_counter() - run.start,
        peak_memory_mb=run.memory.megabytes(),
        error=error,
        history=tuple(progress.history),
        resumed_from=run.resumed.epoch,
        pruned_at=progress.pruned_at if status == "pruned" else None,
        test_acc=float(test_acc) if ok and test_acc is not None else None,
        test_auc=float(test_auc) if ok and test_auc is not None else None,
    )


def final_train(
    genotype: Genotype,
    data: TrainData,
    config: TrainingConfig,
    *,
    seed: int,
    device: str | torch.device = "cpu",
    control: Gate | None = None,
    on_epoch: OnEpoch | None = None,
    model_fn: ModelFactory = build_network,
    epoch_checkpoint: str | Path | None = None,
    on_resume: OnResume | None = None,
    on_notice: OnNotice | None = None,
    tie_break: TieBreak = "val_auc",
    keep_checkpoint: bool = False,
) -> FinalOutcome:
    """Retrain a finalist from scratch on the full training split and test it.

    Trains like ``train_candidate`` (bf16 when ``config.uses_amp(final=True)``),
    keeps a CPU copy of the weights of the epoch with the best validation ACC
    (the paper's rule; with ``tie_break="val_auc"`` equal ACCs are decided by
    validation AUC, then lower validation loss, as the search decides ties),
    reloads them and evaluates them on ``data.test``.

    Args:
        genotype: a feasible ``Genotype``.
        data: the full dataset (not the search subset), resident on ``device``.
        config: training settings (``epochs`` is the final phase's).
        seed: the seed of this retraining.
        device: where to train.
        control: the batch gate, passed at every batch boundary.
        on_epoch: called after every epoch, as in ``train_candidate``.
        model_fn: as in ``train_candidate``.
        epoch_checkpoint: a per-epoch checkpoint file (written after every epoch,
            resumed when it matches, removed at the end).
        on_resume, on_notice: as in ``train_candidate``.
        tie_break: ``"val_auc"`` (the default) or ``"none"`` (the paper's
            plain rule: the first epoch with the best validation ACC).
        keep_checkpoint: leave the epoch checkpoint when the training ends; the
            caller removes it once what it makes of the outcome is on disk.

    Returns:
        ``FinalOutcome`` with the test AUC / ACC of the best-validation epoch
        and its weights (``state_dict``).

    Raises:
        StopRequested: ``control`` was stopped; the checkpoint stays for a resume.
        torch.OutOfMemoryError, RuntimeError, ...: training errors propagate
            (the caller records them); the cache is emptied on the way out.
        ValueError: ``config`` does not fit ``data``.
    """
    run = _Training(genotype, data, config, seed, device, select="val_acc", final=True, model_fn=model_fn,
                    epoch_checkpoint=epoch_checkpoint, on_resume=on_resume)
    fitter: Fitter | None = None
    try:
        fitter, progress = run.fit(control, on_epoch, on_notice, tie_break=tie_break)
        assert progress.best_state is not None and progress.best_acc is not None
        fitter.model.load_state_dict(progress.best_state)
        _, test_acc, test_auc, _ = fitter.evaluate(data.test, control)
    except _CallbackError as exc:
        raise exc.inner from None
    finally:
        fitter = None  # noqa: F841 - drop the model before freeing
        release(run.dev)
    if not keep_checkpoint:
        run.finished()
    return FinalOutcome(
        test_auc=test_auc,
        test_acc=test_acc,
        val_acc=float(progress.best_acc),
        epochs=len(progress.history),
        best_epoch=progress.best_epoch,
        seconds=time.perf_counter() - run.start,
        seed=int(seed),
        peak_memory_mb=run.memory.megabytes(),
        resumed_from=run.resumed.epoch,
        history=tuple(progress.history),
        state_dict=progress.best_state,
    )
