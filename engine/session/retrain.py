"""Retraining one architecture over seeds: what ``nas3d-tui train`` runs (paper §3.2 protocol).

A ``Retrain`` is the life of a run directory (``RunLifecycle``) whose work is
one architecture retrained from scratch on the full training set once per
seed, each scored on the test split and left as a model bundle -- exactly as
the final phase retrains a finalist, one seed after the other with all of
torch's threads (the final phase with ``final.parallel = 1``; on the CPU its
default runs two seeds side by side with half the threads each, which sums
the convolutions in another order). Its run directory looks like a search's,
so the dashboard, ``attach``, ``export``, ``report`` and ``resume`` work on it:
each seed is a leaderboard row (candidate id = the seed) whose fitness is the
best validation ACC and whose test metrics come from its ``FinalResult``.

Files besides the usual: ``train.json`` (the architecture and the seeds), and
per seed ``final/seed<k>/`` (bundle, ``result.json``, and ``training.ckpt``
while it trains: a crash loses at most one epoch).

A seed is done when its ``result.json`` is written, after its bundle and its
record (``candidates/NNNNNN.json``); a resume announces again the
``candidate_finished`` and ``final_result`` of a done seed that the journal
lacks (a crash or a full disk cut them off), and retrains a seed whose
``result.json`` has no record (written by an older version, which wrote the
record last).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..bus import EventBus
from ..journal import read_journal
from ..atomic import atomic_write_json
from ..control import Control
from ..errors import CorruptFileError, SessionError, StopRequested
from ..leaderboard import mean_std
from ..profile import Profile, load_profile
from ..records import CandidateRecord
from ..jsonfile import read_json
from ..rundir import RunDir
from ..datafile import min_size_for_stacks
from ..space import MAX_FILTERS, MAX_MODULES, MAX_STACKS, Genotype
from .final import final_config, retrain
from .lifecycle import RunLifecycle, SessionOutcome
from .measure import count_complexity
from .setup import load_data, resolve_device

if TYPE_CHECKING:
    from ..data import Dataset
    from ..training import CandidateResult, FinalOutcome

__all__ = ["Retrain", "RetrainSummary", "PLAN_FORMAT", "is_train_run"]

PLAN_FORMAT = "nas3d-tui/train/1"


def is_train_run(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` holds a ``nas3d-tui train`` run (rather than a search)."""
    try:  # anything by that name (a file, a directory, a broken link): a train run, checked when read
        return os.path.lexists(RunDir(run_dir).train_plan_path)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class RetrainSummary:
    """Test metrics over seeds (what ``nas3d-tui train --format json`` prints)."""

    results: tuple[ev.FinalResult, ...] = ()  # FinalResult per seed, in seed order
    params: int = 0
    flops: int = 0
    best_epochs: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        auc, auc_std = mean_std([r.test_auc for r in self.results])
        acc, acc_std = mean_std([r.test_acc for r in self.results])
        return {
            "seeds": [
                {"seed": r.seed, "test_auc": r.test_auc, "test_acc": r.test_acc, "epochs": r.epochs,
                 "val_acc": r.val_acc, "weights": r.weights_path}
                for r in self.results
            ],
            "mean": {"test_auc": auc, "test_acc": acc},
            "std": {"test_auc": auc_std, "test_acc": acc_std},
            "params": self.params,
            "flops": self.flops,
        }


@dataclass
class _Prepared:
    device: str
    data: Dataset
    done: dict[int, ev.FinalResult]  # seed -> FinalResult of a retraining that already finished
    records: dict[int, CandidateRecord] = field(default_factory=dict)  # seed -> its record
    announced: set[int] = field(default_factory=set)  # seeds whose candidate_finished the journal holds
    finals_announced: set[int] = field(default_factory=set)  # seeds whose final_result the journal holds


def seed_result(outcome: FinalOutcome) -> CandidateResult:
    """A seed's retraining as a training result its record is made from (fitness: its best validation ACC)."""
    from ..training import CandidateResult

    best = outcome.history[outcome.best_epoch - 1] if outcome.history else None
    return CandidateResult(
        status="ok", fitness=outcome.val_acc, val_acc=outcome.val_acc, val_auc=best.val_auc if best is not None else None,
        epochs=outcome.epochs, seconds=outcome.seconds, peak_memory_mb=outcome.peak_memory_mb, error=None,
        history=outcome.history,
    )


class Retrain(RunLifecycle[_Prepared]):
    """``genotype`` retrained for every seed of ``profile.final.seeds`` (``final.epochs`` each).

    Args:
        profile: the resolved profile (data, training, ``final.epochs`` and ``final.seeds``).
        genotype: the architecture.
        run_dir: where the run lives.
        source: where the architecture came from (shown and saved), e.g. ``RUN_DIR:ID``.
        bus, control, resume: as for a search.
    """

    def __init__(
        self,
        profile: Profile,
        genotype: Genotype,
        run_dir: str | os.PathLike[str],
        source: str = "",
        bus: EventBus | None = None,
        control: Control | None = None,
        resume: bool = False,
    ) -> None:
        super().__init__(profile, run_dir, bus=bus, control=control, resume=resume)
        if not genotype.feasible:
            raise SessionError(f"cannot train an infeasible architecture: {genotype.reason}")
        for name, value, most in (("stacks", genotype.n_stacks, MAX_STACKS), ("modules", genotype.n_modules, MAX_MODULES),
                                  ("filters", genotype.n_filters, MAX_FILTERS)):
            if value > most:
                raise SessionError(f"the architecture has {value} {name}; at most {most} are supported")
        self.genotype = genotype
        self.source = source
        self.summary = RetrainSummary()
        self._current: float | None = None

    @classmethod
    def resume_from(
        cls, run_dir: str | os.PathLike[str], bus: EventBus | None = None, control: Control | None = None
    ) -> "Retrain":
        """Continue the ``train`` run in ``run_dir``.

        Raises:
            engine.errors.RunDirError / CorruptFileError: not such a run, or its plan is corrupt.
        """
        rd = RunDir(run_dir)
        rd.check_is_run()
        plan = rd.train_plan_path
        profile = load_profile(rd.profile_path)
        data = read_json(plan)  # unreadable or not JSON: one line naming it
        try:
            if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
                raise ValueError(f"format is not {PLAN_FORMAT!r}")
            genotype = Genotype.from_dict(data["genotype"])
            source = data.get("source", "")
            if not isinstance(source, str):
                raise ValueError("source is not a string")
            if "seeds" in data and data["seeds"] != list(profile.final.seeds):
                raise ValueError(f"seeds = {data['seeds']!r:.60} but {rd.profile_path.name} says "
                                 f"final.seeds = {list(profile.final.seeds)}")
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"{plan} is corrupt ({exc}); cannot resume") from None
        return cls(profile, genotype, rd.path, source=source, bus=bus, control=control, resume=True)

    # ------------------------------------------------------------------ lifecycle hooks
    def _prepare(self) -> _Prepared:
        rd = self.run_dir
        done: dict[int, ev.FinalResult] = {}
        records: dict[int, CandidateRecord] = {}
        announced: set[int] = set()
        finals_announced: set[int] = set()
        if self.resumed:
            ended = False  # the journal tells the run's end (a full disk can cut off its last lines)
            for logged in read_journal(rd.journal_path, strict=True):
                if isinstance(logged, ev.CandidateFinished):
                    announced.add(logged.candidate_id)
                elif isinstance(logged, ev.FinalResult):
                    finals_announced.add(logged.seed)
                elif isinstance(logged, (ev.RunStarted, ev.RunFinished)):
                    ended = isinstance(logged, ev.RunFinished)
            rd.check_epoch_checkpoints()
            # Every file of the folder is checked as a search's resume checks it, used or not:
            # a damaged record or checkpoint is one line here, not something a later command trips on.
            records = rd.read_records()
            rd.read_search_state()
            for path, saved in rd.final_results():
                ev.final_result_from_dict(saved, str(path))
            for seed in self.profile.final.seeds:
                path = rd.retrain_result_path(seed)
                if not os.path.lexists(path):
                    continue
                event = ev.final_result_from_dict(read_json(path), str(path))
                if event.seed != seed:
                    raise CorruptFileError(f"{path} is corrupt: not the result of seed {seed}; cannot resume")
                if seed in records:  # (without its record, written by an older version: retrained)
                    done[seed] = event
            if len(done) == len(self.profile.final.seeds) and ended and set(done) <= announced & finals_announced:
                raise SessionError(f"the run in {rd.path} has already finished; export it with `nas3d-tui export {rd.path}`")
        elif rd.holds_run():
            raise SessionError(f"{rd.path} already holds a run; use `nas3d-tui resume {rd.path}`")
        device = resolve_device(self.profile.run.device)
        data = load_data(self.profile, device)
        shape = tuple(int(s) for s in data.train.x.shape[2:])
        need = min_size_for_stacks(self.genotype.n_stacks)
        if min(shape) < need:
            raise SessionError(
                f"the architecture has {self.genotype.n_stacks} stacks: every side of the volumes must be at least "
                f"{need} voxels, these are {'x'.join(map(str, shape))}"
            )
        return _Prepared(device, data, done, records, announced, finals_announced)

    def _write_new_run(self, prepared: _Prepared) -> None:
        super()._write_new_run(prepared)
        atomic_write_json(
            self.run_dir.train_plan_path,
            {"format": PLAN_FORMAT, "genotype": self.genotype.to_dict(), "seeds": list(self.profile.final.seeds),
             "source": self.source},
        )

    def _announce(self, prepared: _Prepared) -> None:
        p = self.profile
        self.device = prepared.device
        self._run_started(prepared.data, len(p.final.seeds), 1, "val_acc", "train")

    def _seed_dir(self, seed: int) -> Path:
        return self.run_dir.retrain_seed_dir(seed)

    def _run_phases(self, prepared: _Prepared) -> SessionOutcome:
        p = self.profile
        data = prepared.data
        config = final_config(p)
        g = self.genotype
        key = g.key or ""  # (a feasible architecture always has one)
        ctx = self.context()
        params, flops = count_complexity(g, data.channels, data.num_classes, data.shape if len(set(data.shape)) > 1 else data.shape[0])
        results = dict(prepared.done)
        try:
            self.publish(ev.FinalStarted(candidate_ids=list(p.final.seeds), epochs=p.final.epochs, seeds=list(p.final.seeds)))
            self._announce_missing(prepared)
            for n, seed in enumerate(p.final.seeds, 1):
                if seed in results:
                    continue
                self.control.at_batch_boundary()
                self.publish(
                    ev.CandidateStarted(candidate_id=seed, generation=0, phase="seed", key=key, genotype=g.to_dict(),
                                        params=params, flops=flops, worker=f"local:{self.device}")
                )
                made: list[CandidateRecord] = []

                def write_record(event: ev.FinalResult, outcome: FinalOutcome) -> None:
                    # before result.json: a seed marked done always has its record
                    record = CandidateRecord.proposed(seed, 0, "seed", g).trained_with(
                        seed_result(outcome), params=params, flops=flops, worker=f"local:{self.device}"
                    ).replace(trained=len(results) + 1)
                    self.run_dir.write_record(record)
                    made.append(record)

                event, outcome = retrain(
                    ctx, g, data, config, seed, self._seed_dir(seed), candidate_id=seed, key=key, params=params,
                    flops=flops, before_result=write_record,
                )
                self._current = outcome.peak_memory_mb
                self.publish(ev.CandidateFinished(record=made[0].replace(history=[]), budget=len(p.final.seeds)))
                results[seed] = event
                self.publish(event)
            self.summary = RetrainSummary(tuple(results[s] for s in p.final.seeds), params, flops)
            self.publish(ev.RunFinished(reason="seeds", trained=len(results), seconds=self._elapsed()))
            return SessionOutcome("finished", "seeds", self.run_dir.path)
        except StopRequested:
            self.summary = RetrainSummary(tuple(results[s] for s in p.final.seeds if s in results), params, flops)
            self.publish(ev.RunFinished(reason="stopped", trained=len(results), seconds=self._elapsed()))
            return SessionOutcome("stopped", "stopped", self.run_dir.path)
        except Exception as exc:  # noqa: BLE001 - finished seeds are kept
            return self._failed(exc)

    def _announce_missing(self, prepared: _Prepared) -> None:
        """Publish again, in seed order, the ``candidate_finished`` and ``final_result`` of every done seed
        whose event the journal lacks (a crash or a full disk between its files and its events)."""
        budget = len(self.profile.final.seeds)
        for seed in self.profile.final.seeds:
            if seed not in prepared.done:
                continue
            if seed not in prepared.announced:
                self.publish(ev.CandidateFinished(record=prepared.records[seed].replace(history=[]), budget=budget))
            if seed not in prepared.finals_announced:
                self.publish(prepared.done[seed])

    def _current_peak(self) -> float | None:
        return self._current
