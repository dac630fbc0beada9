"""The final phase: the top-k candidates retrained from scratch on the full training set, then tested.

This module owns which candidates are finalists (the leaderboard's top-k by
``engine.records.rank_key``), one retraining per finalist and seed (paper:
full training split, best-validation-ACC epoch kept, test AUC and ACC), the
model bundle each retraining leaves (``engine.bundle``), how the retrainings
share the machine (``side_by_side``: on the CPU two at a time, each with half
of torch's threads, by default), and resuming: a retraining with a
``result.json`` is done (its ``final_result`` is announced
again when the journal lacks it); one that was interrupted continues from its
per-epoch checkpoint, which stays until ``result.json`` is written (a full
disk while the bundle is written loses at most the last epoch).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

from .. import events as ev
from ..atomic import atomic_write_json
from ..errors import StopRequested
from ..bundle import Preprocessing, write_bundle
from ..profile import Profile, TrainingConfig
from ..records import CandidateRecord, ranked
from ..jsonfile import read_json
from ..rundir import epoch_checkpoint_in, result_path_in
from ..space import Genotype
from .context import RunContext
from .search import epoch_event

if TYPE_CHECKING:
    from ..data import Dataset, Split
    from ..training import FinalOutcome

__all__ = [
    "FinalPhase", "finalists", "final_config", "preprocessing_of", "retrain", "final_result", "bundle_metrics",
    "side_by_side", "run_side_by_side",
]


def finalists(records: dict[int, CandidateRecord], profile: Profile) -> list[CandidateRecord]:
    """The candidates the final phase retrains: the top ``final.top_k`` ranked records."""
    if profile.final.top_k <= 0:
        return []
    return ranked(records.values(), profile.search.tie_break)[: profile.final.top_k]


def final_config(profile: Profile) -> TrainingConfig:
    """The training settings of a retraining: ``final.epochs`` on the full data, never capped.

    The best epoch is chosen by validation ACC, as in the paper, equal ACCs by
    the search's tie-break (``final_train``'s ``tie_break``).
    """
    from dataclasses import replace

    return replace(profile.training, epochs=profile.final.epochs, max_batches_per_epoch=0)


def side_by_side(profile: Profile, device: str, retrainings: int, threads: int) -> tuple[int, int]:
    """How the final phase's retrainings share the machine: (how many run at once, torch threads of each).

    On the CPU ``final.parallel`` retrainings run at once (0, the default: 2
    when torch has at least 2 threads), each in its own thread with an equal
    share of ``threads`` (torch's thread count is per calling thread, and a
    CPU kernel releases the GIL). On a 2-core CPU two retrainings of the
    default run's finalist, one thread each, finish in 1/1.3 of the time they
    take one after the other with two threads (``benchmarks/final_seeds.py``,
    docs/RESULTS.md). On CUDA they run one at a time, as before.

    The answer depends on the profile, the device, the number of retrainings
    of the whole phase and the thread count, never on how many are left: a
    resumed phase trains each retraining with the thread count an
    uninterrupted one gives it, and on the CPU a result depends on that count
    (bit for bit, not on what runs beside it).

    Returns:
        ``(1, threads)`` for one at a time (the retraining runs in the
        phase's own thread, its thread count untouched), else ``(n, each)``.
    """
    if not device.startswith("cpu") or retrainings < 2 or threads < 1:
        return 1, threads
    wanted = profile.final.parallel or (2 if threads >= 2 else 1)
    at_once = min(wanted, retrainings)
    if at_once < 2:
        return 1, threads
    return at_once, max(1, threads // at_once)


def run_side_by_side(
    jobs: Sequence[Callable[[], Any]],
    at_once: int,
    threads: int,
    done: Callable[[int, Any], None],
    *,
    name: str = "retrain",
) -> None:
    """Run ``jobs`` in ``at_once`` threads with ``threads`` torch threads each; ``done(i, result)`` in job order.

    The threads take jobs in order. ``done`` is called in the calling thread,
    for job ``i`` once every earlier job's ``done`` was called, so what it
    publishes comes out in the order the jobs would have finished one after
    the other. After a job raises, no new job starts; the running ones
    finish (or stop at the gate), every finished job's ``done`` is still
    called (in order, skipping the ones that did not finish), then the error
    is raised: ``StopRequested`` when any job was stopped, else the first
    error. Finished work is never dropped.

    The calling thread's torch thread count is set again at the end (torch
    keeps the last count set anywhere for threads it meets later).
    """
    import torch

    mine = torch.get_num_threads()
    cond = threading.Condition()
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    state = {"next": 0, "running": 0}

    def work() -> None:
        torch.set_num_threads(threads)
        while True:
            with cond:
                i = state["next"]
                if errors or i >= len(jobs):
                    state["running"] -= 1
                    cond.notify_all()
                    return
                state["next"] = i + 1
            try:
                result = jobs[i]()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                with cond:
                    errors.append(exc)
                    cond.notify_all()
                continue
            with cond:
                results[i] = result
                cond.notify_all()

    workers = [threading.Thread(target=work, name=f"nas3d-{name}-{k}", daemon=True) for k in range(min(at_once, len(jobs)))]
    state["running"] = len(workers)
    for worker in workers:
        worker.start()
    published = 0
    try:
        while True:
            with cond:
                while published not in results and state["running"] > 0:
                    cond.wait(timeout=1.0)
                ready = published in results
                result = results.get(published)
                finished = state["running"] == 0
            if ready:
                done(published, result)
                published += 1
            elif finished:
                break
        for worker in workers:
            worker.join()
        for i in sorted(k for k in results if k >= published):  # after a failure: finished jobs past the gap
            done(i, results[i])
    except BaseException as exc:
        with cond:
            errors.append(exc)  # no job starts any more; the running ones end before this raises
        for worker in workers:
            worker.join()
        raise
    finally:
        torch.set_num_threads(mine)
    if errors:
        raise next((e for e in errors if isinstance(e, StopRequested)), errors[0])


def preprocessing_of(data: Dataset) -> Preprocessing:
    """How a new input must be prepared to look like ``data``'s inputs (for the bundle)."""
    return Preprocessing(
        shape=data.shape,
        channels=data.channels,
        scaling=data.scaling,
        class_names=tuple(data.class_names),
        task=data.task,
        source=dict(data.source),
    )


def majority_acc(split: Split) -> float | None:
    """The accuracy of always answering ``split``'s most frequent class (None for an empty split)."""
    import numpy as np

    y = np.asarray(split.y.cpu()).reshape(-1)
    if y.size == 0:
        return None
    return float(np.bincount(y.astype(np.int64)).max() / y.size)


_BUNDLE_METRICS = ("test_auc", "test_acc", "val_acc", "best_epoch", "epochs", "params", "flops", "seconds")


def bundle_metrics(result: ev.FinalResult, params: int | None, flops: int | None) -> dict[str, Any]:
    """The metrics a retraining's bundle records (``write_bundle``'s ``metrics``): its result's, size as counted."""
    metrics = {name: getattr(result, name) for name in _BUNDLE_METRICS}
    metrics.update(params=params, flops=flops)  # None when unknown (the event says 0)
    return metrics


def final_result(
    outcome: FinalOutcome,
    *,
    candidate_id: int,
    key: str,
    seed: int,
    params: int | None,
    flops: int | None,
    majority: float | None,
) -> ev.FinalResult:
    """The one constructor of a retraining's result: the ``FinalResult`` event, whose dict is its ``result.json``.

    Without the bundle's paths (``retrain`` adds them once the bundle is written).
    """
    return ev.FinalResult(
        candidate_id=candidate_id,
        key=key,
        seed=seed,
        test_auc=outcome.test_auc,
        test_acc=outcome.test_acc,
        val_acc=outcome.val_acc,
        params=int(params or 0),
        flops=int(flops or 0),
        epochs=outcome.epochs,
        seconds=outcome.seconds,
        majority_acc=majority,
        best_epoch=outcome.best_epoch,
    )


def retrain(
    ctx: RunContext,
    genotype: Genotype,
    data: Dataset,
    config: TrainingConfig,
    seed: int,
    out: Path,
    *,
    candidate_id: int,
    key: str,
    params: int | None,
    flops: int | None,
    before_result: Callable[[ev.FinalResult, FinalOutcome], None] | None = None,
) -> tuple[ev.FinalResult, FinalOutcome]:
    """One retraining from scratch: train (resuming its per-epoch checkpoint), write the bundle and result.json.

    ``result.json`` is what marks the retraining done, so it is written last:
    after the bundle and after ``before_result(event, outcome)`` (what the
    caller must have on disk first). The per-epoch checkpoint is removed only
    then.

    Trains on ``ctx.device``, stops at ``ctx.control``'s batch gate, picks the
    best epoch with ``ctx.tie_break``. Publishes (``ctx.publish``) the epochs,
    a resume and refused checkpoints; returns the ``FinalResult`` (written to
    ``out/result.json``, not yet published) and the trainer's ``FinalOutcome``.

    Raises:
        engine.errors.StopRequested: a stop was asked for; the checkpoint stays.
    """
    from ..training import final_train

    publish = ctx.publish
    out.mkdir(parents=True, exist_ok=True)
    outcome = final_train(
        genotype,
        data,
        config,
        seed=seed,
        device=ctx.device,
        control=ctx.control,
        on_epoch=lambda r: publish(epoch_event(candidate_id, r, config.epochs, phase="final", seed=seed)),
        epoch_checkpoint=epoch_checkpoint_in(out),
        on_resume=lambda epoch: publish(
            ev.TrainingResumed(candidate_id=candidate_id, epoch=epoch, max_epochs=config.epochs, phase="final", seed=seed)
        ),
        on_notice=lambda text: publish(ev.Log(message=f"#{candidate_id} seed {seed}: {text}", level="warning")),
        tie_break=ctx.tie_break,
        keep_checkpoint=True,  # until result.json is written: a full disk while the bundle is written loses no training
    )
    event = final_result(
        outcome, candidate_id=candidate_id, key=key, seed=seed, params=params, flops=flops,
        majority=majority_acc(data.test),
    )
    weights, meta = write_bundle(
        out,
        genotype,
        outcome.state_dict,
        preprocessing_of(data),
        num_classes=data.num_classes,
        dataset=data.flag,
        seed=seed,
        metrics=bundle_metrics(event, params, flops),
    )
    event = dataclasses.replace(event, weights_path=str(weights), genotype_path=str(meta))
    if before_result is not None:
        before_result(event, outcome)
    atomic_write_json(result_path_in(out), event.to_dict())
    try:
        os.unlink(epoch_checkpoint_in(out))
    except FileNotFoundError:
        pass
    return event, outcome


class FinalPhase:
    """Retrains the finalists of a search.

    Args:
        ctx: the run's profile, directory (bundles and results go there), events, control and device.
        records: every candidate's record.
        data: the full dataset, resident on ``ctx.device``.
        done: ``(candidate_id, seed)`` pairs that already have a result (a resumed run).
        announced: the pairs whose ``final_result`` the journal holds (None: all of ``done``).
    """

    def __init__(
        self,
        ctx: RunContext,
        records: dict[int, CandidateRecord],
        data: Dataset,
        done: set[tuple[int, int]],
        announced: Collection[tuple[int, int]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.run_dir = ctx.run_dir
        self.records = records
        self.data = data
        self.control = ctx.control
        self.publish = ctx.publish
        self.done = set(done)
        self.announced = set(self.done if announced is None else announced)

    def run(self) -> None:
        """Retrain every finalist for every seed that has no result yet.

        Raises:
            engine.errors.StopRequested: a stop was asked for; the current
                retraining's checkpoint stays for a resume.
        """
        f = self.profile.final
        chosen = finalists(self.records, self.profile)
        if not chosen:
            return
        self.publish(ev.FinalStarted(candidate_ids=[r.candidate_id for r in chosen], epochs=f.epochs, seeds=list(f.seeds)))
        self._announce_missing(chosen)
        config = final_config(self.profile)
        jobs: list[tuple[CandidateRecord, Genotype, int]] = []
        for record in chosen:
            genotype = Genotype.from_dict(record.genotype, max_edges=self.profile.space.max_edges)
            jobs.extend((record, genotype, seed) for seed in f.seeds)
        at_once, threads = side_by_side(self.profile, self.ctx.device, len(jobs), _torch_threads())
        pending = [job for job in jobs if (job[0].candidate_id, job[2]) not in self.done]

        def one(job: tuple[CandidateRecord, Genotype, int]) -> ev.FinalResult:
            record, genotype, seed = job
            cid = record.candidate_id
            self.control.at_batch_boundary()
            event, _ = retrain(
                self.ctx,
                genotype,
                self.data,
                config,
                seed,
                self.run_dir.finalist_dir(cid, seed),
                candidate_id=cid,
                key=record.key or "",
                params=record.params,
                flops=record.flops,
            )
            return event

        def finished(event: ev.FinalResult) -> None:
            self.done.add((event.candidate_id, event.seed))
            # stamped when announced: a result held back for an earlier seed's still reads in time order
            self.publish(dataclasses.replace(event, ts=time.time()))

        if at_once == 1:
            for job in pending:
                finished(one(job))
            return
        run_side_by_side([functools.partial(one, job) for job in pending], at_once, threads,
                         lambda _i, event: finished(event), name="final")

    def _announce_missing(self, chosen: list[CandidateRecord]) -> None:
        """Publish again the ``final_result`` of every retraining done whose event the journal lacks
        (a crash or a full disk between its ``result.json`` and its event), in the phase's order."""
        for record in chosen:
            for seed in self.profile.final.seeds:
                pair = (record.candidate_id, seed)
                if pair in self.done and pair not in self.announced:
                    path = self.run_dir.finalist_result_path(*pair)
                    event = ev.final_result_from_dict(read_json(path), str(path))  # (checked when the run was prepared)
                    self.publish(event)
                    self.announced.add(pair)


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())
