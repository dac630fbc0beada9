"""Training: one candidate of the search, and the final retraining of a finalist (paper §3.2).

The package owns everything that touches a model's weights during training:
``loop`` (the shared epoch loop, ``train_candidate``, ``final_train``),
``fitter`` (one model, its optimizer and batch order; an epoch; an
evaluation), ``checkpoint`` (per-epoch checkpoints and resuming from them),
``device`` (cuDNN settings, warm-up, OOM), ``memory`` (peak memory) and
``data_protocol`` (``TrainData``: what the trainer reads of a dataset).

It must not publish events or write run-directory files other than the
checkpoint file it is given; the session does both.
"""
from __future__ import annotations

from .checkpoint import EpochCheckpoint
from .data_protocol import TrainData
from .device import is_out_of_memory, prepare_device, release, resolve_device, warm_up
from .fitter import Fitter
from .loop import (
    FITNESSES,
    CandidateResult,
    EarlyStopping,
    EpochRecord,
    FinalOutcome,
    ModelFactory,
    final_train,
    train_candidate,
)
from .memory import PeakMemory

__all__ = [
    "FITNESSES",
    "CandidateResult",
    "FinalOutcome",
    "EarlyStopping",
    "EpochCheckpoint",
    "EpochRecord",
    "ModelFactory",
    "TrainData",
    "Fitter",
    "PeakMemory",
    "train_candidate",
    "final_train",
    "resolve_device",
    "prepare_device",
    "warm_up",
    "release",
    "is_out_of_memory",
]
