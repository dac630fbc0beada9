"""Events as one line of text each: what the log panel and the headless console print.

One chain from event to words, shared by the dashboard (``tui.state``) and
the headless console (``nas3d_tui.console``). Pure: no Textual, no torch.
"""
from __future__ import annotations

from typing import Any, Callable

from engine import events as ev

from .fmt import duration, metric, si

__all__ = ["describe", "has_line"]


def describe(event: ev.Event) -> tuple[str, str] | None:
    """(level, text) of the log line for an event, or None for high-rate events."""
    for cls in type(event).__mro__:
        words = _WORDS.get(cls)
        if words is not None:
            return words(event)
    return None  # EpochFinished, ResourceSample: shown in panels, too frequent for the log


def has_line(event: ev.Event) -> bool:
    """Whether ``describe(event)`` gives a line (without building its text)."""
    return any(cls in _WORDS for cls in type(event).__mro__)


def _run_started(e: ev.RunStarted) -> tuple[str, str]:
    verb = "resumed" if e.resumed else "started"
    if e.run_kind == "train":
        return "info", (
            f"training {e.run_name} {verb}: one architecture over {e.budget} seed(s) on "
            f"{e.dataset} {e.size}³, {e.device}"
        )
    return "info", (
        f"run {e.run_name} {verb}: {e.dataset} {e.size}³ on {e.device}, "
        f"budget {e.budget}, population {e.population}, fitness {e.fitness}"
    )


def _candidate_started(e: ev.CandidateStarted) -> tuple[str, str]:
    if e.phase == "seed":
        return "info", f"seed {e.candidate_id} started: {e.genotype.get('compact', e.key[:12])}"
    cost = f" · {si(e.params)} params" if e.params else ""
    return "info", (
        f"#{e.candidate_id} started: gen {e.generation} {e.phase} · "
        f"{e.genotype.get('compact', e.key[:12])}{cost} · {e.worker}"
    )


def _candidate_finished(e: ev.CandidateFinished) -> tuple[str, str]:
    r = e.record  # (its fields directly: the event forwards each one, at a cost a replay of thousands feels)
    if r.phase == "seed" and r.status == "ok":
        return "info", (
            f"seed {r.candidate_id} trained: best val ACC {metric(r.fitness)} · {r.epochs} ep in "
            f"{duration(r.seconds)} · {r.trained}/{e.budget} seeds"
        )
    cid = f"#{r.candidate_id}"
    if r.status == "ok":
        return "info", (
            f"{cid} ok: fitness {metric(r.fitness)} · val AUC {metric(r.val_auc)} · "
            f"{r.epochs} ep in {duration(r.seconds)} · {r.trained}/{e.budget} trained"
        )
    if r.status == "pruned":
        why = r.error or f"pruned at epoch {r.pruned_at}"
        return "info", f"{cid} {why} · {r.trained}/{e.budget} trained"
    if r.status == "infeasible":
        reason = r.error or r.genotype.get("reason") or "no valid cell"
        return "info", f"{cid} infeasible: {reason}"
    if r.status == "duplicate":
        of = f" of #{r.duplicate_of}" if r.duplicate_of is not None else ""
        return "info", f"{cid} duplicate{of}: fitness {metric(r.fitness)} reused"
    if r.status == "oom":
        return "warning", f"{cid} out of memory{': ' + r.error if r.error else ''}"
    return "error", f"{cid} {r.status}{': ' + r.error if r.error else ''}"


def _generation_finished(e: ev.GenerationFinished) -> tuple[str, str]:
    return "info", (
        f"generation {e.generation}: best {metric(e.best)}, mean {metric(e.mean)}, "
        f"worst {metric(e.worst)} ({e.trained}/{e.budget} trained)"
    )


def _training_resumed(e: ev.TrainingResumed) -> tuple[str, str]:
    what = f"final #{e.candidate_id} seed {e.seed}" if e.phase == "final" else f"#{e.candidate_id}"
    return "info", f"{what} resumed at epoch {e.epoch}/{e.max_epochs} from its epoch checkpoint"


def _final_started(e: ev.FinalStarted) -> tuple[str, str]:
    ids = ", ".join(f"#{c}" for c in e.candidate_ids)
    return "info", f"final phase: retraining {ids} for {e.epochs} epochs, seeds {list(e.seeds)}"


def _final_result(e: ev.FinalResult) -> tuple[str, str]:
    return "info", (
        f"final #{e.candidate_id} seed {e.seed}: test AUC {metric(e.test_auc)}, "
        f"test ACC {metric(e.test_acc)}"
    )


def _run_finished(e: ev.RunFinished) -> tuple[str, str]:
    best = ""
    if e.best_candidate_id is not None:
        best = f"; best #{e.best_candidate_id} ({metric(e.best_fitness)})"
    return "info", f"run finished ({e.reason}): {e.trained} trained in {duration(e.seconds)}{best}"


def _log(e: ev.Log) -> tuple[str, str]:
    return (e.level if e.level in ("info", "warning", "error") else "info"), e.message


# The words for each kind of event that gets a log line; any other kind (EpochFinished,
# ResourceSample: shown in panels, too frequent for the log) gets none.
_WORDS: dict[type, Callable[[Any], tuple[str, str]]] = {
    ev.RunStarted: _run_started,
    ev.CandidateStarted: _candidate_started,
    ev.CandidateFinished: _candidate_finished,
    ev.GenerationFinished: _generation_finished,
    ev.Jump: lambda e: ("info", f"generation jump after gen {e.generation}: {e.proposed} opposites proposed"),
    ev.WarmupStarted: lambda e: ("info", f"warming up {e.device} (CUDA context, kernel loading)"),
    ev.WarmupFinished: lambda e: ("info", f"{e.device} ready after {duration(e.seconds)} of warm-up"),
    ev.TrainingResumed: _training_resumed,
    ev.Paused: lambda e: ("warning", "paused"),
    ev.Resumed: lambda e: ("info", "resumed"),
    ev.Stopping: lambda e: ("warning", f"stop requested ({e.source}): saving the search state"),
    ev.StateSaved: lambda e: ("info", f"search state saved: {e.trained} trained, generation {e.generation}"),
    ev.FinalStarted: _final_started,
    ev.FinalResult: _final_result,
    ev.RunFinished: _run_finished,
    ev.RunFailed: lambda e: ("error", f"run failed: {e.error}"),
    ev.Log: _log,
}
