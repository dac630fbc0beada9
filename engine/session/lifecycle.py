"""The life of a run directory, whatever runs in it: prepare, start, run, end.

``RunLifecycle`` is what a search (``engine.session.runner.Session``) and a
retraining (``engine.session.retrain.Retrain``, ``nas3d-tui train``) share:

* *prepare* -- every check, in the order a user would fix them, with nothing
  written (a resume locks the directory first, without announcing itself, so
  no second driver changes files while they are checked);
* *start* -- create (or announce in) the directory, save the profile, open the
  journal, sample resources, warm the device up once;
* *run* -- the subclass's phases;
* *end* -- finished, stopped (the last search state stays the resume point) or
  failed (finished work kept, ``error.log`` written); the lock is released.

A fresh run that cannot start leaves no directory behind.

A full disk (or an exceeded quota) ends the run as failed, reason
``disk-full``, its error one line naming the file that could not be written.
Every file the run writes is atomic, and the journal is only ever cut short
at its end: a resume sets a torn last line aside before it appends
(``RunDir.cut_torn_journal``), then announces again what finished work the
journal lacks (``Search.announce_missing``, the final phase's and a train run's
``_announce_missing``), so nothing finished is lost.
"""
from __future__ import annotations

import os
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from .. import events as ev
from ..atomic import atomic_write_text
from ..bus import EventBus
from ..journal import DURABLE, JournalSink
from ..control import Control
from ..errors import RunDirError, is_disk_full, one_line, os_error_message
from ..profile import Profile
from ..rundir import RunDir
from ..vocab import Fitness, RunKind
from .context import RunContext

if TYPE_CHECKING:
    from ..data import Dataset
    from ..resources import ResourceSampler

__all__ = ["RunLifecycle", "SessionOutcome"]

Prepared = TypeVar("Prepared")  # what a run's ``_prepare`` checked and its phases use


@dataclass(frozen=True)
class SessionOutcome:
    """How a run ended: ``finished`` / ``stopped`` / ``failed``."""

    state: str
    reason: str
    run_dir: Path
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return {"finished": 0, "stopped": 130}.get(self.state, 1)


class RunLifecycle(ABC, Generic[Prepared]):
    """The common life of a run directory (see the module docstring).

    ``Prepared`` is the subclass's record of what ``_prepare`` checked.

    Args:
        profile: the resolved profile.
        run_dir: where the run lives (created once the run can start).
        bus: the event bus (a new one when None).
        control: pause / stop flags (a new one when None); it also obeys
            ``RUN_DIR/control.json`` written by an attached dashboard.
        resume: continue the run already in ``run_dir``.
    """

    def __init__(
        self,
        profile: Profile,
        run_dir: str | os.PathLike[str],
        bus: EventBus | None = None,
        control: Control | None = None,
        resume: bool = False,
    ) -> None:
        self.profile = profile
        self.run_dir = RunDir(run_dir)
        self.bus = bus or EventBus()
        self.control = control or Control()
        self.control.watch(self.run_dir.control_path)
        self.control.on_change = self._on_control
        self.resumed = resume
        self.device = "cpu"
        self._started = time.monotonic()
        self._elapsed_before = 0.0
        self._journal: JournalSink | None = None

    # ------------------------------------------------------------------ events
    def publish(self, event: ev.Event) -> None:
        """Publish ``event``; after one that announces finished work, raise if the journal lost a line.

        Raises:
            OSError: the journal could not be written (a full disk): the run must stop, not go on unrecorded.
        """
        self.bus.publish(event)
        journal = self._journal
        if journal is not None and event.kind in DURABLE:
            journal.check()

    def _on_control(self, what: str) -> None:
        if what == "paused":
            self.publish(ev.Paused())
        elif what == "resumed":
            self.publish(ev.Resumed())
        elif what == "stop":
            self.publish(ev.Stopping())

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def context(self) -> RunContext:
        """What the run's phases share: profile, run directory, ``publish``, control, device (once resolved)."""
        return RunContext(self.profile, self.run_dir, self.publish, self.control, self.device)

    # ------------------------------------------------------------------ the life
    def check(self) -> None:
        """Every check ``run`` makes before it writes anything (files, device, data); writes nothing.

        For a caller that starts the run elsewhere (``serve`` starts it in a
        background process) and must not create a log in a run that cannot start.

        Raises:
            engine.errors.UserError: as ``run``.
        """
        rd = self.run_dir
        if not self.resumed and os.path.lexists(rd.path) and not rd.path.is_dir():
            raise RunDirError(f"{rd.path} is a file, not a run directory")
        locking = self.resumed and os.path.lexists(rd.lock_path)  # no lock file: nobody drives it
        if locking:
            rd.acquire(announce=False)  # a run driven by another process is refused here too
        try:
            self._prepare()
        finally:
            if locking:
                rd.release()

    def run(self) -> SessionOutcome:
        """Run (or continue) until finished, stopped or failed; blocking.

        Problems found before the run starts raise instead, and then nothing
        was written (a fresh run leaves no directory behind).

        Raises:
            engine.errors.UserError (SessionError, RunDirError, CorruptFileError,
                DataError, ProfileError): bad input (the CLI prints the line, exits 2).
        """
        rd = self.run_dir
        fresh_dir = not self.resumed and not rd.path.exists()
        torn = None
        if self.resumed:
            rd.acquire(announce=False)  # no second driver while the files are checked
        try:
            prepared = self._prepare()
            if not self.resumed:
                rd.create()
                rd.acquire()
            else:
                rd.announce()
                torn = rd.cut_torn_journal()  # appended after, a torn last line would hide the next event
            journal = JournalSink(rd.journal_path)
        except BaseException:
            # Only a directory this process made, and that no other process drives: two
            # `run --run-dir same` started together must not delete each other's run.
            mine = fresh_dir and rd.created_here and not rd.lock_refused
            rd.release()
            if mine and rd.path.exists():
                rd.discard()  # nothing ran: leave no run directory that looks resumable
            raise
        self.bus.subscribe(journal)
        self._journal = journal
        sampler = None
        outcome: SessionOutcome | None = None
        lost: OSError | None = None
        try:
            if not self.resumed:
                self._write_new_run(prepared)
            self._announce(prepared)
            if torn is not None:
                self.publish(ev.Log(message=f"the journal's last line was torn (a crash or a full disk); "
                                            f"set aside in {torn.name}", level="warning"))
            sampler = self._sample_resources()
            self._warm_up()
            outcome = self._run_phases(prepared)
        except OSError:
            if journal.error is None:
                raise
            # the journal refused a line: the run ends here, said below
        finally:
            if sampler is not None:
                sampler.stop()
            self._close()
            self.bus.unsubscribe(journal)
            self._journal = None
            try:
                journal.close()
            except OSError as exc:
                lost = exc
            rd.release()
        if lost is not None and not (outcome is not None and outcome.reason == "disk-full"):
            if not is_disk_full(lost):
                raise lost
            outcome = SessionOutcome("failed", "disk-full", rd.path, error=os_error_message(lost))
        assert outcome is not None, "the phases return an outcome or raise"
        return outcome

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _prepare(self) -> Prepared:
        """Every check; writes nothing; returns what the run needs."""

    def _write_new_run(self, prepared: Prepared) -> None:
        """A fresh run's first files (the resolved profile)."""
        self.profile.save(self.run_dir.profile_path)

    @abstractmethod
    def _announce(self, prepared: Prepared) -> None:
        """Publish ``RunStarted``."""

    @abstractmethod
    def _run_phases(self, prepared: Prepared) -> SessionOutcome:
        """The run itself; returns how it ended."""

    def _current_peak(self) -> float | None:
        """Peak memory of what trains now, for the resource samples."""
        return None

    def _close(self) -> None:
        """Free what the phases held (threads, pools)."""

    # ------------------------------------------------------------------ shared steps
    def _run_started(self, data: Dataset, budget: int, population: int, fitness: Fitness, run_kind: RunKind) -> None:
        """Publish ``RunStarted`` for this run on ``data``."""
        p = self.profile
        self.publish(
            ev.RunStarted(
                run_name=p.run.name,
                run_dir=str(self.run_dir.path),
                dataset=data.flag,
                size=data.size,
                device=self.device,
                budget=budget,
                population=population,
                num_classes=data.num_classes,
                task=data.task,
                fitness=fitness,
                resumed=self.resumed,
                pid=os.getpid(),
                profile=p.to_dict(),
                run_kind=run_kind,
            )
        )

    def _sample_resources(self) -> ResourceSampler:
        from ..resources import ResourceSampler

        return ResourceSampler(self.publish, self.device, peak_fn=self._current_peak).start()

    def _warm_up(self) -> None:
        """CUDA context and kernel loading once, before the first training (a no-op on the CPU)."""
        if not self.device.startswith("cuda"):
            return
        from ..training import warm_up

        self.publish(ev.WarmupStarted(device=self.device))
        seconds = warm_up(self.device)
        self.publish(ev.WarmupFinished(device=self.device, seconds=seconds))

    def _failed(self, exc: BaseException) -> SessionOutcome:
        """An engine failure: finished work is on disk; say so, keep the traceback, stop.

        A full disk or quota (``ENOSPC``, ``EDQUOT``) is reason ``disk-full``,
        its error one line naming the file that could not be written.
        """
        full = isinstance(exc, OSError) and is_disk_full(exc)
        message = os_error_message(exc) if isinstance(exc, OSError) and full else one_line(exc)
        self.bus.publish(ev.RunFailed(error=message))  # (not ``publish``: a journal that failed is said here)
        try:
            atomic_write_text(self.run_dir.error_log_path, traceback.format_exc())
        except OSError:
            pass
        return SessionOutcome("failed", "disk-full" if full else "error", self.run_dir.path, error=message)
