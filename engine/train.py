"""Training of one candidate (search phase) and the final retrain + test (paper §3.2).

This module owns the training loop: seeding, Adam, cross-entropy (or BCE for
binary tasks), early stopping on validation loss, fitness = best validation
ACC (or AUC), CUDA out-of-memory handling, peak-memory measurement, and the
final phase that keeps the best-validation checkpoint, evaluates it on test and
saves ``weights.pt`` + ``genotype.json``.

Fast paths: data stays resident on the device and is batched by indexing a
permutation (``engine.data``); model and inputs use ``channels_last_3d``; the
loss is accumulated on the device and read back once per epoch (no ``.item()``
per batch); evaluation runs under ``torch.inference_mode`` and copies the
scores to the host once per epoch. On CUDA ``cudnn.benchmark`` is on and bf16
autocast is optional; autocast is never used on CPU (10x slower there).

It must not publish events: progress goes out through the plain ``on_epoch``
callback, and pause / stop through ``Control.checkpoint()`` at every batch
boundary (``StopRequested`` propagates to the caller; nothing is written
before the end of ``final_train``).
"""
from __future__ import annotations

import gc
import json
import math
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import metrics
from .control import Control, StopRequested
from .data import Dataset, Split, iterate_batches
from .model import build_network
from .rundir import atomic_write

__all__ = [
    "TrainConfig",
    "CandidateResult",
    "FinalOutcome",
    "EarlyStopping",
    "train_candidate",
    "final_train",
    "evaluate",
    "is_out_of_memory",
]

LOSSES = ("cross_entropy", "bce")
FITNESSES = ("val_acc", "val_auc")

# Seeding the global torch RNG and initialising a network must not interleave
# with another thread doing the same, or "same seed, same network" breaks.
_INIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class TrainConfig:
    """How a candidate is trained (profile section ``training``).

    Attributes:
        epochs: maximum number of epochs (>= 1).
        patience: stop after this many consecutive epochs without a lower
            validation loss; 0 disables early stopping.
        batch_size: training and evaluation batch size.
        lr: Adam learning rate.
        loss: ``"cross_entropy"`` or ``"bce"`` (binary tasks only: sigmoid
            BCE on the one-hot targets of the two logits).
        amp: bf16 autocast on CUDA (ignored on CPU).
        channels_last: ``channels_last_3d`` memory format for model and inputs.
        seed: seeds the network initialisation and the batch order.
        fitness: ``"val_acc"`` or ``"val_auc"``; the best value over epochs.
        max_batches_per_epoch: when > 0, cap on training batches per epoch
            (benchmarks, smoke tests).
    """

    epochs: int = 50
    patience: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    loss: str = "cross_entropy"
    amp: bool = False
    channels_last: bool = True
    seed: int = 0
    fitness: str = "val_acc"
    max_batches_per_epoch: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.fitness not in FITNESSES:
            raise ValueError(f"fitness must be one of {', '.join(FITNESSES)}, got {self.fitness!r}")
        if self.max_batches_per_epoch < 0:
            raise ValueError(f"max_batches_per_epoch must be >= 0, got {self.max_batches_per_epoch}")


@dataclass(frozen=True)
class CandidateResult:
    """Outcome of training one candidate.

    Attributes:
        status: ``"ok"``, ``"oom"`` (CUDA out of memory; memory was released)
            or ``"failed"`` (any other error, see ``error``).
        fitness: best validation ACC (or AUC) over the epochs; None unless ok.
        val_acc, val_auc: validation metrics of the epoch that gave the fitness.
        epochs: epochs completed.
        seconds: wall time of the whole call.
        peak_memory_mb: CUDA peak allocated memory, or on CPU the growth of the
            process resident set over the run (approximate); None if unknown.
        error: one-line message for oom / failed.
        history: one dict per epoch (as passed to ``on_epoch``).
    """

    status: str
    fitness: float | None
    val_acc: float | None
    val_auc: float | None
    epochs: int
    seconds: float
    peak_memory_mb: float | None
    error: str | None
    history: tuple[dict, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class FinalOutcome:
    """Result of one final retrain of a finalist.

    ``weights_path`` / ``genotype_path`` are empty strings when nothing was saved.
    """

    test_auc: float
    test_acc: float
    val_acc: float
    epochs: int
    seconds: float
    weights_path: str
    genotype_path: str
    params: int
    flops: int
    seed: int = 0
    best_epoch: int = 0
    history: tuple[dict, ...] = field(default=(), repr=False)


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


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA (or other accelerator) out-of-memory error."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None) or getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _CallbackError(Exception):
    """Wraps an exception raised by ``on_epoch`` so it is not recorded as a failed candidate."""

    def __init__(self, inner: BaseException) -> None:
        super().__init__(str(inner))
        self.inner = inner


# -- memory ---------------------------------------------------------------------


class _PeakMemory:
    """CUDA peak allocation, or on CPU the RSS growth over a run (approximate)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._rss0 = 0
        self._maxrss0 = 0
        self._peak = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        else:
            self._rss0 = self._rss()
            self._peak = self._rss0
            self._maxrss0 = self._maxrss()

    @staticmethod
    def _rss() -> int:
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except Exception:  # psutil missing or unsupported platform
            return 0

    @staticmethod
    def _maxrss() -> int:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) * (1 if sys.platform == "darwin" else 1024)

    def sample(self) -> None:
        if not self.cuda:
            self._peak = max(self._peak, self._rss())

    def megabytes(self) -> float | None:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self._rss0 == 0:
            return None
        peak = self._peak
        maxrss = self._maxrss()
        if maxrss > self._maxrss0:  # the process high-water mark was reached during this run
            peak = max(peak, maxrss)
        return max(0.0, (peak - self._rss0) / 2**20)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- the loop -------------------------------------------------------------------


class _Fitter:
    """Holds one model being trained and knows how to run and evaluate an epoch."""

    def __init__(self, model: nn.Module, data: Dataset, config: TrainConfig, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.device = device
        self.task = data.task
        self.num_classes = data.num_classes
        self.memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
        self.model = model.to(device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.autocast = config.amp and device.type == "cuda"
        self.generator = torch.Generator().manual_seed(config.seed)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
        logits = logits.float()
        if self.config.loss == "bce":
            target = nn.functional.one_hot(y, self.num_classes).to(logits.dtype)
            per = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
            return per.mean() if reduction == "mean" else per.sum()
        return nn.functional.cross_entropy(logits, y, reduction=reduction)

    def _scores(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return torch.sigmoid(logits) if self.config.loss == "bce" else torch.softmax(logits, dim=1)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.autocast:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.model(x)
        return self.model(x)

    def train_epoch(self, split: Split, control: Control | None, memory: _PeakMemory) -> float:
        """One pass over ``split``; returns the sample-weighted mean training loss."""
        self.model.train()
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        seen = 0
        cap = self.config.max_batches_per_epoch
        for b, (x, y) in enumerate(iterate_batches(split, self.config.batch_size, generator=self.generator)):
            if cap and b >= cap:
                break
            if control is not None:
                control.checkpoint()
            loss = self._loss(self._forward(self._input(x)), y, "mean")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * y.shape[0]
            seen += int(y.shape[0])
            if b == 0:
                memory.sample()
        if control is not None:
            control.checkpoint()
        return float(total.item() / max(seen, 1))  # the one host sync of the epoch

    def run_epoch(self, epoch: int, control: Control | None, memory: "_PeakMemory") -> dict:
        """Train one epoch on the train split and validate: the per-epoch record ``on_epoch`` gets."""
        t0 = time.perf_counter()
        train_loss = self.train_epoch(self.data.train, control, memory)
        val_loss, val_acc, val_auc, _ = self.evaluate(self.data.val, control)
        memory.sample()
        return dict(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            val_acc=val_acc,
            val_auc=val_auc,
            seconds=time.perf_counter() - t0,
        )

    def evaluate(self, split: Split, control: Control | None = None) -> tuple[float, float, float, np.ndarray]:
        """``(loss, acc, auc, scores)`` of the current model on ``split``."""
        self.model.eval()
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        parts = []
        with torch.inference_mode():
            for x, y in iterate_batches(split, self.config.batch_size, shuffle=False):
                if control is not None:
                    control.checkpoint()
                logits = self._forward(self._input(x))
                total += self._loss(logits, y, "sum")
                parts.append(self._scores(logits))
            scores = torch.cat(parts).cpu().numpy()
        loss = float(total.item()) / max(len(split), 1)
        y_true = split.y.cpu().numpy()
        return loss, metrics.accuracy(y_true, scores, self.task), metrics.auc(y_true, scores, self.task), scores


def _check(data: Dataset, config: TrainConfig) -> None:
    if config.loss == "bce" and data.task != "binary-class":
        raise ValueError(f"loss 'bce' needs a binary-class task; {data.flag} is {data.task}")


def _build(model_fn: Callable[..., nn.Module], genotype: Any, data: Dataset, seed: int) -> nn.Module:
    with _INIT_LOCK:
        torch.manual_seed(seed)
        return model_fn(genotype, in_channels=int(data.train.x.shape[1]), num_classes=data.num_classes)


def _prepare_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return dev


def _better(value: float, best: float | None) -> bool:
    return not math.isnan(value) and (best is None or value > best)


def _emit(on_epoch: Callable[[dict], None] | None, record: dict) -> None:
    if on_epoch is None:
        return
    try:
        on_epoch(dict(record))
    except BaseException as exc:  # noqa: BLE001 - re-raised unchanged by the caller
        raise _CallbackError(exc) from None


def train_candidate(
    genotype: Any,
    data: Dataset,
    config: TrainConfig = TrainConfig(),
    device: str | torch.device = "cpu",
    control: Control | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    model_fn: Callable[..., nn.Module] = build_network,
) -> CandidateResult:
    """Train one candidate on ``data.train`` and score it on ``data.val``.

    Seeds torch with ``config.seed`` (on CPU two runs give the same fitness),
    builds the network with ``model_fn``, trains with Adam for up to
    ``config.epochs`` epochs with early stopping on validation loss.

    Args:
        genotype: a feasible ``Genotype`` (passed to ``model_fn``).
        data: the (search-subset) dataset, resident on ``device``.
        config: training settings.
        device: where to train (the device ``data`` lives on).
        control: checked at every batch boundary (pause blocks, stop raises).
        on_epoch: called after every epoch with ``dict(epoch, train_loss,
            val_loss, val_acc, val_auc, seconds)``; its exceptions propagate.
        model_fn: ``(genotype, in_channels=, num_classes=) -> nn.Module``.

    Returns:
        A ``CandidateResult``: status ``ok`` with fitness = best validation
        ACC (or AUC when ``config.fitness == "val_auc"``); ``oom`` when the GPU
        ran out of memory (memory is released first); ``failed`` with a
        one-line error for any other exception.

    Raises:
        StopRequested: ``control`` was stopped (at a batch boundary).
        ValueError: ``config`` does not fit ``data`` (BCE on a multi-class task).
    """
    _check(data, config)
    start = time.perf_counter()
    dev = _prepare_device(device)
    memory = _PeakMemory(dev)
    history: list[dict] = []
    best: float | None = None
    best_acc: float | None = None
    best_auc: float | None = None
    status, error = "ok", None
    fitter: _Fitter | None = None
    try:
        fitter = _Fitter(_build(model_fn, genotype, data, config.seed), data, config, dev)
        stopper = EarlyStopping(config.patience)
        for epoch in range(1, config.epochs + 1):
            record = fitter.run_epoch(epoch, control, memory)
            history.append(record)
            val_loss, val_acc, val_auc = record["val_loss"], record["val_acc"], record["val_auc"]
            value = val_acc if config.fitness == "val_acc" else val_auc
            if _better(value, best):
                best, best_acc, best_auc = value, val_acc, val_auc
            _emit(on_epoch, record)
            if stopper.update(val_loss):
                break
        if best is None:
            status, error = "failed", f"{config.fitness} was undefined in every epoch (one class in the validation split?)"
    except _CallbackError as exc:
        raise exc.inner from None
    except StopRequested:
        raise
    except Exception as exc:  # recorded, never raised through the search loop
        status = "oom" if is_out_of_memory(exc) else "failed"
        error = _one_line(exc)
        # The traceback's frames hold the model and its activations; whoever else keeps
        # this exception object (a hook, a logger) must not pin that memory.
        exc.__traceback__ = None
    finally:
        # Drop the model, optimizer and any traceback frames before measuring / freeing.
        fitter = None
        if status != "ok" or dev.type == "cuda":
            _release(dev)
    peak = memory.megabytes()
    ok = status == "ok"
    return CandidateResult(
        status=status,
        fitness=best if ok else None,
        val_acc=best_acc if ok else None,
        val_auc=best_auc if ok else None,
        epochs=len(history),
        seconds=time.perf_counter() - start,
        peak_memory_mb=peak,
        error=error,
        history=tuple(history),
    )


def evaluate(
    model: nn.Module,
    split: Split,
    task: str,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    loss: str = "cross_entropy",
) -> tuple[float, float]:
    """``(auc, acc)`` of ``model`` on ``split`` with medmnist's metrics.

    Scores are the softmax of the logits (the sigmoid when the model was
    trained with ``loss="bce"``), as ``train_candidate`` / ``final_train``
    score them. The model is put in eval mode; ``split`` must be on the
    model's device unless ``device`` is given (then the model is moved there).
    """
    dev = torch.device(device) if device is not None else split.y.device
    model = model.to(dev).eval()
    parts = []
    with torch.inference_mode():
        for x, _ in iterate_batches(split, batch_size, shuffle=False):
            logits = model(x.to(dev)).float()
            parts.append(torch.sigmoid(logits) if loss == "bce" else torch.softmax(logits, dim=1))
    scores = torch.cat(parts).cpu().numpy()
    y_true = split.y.cpu().numpy()
    return metrics.auc(y_true, scores, task), metrics.accuracy(y_true, scores, task)


def final_train(
    genotype: Any,
    data: Dataset,
    config: TrainConfig,
    seed: int,
    device: str | torch.device = "cpu",
    control: Control | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    model_fn: Callable[..., nn.Module] = build_network,
) -> FinalOutcome:
    """Retrain a finalist from scratch on the full training split and test it.

    Trains like ``train_candidate`` (with ``config`` and ``seed``; early
    stopping follows ``config.patience``), keeps a CPU copy of the state dict
    of the epoch with the best validation ACC, reloads it and evaluates it on
    ``data.test``.

    Args:
        genotype: a feasible ``Genotype``.
        data: the full dataset (not the search subset), resident on ``device``.
        config: training settings (``config.seed`` is replaced by ``seed``).
        seed: the seed of this retrain.
        device: where to train.
        control: checked at every batch boundary.
        on_epoch: called after every epoch, as in ``train_candidate``.
        out_dir: when given, ``weights.pt`` (the best state dict, loadable into
            ``build_network(genotype, in_channels, num_classes)``) and
            ``genotype.json`` (``genotype.to_dict()`` plus metrics; readable
            by ``Genotype.from_dict``) are written there atomically.
        model_fn: as in ``train_candidate``.

    Returns:
        ``FinalOutcome`` with test AUC / ACC of the best-validation checkpoint.

    Raises:
        StopRequested: ``control`` was stopped; nothing was written.
        torch.OutOfMemoryError, RuntimeError, ...: training errors propagate
            (the caller records them). The cache is emptied on the way out, but
            tensors referenced by the exception's traceback are only freed once
            the caller drops the exception (record its message, not the object).
        ValueError: ``config`` does not fit ``data``.
    """
    _check(data, config)
    config = replace(config, seed=seed)
    start = time.perf_counter()
    dev = _prepare_device(device)
    history: list[dict] = []
    fitter: _Fitter | None = None
    try:
        fitter = _Fitter(_build(model_fn, genotype, data, seed), data, config, dev)
        memory = _PeakMemory(dev)
        stopper = EarlyStopping(config.patience)
        best_acc: float | None = None
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = 0
        for epoch in range(1, config.epochs + 1):
            record = fitter.run_epoch(epoch, control, memory)
            history.append(record)
            val_loss, val_acc = record["val_loss"], record["val_acc"]
            if best_state is None or _better(val_acc, best_acc):
                best_acc, best_epoch = val_acc, epoch
                best_state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in fitter.model.state_dict().items()}
            _emit(on_epoch, record)
            if stopper.update(val_loss):
                break
        assert best_state is not None
        fitter.model.load_state_dict(best_state)
        _, test_acc, test_auc, _ = fitter.evaluate(data.test, control)
    except _CallbackError as exc:
        raise exc.inner from None
    finally:
        fitter = None
        _release(dev)

    reference = model_fn(genotype, in_channels=int(data.train.x.shape[1]), num_classes=data.num_classes)
    from .complexity import count_flops, count_params

    params = count_params(reference)
    flops = count_flops(reference, input_size=data.size)
    seconds = time.perf_counter() - start
    weights_path = genotype_path = ""
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        w = out / "weights.pt"
        atomic_write(w, lambda fh: torch.save(best_state, fh))
        record = dict(genotype.to_dict()) if hasattr(genotype, "to_dict") else {}
        record.update(
            dataset=data.flag,
            size=data.size,
            task=data.task,
            in_channels=int(data.train.x.shape[1]),
            num_classes=data.num_classes,
            seed=seed,
            metrics=dict(
                test_auc=test_auc,
                test_acc=test_acc,
                val_acc=best_acc,
                best_epoch=best_epoch,
                epochs=len(history),
                params=params,
                flops=flops,
                seconds=seconds,
            ),
            weights="weights.pt",
        )
        g = out / "genotype.json"
        text = json.dumps(record, indent=1, allow_nan=True).encode()
        atomic_write(g, lambda fh: fh.write(text))
        weights_path, genotype_path = str(w), str(g)
    return FinalOutcome(
        test_auc=test_auc,
        test_acc=test_acc,
        val_acc=float(best_acc),
        epochs=len(history),
        seconds=seconds,
        weights_path=weights_path,
        genotype_path=genotype_path,
        params=params,
        flops=flops,
        seed=seed,
        best_epoch=best_epoch,
        history=tuple(history),
    )
