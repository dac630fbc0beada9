"""Per-epoch checkpoints: a long training resumes at its last finished epoch after a crash.

This module owns the file a training writes after an epoch (atomically: temp
file, fsync, rename) and reads back on restart: the fitter's state (weights,
Adam moments, the batch-order generator), the loop's state (epochs done, the
history, early stopping, the best epoch and its weights) and an identity
(format, the architecture key, the seed and the settings that shape the
training). It is saved with ``torch.save`` of tensors and plain containers
only and loaded with ``weights_only=True``: no code is unpickled.

A file that fails any check -- unreadable, another format, another
architecture, seed or settings, fields of the wrong type -- is never trusted
half-read: ``load`` returns the reason in one line and the caller restarts
that training from epoch 0.

It must not publish events (the caller reports the reason).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write

__all__ = ["EpochCheckpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "nas3d-tui/epoch-checkpoint/1"


@dataclass
class EpochCheckpoint:
    """Where one training keeps its per-epoch checkpoint, and who it belongs to.

    Args:
        path: the checkpoint file.
        identity: what must match for a checkpoint to be resumed (architecture
            key, seed, the settings that shape the training); JSON-like values.
        after_seconds: save only once the training has run this long (0: every epoch).
    """

    path: Path
    identity: dict[str, Any]
    after_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def due(self, elapsed: float) -> bool:
        """Whether a checkpoint should be written after an epoch, ``elapsed`` seconds into the training."""
        return elapsed >= self.after_seconds

    def save(self, fitter_state: dict[str, Any], loop_state: dict[str, Any]) -> None:
        """Write the checkpoint atomically (the old one stays whole until the rename)."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "identity": dict(self.identity),
            "fitter": fitter_state,
            "loop": loop_state,
            "rng_cpu": torch.get_rng_state(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda fh: torch.save(payload, fh))

    def load(self) -> tuple[dict[str, Any] | None, str | None]:
        """``(payload, None)`` for a checkpoint to resume, ``(None, None)`` when there is none,
        ``(None, reason)`` when there is one that must not be trusted (one line)."""
        try:
            if not self.path.exists():
                return None, None
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any reader error means an untrustworthy file
            return None, f"{self.path} is unreadable ({type(exc).__name__})"
        problem = _check(payload, self.identity)
        if problem:
            return None, f"{self.path} {problem}"
        return payload, None

    def remove(self) -> None:
        """Delete the checkpoint (the training finished, or it was refused)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _check(payload: object, identity: dict[str, Any]) -> str | None:
    """Why ``payload`` cannot be resumed, or None."""
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        return "is not an epoch checkpoint of this version"
    if payload.get("identity") != identity:
        return "belongs to another training (architecture, seed or settings differ)"
    fitter, loop = payload.get("fitter"), payload.get("loop")
    if not isinstance(fitter, dict) or not all(k in fitter for k in ("model", "optimizer", "generator")):
        return "is corrupt (no model / optimizer / generator state)"
    if not isinstance(fitter["model"], dict) or not all(isinstance(v, torch.Tensor) for v in fitter["model"].values()):
        return "is corrupt (model state is not a dict of tensors)"
    if not isinstance(fitter["generator"], torch.Tensor) or not isinstance(payload.get("rng_cpu"), torch.Tensor):
        return "is corrupt (random generator state missing)"
    if not isinstance(loop, dict):
        return "is corrupt (no loop state)"
    epoch = loop.get("epoch")
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1):
        return f"is corrupt (epoch = {epoch!r})"
    history = loop.get("history")
    if not (isinstance(history, list) and len(history) == epoch and all(isinstance(h, dict) for h in history)):
        return "is corrupt (history does not match the epoch count)"
    for name in ("stop_best", "best_value"):
        v = loop.get(name)
        if v is not None and not (isinstance(v, float) and not math.isnan(v)) and not isinstance(v, int):
            return f"is corrupt ({name} = {v!r})"
    if not isinstance(loop.get("stop_bad"), int):
        return "is corrupt (early-stopping state missing)"
    best_state = loop.get("best_state")
    if best_state is not None and not (
        isinstance(best_state, dict) and all(isinstance(v, torch.Tensor) for v in best_state.values())
    ):
        return "is corrupt (best weights are not a dict of tensors)"
    return None
