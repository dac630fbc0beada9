"""One model being trained: an epoch of training, an evaluation, and its resumable state.

``Fitter`` holds the network, Adam and the batch-order generator of one
training and knows how to run and evaluate an epoch on resident data. Fast
paths: data stays on the device and is batched by indexing a permutation
(``engine.data.iterate_batches``); model and inputs use ``channels_last_3d``;
the loss is accumulated on the device and read back once per epoch (no
``.item()`` per batch); evaluation runs under ``torch.inference_mode`` and
copies the scores to the host once. bf16 autocast (``amp``) on CUDA and on the
CPU alike (``torch.autocast`` for the device's type; the caller decides, see
``TrainingConfig.uses_amp``: on the CPU only where it computes bf16 natively).
bf16 needs no gradient scaling (its exponent range is fp32's); the loss and
the scores are computed in fp32 from the bf16 logits.

``state_dict`` / ``load_state_dict`` cover everything the next epoch depends
on (weights, optimizer moments, the batch-order generator), which is what
makes a resumed training identical to an uninterrupted one on the CPU.

It must not publish events; pause and stop go through ``control.at_batch_boundary()``
at every batch boundary.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..control import Gate
from ..data import Split, iterate_batches
from ..profile.sections import TrainingConfig
from ..records import EpochRecord
from .data_protocol import TrainData
from .memory import PeakMemory

__all__ = ["Fitter"]


class Fitter:
    """Holds one model being trained on ``data`` and runs its epochs.

    Args:
        model: the freshly built network (moved to ``device`` here).
        data: train / val (/ test) splits resident on ``device``.
        config: the training settings (batch size, lr, loss, layout, batch cap).
        device: where to train.
        seed: seeds the batch order.
        amp: bf16 autocast (honoured on CUDA and the CPU).
    """

    def __init__(
        self,
        model: nn.Module,
        data: TrainData,
        config: TrainingConfig,
        device: torch.device,
        seed: int,
        amp: bool = False,
    ) -> None:
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
        self.autocast = bool(amp) and device.type in ("cuda", "cpu")
        self.generator = torch.Generator().manual_seed(int(seed))

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer state and the batch-order generator, as CPU tensors and plain values."""
        return {
            "model": {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output (raises when it does not fit this model)."""
        self.model.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def weights(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the current weights."""
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.model.state_dict().items()}

    # -- epochs --------------------------------------------------------------------------
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

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        if self.autocast:
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                out: torch.Tensor = self.model(x)
                return out
        plain: torch.Tensor = self.model(x)
        return plain

    def train_epoch(self, split: Split, control: Gate | None, memory: PeakMemory) -> float:
        """One pass over ``split``; returns the sample-weighted mean training loss."""
        self.model.train()
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        seen = 0
        cap = self.config.max_batches_per_epoch
        for b, (x, y) in enumerate(iterate_batches(split, self.config.batch_size, generator=self.generator)):
            if cap and b >= cap:
                break
            if control is not None:
                control.at_batch_boundary()
            loss = self._loss(self._forward(x), y, "mean")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            total += loss.detach() * y.shape[0]
            seen += int(y.shape[0])
            if b == 0:
                memory.sample()
        if control is not None:
            control.at_batch_boundary()
        return float(total.item() / max(seen, 1))  # the one host sync of the epoch

    def run_epoch(self, epoch: int, control: Gate | None, memory: PeakMemory) -> EpochRecord:
        """Train one epoch on the train split and validate: the per-epoch record ``on_epoch`` gets."""
        t0 = time.perf_counter()
        train_loss = self.train_epoch(self.data.train, control, memory)
        val_loss, val_acc, val_auc, _ = self.evaluate(self.data.val, control)
        memory.sample()
        return EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            val_acc=val_acc,
            val_auc=val_auc,
            seconds=time.perf_counter() - t0,
        )

    def evaluate(self, split: Split, control: Gate | None = None) -> tuple[float, float, float, np.ndarray]:
        """``(loss, acc, auc, scores)`` of the current model on ``split`` (medmnist's metrics)."""
        self.model.eval()
        total = torch.zeros((), dtype=torch.float32, device=self.device)
        parts = []
        with torch.inference_mode():
            for x, y in iterate_batches(split, self.config.batch_size, shuffle=False):
                if control is not None:
                    control.at_batch_boundary()
                logits = self._forward(x)
                total += self._loss(logits, y, "sum")
                parts.append(self._scores(logits))
            scores = torch.cat(parts).cpu().numpy()
        loss = float(total.item()) / max(len(split), 1)
        y_true = split.y.cpu().numpy()
        return loss, metrics.accuracy(y_true, scores, self.task), metrics.auc(y_true, scores, self.task), scores


def _to_cpu(obj: object) -> Any:
    """A copy of a (nested) optimizer state with every tensor on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
