"""Stopping search trainings that cannot win: the ``parent`` and ``median`` rules.

In differential evolution a trial only has to beat its own target parent,
and the parent's per-epoch history is in its record. So once a trial's
learning curve falls clearly below its parent's at the same epoch, training
it on tells the search nothing it will use. For batches without a single
parent (the opposite half of the initial population, generation jumps,
random search) the reference is the median of earlier candidates at the same
epoch, as in Optuna's ``MedianPruner``.

A rule is computed by the session *before* a candidate is dispatched, from
records that were finished before its batch began, and travels with the job
as a ``PruneRule``: a bar per epoch. The trainer checks it at the end of each
epoch. Because the bars depend only on earlier batches (never on what is
still in flight) and the trainer is deterministic, a resumed run, any
executor and any number of workers prune exactly the same candidates.

Definitions (``best(e)`` is the best fitness value seen up to epoch ``e``,
the quantity the search's fitness is the final value of):

* a curve is carried forward after its last epoch: a training that stopped
  early keeps its final best for every later epoch; a pruned one has no
  value after the epoch it was pruned at (it is not a finished curve);
* ``parent``: bar(e) = parent's best(e) − margin;
* ``median``: bar(e) = median over reference candidates with a value at e
  of their best(e), − margin; no bar with fewer than ``MIN_REFERENCE``
  values;
* a training is pruned at the end of epoch e when e ≥ warmup, e is not its
  last epoch (a decision there saves nothing), early stopping did not just
  end it, and best(e) < bar(e). A training whose metric was undefined in
  every epoch so far is never pruned (it fails on its own).

Pure Python: no torch, no numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .vocab import PRUNING_RULES as _PRUNING_RULES

__all__ = [
    "PRUNING_RULES",
    "MIN_REFERENCE",
    "PruneRule",
    "best_curve",
    "parent_rule",
    "median_rule",
    "prune_epoch",
]

PRUNING_RULES = _PRUNING_RULES  # ("none", "parent", "median"): engine.vocab
MIN_REFERENCE = 3  # median of fewer earlier candidates is noise


def _value(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def best_curve(history: Sequence[Mapping[str, object]], metric: str) -> list[float | None]:
    """best(e) for e = 1 .. len(history): the running best of ``metric`` (None while undefined)."""
    out: list[float | None] = []
    best: float | None = None
    for h in history:
        v = _value(h.get(metric))
        if v is not None and (best is None or v > best):
            best = v
        out.append(best)
    return out


def _at(curve: Sequence[float | None], epoch: int, finished: bool) -> float | None:
    """A curve's best at ``epoch`` (1-based), carried forward past its end when it finished."""
    if epoch <= len(curve):
        return curve[epoch - 1]
    return curve[-1] if (finished and curve) else None


@dataclass(frozen=True)
class PruneRule:
    """The bars one training must reach to go on.

    Attributes:
        bars: ``bars[e - 1]`` is the least best(e) that lets the training go
            on after epoch ``e``; None: no decision at that epoch.
        warmup: no decision before the end of this epoch.
        reference: what the bars come from, for the log (``parent #12``,
            ``median of 9``).
    """

    bars: tuple[float | None, ...]
    warmup: int = 1
    reference: str = ""

    def bar(self, epoch: int) -> float | None:
        return self.bars[epoch - 1] if 1 <= epoch <= len(self.bars) else None

    def prunes(self, epoch: int, best: float | None) -> bool:
        """Whether a training whose best so far is ``best`` stops at the end of ``epoch``."""
        if epoch < self.warmup or best is None or math.isnan(best):
            return False
        bar = self.bar(epoch)
        return bar is not None and best < bar

    def to_dict(self) -> dict[str, object]:
        return {"bars": list(self.bars), "warmup": self.warmup, "reference": self.reference}


def parent_rule(
    parent_history: Sequence[Mapping[str, object]],
    metric: str,
    epochs: int,
    *,
    warmup: int,
    margin: float,
    parent_id: int | None = None,
) -> PruneRule | None:
    """The rule for a DE trial whose target parent trained with ``parent_history`` (None: no bars)."""
    curve = best_curve(parent_history, metric)
    if not curve or curve[-1] is None:
        return None
    bars: list[float | None] = []
    for e in range(1, epochs + 1):
        v = _at(curve, e, finished=True)
        bars.append(None if v is None else v - margin)
    name = f"parent #{parent_id}" if parent_id is not None else "parent"
    return PruneRule(tuple(bars), warmup=warmup, reference=name)


def median_rule(
    references: Iterable[tuple[Sequence[Mapping[str, object]], bool]],
    metric: str,
    epochs: int,
    *,
    warmup: int,
    margin: float,
) -> PruneRule | None:
    """The rule against earlier candidates: ``references`` are ``(history, finished)`` pairs.

    ``finished`` is False for a training that was itself pruned (its curve
    ends where it stopped); a finished curve is carried forward.
    """
    curves = [(best_curve(h, metric), fin) for h, fin in references if h]
    if len(curves) < MIN_REFERENCE:
        return None
    bars: list[float | None] = []
    for e in range(1, epochs + 1):
        values = sorted(v for c, fin in curves if (v := _at(c, e, fin)) is not None)
        bars.append(_median(values) - margin if len(values) >= MIN_REFERENCE else None)
    if all(b is None for b in bars):
        return None
    return PruneRule(tuple(bars), warmup=warmup, reference=f"median of {len(curves)}")


def _median(sorted_values: Sequence[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2.0


def prune_epoch(
    history: Sequence[Mapping[str, object]],
    metric: str,
    rule: PruneRule | None,
    max_epochs: int,
    stopped_early: bool = False,
) -> int | None:
    """The epoch a training with this full ``history`` would have been pruned at, or None.

    Replays the trainer's decision epoch by epoch (``benchmarks/pruning.py``
    uses it on unpruned runs). ``stopped_early``: the history ended by early
    stopping (its last epoch is then never a pruning point).
    """
    if rule is None:
        return None
    curve = best_curve(history, metric)
    for e, best in enumerate(curve, start=1):
        last = e >= max_epochs or (stopped_early and e == len(curve))
        if not last and rule.prunes(e, best):
            return e
    return None
