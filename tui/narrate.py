"""Events as one line of text each: what the log panel and the headless console print.

One chain from event to words, shared by the dashboard (``tui.state``) and
the headless console (``nas3d_tui.console``). Pure: no Textual, no torch.
"""
from __future__ import annotations

from engine import events as ev

from .fmt import duration, metric, si

__all__ = ["describe"]


def describe(event: ev.Event) -> tuple[str, str] | None:
    """(level, text) of the log line for an event, or None for high-rate events."""
    if isinstance(event, ev.RunStarted):
        verb = "resumed" if event.resumed else "started"
        if event.run_kind == "train":
            return "info", (
                f"training {event.run_name} {verb}: one architecture over {event.budget} seed(s) on "
                f"{event.dataset} {event.size}³, {event.device}"
            )
        return "info", (
            f"run {event.run_name} {verb}: {event.dataset} {event.size}³ on {event.device}, "
            f"budget {event.budget}, population {event.population}, fitness {event.fitness}"
        )
    if isinstance(event, ev.CandidateStarted) and event.phase == "seed":
        return "info", f"seed {event.candidate_id} started: {event.genotype.get('compact', event.key[:12])}"
    if isinstance(event, ev.CandidateStarted):
        cost = f" · {si(event.params)} params" if event.params else ""
        return "info", (
            f"#{event.candidate_id} started: gen {event.generation} {event.phase} · "
            f"{event.genotype.get('compact', event.key[:12])}{cost} · {event.worker}"
        )
    if isinstance(event, ev.CandidateFinished) and event.phase == "seed" and event.status == "ok":
        return "info", (
            f"seed {event.candidate_id} trained: best val ACC {metric(event.fitness)} · {event.epochs} ep in "
            f"{duration(event.seconds)} · {event.trained}/{event.budget} seeds"
        )
    if isinstance(event, ev.CandidateFinished):
        cid = f"#{event.candidate_id}"
        if event.status == "ok":
            return "info", (
                f"{cid} ok: fitness {metric(event.fitness)} · val AUC {metric(event.val_auc)} · "
                f"{event.epochs} ep in {duration(event.seconds)} · {event.trained}/{event.budget} trained"
            )
        if event.status == "pruned":
            why = event.error or f"pruned at epoch {event.pruned_at}"
            return "info", f"{cid} {why} · {event.trained}/{event.budget} trained"
        if event.status == "infeasible":
            reason = event.error or event.genotype.get("reason") or "no valid cell"
            return "info", f"{cid} infeasible: {reason}"
        if event.status == "duplicate":
            of = f" of #{event.duplicate_of}" if event.duplicate_of is not None else ""
            return "info", f"{cid} duplicate{of}: fitness {metric(event.fitness)} reused"
        if event.status == "oom":
            return "warning", f"{cid} out of memory{': ' + event.error if event.error else ''}"
        return "error", f"{cid} {event.status}{': ' + event.error if event.error else ''}"
    if isinstance(event, ev.GenerationFinished):
        return "info", (
            f"generation {event.generation}: best {metric(event.best)}, mean {metric(event.mean)}, "
            f"worst {metric(event.worst)} ({event.trained}/{event.budget} trained)"
        )
    if isinstance(event, ev.Jump):
        return "info", f"generation jump after gen {event.generation}: {event.proposed} opposites proposed"
    if isinstance(event, ev.WarmupStarted):
        return "info", f"warming up {event.device} (CUDA context, kernel loading)"
    if isinstance(event, ev.WarmupFinished):
        return "info", f"{event.device} ready after {duration(event.seconds)} of warm-up"
    if isinstance(event, ev.TrainingResumed):
        what = f"final #{event.candidate_id} seed {event.seed}" if event.phase == "final" else f"#{event.candidate_id}"
        return "info", f"{what} resumed at epoch {event.epoch}/{event.max_epochs} from its epoch checkpoint"
    if isinstance(event, ev.Paused):
        return "warning", "paused"
    if isinstance(event, ev.Resumed):
        return "info", "resumed"
    if isinstance(event, ev.Stopping):
        return "warning", f"stop requested ({event.source}): saving the search state"
    if isinstance(event, ev.StateSaved):
        return "info", f"search state saved: {event.trained} trained, generation {event.generation}"
    if isinstance(event, ev.FinalStarted):
        ids = ", ".join(f"#{c}" for c in event.candidate_ids)
        return "info", f"final phase: retraining {ids} for {event.epochs} epochs, seeds {list(event.seeds)}"
    if isinstance(event, ev.FinalResult):
        return "info", (
            f"final #{event.candidate_id} seed {event.seed}: test AUC {metric(event.test_auc)}, "
            f"test ACC {metric(event.test_acc)}"
        )
    if isinstance(event, ev.RunFinished):
        best = ""
        if event.best_candidate_id is not None:
            best = f"; best #{event.best_candidate_id} ({metric(event.best_fitness)})"
        return "info", f"run finished ({event.reason}): {event.trained} trained in {duration(event.seconds)}{best}"
    if isinstance(event, ev.RunFailed):
        return "error", f"run failed: {event.error}"
    if isinstance(event, ev.Log):
        return (event.level if event.level in ("info", "warning", "error") else "info"), event.message
    return None  # EpochFinished, ResourceSample: shown in panels, too frequent for the log
