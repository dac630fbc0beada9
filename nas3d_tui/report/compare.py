"""Several runs side by side, folded into one immutable ``Comparison`` (pure numbers).

This module owns what the comparison report says beyond each run's own
``RunSummary``: a short label per run, the run time (downtime left out) at
which each point of its anytime curve was reached, the profile keys whose
values differ between the runs, and notes when the runs are not comparable on
one axis (other datasets, other fitness metrics).

It is pure: no I/O, no matplotlib, no torch, no Textual.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from engine import events as ev
from engine.records import finite_or_none

from .summary import RunSummary, flatten_profile

__all__ = ["MISSING", "ComparedRun", "Comparison", "anytime_seconds", "profile_diff", "labels", "compare"]


class _Missing:
    """A key one run's profile does not have."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class ComparedRun:
    """One run of a comparison: its label, where it is, its summary and the run time of its anytime points."""

    label: str
    run_dir: Path
    journal: Path
    summary: RunSummary
    seconds: tuple[float, ...]  # run time when each point of ``summary.anytime`` was reached

    @property
    def strategy(self) -> str:
        search = self.summary.profile.get("search") if isinstance(self.summary.profile, dict) else None
        return str(search.get("strategy", "ode")) if isinstance(search, dict) else "?"


@dataclass(frozen=True)
class Comparison:
    """The runs in the order given, their differing profile keys, and what limits the comparison."""

    runs: tuple[ComparedRun, ...]
    profile_diff: tuple[tuple[str, tuple[Any, ...]], ...]  # key, its value in each run (MISSING: absent)
    fitness_metric: str  # the runs' common fitness metric, or "fitness" when they differ
    notes: tuple[str, ...]


def anytime_seconds(events: Sequence[ev.Event]) -> list[float]:
    """Run time at each point of the anytime curve (``summarise``'s: the first ``ok`` result of each id).

    Time between consecutive events counts; the gap before a ``RunStarted``
    (the run was down between a crash or stop and its resume) does not.
    """
    out: list[float] = []
    seen: set[int] = set()
    run_time = 0.0
    prev: float | None = None
    for e in events:
        ts = finite_or_none(getattr(e, "ts", None))
        if isinstance(e, ev.RunStarted):
            prev = ts if ts is not None else prev
            continue
        if ts is not None and prev is not None and ts >= prev:
            run_time += ts - prev
        if ts is not None:
            prev = ts
        if (isinstance(e, ev.CandidateFinished) and e.status == "ok" and finite_or_none(e.fitness) is not None
                and e.candidate_id not in seen):
            seen.add(e.candidate_id)
            out.append(run_time)
    return out


def profile_diff(profiles: Sequence[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """The flattened keys whose values are not the same in every profile, in first-seen order."""
    flat = [dict(flatten_profile(p if isinstance(p, dict) else {})) for p in profiles]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = []
    for key in keys:
        values = tuple(f.get(key, MISSING) for f in flat)
        if any(v is MISSING for v in values) or any(v != values[0] for v in values[1:]):
            rows.append((key, values))
    return rows


def labels(run_dirs: Sequence[Path]) -> list[str]:
    """Short, distinct names: the folder name, with its parent when two runs share it."""
    names = [p.name or str(p) for p in run_dirs]
    out = []
    for p, name in zip(run_dirs, names, strict=True):
        out.append(f"{p.parent.name}/{name}" if names.count(name) > 1 and p.parent.name else name)
    twice = {label for label in out if out.count(label) > 1}  # still equal (same parent name): number them
    return [f"{label} ({k + 1})" if label in twice else label for k, label in enumerate(out)]


def compare(runs: Sequence[tuple[Path, Path, Sequence[ev.Event], RunSummary]]) -> Comparison:
    """A ``Comparison`` of ``(run_dir, journal, events, summary)`` in the order given."""
    names = labels([r[0] for r in runs])
    compared = tuple(
        ComparedRun(label, run_dir, journal, summary, tuple(anytime_seconds(events)))
        for label, (run_dir, journal, events, summary) in zip(names, runs, strict=True)
    )
    metrics = list(dict.fromkeys(r.summary.fitness_metric for r in compared))
    datasets = list(dict.fromkeys(r.summary.dataset for r in compared))
    notes = []
    if len(datasets) > 1:
        notes.append(f"The runs search different datasets ({', '.join(datasets)}): their fitness values "
                     "and test metrics do not measure the same thing.")
    if len(metrics) > 1:
        notes.append(f"The runs use different fitness metrics ({', '.join(metrics)}): the curves share an "
                     "axis but not a meaning.")
    return Comparison(
        runs=compared,
        profile_diff=tuple(profile_diff([r.summary.profile for r in compared])),
        fitness_metric=metrics[0] if len(metrics) == 1 else "fitness",
        notes=tuple(notes),
    )
