"""What a search whose candidates failed says at its end: why, and what to change.

A search in which every trained candidate failed has nothing to rank, no
finalist and no bundle: it ends ``failed`` (exit 1) with one line naming the
most common reason and the setting to change, never "finished". One in which
most failed still ranks the others, and says so at the end (a warning).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Iterable

from ..records import CandidateRecord

__all__ = ["FailureSummary", "summarize_failures"]

# The most common reasons, and what to change for each (first match wins).
_ADVICE = (
    ("undefined", "raise data.search_fraction (each split needs every class), or set search.fitness = 'val_acc'"),
    ("one class", "raise data.search_fraction (each split needs every class)"),
    ("out of memory", "lower training.batch_size, executor.per_gpu or the space (space.filters, space.stacks)"),
    ("contains nan", "the loss diverged (NaN): lower training.lr"),
    ("worker died", "look at the machine's memory and the workers' logs; a resume trains them again"),
)
_DEFAULT_ADVICE = "see each candidate's error with `nas3d-tui export {run_dir} --all` and fix its cause"


@dataclass(frozen=True)
class FailureSummary:
    """Trained candidates, how many failed (``oom`` or ``failed``), and the most common reason."""

    trained: int
    failed: int
    reason: str  # the most common error text, "" when none failed

    @property
    def all_failed(self) -> bool:
        return self.trained > 0 and self.failed == self.trained

    @property
    def most_failed(self) -> bool:
        return self.failed * 2 > self.trained

    def advice(self, run_dir: object) -> str:
        low = self.reason.lower()
        text = next((text for needle, text in _ADVICE if needle in low), _DEFAULT_ADVICE)
        return text.format(run_dir=run_dir)

    def all_failed_message(self, run_dir: object) -> str:
        """One line: every candidate failed, why, and what to change."""
        return (f"every one of the {self.trained} trained candidates failed, so nothing can be ranked "
                f"(most often: {self.reason}); {self.advice(run_dir)}")

    def most_failed_message(self, run_dir: object) -> str:
        return (f"{self.failed} of {self.trained} trained candidates failed (most often: {self.reason}); "
                f"the leaderboard ranks the rest; {self.advice(run_dir)}")


def summarize_failures(records: Iterable[CandidateRecord]) -> FailureSummary:
    """Count the trained candidates of a search and those that failed."""
    trained = [r for r in records if r.spent_budget]
    failed = [r for r in trained if r.status in ("oom", "failed")]  # a pruned one trained fine and lost
    reasons = collections.Counter((r.error or r.status) for r in failed)
    reason = reasons.most_common(1)[0][0] if reasons else ""
    return FailureSummary(trained=len(trained), failed=len(failed), reason=reason)
