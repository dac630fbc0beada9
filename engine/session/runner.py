"""The session: the one place that combines strategy, evaluation, persistence and events.

A ``Session`` drives one run directory through its life: *prepare* (every
check, nothing written: the device, the executor, the data, and on resume
every file the run trusts), *start* (create or lock the directory, save the
profile, open the journal, warm the device up), the *search*
(``engine.session.search``), the *final phase* (``engine.session.final``),
and the end (finished, stopped with a checkpoint, or failed with its finished
work kept).

Resume guarantee: the checkpoint holds the strategy's state *before* each
``ask``; candidate ids are proposal numbers; every finished candidate has an
atomic record. A resumed run re-asks the same batch, answers what finished
from its records and trains only what was in flight -- proposing exactly the
vectors an uninterrupted run would.
"""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import events as ev
from ..control import Control
from ..errors import CorruptFileError, SessionError, StopRequested, one_line
from ..profile import Profile, load_profile
from ..records import CandidateRecord, best_record
from ..rundir import RunDir, SearchCheckpoint
from .final import FinalPhase
from .search import Search
from .setup import load_data, make_strategy, new_run_dir, resolve_device, restore_strategy, space_of

__all__ = ["Session", "SessionOutcome"]


@dataclass(frozen=True)
class SessionOutcome:
    """How ``Session.run`` ended: ``finished`` / ``stopped`` / ``failed``."""

    state: str
    reason: str
    run_dir: Path
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return {"finished": 0, "stopped": 130}.get(self.state, 1)


@dataclass
class _Prepared:
    """Everything checked before anything is written."""

    device: str
    data: Any
    search_data: Any
    checkpoint: SearchCheckpoint | None = None
    records: dict[int, CandidateRecord] = field(default_factory=dict)
    finals_done: set = field(default_factory=set)
    strategy: Any = None


class Session:
    """One search run bound to a run directory.

    Args:
        profile: the resolved profile.
        run_dir: where the run lives (created once the run can start).
        bus: the event bus (a new one when None).
        control: pause / stop flags (a new one when None); it also obeys
            ``RUN_DIR/control.json`` written by an attached dashboard.
        resume: continue from the directory's checkpoint.
    """

    def __init__(
        self,
        profile: Profile,
        run_dir: str | os.PathLike[str],
        bus: ev.EventBus | None = None,
        control: Control | None = None,
        resume: bool = False,
    ) -> None:
        self.profile = profile
        self.run_dir = RunDir(run_dir)
        self.bus = bus or ev.EventBus()
        self.control = control or Control()
        self.control.watch(self.run_dir.path)
        self.control.on_change = self._on_control
        self.resumed = resume
        self.space = space_of(profile)
        self.device = "cpu"
        self.records: dict[int, CandidateRecord] = {}
        self._search: Search | None = None
        self._strategy: Any = None
        self._started = time.monotonic()
        self._elapsed_before = 0.0

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        profile: Profile,
        run_dir: str | os.PathLike[str] | None = None,
        bus: ev.EventBus | None = None,
        control: Control | None = None,
    ) -> "Session":
        """A new run (a fresh run directory unless ``run_dir`` is given)."""
        return cls(profile, run_dir or new_run_dir(profile), bus=bus, control=control)

    @classmethod
    def resume_from(
        cls,
        run_dir: str | os.PathLike[str],
        bus: ev.EventBus | None = None,
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

    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)

    def _on_control(self, what: str) -> None:
        if what == "paused":
            self.publish(ev.Paused())
        elif what == "resumed":
            self.publish(ev.Resumed())
        elif what == "stop":
            self.publish(ev.Stopping())

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    # ------------------------------------------------------------------ the run
    def run(self) -> SessionOutcome:
        """Run (or continue) the search and the final phase; blocking.

        Returns the outcome; problems found before the run starts raise instead,
        and then nothing was written (a fresh run leaves no directory behind).

        Raises:
            engine.errors.UserError (SessionError, RunDirError, CorruptFileError,
                DataError, ProfileError): bad input (the CLI prints the line, exits 2).
        """
        rd = self.run_dir
        fresh_dir = not self.resumed and not rd.path.exists()
        if self.resumed:
            rd.acquire(announce=False)  # no second driver while the files are checked
        try:
            prepared = self._prepare()
            if not self.resumed:
                rd.create()
                rd.acquire()
            else:
                rd.announce()
            journal = ev.JournalSink(rd.journal_path)
        except BaseException:
            rd.release()
            if fresh_dir and rd.path.exists():
                rd.discard()  # nothing ran: leave no run directory that looks resumable
            raise
        self.bus.subscribe(journal)
        sampler = None
        try:
            if not self.resumed:
                self.profile.save(rd.profile_path)
            self._announce(prepared)
            sampler = self._sample_resources()
            self._warm_up()
            return self._run_phases(prepared)
        finally:
            if sampler is not None:
                sampler.stop()
            if self._search is not None:
                self._search.close()
            self.bus.unsubscribe(journal)
            journal.close()
            rd.release()

    def _prepare(self) -> _Prepared:
        """Every check a run needs, in the order a user would fix them; writes nothing."""
        rd = self.run_dir
        p = self.profile
        checkpoint = None
        records: dict[int, CandidateRecord] = {}
        finals: set = set()
        strategy = None
        if self.resumed:
            checkpoint = rd.read_checkpoint()
            records = rd.read_records()
            finals = self._read_finals()
            ev.read_journal(rd.journal_path, strict=True)
            if checkpoint is None and records:
                raise SessionError(f"{rd.path} has candidate records but no checkpoint; cannot resume safely")
            if checkpoint is not None and checkpoint.state == "finished":
                raise SessionError(f"the run in {rd.path} has already finished; export it with `nas3d-tui export {rd.path}`")
            if checkpoint is not None:
                strategy = restore_strategy(checkpoint.strategy, self.space, str(rd.checkpoint_path))
                self._check_consistent(checkpoint, strategy, records)
        elif rd.holds_run():
            raise SessionError(f"{rd.path} already holds a run; use `nas3d-tui resume {rd.path}`")
        device = resolve_device(p.run.device)
        if p.executor.kind != "local":
            from ..executors import check_executor

            check_executor(p.executor)  # e.g. Ray missing: one line before the run starts
        data = load_data(p, device)
        search_data = data.search_subset(p.data.search_fraction, p.run.seed)
        return _Prepared(device, data, search_data, checkpoint, records, finals, strategy)

    def _read_finals(self) -> set[tuple[int, int]]:
        done = set()
        for path, data in self.run_dir.final_results():
            try:
                event = ev.event_from_dict(data)
            except ValueError as exc:
                raise CorruptFileError(f"{path} is corrupt: {exc}; cannot resume") from None
            if not isinstance(event, ev.FinalResult):
                raise CorruptFileError(f"{path} is corrupt: not a final result; cannot resume")
            done.add((event.candidate_id, event.seed))
        return done

    def _check_consistent(self, checkpoint: SearchCheckpoint, strategy: Any, records: dict[int, CandidateRecord]) -> None:
        """The checkpoint and the records must tell one story; a gap means files were lost or changed."""
        where = self.run_dir.checkpoint_path
        trained = sum(1 for r in records.values() if r.spent_budget)
        if trained < checkpoint.trained:
            raise CorruptFileError(
                f"{where} counts {checkpoint.trained} trained candidates but {self.run_dir.candidates_dir} "
                f"holds {trained}; records are missing, cannot resume"
            )
        pending = strategy.pending
        next_id = (pending.first_id + len(pending)) if pending is not None else None
        beyond = [c for c in records if next_id is not None and c >= next_id]
        if beyond:
            raise CorruptFileError(
                f"{where} is corrupt: candidate {beyond[0]} has a record but was never proposed; cannot resume"
            )

    def _announce(self, prepared: _Prepared) -> None:
        p = self.profile
        self.device = prepared.device
        self.records = prepared.records
        if prepared.checkpoint is not None:
            self._elapsed_before = prepared.checkpoint.elapsed
        self.publish(
            ev.RunStarted(
                run_name=p.run.name,
                run_dir=str(self.run_dir.path),
                dataset=prepared.data.flag,
                size=prepared.data.size,
                device=prepared.device,
                budget=p.search.budget,
                population=p.search.population,
                num_classes=prepared.data.num_classes,
                task=prepared.data.task,
                fitness=p.search.fitness,
                resumed=self.resumed,
                pid=os.getpid(),
                profile=p.to_dict(),
            )
        )

    def _sample_resources(self) -> Any:
        from ..resources import ResourceSampler

        return ResourceSampler(self.publish, self.device, peak_fn=self._current_peak).start()

    def _current_peak(self) -> float | None:
        return self._search.current_peak if self._search is not None else None

    def _warm_up(self) -> None:
        """CUDA context and kernel loading once, before the first candidate (a no-op on the CPU)."""
        if not self.device.startswith("cuda"):
            return
        from ..training import warm_up

        self.publish(ev.WarmupStarted(device=self.device))
        seconds = warm_up(self.device)
        self.publish(ev.WarmupFinished(device=self.device, seconds=seconds))

    def _run_phases(self, prepared: _Prepared) -> SessionOutcome:
        rd = self.run_dir
        checkpoint = prepared.checkpoint
        state = checkpoint.state if checkpoint is not None else "search"
        reason = checkpoint.reason if checkpoint is not None and checkpoint.reason else "budget"
        self._strategy = prepared.strategy or make_strategy(self.profile, self.space)
        self._search = Search(self.profile, self.space, rd, self.records, prepared.search_data, self.publish, self.control)
        try:
            if state == "search":
                reason = self._run_search(prepared.search_data)
                self._save_checkpoint("final", reason)
            FinalPhase(
                self.profile, rd, self.records, prepared.data, self.device, self.control, self.publish,
                prepared.finals_done,
            ).run()
            self._save_checkpoint("finished", reason)
            self._finished(reason)
            return SessionOutcome("finished", reason, rd.path)
        except StopRequested:  # the checkpoint written before the current batch stays the resume point
            self._finished("stopped")
            return SessionOutcome("stopped", "stopped", rd.path)
        except Exception as exc:  # an engine failure: finished work is on disk; say so and stop
            message = one_line(exc)
            self.publish(ev.RunFailed(error=message))
            try:
                (rd.path / "error.log").write_text(traceback.format_exc())
            except OSError:
                pass
            return SessionOutcome("failed", "error", rd.path, error=message)

    def _run_search(self, search_data: Any) -> str:
        from ..executors import TrainSpec, make_evaluator

        p = self.profile
        evaluator = make_evaluator(
            p.executor, p.run.device, search_data, TrainSpec(p.training, p.search.fitness), self.device, self.control
        )
        try:
            return self._search.run(self._strategy, evaluator, lambda: self._save_checkpoint("search"), self._elapsed)
        finally:
            evaluator.close()

    def _save_checkpoint(self, state: str, reason: str = "") -> None:
        strategy = self._strategy
        path = self.run_dir.write_checkpoint(
            SearchCheckpoint(
                state=state,
                reason=reason,
                strategy=strategy.state_dict(),
                trained=self.trained,
                elapsed=self._elapsed(),
                generation=strategy.generation,
                written=time.time(),
            )
        )
        self.publish(ev.CheckpointSaved(path=str(path), trained=self.trained, generation=strategy.generation))

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
