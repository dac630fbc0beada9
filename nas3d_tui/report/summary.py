"""What a run's journal says, folded into one immutable ``RunSummary``.

This module owns every number the report shows: the fitness per generation,
the anytime curve, the Pareto fronts, the top-k ranking, the final test
metrics over seeds, and the run facts (profile, devices, wall time per phase,
candidate counts, peak memory). It works from ``engine.events`` objects alone,
so a finished, stopped or crashed run (whose journal may end mid-line) all
summarise the same way.

It is pure: no I/O, no matplotlib, no torch, no Textual.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from engine import events as ev
from engine.records import finite_or_none as _finite, rank_key
from engine.vocab import TieBreak, as_tie_break

__all__ = [
    "STATUSES",
    "AnytimePoint",
    "FinalRow",
    "RunSummary",
    "summarise",
    "rank_candidates",
    "pareto_mask",
    "flatten_profile",
]

# Candidate outcomes, in the order the report lists their counts.
STATUSES = ("ok", "pruned", "duplicate", "infeasible", "oom", "failed")


@dataclass(frozen=True)
class AnytimePoint:
    """The best fitness found once ``trained`` candidates were trained."""

    trained: int
    fitness: float  # this candidate's fitness
    best: float  # best so far, this candidate included
    candidate_id: int


@dataclass(frozen=True)
class FinalRow:
    """Test metrics of one finalist over its seeds (std is None for a single seed)."""

    candidate_id: int
    seeds: tuple[int, ...]
    test_auc_mean: float
    test_auc_std: float | None
    test_acc_mean: float
    test_acc_std: float | None
    val_acc_mean: float
    params: int
    flops: int
    epochs: int
    seconds: float  # all seeds together
    majority_acc: float | None = None  # test ACC of always answering the most frequent class (None: not recorded)


@dataclass(frozen=True)
class RunSummary:
    """Everything the report shows about one run, derived from its journal."""

    run_name: str
    dataset: str
    size: int | None
    fitness_metric: str
    budget: int | None
    population: int | None
    devices: tuple[str, ...]
    segments: int  # run segments: 1 + the number of resumes
    outcome: str  # one line: how the journal ends
    ended: bool  # a RunFinished / RunFailed closes the last segment
    profile: dict[str, Any]
    generations: tuple[ev.GenerationFinished, ...]
    jumps: tuple[ev.Jump, ...]
    candidates: tuple[ev.CandidateFinished, ...]  # the last result of each candidate id
    ranked: tuple[ev.CandidateFinished, ...]  # status ok, best first
    anytime: tuple[AnytimePoint, ...]
    counts: dict[str, int]  # candidates per status
    trained: int  # budget spent: candidates whose training was attempted
    search_seconds: float
    final_seconds: float
    peak_memory_mb: float | None
    gpu_readings: bool  # a resource sample reported GPU memory (else peaks are RSS growth on a CPU)
    peak_rss_mb: float | None
    finalists: tuple[int, ...]  # candidate ids of the final phase, in its order
    finals: tuple[FinalRow, ...]
    first_ts: float | None
    last_ts: float | None
    events: int

    def top(self, k: int) -> tuple[ev.CandidateFinished, ...]:
        """The ``k`` best trained candidates."""
        return self.ranked[: max(0, k)]


def rank_candidates(finished: Iterable[ev.CandidateFinished], tie_break: TieBreak = "val_auc") -> list[ev.CandidateFinished]:
    """Trained candidates (status ok), best first, by the run's ranking (``engine.records.rank_key``)."""
    ok = [e for e in finished if e.status == "ok" and _finite(e.fitness) is not None]
    return sorted(ok, key=lambda e: rank_key(e.record, tie_break))


def pareto_mask(costs: Sequence[float], fitnesses: Sequence[float]) -> list[bool]:
    """Which points are on the Pareto front (minimise cost, maximise fitness).

    A point is dominated when another one costs no more and is no less fit,
    and is strictly better in one of the two; equal points are all kept.
    """
    points = list(zip(costs, fitnesses, strict=True))
    mask = []
    for c, f in points:
        dominated = any(
            (c2 <= c and f2 >= f) and (c2 < c or f2 > f) for c2, f2 in points
        )
        mask.append(not dominated)
    return mask


def _tie_break(profile: dict[str, Any]) -> TieBreak:
    search = profile.get("search") if isinstance(profile, dict) else None
    value = search.get("tie_break", "val_auc") if isinstance(search, dict) else "val_auc"
    return as_tie_break(value) or "val_auc"


def ranked_fitness(e: ev.CandidateFinished) -> float:
    """The fitness of a ranked candidate (``RunSummary.ranked``: status ok, so a finite fitness)."""
    return float(e.fitness if e.fitness is not None else math.nan)


def flatten_profile(profile: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"run": {"seed": 42}}`` → ``[("run.seed", 42)]``, in the profile's own order."""
    rows: list[tuple[str, Any]] = []
    for key, value in profile.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(flatten_profile(value, prefix=f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def _final_rows(results: list[ev.FinalResult], order: Sequence[int]) -> list[FinalRow]:
    by_id: dict[int, dict[int, ev.FinalResult]] = {}
    for r in results:  # a resumed final phase may report a seed again: the last one counts
        by_id.setdefault(r.candidate_id, {})[r.seed] = r
    ids = [c for c in order if c in by_id] + [c for c in by_id if c not in order]
    rows = []
    for cid in ids:
        seeds = by_id[cid]
        rs = [seeds[s] for s in sorted(seeds)]
        auc = [float(r.test_auc) for r in rs]
        acc = [float(r.test_acc) for r in rs]
        rows.append(
            FinalRow(
                candidate_id=cid,
                seeds=tuple(sorted(seeds)),
                test_auc_mean=statistics.fmean(auc),
                test_auc_std=_std(auc),
                test_acc_mean=statistics.fmean(acc),
                test_acc_std=_std(acc),
                val_acc_mean=statistics.fmean(float(r.val_acc) for r in rs),
                params=int(rs[-1].params),
                flops=int(rs[-1].flops),
                epochs=max(int(r.epochs) for r in rs),
                seconds=sum(float(r.seconds) for r in rs),
                majority_acc=rs[-1].majority_acc,
            )
        )
    return rows


def _outcome(events: Sequence[ev.Event]) -> tuple[str, bool]:
    last_start = max((i for i, e in enumerate(events) if isinstance(e, ev.RunStarted)), default=-1)
    for e in reversed(events[last_start + 1 :] if last_start >= 0 else events):
        if isinstance(e, ev.RunFinished):
            if e.reason == "stopped":
                return "stopped, search state saved (resumable)", True
            return f"finished ({e.reason})", True
        if isinstance(e, ev.RunFailed):
            return f"failed: {e.error}", True
    return "did not end: crashed, killed, or still running", False


def _phase_seconds(events: Sequence[ev.Event]) -> tuple[float, float]:
    """Wall time of the search and of the final phase, summed over run segments.

    Time between two consecutive events counts for the phase the run was in;
    the gap before a ``RunStarted`` (the run was down) counts for none.
    """
    search = final = 0.0
    in_final = False
    prev: float | None = None
    for e in events:
        ts = _finite(getattr(e, "ts", None))
        if isinstance(e, ev.RunStarted):
            prev = ts
            continue
        if ts is not None and prev is not None and ts >= prev:
            if in_final:
                final += ts - prev
            else:
                search += ts - prev
        if ts is not None:
            prev = ts
        if isinstance(e, ev.FinalStarted):
            in_final = True
    return search, final


def _max(values: Iterable[Any]) -> float | None:
    finite = [v for v in (_finite(x) for x in values) if v is not None]
    return max(finite) if finite else None


def summarise(events: Sequence[ev.Event]) -> RunSummary:
    """Fold a journal (in order) into a ``RunSummary``; unknown or odd events are ignored."""
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    first = starts[0] if starts else None
    profile = next((dict(s.profile) for s in reversed(starts) if getattr(s, "profile", None)), {})

    latest: dict[int, ev.CandidateFinished] = {}
    anytime: list[AnytimePoint] = []
    best = -math.inf
    seen_ok: set[int] = set()
    for e in events:
        if not isinstance(e, ev.CandidateFinished):
            continue
        latest[e.candidate_id] = e  # insertion order: the first time an id finished
        fit = _finite(e.fitness)
        if e.status == "ok" and fit is not None and e.candidate_id not in seen_ok:
            seen_ok.add(e.candidate_id)
            best = max(best, fit)
            anytime.append(AnytimePoint(int(e.trained or len(seen_ok)), fit, best, e.candidate_id))
    candidates = tuple(latest.values())

    generations: dict[int, ev.GenerationFinished] = {}
    for e in events:
        if isinstance(e, ev.GenerationFinished):
            generations[e.generation] = e

    counts = {s: 0 for s in STATUSES}
    for e in candidates:
        counts[e.status] = counts.get(e.status, 0) + 1
    spent = [getattr(e, "trained", 0) for e in events
             if isinstance(e, (ev.CandidateFinished, ev.GenerationFinished, ev.RunFinished))]

    final_started = [e for e in events if isinstance(e, ev.FinalStarted)]
    finalists = tuple(int(c) for c in final_started[-1].candidate_ids) if final_started else ()
    finals = _final_rows([e for e in events if isinstance(e, ev.FinalResult)], finalists)

    samples = [e for e in events if isinstance(e, ev.ResourceSample)]
    peak = _max(
        [getattr(e, "peak_memory_mb", None) for e in candidates]
        + [getattr(s, "gpu_mem_used_mb", None) for s in samples]
    )
    devices = tuple(dict.fromkeys(str(s.device) for s in starts if getattr(s, "device", "")))
    search_seconds, final_seconds = _phase_seconds(events)
    outcome, ended = _outcome(events)
    stamps = [t for t in (_finite(getattr(e, "ts", None)) for e in events) if t is not None]
    last_start = starts[-1] if starts else None
    return RunSummary(
        run_name=str(getattr(first, "run_name", "") or "?"),
        dataset=str(getattr(first, "dataset", "") or "?"),
        size=getattr(first, "size", None),
        fitness_metric=str(getattr(last_start, "fitness", "") or "fitness"),
        budget=getattr(last_start, "budget", None),
        population=getattr(last_start, "population", None),
        devices=devices,
        segments=len(starts),
        outcome=outcome,
        ended=ended,
        profile=profile,
        generations=tuple(generations[g] for g in sorted(generations)),
        jumps=tuple(e for e in events if isinstance(e, ev.Jump)),
        candidates=candidates,
        ranked=tuple(rank_candidates(candidates, _tie_break(profile))),
        anytime=tuple(anytime),
        counts=counts,
        trained=max([int(t) for t in spent if isinstance(t, int)] + [0]),
        search_seconds=search_seconds,
        final_seconds=final_seconds,
        peak_memory_mb=peak,
        gpu_readings=any(getattr(s, "gpu_mem_used_mb", None) is not None for s in samples),
        peak_rss_mb=_max(getattr(s, "rss_mb", None) for s in samples),
        finalists=finalists,
        finals=tuple(finals),
        first_ts=min(stamps) if stamps else None,
        last_ts=max(stamps) if stamps else None,
        events=len(events),
    )
