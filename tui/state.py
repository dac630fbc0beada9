"""Everything the dashboard shows, as a pure model fed one event at a time.

``DashboardState.apply(event)`` is the only way state changes (apart from the
two user intents ``request`` and ``fail``), so replaying ``events.jsonl``
rebuilds exactly the screen a live watcher saw. The panels only read from it;
``revision`` counters tell them which parts changed since they last drew.

No Textual, no torch: this module is tested on its own.
"""
from __future__ import annotations

import heapq
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from engine import events as ev
from engine.leaderboard import Leaderboard, Row
from engine.records import CandidateRecord, finite_or_none as _finite, rank_key
from engine.vocab import CandidatePhase, Command, RecordStatus

from .fmt import elapsed
from .narrate import describe, has_line

__all__ = [
    "STARTING",
    "RUNNING",
    "PAUSED",
    "STOPPING",
    "FINISHED",
    "FAILED",
    "CandidateView",
    "LogLine",
    "DashboardState",
    "DETAILS_KEPT",
    "describe",
]

STARTING = "STARTING"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
STOPPING = "STOPPING"
FINISHED = "FINISHED"
FAILED = "FAILED"
TERMINAL = (FINISHED, FAILED)

MEMORY_HISTORY = 240  # resource samples kept for the sparkline
LOG_LINES = 200  # the log panel's scrollback (the journal keeps every line; `replay` shows them)
# Candidates whose events are kept whole (start event, every epoch): those in flight, the most
# recently finished DETAILS_KEPT and the best DETAILS_KEPT. The others keep their (light) record;
# their epochs are read back from the journal when their details are opened.
DETAILS_KEPT = 100

# What the dashboard says of a candidate: training (running), cut off by the end of a run segment
# before its result (interrupted, retrained on resume), or its record's status.
ViewStatus = Literal["running", "interrupted"] | RecordStatus


@dataclass(slots=True)
class CandidateView:
    """What the dashboard knows about one candidate: how it started, its epochs, its record, its finals.

    The result is the engine's ``CandidateRecord``; before it arrives, the
    ``CandidateStarted`` event says what runs. ``trimmed``: the start event and
    per-epoch history were let go and the record is its light copy (no vector,
    the genotype as drawn), to keep a long run's dashboard small
    (``DashboardState``); the journal still has them
    (``DashboardState.candidate_from_events``).
    """

    candidate_id: int
    started: ev.CandidateStarted | None = None
    record: CandidateRecord | None = None
    status: ViewStatus = "running"  # running | interrupted | the record's status
    epochs: int = 0
    max_epochs: int = 0
    resumed_at: int = 0  # a per-epoch checkpoint let training continue after this epoch
    started_ts: float | None = None
    finished_ts: float | None = None
    history: list[ev.EpochFinished] = field(default_factory=list)
    finals: list[ev.FinalResult] = field(default_factory=list)
    trimmed: bool = False

    def _field(self, name: str, default: Any = None) -> Any:
        if self.record is not None:
            return getattr(self.record, name)
        if self.started is not None and hasattr(self.started, name):
            return getattr(self.started, name)
        return default

    @property
    def generation(self) -> int:
        generation: int = self._field("generation", 0)
        return generation

    @property
    def phase(self) -> CandidatePhase | Literal[""]:
        phase: CandidatePhase | Literal[""] = self._field("phase", "")
        return phase

    @property
    def key(self) -> str:
        key: str = self._field("key", "") or ""
        return key

    @property
    def genotype(self) -> dict[str, Any]:
        return self._field("genotype", {}) or {}

    @property
    def worker(self) -> str:
        worker: str = self._field("worker", "local")
        return worker

    @property
    def params(self) -> int | None:
        value = self._field("params")
        return value or (self.started.params if self.started is not None and self.started.params else None)

    @property
    def flops(self) -> int | None:
        value = self._field("flops")
        return value or (self.started.flops if self.started is not None and self.started.flops else None)

    @property
    def fitness(self) -> float | None:
        return _finite(self.record.fitness) if self.record is not None else None

    @property
    def val_acc(self) -> float | None:
        return _finite(self.record.val_acc) if self.record is not None else None

    @property
    def val_auc(self) -> float | None:
        return _finite(self.record.val_auc) if self.record is not None else None

    @property
    def seconds(self) -> float:
        """Training time: the record's, or while it trains the epochs finished so far (this process's)."""
        if self.record is not None:
            return self.record.seconds
        return sum(e.seconds for e in self.history if e.phase != "final")

    @property
    def peak_memory_mb(self) -> float | None:
        return self.record.peak_memory_mb if self.record is not None else None

    @property
    def error(self) -> str | None:
        return self.record.error if self.record is not None else None

    @property
    def duplicate_of(self) -> int | None:
        return self.record.duplicate_of if self.record is not None else None

    @property
    def compact(self) -> str:
        return str(self.genotype.get("compact") or self.key[:12] or "?")

    @property
    def macro(self) -> str:
        g = self.genotype
        if not g:
            return "?"
        return f"{g.get('n_stacks', '?')} stacks × {g.get('n_modules', '?')} modules, {g.get('n_filters', '?')} filters"

    def snapshot(self) -> dict[str, Any]:
        """Plain data of everything shown about this candidate."""
        return {
            "candidate_id": self.candidate_id,
            "status": self.status,
            "epochs": self.epochs,
            "max_epochs": self.max_epochs,
            "resumed_at": self.resumed_at,
            "started_ts": self.started_ts,
            "finished_ts": self.finished_ts,
            "started": self.started.to_dict() if self.started else None,
            "record": self.record.to_dict() if self.record else None,
            "history": [h.to_dict() for h in self.history],
            "finals": [f.to_dict() for f in self.finals],
            "trimmed": self.trimmed,
        }


class LogLine:
    """One line of the log panel: given, or an event's, whose words are written when first read.

    Folding a long run's history keeps only the last ``LOG_LINES`` lines: the
    thousands before them are never read, so their text is never built.
    """

    __slots__ = ("seq", "ts", "_event", "_words")

    def __init__(self, seq: int, ts: float, level: str = "info", text: str = "", event: ev.Event | None = None) -> None:
        self.seq = seq
        self.ts = ts
        self._event = event
        self._words: tuple[str, str] | None = None if event is not None else (level, text)

    def _said(self) -> tuple[str, str]:
        if self._words is None:
            self._words = (describe(self._event) if self._event is not None else None) or ("info", "")
        return self._words

    @property
    def level(self) -> str:
        """info | warning | error"""
        return self._said()[0]

    @property
    def text(self) -> str:
        return self._said()[1]

    def __repr__(self) -> str:
        return f"LogLine({self.seq}, {self.ts}, {self.level!r}, {self.text!r})"


class DashboardState:
    """The dashboard's model. Feed it events in journal order with ``apply``.

    Its size grows with a run only by one light record (and scatter point) per
    candidate: the candidates' start events, per-epoch histories and whole
    records are kept for at most ``3 × details_kept`` of them plus those in
    flight (see ``DETAILS_KEPT``).
    """

    def __init__(self, details_kept: int = DETAILS_KEPT) -> None:
        self.details_kept = details_kept
        self.run: ev.RunStarted | None = None
        self.status: str = STARTING
        self.error: str | None = None
        self.finish_reason: str | None = None
        self.pending: Command | None = None  # command asked for, not yet confirmed by an event
        self.warming_up = False  # the device is being prepared before the first candidate
        self.generation: int = 0
        self.trained: int = 0
        self.budget: int = 0
        self.candidates: dict[int, CandidateView] = {}
        self.in_flight: dict[int, CandidateView] = {}
        self.last_started: int | None = None
        self.generations: dict[int, ev.GenerationFinished] = {}
        self.jumps: list[int] = []
        self.resource: ev.ResourceSample | None = None
        self.memory_history: deque[float] = deque(maxlen=MEMORY_HISTORY)
        self.candidate_peak_mb: float | None = None  # peak while the current candidate trains
        self.search_state: ev.StateSaved | None = None
        self.final: ev.FinalStarted | None = None
        self.final_results: list[ev.FinalResult] = []
        self.log: deque[LogLine] = deque(maxlen=LOG_LINES)
        self.leaderboard = Leaderboard()
        self.revision: Counter[str] = Counter()
        self.events_applied = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        # ETA bookkeeping for the current run segment (a resume starts a new one)
        self._segment_ts: float | None = None
        self._segment_trained = 0
        self._paused_since: float | None = None
        self._paused_seconds = 0.0
        self._last_progress_ts: float | None = None
        self._log_seq = 0
        self._detailed: dict[int, None] = {}  # finished candidates still whole, in finishing order
        self._best: list[int] = []  # the best candidates at the last trim
        self._rank_keys: dict[int, Any] = {}  # engine.records.rank_key of those and of the finished still whole
        # The fitness scatter's points, kept as candidates finish (not gathered from every candidate at
        # each redraw): ``points_log`` only grows until a point changes or goes, which bumps ``points_epoch``.
        self._points: dict[int, tuple[int, float | None, float | None, float]] = {}
        self.points_log: list[tuple[int, float | None, float | None, float]] = []
        self.points_epoch = 0

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_events(cls, events: Iterable[ev.Event]) -> "DashboardState":
        state = cls()
        for event in events:
            state.apply(event)
        return state

    @classmethod
    def candidate_from_events(cls, candidate_id: int, events: Iterable[ev.Event]) -> CandidateView | None:
        """The whole view of one candidate, folded from its events (e.g. a trimmed one's, read back
        from the journal with ``engine.journal.read_candidate``); None if none is about it."""
        state = cls(details_kept=1 << 62)
        for event in events:
            if getattr(event, "candidate_id", None) == candidate_id:
                state.apply(event)
        return state.candidates.get(candidate_id)

    # -- mutation -------------------------------------------------------------------
    def _touch(self, *topics: str) -> None:
        for t in topics:
            self.revision[t] += 1

    def _log(self, ts: float, level: str = "info", text: str = "", event: ev.Event | None = None) -> None:
        """Add a line: these words, or (``event``) the event's, written when the line is read."""
        self._log_seq += 1
        self.log.append(LogLine(self._log_seq, ts, level, text, event=event))
        self._touch("log")

    def apply(self, event: ev.Event) -> None:
        """Fold one event into the state (events of unknown kinds are ignored)."""
        self.events_applied += 1
        ts = float(getattr(event, "ts", 0.0) or 0.0)
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        self.leaderboard.update(event)
        self._dispatch(event)
        if has_line(event):
            self._log(ts, event=event)
        self._touch("status")

    def _dispatch(self, event: ev.Event) -> None:
        """The handler of ``event``'s class (the most frequent first); other events change nothing here."""
        match event:
            case ev.EpochFinished():
                self._on_epoch_finished(event)
            case ev.ResourceSample():
                self._on_resource_sample(event)
            case ev.CandidateFinished():
                self._on_candidate_finished(event)
            case ev.CandidateStarted():
                self._on_candidate_started(event)
            case ev.GenerationFinished():
                self._on_generation_finished(event)
            case ev.StateSaved():
                self._on_state_saved(event)
            case ev.TrainingResumed():
                self._on_training_resumed(event)
            case ev.Jump():
                self._on_jump(event)
            case ev.Paused():
                self._on_paused(event)
            case ev.Resumed():
                self._on_resumed(event)
            case ev.RunStarted():
                self._on_run_started(event)
            case ev.WarmupStarted():
                self._on_warmup_started(event)
            case ev.WarmupFinished():
                self._on_warmup_finished(event)
            case ev.Stopping():
                self._on_stop_requested(event)
            case ev.FinalStarted():
                self._on_final_started(event)
            case ev.FinalResult():
                self._on_final_result(event)
            case ev.RunFinished():
                self._on_run_finished(event)
            case ev.RunFailed():
                self._on_run_failed(event)
            case _:  # Log, and kinds without a panel of their own
                pass

    def request(self, command: Command) -> None:
        """Record a command the user issued (pause / resume / stop) until the engine confirms it."""
        if self.status in TERMINAL:
            return
        self.pending = command
        if command == "stop":
            self.status = STOPPING
        self._touch("status")

    def note(self, level: str, text: str) -> None:
        """Add a line to the log that no event carries (a command that failed, say)."""
        self._log(self.last_ts or 0.0, level, text)
        self._touch("status")

    def fail(self, error: str, ts: float | None = None) -> None:
        """Mark the run FAILED for a reason outside the journal (e.g. the handle itself broke)."""
        self.status = FAILED
        self.error = error
        self.pending = None
        self._log(ts if ts is not None else (self.last_ts or 0.0), "error", f"dashboard: {error}")
        self._touch("status")

    # -- handlers -------------------------------------------------------------------
    def _on_run_started(self, e: ev.RunStarted) -> None:
        self.run = e
        self.status = RUNNING
        self.error = None
        self.finish_reason = None
        self.pending = None
        self.warming_up = False
        self.budget = e.budget or self.budget
        self._rank_keys.clear()  # (its profile may rank ties otherwise)
        self._lose_in_flight()
        self._segment_ts = e.ts
        self._segment_trained = self.trained
        self._paused_since = None
        self._paused_seconds = 0.0
        self._last_progress_ts = e.ts
        self._touch("run", "resources")

    def _lose_in_flight(self) -> None:
        # Candidates in flight when a run segment ends are retrained on resume.
        for cand in self.in_flight.values():
            if cand.status == "running":
                cand.status = "interrupted"
        if self.in_flight:
            self._touch("candidates")
        self.in_flight.clear()

    def _candidate(self, cid: int) -> CandidateView:
        cand = self.candidates.get(cid)
        if cand is None:
            cand = self.candidates[cid] = CandidateView(candidate_id=cid)
        return cand

    def _on_candidate_started(self, e: ev.CandidateStarted) -> None:
        cand = self._candidate(e.candidate_id)
        cand.started, cand.record = e, None
        cand.status, cand.started_ts, cand.history = "running", e.ts, []
        cand.epochs, cand.resumed_at, cand.trimmed = 0, 0, False
        self._set_point(e.candidate_id, None)
        self._detailed.pop(e.candidate_id, None)
        self._rank_keys.pop(e.candidate_id, None)
        self.in_flight[e.candidate_id] = cand
        self.last_started = e.candidate_id
        self.generation = max(self.generation, e.generation)
        self.candidate_peak_mb = None
        self._touch("candidates", "cell")

    def _on_epoch_finished(self, e: ev.EpochFinished) -> None:
        cand = self._candidate(e.candidate_id)
        cand.history.append(e)
        if e.phase == "search":
            cand.epochs = max(cand.epochs, e.epoch)
            cand.max_epochs = e.max_epochs or cand.max_epochs
        self._touch("epochs")

    def _on_candidate_finished(self, e: ev.CandidateFinished) -> None:
        r = e.record  # (its fields directly: the event forwards each one, at a cost thousands feel)
        cid = r.candidate_id
        cand = self._candidate(cid)
        cand.record, cand.status = r, r.status
        cand.epochs = r.epochs
        cand.finished_ts = e.ts
        self.in_flight.pop(cid, None)
        self.generation = max(self.generation, r.generation)
        if e.budget:
            self.budget = e.budget
        self.trained = max(self.trained, r.trained)
        if r.status == "ok":
            self._last_progress_ts = e.ts
            self._touch("fitness")
        self._touch("candidates", "leaderboard", "cell")
        self._detailed.pop(cid, None)
        self._detailed[cid] = None
        self._rank_keys.pop(cid, None)
        fitness = cand.fitness
        if r.status == "ok" and fitness is not None:
            flops, params = cand.flops, cand.params
            self._set_point(cid, (cid, float(flops) if flops else None, float(params) if params else None, fitness))
        else:
            self._set_point(cid, None)
        if len(self._detailed) > 3 * self.details_kept:  # (a trim leaves at most 2 × details_kept)
            self._trim()

    def _set_point(self, cid: int, point: tuple[int, float | None, float | None, float] | None) -> None:
        old = self._points.get(cid)
        if point == old:
            return
        if old is not None:  # a point moved or went: the log starts again from every point there is
            self.points_epoch += 1
            if point is None:
                del self._points[cid]
            else:
                self._points[cid] = point
            self.points_log = list(self._points.values())
        else:
            assert point is not None
            self._points[cid] = point
            self.points_log.append(point)

    def _trim(self) -> None:
        """Let go of the start event and epochs of finished candidates that are neither among the
        ``details_kept`` most recent nor among the ``details_kept`` best (nor in flight again), and
        keep their record's light copy (``CandidateRecord.light``: no vector, the genotype as drawn)."""
        # The best now are among the best at the last trim and those finished since (all still whole).
        tie_break, keys = self.leaderboard.tie_break, self._rank_keys
        for cid in (*self._best, *self._detailed):
            if cid not in keys:
                record = self.candidates[cid].record
                keys[cid] = rank_key(record, tie_break) if record is not None and record.ok else None
        self._best = heapq.nsmallest(self.details_kept, (c for c, k in keys.items() if k is not None), key=keys.__getitem__)
        keep = set(self._best)
        finished = list(self._detailed)
        keep.update(finished[-self.details_kept:])
        for cid in finished:
            if cid in keep or cid in self.in_flight:
                continue
            del self._detailed[cid]
            cand = self.candidates[cid]
            record, started = cand.record, cand.started
            if record is not None:
                cand.record = record.light()
                self.leaderboard.replace_record(cand.record)
            # the start event's size and cost stay shown if the record has none (a failed candidate)
            if started is not None and (record is None or (record.params or not started.params)
                                        and (record.flops or not started.flops)):
                cand.started = None
            if cand.history:
                cand.history = []
            cand.trimmed = True
        for cid in [c for c in keys if c not in keep and c not in self._detailed]:
            del keys[cid]

    def _on_generation_finished(self, e: ev.GenerationFinished) -> None:
        self.generations[e.generation] = e
        self.generation = max(self.generation, e.generation)
        self.trained = max(self.trained, e.trained)
        if e.budget:
            self.budget = e.budget
        self._touch("fitness")

    def _on_jump(self, e: ev.Jump) -> None:
        self.jumps.append(e.generation)
        self._touch("fitness")

    def _on_resource_sample(self, e: ev.ResourceSample) -> None:
        self.resource = e
        used = e.gpu_mem_used_mb if e.gpu_mem_used_mb is not None else e.rss_mb
        if used is not None:
            self.memory_history.append(float(used))
        peak = e.peak_memory_mb if e.peak_memory_mb is not None else e.gpu_mem_used_mb
        if peak is not None and self.in_flight:
            self.candidate_peak_mb = max(self.candidate_peak_mb or 0.0, float(peak))
        self._touch("resources")

    def _on_paused(self, e: ev.Paused) -> None:
        if self.status not in TERMINAL and self.status != STOPPING:
            self.status = PAUSED
        if self.pending == "pause":
            self.pending = None
        self._paused_since = e.ts

    def _on_resumed(self, e: ev.Resumed) -> None:
        if self.status == PAUSED:
            self.status = RUNNING
        if self.pending in ("pause", "resume"):
            self.pending = None
        if self._paused_since is not None:
            self._paused_seconds += max(0.0, e.ts - self._paused_since)
            self._paused_since = None

    def _on_warmup_started(self, e: ev.WarmupStarted) -> None:
        self.warming_up = True

    def _on_warmup_finished(self, e: ev.WarmupFinished) -> None:
        self.warming_up = False

    def _on_training_resumed(self, e: ev.TrainingResumed) -> None:
        cand = self._candidate(e.candidate_id)
        cand.resumed_at = e.epoch
        if e.phase == "search":
            cand.epochs = max(cand.epochs, e.epoch)
            cand.max_epochs = e.max_epochs or cand.max_epochs
        self._touch("epochs", "cell")

    def _on_stop_requested(self, e: ev.Stopping) -> None:
        if self.status not in TERMINAL:
            self.status = STOPPING
        self.pending = None

    def _on_state_saved(self, e: ev.StateSaved) -> None:
        self.search_state = e
        self.trained = max(self.trained, e.trained)

    def _on_final_started(self, e: ev.FinalStarted) -> None:
        self.final = e
        self._touch("candidates")

    def _on_final_result(self, e: ev.FinalResult) -> None:
        self.final_results.append(e)
        self._candidate(e.candidate_id).finals.append(e)
        self._touch("candidates", "leaderboard")

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        self.status = FINISHED
        self.finish_reason = e.reason
        self.pending = None
        self.warming_up = False
        self.trained = max(self.trained, e.trained)
        self._lose_in_flight()
        self._touch("cell")

    def _on_run_failed(self, e: ev.RunFailed) -> None:
        self.status = FAILED
        self.warming_up = False
        self.error = e.error
        self.pending = None
        self._lose_in_flight()
        self._touch("cell")

    # -- derived views --------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def fitness_series(self) -> tuple[list[int], list[float], list[float], list[float]]:
        """Generations and their best / mean / worst fitness, in generation order."""
        gens = sorted(self.generations)
        rows = [self.generations[g] for g in gens]
        return gens, [r.best for r in rows], [r.mean for r in rows], [r.worst for r in rows]

    def scatter_points(self) -> list[tuple[int, float | None, float | None, float]]:
        """(candidate id, FLOPs, params, fitness) of every trained candidate with a fitness, in the
        order they finished (``points_log`` is the same list, kept)."""
        return list(self.points_log)

    def scatter_point(self, candidate_id: int) -> tuple[int, float | None, float | None, float] | None:
        """The scatter point of one candidate (as in ``scatter_points``), or None."""
        return self._points.get(candidate_id)

    def best(self) -> CandidateView | None:
        """The leaderboard's top candidate (``engine.records.rank_key``: one definition of best)."""
        top = self.leaderboard.best()
        return self.candidates.get(top.candidate_id) if top is not None else None

    def focus_candidate(self) -> CandidateView | None:
        """The candidate the Cell panel follows: the latest one training, else the best so far."""
        if self.in_flight:
            if self.last_started in self.in_flight:
                return self.in_flight[self.last_started]
            return next(reversed(self.in_flight.values()))
        best = self.best()
        if best is not None:
            return best
        if self.last_started is not None:
            return self.candidates.get(self.last_started)
        return None

    def eta_seconds(self) -> float | None:
        """Time left to the budget at the pace of the current run segment (event clock)."""
        if self.status in TERMINAL or not self.budget or self._segment_ts is None:
            return None
        done = self.trained - self._segment_trained
        if done <= 0 or self._last_progress_ts is None:
            return None
        paused = self._paused_seconds
        spent = self._last_progress_ts - self._segment_ts - paused
        if spent <= 0:
            return None
        return max(0.0, (self.budget - self.trained) * spent / done)

    def progress_text(self) -> str:
        return f"{self.trained}/{self.budget}" if self.budget else str(self.trained)

    def offset(self, ts: float) -> str:
        """A timestamp as an offset from the first event (stable across replays)."""
        return elapsed(ts - (self.first_ts or ts))

    def snapshot(self) -> dict[str, Any]:
        """Plain data of everything shown, for comparing two states (tests, replays)."""
        return {
            "status": self.status,
            "warming_up": self.warming_up,
            "pending": self.pending,
            "error": self.error,
            "finish_reason": self.finish_reason,
            "run": self.run.to_dict() if self.run else None,
            "generation": self.generation,
            "trained": self.trained,
            "budget": self.budget,
            "in_flight": sorted(self.in_flight),
            "candidates": {cid: c.snapshot() for cid, c in sorted(self.candidates.items())},
            "fitness": self.fitness_series(),
            "jumps": list(self.jumps),
            "resource": self.resource.to_dict() if self.resource else None,
            "memory_history": list(self.memory_history),
            "candidate_peak_mb": self.candidate_peak_mb,
            "search_state": self.search_state.to_dict() if self.search_state else None,
            "final_results": [f.to_dict() for f in self.final_results],
            "log": [(line.seq, line.ts, line.level, line.text) for line in self.log],
            "eta": self.eta_seconds(),
            "leaderboard": [_row_dict(r) for r in self.leaderboard.rows()],
        }


def _row_dict(row: Row) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(row)
