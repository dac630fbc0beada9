"""The final phase: the top-k candidates retrained from scratch on the full training set, then tested.

This module owns which candidates are finalists (the leaderboard's top-k by
``engine.records.rank_key``), one retraining per finalist and seed (paper:
full training split, best-validation-ACC epoch kept, test AUC and ACC), the
model bundle each retraining leaves (``engine.bundle``), and resuming: a
retraining with a ``result.json`` is done (its ``final_result`` is announced
again when the journal lacks it); one that was interrupted continues from its
per-epoch checkpoint, which stays until ``result.json`` is written (a full
disk while the bundle is written loses at most the last epoch).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection

from .. import events as ev
from ..atomic import atomic_write_json
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

__all__ = ["FinalPhase", "finalists", "final_config", "preprocessing_of", "retrain", "final_result", "bundle_metrics"]


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
        on_epoch=lambda r: publish(epoch_event(candidate_id, r, config.epochs, phase="final")),
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
        for record in chosen:
            genotype = Genotype.from_dict(record.genotype, max_edges=self.profile.space.max_edges)
            cid = record.candidate_id
            for seed in f.seeds:
                if (cid, seed) in self.done:
                    continue
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
                self.done.add((cid, seed))
                self.publish(event)

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
