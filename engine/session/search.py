"""The search phase: ask a batch, triage it, train what is new, record every result, tell the strategy.

This module owns the rules of a search step (SPEC §3 and §7): infeasible
candidates are recorded and never trained; a candidate whose architecture
key was already trained reuses that result (a duplicate) and costs nothing;
only trained candidates spend the budget; every result is made durable (its
record file) before it is announced (its event) and before the strategy is
told. Training itself is the executor's business.

Resume: a candidate that has a record is answered from it, so a resumed
search re-asks the same batch and trains only what was in flight; a record
whose event the journal lacks is announced again first (``announce_missing``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping

from .. import events as ev
from ..executors import Callbacks, Evaluator, Job, candidate_seed
from ..pruning import PruneRule, median_rule, parent_rule
from ..records import TRAINED_STATUSES, CandidateRecord, EpochRecord, TrainingResult, best_record, selection_key
from ..space import SearchSpace
from ..strategy import NO_TIE_BREAK, Batch, Strategy
from .context import RunContext
from ..vocab import EpochPhase
from .measure import ComplexityCounter

if TYPE_CHECKING:
    from ..data import Dataset

__all__ = ["Search"]


@dataclass
class _Triage:
    """One batch sorted into what is answered now, what trains, and what waits for a twin in the batch."""

    results: list[CandidateRecord | None]
    jobs: list[Job] = field(default_factory=list)
    drafts: dict[int, tuple[int, CandidateRecord]] = field(default_factory=dict)  # candidate id -> (index in batch, draft record)
    first_of_key: dict[str | None, int] = field(default_factory=dict)  # key -> index of its first occurrence in the batch
    later_twins: list[tuple[int, CandidateRecord]] = field(default_factory=list)  # (index, draft) repeating an earlier key of the batch
    budget_hit: bool = False


class Search:
    """The search loop of one session.

    Args:
        ctx: the run's profile, directory (records are written there), events and control.
        space: its search space.
        records: candidates finished so far (a resumed run's records).
        data: the search subset (its shape and classes size the networks).
    """

    def __init__(self, ctx: RunContext, space: SearchSpace, records: dict[int, CandidateRecord], data: Dataset) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.space = space
        self.run_dir = ctx.run_dir
        self.records = records
        self.publish = ctx.publish
        self.control = ctx.control
        self.tie_break = ctx.tie_break
        self.archive: dict[str | None, CandidateRecord] = {}
        for cid in sorted(records):
            if records[cid].status in TRAINED_STATUSES:
                self.archive.setdefault(records[cid].key, records[cid])
        self.trained = sum(1 for r in records.values() if r.status in TRAINED_STATUSES)
        size = data.shape if len(set(data.shape)) > 1 else data.shape[0]
        self.counter = ComplexityCounter(data.channels, data.num_classes, size)
        self.current_peak: float | None = None
        self.budget = self.profile.search.budget  # what events announce: at most the space's cells for an exhaustive run

    def close(self) -> None:
        """Release what the search holds (nothing since complexity is counted in closed form)."""

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        strategy: Strategy,
        evaluator: Evaluator,
        save_search_state: Callable[[], None],
        elapsed: Callable[[], float],
    ) -> str:
        """Search until the budget or the time budget is spent; returns ``budget`` or ``time``.

        ``save_search_state`` is called before every ``ask`` (the resume point).

        Raises:
            engine.errors.StopRequested: a stop was asked for (at a batch boundary).
        """
        s = self.profile.search
        self.budget = shown_budget(s.budget, strategy)
        time_budget = s.time_budget_minutes * 60.0
        while True:
            if self.trained >= s.budget:
                return "budget"
            if getattr(strategy, "exhausted", False):  # the exhaustive strategy proposed every cell of the space
                return "space"
            if time_budget and elapsed() >= time_budget:
                return "time"
            save_search_state()
            self.control.at_batch_boundary()
            batch = strategy.ask()
            if batch.phase == "jump":
                self.publish(ev.Jump(generation=batch.generation, proposed=len(batch)))
            parents = list(strategy.population_ids) if batch.phase == "trial" else None
            results = self.evaluate(batch, evaluator, parents)
            if results is None:
                return "budget"
            secondary = None if self.tie_break == "none" else [self._secondary(r) for r in results]
            strategy.tell([r.told_fitness for r in results], secondary)
            if strategy.phase in ("trial", "random", "exhaustive"):  # a generation (or the init) is complete
                self._generation_finished(strategy, batch.generation)

    def _secondary(self, record: CandidateRecord) -> list[float]:
        """The tie-break values the strategy compares equal fitnesses by (finite; higher is better)."""
        if record.fitness is None or record.pruned:
            return [NO_TIE_BREAK, NO_TIE_BREAK]
        key = selection_key(record.fitness, record.val_auc, record.flops, self.tie_break)[1:]
        return [max(float(v), NO_TIE_BREAK) for v in key]

    def _generation_finished(self, strategy: Strategy, generation: int) -> None:
        fit = strategy.fitness
        members = [self.records[i] for i in strategy.population_ids if i in self.records]
        best = best_record(members, self.tie_break)
        self.publish(
            ev.GenerationFinished(
                generation=generation,
                best=float(fit.max()),
                mean=float(fit.mean()),
                worst=float(fit.min()),
                trained=self.trained,
                budget=self.budget,
                best_candidate_id=best.candidate_id if best else None,
            )
        )

    # ------------------------------------------------------------------ one batch
    def evaluate(self, batch: Batch, evaluator: Evaluator, parents: list[int] | None = None) -> list[CandidateRecord] | None:
        """Answer every candidate of ``batch``; None when the budget ran out inside it.

        ``parents``: for a DE trial batch, the candidate id of each vector's
        target parent (what the ``parent`` pruning rule compares against).
        """
        triage = self._triage(batch, parents)
        if triage.jobs:
            evaluator.evaluate(triage.jobs, self._callbacks(triage))
        for i, draft in triage.later_twins:
            original = triage.results[triage.first_of_key[draft.key]]
            if original is None:  # its twin was cut by the budget
                triage.budget_hit = True
                continue
            triage.results[i] = self.finish(draft.reuse(original))
        done = [r for r in triage.results if r is not None]
        if triage.budget_hit or len(done) < len(triage.results):
            return None
        return done

    def _triage(self, batch: Batch, parents: list[int] | None = None) -> _Triage:
        p = self.profile
        t = _Triage(results=[None] * len(batch))
        median: list[PruneRule | None] = []  # computed once per batch, when first needed
        for i, vector in enumerate(batch.vectors):
            cid = batch.first_id + i
            if cid in self.records:  # finished before a crash or stop
                t.results[i] = self.records[cid]
                continue
            g = self.space.decode(vector)
            draft = CandidateRecord.proposed(cid, batch.generation, batch.phase, g, vector)
            if not g.feasible:
                t.results[i] = self.finish(draft.replace(status="infeasible", error=g.reason))
            elif g.key in self.archive:
                t.results[i] = self.finish(draft.reuse(self.archive[g.key]))
            elif g.key in t.first_of_key:
                t.later_twins.append((i, draft))
            elif self.trained + len(t.jobs) >= p.search.budget:
                t.budget_hit = True
                break
            else:
                t.first_of_key[g.key] = i
                epoch_checkpoint = str(self.run_dir.epoch_checkpoint_path(cid))
                prune = self._prune_rule(batch, i, parents, median)
                t.jobs.append(
                    Job(candidate_id=cid, genotype=g, seed=candidate_seed(p.run.seed, cid), epoch_checkpoint=epoch_checkpoint, prune=prune)
                )
                t.drafts[cid] = (i, draft)
        return t

    def _prune_rule(
        self, batch: Batch, index: int, parents: list[int] | None, median: list[PruneRule | None]
    ) -> PruneRule | None:
        """The bars candidate ``index`` of ``batch`` must reach (``engine.pruning``), or None.

        Built only from records of earlier batches (ids below ``batch.first_id``),
        never from what is in flight: a resumed run, any executor and any number
        of workers get the same rules.
        """
        s, epochs = self.profile.search, self.profile.training.epochs
        if s.pruning == "none":
            return None
        if s.pruning == "parent" and parents is not None:
            parent = self.records.get(parents[index]) if index < len(parents) else None
            if parent is not None and parent.status == "duplicate" and parent.duplicate_of is not None:
                parent = self.records.get(parent.duplicate_of)  # its result, and so its learning curve
            if parent is None or parent.status != "ok":  # a parent that did not train (or was pruned) is beaten by anything
                return None
            return parent_rule(
                parent.history, s.fitness, epochs, warmup=s.pruning_warmup, margin=s.pruning_margin,
                parent_id=parent.candidate_id,
            )
        if not median:
            earlier = [
                (r.history, r.status == "ok")
                for cid, r in sorted(self.records.items())
                if cid < batch.first_id and r.status in ("ok", "pruned") and r.history
            ]
            median.append(median_rule(earlier, s.fitness, epochs, warmup=s.pruning_warmup, margin=s.pruning_margin))
        return median[0]

    def _callbacks(self, t: _Triage) -> Callbacks:
        max_epochs = self.profile.training.epochs

        def on_start(job: Job, worker: str) -> None:
            params, flops = self.counter.get(job.genotype)
            _, draft = t.drafts[job.candidate_id]
            self.current_peak = None
            self.publish(
                ev.CandidateStarted(
                    candidate_id=job.candidate_id,
                    generation=draft.generation,
                    phase=draft.phase,
                    key=draft.key or "",
                    genotype=draft.genotype,
                    vector=draft.vector,
                    params=params,
                    flops=flops,
                    worker=worker,
                )
            )

        def on_epoch(job: Job, r: EpochRecord) -> None:
            self.publish(epoch_event(job.candidate_id, r, max_epochs))

        def on_resume(job: Job, epoch: int) -> None:
            self.publish(ev.TrainingResumed(candidate_id=job.candidate_id, epoch=epoch, max_epochs=max_epochs))

        def on_notice(job: Job, text: str) -> None:
            self.publish(ev.Log(message=f"#{job.candidate_id}: {text}", level="warning"))

        def on_done(job: Job, result: TrainingResult, worker: str) -> None:
            i, draft = t.drafts[job.candidate_id]
            params, flops = self.counter.get(job.genotype)
            self.current_peak = result.peak_memory_mb
            t.results[i] = self.finish(draft.trained_with(result, params=params, flops=flops, worker=worker))

        return Callbacks(on_start, on_epoch, on_done, on_resume, on_notice)

    def announce_missing(self, announced: Collection[int]) -> list[int]:
        """Publish ``candidate_finished`` for every record whose event is not in ``announced``; returns their ids.

        A resume calls it before the search goes on: a crash or a full disk
        between a record and its event (``finish`` writes the record first)
        leaves finished work the journal lacks, and a record is answered
        from disk, never trained (or announced) again. Published as ``finish``
        published it, in id order.
        """
        missing = sorted(cid for cid in self.records if cid not in announced)
        for cid in missing:
            self.publish(ev.CandidateFinished(record=self.records[cid].replace(history=[]), budget=self.profile.search.budget))
        return missing

    def finish(self, record: CandidateRecord) -> CandidateRecord:
        """Make a candidate's result durable, then announce it; returns the stored record."""
        if record.status in TRAINED_STATUSES:
            self.trained += 1
            self.archive.setdefault(record.key, record)
        record = record.replace(trained=self.trained)
        self.run_dir.write_record(record)
        self.records[record.candidate_id] = record
        self.publish(ev.CandidateFinished(record=record.replace(history=[]), budget=self.budget))
        return record


def shown_budget(budget: int, strategy: object) -> int:
    """The budget events announce: ``search.budget``, or the space's cell count when an exhaustive run has fewer cells."""
    cells = getattr(strategy, "cells", None)
    return min(budget, cells) if isinstance(cells, int) else budget


def epoch_event(
    candidate_id: int, r: EpochRecord, max_epochs: int, phase: EpochPhase = "search", seed: int | None = None
) -> ev.EpochFinished:
    """The event for one epoch record of the trainer (``on_epoch``); ``seed``: a final retraining's."""
    return ev.EpochFinished(
        candidate_id=candidate_id,
        epoch=int(r.epoch),
        train_loss=float(r.train_loss),
        val_loss=float(r.val_loss),
        val_acc=float(r.val_acc),
        val_auc=float(r.val_auc),
        seconds=float(r.seconds),
        max_epochs=max_epochs,
        phase=phase,
        seed=seed,
    )
