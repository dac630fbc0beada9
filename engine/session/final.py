"""The final phase: the top-k candidates retrained from scratch on the full training set, then tested.

This module owns which candidates are finalists (the leaderboard's top-k by
``engine.records.rank_key``), one retraining per finalist and seed (paper:
full training split, best-validation-ACC epoch kept, test AUC and ACC), the
model bundle each retraining leaves (``engine.bundle``), and resuming: a
retraining with a ``result.json`` is done; one that was interrupted
continues from its per-epoch checkpoint.
"""
from __future__ import annotations

from typing import Any, Callable

from .. import events as ev
from ..bundle import Preprocessing, write_bundle
from ..profile import Profile
from ..records import CandidateRecord, ranked
from ..rundir import RunDir
from ..space import Genotype
from .search import epoch_event

__all__ = ["FinalPhase", "finalists", "preprocessing_of"]


def finalists(records: dict[int, CandidateRecord], profile: Profile) -> list[CandidateRecord]:
    """The candidates the final phase retrains: the top ``final.top_k`` ranked records."""
    if profile.final.top_k <= 0:
        return []
    return ranked(records.values(), profile.search.tie_break)[: profile.final.top_k]


def preprocessing_of(data: Any) -> Preprocessing:
    """How a new input must be prepared to look like ``data``'s inputs (for the bundle)."""
    return Preprocessing(
        shape=data.shape,
        channels=data.channels,
        scaling=data.scaling,
        class_names=tuple(data.class_names),
        task=data.task,
        source=dict(data.source),
    )


class FinalPhase:
    """Retrains the finalists of a search.

    Args:
        profile: the resolved profile.
        run_dir: where bundles and results go.
        records: every candidate's record.
        data: the full dataset, resident on ``device``.
        device: where to train.
        control: pause / stop flags.
        publish: where events go.
        done: ``(candidate_id, seed)`` pairs that already have a result (a resumed run).
    """

    def __init__(
        self,
        profile: Profile,
        run_dir: RunDir,
        records: dict[int, CandidateRecord],
        data: Any,
        device: str,
        control: Any,
        publish: Callable[[ev.Event], None],
        done: set[tuple[int, int]],
    ) -> None:
        self.profile = profile
        self.run_dir = run_dir
        self.records = records
        self.data = data
        self.device = device
        self.control = control
        self.publish = publish
        self.done = set(done)

    def run(self) -> None:
        """Retrain every finalist for every seed that has no result yet.

        Raises:
            engine.errors.StopRequested: a stop was asked for; the current
                retraining's checkpoint stays for a resume.
        """
        from dataclasses import replace

        from ..training import final_train

        f = self.profile.final
        chosen = finalists(self.records, self.profile)
        if not chosen:
            return
        self.publish(ev.FinalStarted(candidate_ids=[r.candidate_id for r in chosen], epochs=f.epochs, seeds=list(f.seeds)))
        # Finalists train for final.epochs on the full data, chosen by val ACC as in the paper, never capped.
        config = replace(self.profile.training, epochs=f.epochs, max_batches_per_epoch=0)
        for record in chosen:
            genotype = Genotype.from_dict(record.genotype, max_edges=self.profile.space.max_edges)
            cid = record.candidate_id
            for seed in f.seeds:
                if (cid, seed) in self.done:
                    continue
                self.control.checkpoint()
                out = self.run_dir.finalist_dir(cid, seed)
                out.mkdir(parents=True, exist_ok=True)
                outcome = final_train(
                    genotype,
                    self.data,
                    config,
                    seed=seed,
                    device=self.device,
                    control=self.control,
                    on_epoch=lambda r, cid=cid: self.publish(epoch_event(cid, r, f.epochs, phase="final")),
                    checkpoint=out / "training.ckpt",
                    on_resume=lambda epoch, cid=cid, seed=seed: self.publish(
                        ev.TrainingResumed(candidate_id=cid, epoch=epoch, max_epochs=f.epochs, phase="final", seed=seed)
                    ),
                    on_notice=lambda text, cid=cid: self.publish(ev.Log(message=f"final #{cid}: {text}", level="warning")),
                )
                metrics = dict(
                    test_auc=outcome.test_auc,
                    test_acc=outcome.test_acc,
                    val_acc=outcome.val_acc,
                    best_epoch=outcome.best_epoch,
                    epochs=outcome.epochs,
                    params=record.params,
                    flops=record.flops,
                    seconds=outcome.seconds,
                )
                weights, meta = write_bundle(
                    out,
                    genotype,
                    outcome.state_dict,
                    preprocessing_of(self.data),
                    num_classes=self.data.num_classes,
                    dataset=self.data.flag,
                    seed=seed,
                    metrics=metrics,
                )
                event = ev.FinalResult(
                    candidate_id=cid,
                    key=record.key or "",
                    seed=seed,
                    test_auc=outcome.test_auc,
                    test_acc=outcome.test_acc,
                    val_acc=outcome.val_acc,
                    params=int(record.params or 0),
                    flops=int(record.flops or 0),
                    epochs=outcome.epochs,
                    seconds=outcome.seconds,
                    weights_path=str(weights),
                    genotype_path=str(meta),
                )
                self.run_dir.write_final_result(cid, seed, event.to_dict())
                self.done.add((cid, seed))
                self.publish(event)
