"""The search session: the one place that combines strategy, evaluation, persistence and events.

A ``Session`` is the life of a search run directory (``RunLifecycle``):
*prepare* checks the device, the executor, the data and, on resume, every
file the run trusts; then the *search* (``engine.session.search``) and the
*final phase* (``engine.session.final``).

Resume guarantee: the search state holds the strategy's state *before* each
``ask``; candidate ids are proposal numbers; every finished candidate has an
atomic record. A resumed run re-asks the same batch, answers what finished
from its records and trains only what was in flight -- proposing exactly the
vectors an uninterrupted run would.

A record is written before its ``candidate_finished`` event, a final's
``result.json`` before its ``final_result``: a crash or a full disk between
the two leaves finished work the journal does not announce. A resumed run
announces it again (in id order, before the search goes on), so the
journal -- and the leaderboard, export, dashboard and report built from it --
equals an uninterrupted run's. A candidate with a record is never trained
again, whatever search state was saved, so nothing is announced twice.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import events as ev
from ..bus import EventBus
from ..journal import read_journal
from ..control import Control
from ..errors import CorruptFileError, SessionError, StopRequested
from ..fraction_check import check_search_fraction
from ..profile import Profile, load_profile
from ..records import CandidateRecord, best_record
from ..rundir import RunDir
from ..search_state import SearchState
from ..strategy import Strategy
from .failures import summarize_failures
from .final import FinalPhase
from .lifecycle import RunLifecycle, SessionOutcome
from .search import Search, shown_budget
from .setup import (
    check_record_matches,
    check_strategy_matches,
    load_data,
    make_strategy,
    new_run_dir,
    resolve_device,
    restore_strategy,
    space_of,
)

if TYPE_CHECKING:
    from ..data import Dataset

__all__ = ["Session", "SessionOutcome"]


@dataclass
class _Prepared:
    """Everything checked before anything is written."""

    device: str
    data: Dataset
    search_data: Dataset
    search_state: SearchState | None = None
    records: dict[int, CandidateRecord] = field(default_factory=dict)
    finals_done: set[tuple[int, int]] = field(default_factory=set)
    strategy: Strategy | None = None
    announced: set[int] = field(default_factory=set)  # candidates whose candidate_finished the journal holds
    finals_announced: set[tuple[int, int]] = field(default_factory=set)  # (candidate, seed) of its final_results


class Session(RunLifecycle[_Prepared]):
    """One search run bound to a run directory (see ``RunLifecycle`` for its life).

    Args:
        profile: the resolved profile.
        run_dir: where the run lives (created once the run can start).
        bus: the event bus (a new one when None).
        control: pause / stop flags (a new one when None); it also obeys
            ``RUN_DIR/control.json`` written by an attached dashboard.
        resume: continue from the directory's search state.
    """

    def __init__(
        self,
        profile: Profile,
        run_dir: str | os.PathLike[str],
        bus: EventBus | None = None,
        control: Control | None = None,
        resume: bool = False,
    ) -> None:
        super().__init__(profile, run_dir, bus=bus, control=control, resume=resume)
        self.space = space_of(profile)
        self.records: dict[int, CandidateRecord] = {}
        self._search: Search | None = None
        self._strategy: Strategy | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        profile: Profile,
        run_dir: str | os.PathLike[str] | None = None,
        bus: EventBus | None = None,
        control: Control | None = None,
    ) -> "Session":
        """A new run (a fresh run directory unless ``run_dir`` is given)."""
        return cls(profile, run_dir or new_run_dir(profile), bus=bus, control=control)

    @classmethod
    def resume_from(
        cls,
        run_dir: str | os.PathLike[str],
        bus: EventBus | None = None,
        control: Control | None = None,
    ) -> "Session":
        """Continue the run in ``run_dir`` with its saved, resolved profile.

        Raises:
            engine.errors.RunDirError: no such run directory, or not a run directory.
            engine.profile.ProfileError: its profile no longer validates.
        """
        rd = RunDir(run_dir)
        rd.check_is_run()
        return cls(load_profile(rd.profile_path), rd.path, bus=bus, control=control, resume=True)

    # ------------------------------------------------------------------ state
    @property
    def trained(self) -> int:
        """Candidates trained so far (budget spent)."""
        return self._search.trained if self._search is not None else 0

    def _current_peak(self) -> float | None:
        return self._search.current_peak if self._search is not None else None

    def _close(self) -> None:
        if self._search is not None:
            self._search.close()

    # ------------------------------------------------------------------ the run
    def _prepare(self) -> _Prepared:
        """Every check a run needs, in the order a user would fix them; writes nothing."""
        rd = self.run_dir
        p = self.profile
        saved = None
        records: dict[int, CandidateRecord] = {}
        finals: set[tuple[int, int]] = set()
        strategy: Strategy | None = None
        announced: set[int] = set()
        finals_announced: set[tuple[int, int]] = set()
        if self.resumed:
            saved = rd.read_search_state()
            records = rd.read_records()
            rd.check_epoch_checkpoints()
            finals = self._read_finals()
            ended = False  # the journal tells the run's end (a full disk can cut off its last lines)
            for event in read_journal(rd.journal_path, strict=True):
                if isinstance(event, ev.CandidateFinished):
                    announced.add(event.candidate_id)
                elif isinstance(event, ev.FinalResult):
                    finals_announced.add((event.candidate_id, event.seed))
                elif isinstance(event, (ev.RunStarted, ev.RunFinished)):
                    ended = isinstance(event, ev.RunFinished)
            if saved is None and records:
                raise SessionError(f"{rd.path} has candidate records but no search state; cannot resume safely")
            if saved is None and (finals or rd.has_final_outputs()):
                raise CorruptFileError(
                    f"{rd.path} has final results but no search state (a train run without its train.json?); cannot resume"
                )
            if saved is not None and saved.state == "finished" and ended and set(records) <= announced:
                raise SessionError(f"the run in {rd.path} has already finished; export it with `nas3d-tui export {rd.path}`")
            if saved is not None:
                strategy = restore_strategy(saved.strategy, self.space, str(rd.search_state_path))
                check_strategy_matches(saved.strategy, p, self.space, str(rd.search_state_path), rd.profile_path)
                self._check_consistent(saved, strategy, records)
        elif rd.holds_run():
            raise SessionError(f"{rd.path} already holds a run; use `nas3d-tui resume {rd.path}`")
        if strategy is None:  # before anything is written: an exhaustive strategy refuses a space too large
            strategy = make_strategy(p, self.space)
        device = resolve_device(p.run.device)
        if p.executor.kind != "local":
            from ..executors import check_executor

            check_executor(p.executor, p)  # e.g. Ray missing: one line before the run starts
        data = load_data(p, device)
        check_search_fraction(data, p.data.search_fraction, p.run.seed)  # before anything is written
        search_data = data.search_subset(p.data.search_fraction, p.run.seed)
        return _Prepared(device, data, search_data, saved, records, finals, strategy, announced, finals_announced)

    def _read_finals(self) -> set[tuple[int, int]]:
        done: set[tuple[int, int]] = set()
        for path, data in self.run_dir.final_results():
            event = ev.final_result_from_dict(data, str(path))
            folder = self.run_dir.finalist_dir(event.candidate_id, event.seed).name
            if path.parent.name != folder:
                raise CorruptFileError(
                    f"{path} is corrupt: it is the result of candidate {event.candidate_id}, seed {event.seed}, "
                    f"which belongs in {folder}/; cannot resume"
                )
            done.add((event.candidate_id, event.seed))
        return done

    def _check_consistent(self, saved: SearchState, strategy: Strategy, records: dict[int, CandidateRecord]) -> None:
        """The search state and the records must tell one story; a gap means files were lost or changed."""
        where = self.run_dir.search_state_path
        for cid, record in sorted(records.items()):
            check_record_matches(record, self.space, str(self.run_dir.candidate_path(cid)))
        trained = sum(1 for r in records.values() if r.spent_budget)
        if trained < saved.trained:
            raise CorruptFileError(
                f"{where} counts {saved.trained} trained candidates but {self.run_dir.candidates_dir} "
                f"holds {trained}; records are missing, cannot resume"
            )
        # The search state is saved before an ask: the batch asked next holds at most a population's worth.
        state = saved.strategy
        limit = state["next_id"] + (len(strategy.pending) if strategy.pending is not None else strategy.np)
        beyond = sorted(c for c in records if c >= limit)
        if beyond:
            raise CorruptFileError(
                f"{where} is corrupt: candidate {beyond[0]} has a record but was never proposed; cannot resume"
            )

    def _announce(self, prepared: _Prepared) -> None:
        p = self.profile
        self.device = prepared.device
        self.records = prepared.records
        if prepared.search_state is not None:
            self._elapsed_before = prepared.search_state.elapsed
        budget = shown_budget(p.search.budget, prepared.strategy)
        self._run_started(prepared.data, budget, p.search.population, p.search.fitness, "search")

    def _run_phases(self, prepared: _Prepared) -> SessionOutcome:
        rd = self.run_dir
        saved = prepared.search_state
        state = saved.state if saved is not None else "search"
        reason = saved.reason if saved is not None and saved.reason else "budget"
        self._strategy = prepared.strategy or make_strategy(self.profile, self.space)
        ctx = self.context()
        self._search = Search(ctx, self.space, self.records, prepared.search_data)
        try:
            self._search.announce_missing(prepared.announced)  # a resume: finished work the journal lacks
            if state == "search":
                reason = self._run_search(prepared.search_data)
                failures = summarize_failures(self.records.values())
                if failures.all_failed:  # nothing to rank: not "finished"; the last search state stays the resume point
                    message = failures.all_failed_message(rd.path)
                    self.publish(ev.RunFailed(error=message))
                    return SessionOutcome("failed", "all-failed", rd.path, error=message)
                self._save_search_state("final", reason)
            FinalPhase(ctx, self.records, prepared.data, prepared.finals_done, prepared.finals_announced).run()
            self._save_search_state("finished", reason)
            failures = summarize_failures(self.records.values())
            if failures.most_failed:  # said at the end, where a user looks for how it went
                self.publish(ev.Log(message=failures.most_failed_message(rd.path), level="warning"))
            self._finished(reason)
            return SessionOutcome("finished", reason, rd.path)
        except StopRequested:  # the search state saved before the current batch stays the resume point
            self._finished("stopped")
            return SessionOutcome("stopped", "stopped", rd.path)
        except Exception as exc:  # an engine failure: finished work is on disk; say so and stop
            return self._failed(exc)

    def _run_search(self, search_data: Dataset) -> str:
        from ..executors import TrainSpec, make_evaluator

        p = self.profile
        search, strategy = self._search, self._strategy
        assert search is not None and strategy is not None, "_run_phases makes both before the search"
        # An exhaustive run is a tabular benchmark's source: each cell's best epoch is also scored on
        # the test split (recorded only; nothing the search decides reads it).
        spec = TrainSpec(p.training, p.search.fitness, score_test=p.search.strategy == "exhaustive")
        evaluator = make_evaluator(p.executor, p.run.device, search_data, spec, self.device, self.control)
        try:
            return search.run(strategy, evaluator, lambda: self._save_search_state("search"), self._elapsed)
        finally:
            evaluator.close()

    def _save_search_state(self, state: str, reason: str = "") -> None:
        strategy = self._strategy
        assert strategy is not None, "the search state is saved only while the run's strategy exists"
        path = self.run_dir.write_search_state(
            SearchState(
                state=state,
                reason=reason,
                strategy=strategy.state_dict(),
                trained=self.trained,
                elapsed=self._elapsed(),
                generation=strategy.generation,
                written=time.time(),
            )
        )
        self.publish(ev.StateSaved(path=str(path), trained=self.trained, generation=strategy.generation))

    def _finished(self, reason: str) -> None:
        best = best_record(self.records.values(), self.profile.search.tie_break)
        self.publish(
            ev.RunFinished(
                reason=reason,
                trained=self.trained,
                seconds=self._elapsed(),
                best_candidate_id=best.candidate_id if best else None,
                best_fitness=best.fitness if best else None,
            )
        )
