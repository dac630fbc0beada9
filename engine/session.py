"""The search session: the one place that combines algorithm, evaluation, persistence and events.

A ``Session`` drives one run directory (see ``engine.rundir``): it asks the
ODE for candidates, decodes them, answers infeasible and already-seen
architectures without training, hands new ones to an evaluator, records each
finished candidate durably, checkpoints the search state before every batch,
and publishes events for every watcher. After the search it retrains the
top-k on the full training set (the final phase).

Resume guarantee: the checkpoint holds the ODE state *before* each ``ask``;
candidate ids are the ODE's proposal numbers; every finished candidate has
an atomic record. A resumed run therefore re-asks the same batch, answers
the candidates that already finished from their records, and trains only
those that were in flight — proposing exactly the vectors an uninterrupted
run would.
"""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import events as ev
from .control import Control, StopRequested
from .evaluator import Job, SequentialEvaluator, candidate_seed
from .leaderboard import rank_order
from .ode import ODE
from .profile import Profile, load_profile
from .rundir import RunDir, RunDirError, atomic_write_json
from .space import Genotype, SearchSpace

__all__ = ["Session", "SessionOutcome", "SessionError", "resolve_device", "new_run_dir", "rank_key", "train_config"]

CHECKPOINT_FORMAT = "nas3d-tui/checkpoint/1"
TRAINED_STATUSES = ("ok", "oom", "failed")  # statuses that spent budget


class SessionError(RuntimeError):
    """A user-facing problem that stops a run before or while it starts (one line)."""


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


def resolve_device(device: str) -> str:
    """Map a profile's ``run.device`` to a torch device string.

    Raises:
        SessionError: CUDA was asked for and is not available.
    """
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SessionError(f"run.device = {device!r} but CUDA is not available here; use 'auto' or 'cpu'")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise SessionError(f"run.device = {device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
        return f"cuda:{index}"
    return "cpu"


def new_run_dir(profile: Profile, output_dir: str | os.PathLike[str] | None = None) -> Path:
    """A fresh directory name ``<output_dir>/<name>-YYYYmmdd-HHMMSS`` (suffixed if taken)."""
    base = Path(output_dir or profile.run.output_dir).expanduser()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / f"{profile.run.name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{profile.run.name}-{stamp}-{n}"
    return path


def rank_key(rec: dict[str, Any]) -> tuple:
    """A candidate record's place in the leaderboard (``engine.leaderboard.rank_order``)."""
    return rank_order(rec.get("fitness"), rec.get("flops"), rec["candidate_id"])


def train_config(profile: Profile, final: bool = False):
    """The trainer's settings for a profile: search candidates, or (``final``) finalists.

    Finalists train for ``final.epochs`` on the full data, are chosen by val ACC as
    in the paper, and never cap batches.
    """
    from .train import TrainConfig

    t = profile.training
    return TrainConfig(
        epochs=profile.final.epochs if final else t.epochs,
        patience=t.patience,
        batch_size=t.batch_size,
        lr=t.lr,
        loss=t.loss,
        amp=t.amp,
        channels_last=t.channels_last,
        seed=profile.run.seed,
        fitness="val_acc" if final else profile.search.fitness,
        max_batches_per_epoch=0 if final else t.max_batches_per_epoch,
    )


def _space_of(profile: Profile) -> SearchSpace:
    s = profile.space
    return SearchSpace(ops=s.ops, stacks=s.stacks, modules=s.modules, filters=s.filters, max_edges=s.max_edges)


class Session:
    """One search run bound to a run directory.

    Args:
        profile: the resolved profile.
        run_dir: where the run lives (created if needed).
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
        self.space = _space_of(profile)
        self._started = time.monotonic()
        self._elapsed_before = 0.0
        self.records: dict[int, dict[str, Any]] = {}
        self.archive: dict[str, dict[str, Any]] = {}
        self.trained = 0
        self.device = "cpu"
        self._current_peak: float | None = None

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
            SessionError: no such run, or its profile is missing.
            engine.profile.ProfileError: its profile no longer validates.
        """
        path = Path(run_dir).expanduser()
        if not path.is_dir():
            raise SessionError(f"no run directory at {path}")
        profile_path = path / "profile.toml"
        if not profile_path.exists():
            raise SessionError(f"{path} is not a nas3d-tui run directory (no profile.toml)")
        return cls(load_profile(profile_path), path, bus=bus, control=control, resume=True)

    # ------------------------------------------------------------------ events
    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)

    def _on_control(self, what: str) -> None:
        if what == "paused":
            self.publish(ev.Paused())
        elif what == "resumed":
            self.publish(ev.Resumed())
        elif what == "stop":
            self.publish(ev.StopRequested())

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    # ------------------------------------------------------------------ the run
    def run(self) -> SessionOutcome:
        """Run (or continue) the search and the final phase; blocking.

        Returns the outcome; user-facing problems detected before the search
        starts raise instead.

        Raises:
            SessionError, engine.rundir.RunDirError, engine.data.DataError:
                bad input (the CLI prints the message and exits 2).
        """
        from .data import load_dataset
        from .resources import ResourceSampler

        rd = self.run_dir
        rd.create()
        rd.acquire()
        journal = ev.JournalSink(rd.journal_path)
        self.bus.subscribe(journal)
        sampler = None
        try:
            checkpoint = rd.read_checkpoint() if self.resumed else None
            if self.resumed and checkpoint is None and rd.read_candidates():
                raise SessionError(f"{rd.path} has candidate records but no checkpoint; cannot resume safely")
            if checkpoint is not None and checkpoint.get("format") != CHECKPOINT_FORMAT:
                raise RunDirError(f"checkpoint {rd.checkpoint_path} has an unknown format; cannot resume")
            if not self.resumed:
                if rd.journal_path.stat().st_size > 0 or rd.checkpoint_path.exists():
                    raise SessionError(f"{rd.path} already holds a run; use `nas3d-tui resume {rd.path}`")
                self.profile.save(rd.profile_path)
            if checkpoint is not None and checkpoint.get("state") == "finished":
                raise SessionError(f"the run in {rd.path} has already finished; export it with `nas3d-tui export`")
            self.device = resolve_device(self.profile.run.device)
            p = self.profile
            if p.executor.kind != "local":
                from .parallel import check_executor

                check_executor(p.executor)  # e.g. Ray missing: a one-line SessionError before the run starts
            data = load_dataset(p.data.dataset, p.data.size, p.data.root, p.data.download, device=self.device)
            search_data = data.search_subset(p.data.search_fraction, p.run.seed)
            self._load_records()
            if checkpoint is not None:
                self._elapsed_before = float(checkpoint.get("elapsed", 0.0))
            self.publish(
                ev.RunStarted(
                    run_name=p.run.name,
                    run_dir=str(rd.path),
                    dataset=p.data.dataset,
                    size=p.data.size,
                    device=self.device,
                    budget=p.search.budget,
                    population=p.search.population,
                    num_classes=data.num_classes,
                    task=data.task,
                    fitness=p.search.fitness,
                    resumed=self.resumed,
                    pid=os.getpid(),
                    profile=p.to_dict(),
                )
            )
        except BaseException:
            self.bus.unsubscribe(journal)
            journal.close()
            rd.release()
            raise

        sampler = ResourceSampler(self.publish, self.device, peak_fn=lambda: self._current_peak).start()
        try:
            state = checkpoint.get("state", "search") if checkpoint else "search"
            reason = "budget"
            if state == "search":
                reason = self._search(search_data, checkpoint)
                self._checkpoint_state(state="final", reason=reason, ode_state=self._ode.state_dict())
            else:
                reason = checkpoint.get("reason", "budget")
            self._final(data, checkpoint)
            self._checkpoint_state(state="finished", reason=reason, ode_state=self._ode_state_for_final(checkpoint))
            best = self._best_record()
            sampler.stop()  # the run's last event must be its end
            self.publish(
                ev.RunFinished(
                    reason=reason,
                    trained=self.trained,
                    seconds=self._elapsed(),
                    best_candidate_id=best["candidate_id"] if best else None,
                    best_fitness=best["fitness"] if best else None,
                )
            )
            return SessionOutcome("finished", reason, rd.path)
        except StopRequested:
            best = self._best_record()
            sampler.stop()
            self.publish(
                ev.RunFinished(
                    reason="stopped",
                    trained=self.trained,
                    seconds=self._elapsed(),
                    best_candidate_id=best["candidate_id"] if best else None,
                    best_fitness=best["fitness"] if best else None,
                )
            )
            return SessionOutcome("stopped", "stopped", rd.path)
        except Exception as exc:  # finished work is on disk; report and end cleanly
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            sampler.stop()
            self.publish(ev.RunFailed(error=message))
            (rd.path / "error.log").write_text(traceback.format_exc())
            return SessionOutcome("failed", "error", rd.path, error=message)
        finally:
            sampler.stop()
            self.bus.unsubscribe(journal)
            journal.close()
            rd.release()

    # ------------------------------------------------------------------ search
    def _load_records(self) -> None:
        self.records = self.run_dir.read_candidates()
        for cid in sorted(self.records):
            rec = self.records[cid]
            if rec["status"] in TRAINED_STATUSES:
                self.archive.setdefault(rec["key"], rec)
        self.trained = sum(1 for r in self.records.values() if r["status"] in TRAINED_STATUSES)

    def _new_ode(self) -> ODE:
        s = self.profile.search
        return ODE(
            dim=self.space.dim,
            population=s.population,
            mutation_factor=s.mutation_factor,
            crossover_rate=s.crossover_rate,
            jumping_rate=s.jumping_rate,
            seed=self.profile.run.seed,
            key_fn=self.space.key_of,
        )

    def _ode_state_for_final(self, checkpoint: dict[str, Any] | None) -> dict[str, Any]:
        if getattr(self, "_ode", None) is not None:
            return self._ode.state_dict()
        return checkpoint["ode"] if checkpoint else {}

    def _checkpoint_state(self, state: str, ode_state: dict[str, Any], reason: str = "") -> None:
        path = self.run_dir.write_checkpoint(
            {
                "format": CHECKPOINT_FORMAT,
                "state": state,
                "reason": reason,
                "ode": ode_state,
                "trained": self.trained,
                "elapsed": self._elapsed(),
                "generation": ode_state.get("generation", 0) if isinstance(ode_state, dict) else 0,
                "written": time.time(),
            }
        )
        self.publish(ev.CheckpointSaved(path=str(path), trained=self.trained, generation=self._generation()))

    def _generation(self) -> int:
        ode = getattr(self, "_ode", None)
        return ode.generation if ode is not None else 0

    def _search(self, search_data: Any, checkpoint: dict[str, Any] | None) -> str:
        p = self.profile
        if checkpoint is not None:
            self._ode = ODE.from_state(checkpoint["ode"], key_fn=self.space.key_of)
        else:
            self._ode = self._new_ode()
        config = train_config(self.profile)
        evaluator = self._make_evaluator(search_data, config)
        self._evaluator = evaluator
        time_budget = p.search.time_budget_minutes * 60.0
        try:
            while True:
                if self.trained >= p.search.budget:
                    return "budget"
                if time_budget and self._elapsed() >= time_budget:
                    return "time"
                self._checkpoint_state(state="search", ode_state=self._ode.state_dict())
                self.control.checkpoint()
                batch = self._ode.ask()
                if batch.phase == "jump":
                    self.publish(ev.Jump(generation=batch.generation, proposed=len(batch)))
                fitnesses = self._evaluate_batch(batch, evaluator)
                if fitnesses is None:
                    return "budget"
                self._ode.tell(fitnesses)
                if self._ode.phase in ("trial",):  # a generation (or the initialisation) is complete
                    self._publish_generation(batch.generation)
        finally:
            evaluator.close()

    def _publish_generation(self, generation: int) -> None:
        fit = self._ode.fitness
        self.publish(
            ev.GenerationFinished(
                generation=generation,
                best=float(fit.max()),
                mean=float(fit.mean()),
                worst=float(fit.min()),
                trained=self.trained,
                budget=self.profile.search.budget,
                best_candidate_id=self._ode.best_id(),
            )
        )

    def _make_evaluator(self, search_data: Any, config: Any):
        ex = self.profile.executor
        several_per_gpu = ex.per_gpu > 1 and self.device.startswith("cuda")
        if ex.kind == "local" and ex.workers <= 1 and not several_per_gpu:
            return SequentialEvaluator(search_data, config, self.device, self.control)
        from .parallel import make_parallel_evaluator

        return make_parallel_evaluator(self.profile, search_data, config, self.device, self.control)

    def _record(self, **fields: Any) -> dict[str, Any]:
        rec = {
            "candidate_id": fields.pop("candidate_id"),
            "status": fields.pop("status"),
            "fitness": None,
            "val_acc": None,
            "val_auc": None,
            "params": None,
            "flops": None,
            "epochs": 0,
            "seconds": 0.0,
            "peak_memory_mb": None,
            "error": None,
            "worker": "",
            "duplicate_of": None,
            "history": [],
        }
        rec.update(fields)
        return rec

    def _duplicate(self, orig: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A record that reuses the result of ``orig`` (same architecture key); nothing is trained."""
        return self._record(
            status="duplicate",
            fitness=orig["fitness"],
            val_acc=orig["val_acc"],
            val_auc=orig["val_auc"],
            params=orig["params"],
            flops=orig["flops"],
            duplicate_of=orig["candidate_id"],
            **fields,
        )

    @staticmethod
    def _epoch_event(candidate_id: int, r: dict, max_epochs: int, phase: str = "search") -> ev.EpochFinished:
        """The event for one epoch record of ``engine.train`` (``on_epoch``)."""
        return ev.EpochFinished(
            candidate_id=candidate_id,
            epoch=int(r["epoch"]),
            train_loss=float(r["train_loss"]),
            val_loss=float(r["val_loss"]),
            val_acc=float(r["val_acc"]),
            val_auc=float(r["val_auc"]),
            seconds=float(r["seconds"]),
            max_epochs=max_epochs,
            phase=phase,
        )

    def _finish(self, rec: dict[str, Any]) -> None:
        """Make a candidate's result durable, then announce it."""
        if rec["status"] in TRAINED_STATUSES:
            self.trained += 1
            self.archive.setdefault(rec["key"], rec)
        rec["trained"] = self.trained
        self.run_dir.write_candidate(rec)
        self.records[rec["candidate_id"]] = rec
        self.publish(
            ev.CandidateFinished(
                candidate_id=rec["candidate_id"],
                generation=rec["generation"],
                phase=rec["phase"],
                key=rec["key"] or "",
                genotype=rec["genotype"],
                status=rec["status"],
                fitness=rec["fitness"],
                val_acc=rec["val_acc"],
                val_auc=rec["val_auc"],
                params=rec["params"],
                flops=rec["flops"],
                epochs=rec["epochs"],
                seconds=rec["seconds"],
                peak_memory_mb=rec["peak_memory_mb"],
                error=rec["error"],
                worker=rec["worker"],
                trained=self.trained,
                budget=self.profile.search.budget,
                duplicate_of=rec["duplicate_of"],
            )
        )

    @staticmethod
    def told_fitness(rec: dict[str, Any]) -> float:
        """What the ODE is told: the fitness, or 0.0 for anything that did not train successfully."""
        f = rec.get("fitness")
        return float(f) if f is not None else 0.0

    def _evaluate_batch(self, batch: Any, evaluator: Any) -> list[float] | None:
        """Evaluate one ODE batch; None when the budget ran out inside it."""
        from .complexity import count_flops, count_params
        from .model import build_network

        p = self.profile
        n = len(batch.vectors)
        results: list[dict[str, Any] | None] = [None] * n
        jobs: list[Job] = []
        job_index: dict[int, int] = {}
        first_in_batch: dict[str, int] = {}
        later_duplicates: list[tuple[int, int, Genotype, list[float]]] = []
        complexity: dict[int, tuple[int, int]] = {}
        budget_hit = False
        base = {"generation": batch.generation, "phase": batch.phase}

        for i, vector in enumerate(batch.vectors):
            cid = batch.first_id + i
            if cid in self.records:  # finished before a crash or stop
                results[i] = self.records[cid]
                continue
            g = self.space.decode(vector)
            common = dict(base, candidate_id=cid, vector=vector, key=g.key, genotype=g.to_dict())
            if not g.feasible:
                rec = self._record(status="infeasible", error=g.reason, **common)
                self._finish(rec)
                results[i] = rec
                continue
            if g.key in self.archive:
                rec = self._duplicate(self.archive[g.key], **common)
                self._finish(rec)
                results[i] = rec
                continue
            if g.key in first_in_batch:
                later_duplicates.append((i, cid, g, vector))
                continue
            if self.trained + len(jobs) >= p.search.budget:
                budget_hit = True
                break
            first_in_batch[g.key] = i
            net = build_network(g, in_channels=1, num_classes=p.num_classes)
            complexity[cid] = (count_params(net), count_flops(net, input_size=p.data.size))
            del net
            jobs.append(Job(candidate_id=cid, genotype=g, seed=candidate_seed(p.run.seed, cid)))
            job_index[cid] = i

        def on_start(job: Job, worker: str) -> None:
            params, flops = complexity[job.candidate_id]
            self._current_peak = None
            self.publish(
                ev.CandidateStarted(
                    candidate_id=job.candidate_id,
                    generation=batch.generation,
                    phase=batch.phase,
                    key=job.genotype.key,
                    genotype=job.genotype.to_dict(),
                    vector=batch.vectors[job_index[job.candidate_id]],
                    params=params,
                    flops=flops,
                    worker=worker,
                )
            )

        def on_epoch(job: Job, r: dict) -> None:
            self.publish(self._epoch_event(job.candidate_id, r, self.profile.training.epochs))

        def on_done(job: Job, result: Any, worker: str) -> None:
            i = job_index[job.candidate_id]
            params, flops = complexity[job.candidate_id]
            g = job.genotype
            self._current_peak = result.peak_memory_mb
            rec = self._record(
                candidate_id=job.candidate_id,
                status=result.status,
                fitness=result.fitness,
                val_acc=result.val_acc,
                val_auc=result.val_auc,
                params=params,
                flops=flops,
                epochs=result.epochs,
                seconds=result.seconds,
                peak_memory_mb=result.peak_memory_mb,
                error=result.error,
                worker=worker,
                history=list(result.history),
                vector=batch.vectors[i],
                key=g.key,
                genotype=g.to_dict(),
                **base,
            )
            self._finish(rec)
            results[i] = rec

        if jobs:
            evaluator.evaluate(jobs, on_start, on_epoch, on_done)

        for i, cid, g, vector in later_duplicates:
            orig = results[first_in_batch[g.key]]
            if orig is None:  # its original was cut by the budget
                budget_hit = True
                continue
            rec = self._duplicate(orig, candidate_id=cid, vector=vector, key=g.key, genotype=g.to_dict(), **base)
            self._finish(rec)
            results[i] = rec

        if budget_hit or any(r is None for r in results):
            return None
        return [self.told_fitness(r) for r in results]  # type: ignore[arg-type]

    def _best_record(self) -> dict[str, Any] | None:
        ok = [r for r in self.records.values() if r["status"] == "ok"]
        return min(ok, key=rank_key) if ok else None

    # ------------------------------------------------------------------ final phase
    def _final(self, data: Any, checkpoint: dict[str, Any] | None) -> None:
        from .train import final_train

        f = self.profile.final
        if f.top_k <= 0:
            return
        ok = sorted((r for r in self.records.values() if r["status"] == "ok"), key=rank_key)
        finalists = ok[: f.top_k]
        if not finalists:
            return
        config = train_config(self.profile, final=True)
        self.publish(
            ev.FinalStarted(candidate_ids=[r["candidate_id"] for r in finalists], epochs=f.epochs, seeds=list(f.seeds))
        )
        for rec in finalists:
            g = Genotype.from_dict(rec["genotype"], max_edges=self.profile.space.max_edges)
            for seed in f.seeds:
                out = self.run_dir.final_dir / f"{rec['candidate_id']:06d}-seed{seed}"
                result_path = out / "result.json"
                if result_path.exists():
                    continue  # finished before a stop or crash
                out.mkdir(parents=True, exist_ok=True)
                self.control.checkpoint()
                cid = rec["candidate_id"]

                def on_epoch(r: dict, cid: int = cid) -> None:
                    self.publish(self._epoch_event(cid, r, f.epochs, phase="final"))

                outcome = final_train(
                    g,
                    data,
                    config,
                    seed=seed,
                    device=self.device,
                    control=self.control,
                    on_epoch=on_epoch,
                    out_dir=out,
                )
                event = ev.FinalResult(
                    candidate_id=cid,
                    key=rec["key"],
                    seed=seed,
                    test_auc=outcome.test_auc,
                    test_acc=outcome.test_acc,
                    val_acc=outcome.val_acc,
                    params=outcome.params,
                    flops=outcome.flops,
                    epochs=outcome.epochs,
                    seconds=outcome.seconds,
                    weights_path=outcome.weights_path,
                    genotype_path=outcome.genotype_path,
                )
                atomic_write_json(result_path, event.to_dict())
                self.publish(event)
