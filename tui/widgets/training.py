"""The training trace of one candidate: per-epoch losses and validation metric as text sparklines.

On a CPU the first candidate can train for minutes before anything else on
screen moves; this trace shows it is alive: how long it has trained (on the
event clock, so the periodic resource samples tick it along), the seconds
per epoch, and a sparkline per curve (train loss, val loss, the fitness
metric) with its latest value. The Cell panel puts it under the cell drawing.

Pure: Rich ``Text`` from a ``CandidateView`` and its ``EpochFinished``
history; no Textual widgets, no torch.
"""
from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text

from engine import events as ev

from ..fmt import duration, metric
from ..state import CandidateView

__all__ = ["BARS", "spark", "epoch_trace", "render_training"]

BARS = "▁▂▃▄▅▆▇█"
LABELS = {"val_acc": "val ACC", "val_auc": "val AUC"}


def spark(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as bars scaled between their min and max (flat: mid bars)."""
    finite = [v for v in values if v is not None and math.isfinite(v)][-max(width, 0):] if width > 0 else []
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        return BARS[len(BARS) // 2 - 1] * len(finite)
    top = len(BARS) - 1
    return "".join(BARS[round((v - lo) / (hi - lo) * top)] for v in finite)


def epoch_trace(cand: CandidateView, phase: str = "search") -> list[ev.EpochFinished]:
    """The candidate's epochs of ``phase``, one per epoch number (the latest report wins), in order."""
    by_epoch: dict[int, ev.EpochFinished] = {}
    for e in cand.history:
        if getattr(e, "phase", "search") == phase:
            by_epoch[int(e.epoch)] = e
    return [by_epoch[k] for k in sorted(by_epoch)]


def render_training(cand: CandidateView, now: float | None, fitness: str = "val_acc", width: int = 42) -> Text:
    """The trace of ``cand`` in ``width`` columns; empty when it is not training and never reported an epoch.

    Args:
        cand: the candidate (its ``history`` holds the ``EpochFinished`` events seen).
        now: the event clock (the latest event's timestamp), for the time spent so far.
        fitness: the run's fitness metric (``val_acc`` or ``val_auc``), the third curve.
        width: columns available.
    """
    text = Text()
    epochs = epoch_trace(cand)
    running = cand.status == "running"
    if not epochs and not running:
        return text
    head = []
    if running:
        if cand.started_ts is not None and now is not None and now >= cand.started_ts:
            head.append(f"training for {duration(now - cand.started_ts)}")
        else:
            head.append("training")
    else:
        head.append(f"trained {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}")
    resumed_at = getattr(cand, "resumed_at", 0)  # training continued from a per-epoch checkpoint
    if resumed_at:
        head.append(f"resumed after epoch {resumed_at}")
    if epochs:
        per_epoch = sum(float(e.seconds) for e in epochs) / len(epochs)
        head.append(f"{duration(per_epoch)} per epoch")
    text.append(" · ".join(head) + "\n", style="bold" if running else "")
    if not epochs:
        text.append(f"epoch {resumed_at + 1} under way…", style="italic dim")
        return text
    label_w, value_w = 11, 7
    # One bar per epoch, up to the epochs this candidate may train (the bars fill as it learns).
    room = max(4, width - label_w - value_w - 1)
    bars = min(room, max(cand.max_epochs or 0, len(epochs)))
    name = LABELS.get(fitness, fitness)
    rows = (
        ("train loss", [float(e.train_loss) for e in epochs]),
        ("val loss", [float(e.val_loss) for e in epochs]),
        (name, [float(getattr(e, fitness, math.nan)) for e in epochs]),
    )
    for i, (label, values) in enumerate(rows):
        text.append(f"{label:<{label_w}}", style="dim")
        text.append(f"{spark(values, bars):<{bars}} ", style="cyan")
        text.append(f"{metric(values[-1]):>{value_w}}")
        if i < len(rows) - 1:
            text.append("\n")
    return text
