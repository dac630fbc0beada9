"""A hand-written, deterministic journal of a small search, built from the real event classes.

``build_journal`` writes what a ``quick`` run on AdrenalMNIST3D emits: an
opposition-based initialisation (with an infeasible, a duplicate and an
out-of-memory candidate), DE generations with a generation jump, a pause,
checkpoints, resource samples, the final phase and the run end. Timestamps
come from a fixed clock so screens built from it are stable.
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import random
from pathlib import Path

import pytest

from engine import events as ev

from engine.journal import JournalSink
from tui.screentext import screen_text

T0 = 1_700_000_000.0


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests (Textual pilots) on a fresh event loop; no asyncio plugin needed."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None

# (matrix, ops, stacks, modules, filters, params, flops) — pruned cells, input first, output last
CELLS = [
    ([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], [4, 9, 10], 1, 1, 8, 14_402, 9_830_400),
    ([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [0, 3], 1, 2, 16, 88_210, 71_303_168),
    ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [2], 2, 1, 8, 30_114, 20_447_232),
    (
        [
            [0, 1, 0, 0, 0, 0, 1],
            [0, 0, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        [0, 3, 6, 9, 14],
        3,
        3,
        32,
        1_502_977,
        2_415_919_104,
    ),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [12], 1, 1, 8, 7_650, 3_538_944),
    ([[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [7, 13], 2, 2, 16, 251_042, 188_743_680),
    ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [5, 11], 1, 3, 8, 61_882, 47_185_920),
]


def genotype(index: int) -> dict:
    """The genotype dict of ``CELLS[index]`` as the engine publishes it."""
    matrix, ops, s, m, f, *_ = CELLS[index]
    key = hashlib.md5(json.dumps([matrix, ops, s, m, f]).encode()).hexdigest()
    edges = " ".join(f"{i}{j}" for i, row in enumerate(matrix) for j, x in enumerate(row) if x)
    return {
        "matrix": matrix,
        "ops": ops,
        "n_stacks": s,
        "n_modules": m,
        "n_filters": f,
        "feasible": True,
        "reason": None,
        "key": key,
        "compact": f"S{s}M{m}F{f} {','.join(map(str, ops))} {edges}",
    }


INFEASIBLE = {
    "matrix": [],
    "ops": [],
    "n_stacks": 1,
    "n_modules": 1,
    "n_filters": 8,
    "feasible": False,
    "reason": "input does not reach output",
    "key": None,
    "compact": "S1M1F8 infeasible (input does not reach output)",
}


class _Recorder:
    def __init__(self, cpu: bool, seed: int) -> None:
        self.t = T0
        self.events: list[ev.Event] = []
        self.cpu = cpu
        self.rng = random.Random(seed)
        self.trained = 0
        self.next_id = 0
        self.fitness: dict[int, float] = {}

    def generation(self, generation: int, population: int = 4) -> None:
        """GenerationFinished over the best ``population`` results so far (the DE survivors)."""
        ranked = sorted(self.fitness.items(), key=lambda kv: (-kv[1], kv[0]))[:population]
        values = [f for _, f in ranked]
        self.emit(ev.GenerationFinished, 0.1, generation=generation, best=values[0], mean=round(sum(values) / len(values), 4),
                  worst=values[-1], trained=self.trained, budget=12, best_candidate_id=ranked[0][0])

    def emit(self, event_cls, dt: float = 1.0, **fields) -> ev.Event:
        self.t += dt
        if event_cls is ev.CandidateFinished:  # a record's fields, checked as the journal reader checks them
            e = ev.CandidateFinished.from_fields(dict(fields, ts=self.t))
        else:
            e = event_cls(ts=self.t, **fields)
        self.events.append(e)
        return e

    def sample(self, peak: float | None = None) -> None:
        if self.cpu:
            self.emit(ev.ResourceSample, 0.5, device="cpu", rss_mb=700 + len(self.events) % 97, note="CPU")
        else:
            used = 1200 + (len(self.events) * 37) % 900
            self.emit(
                ev.ResourceSample,
                0.5,
                device="cuda:0",
                rss_mb=2100.0,
                gpu_name="NVIDIA H100 80GB HBM3",
                gpu_mem_used_mb=float(used),
                gpu_mem_total_mb=81559.0,
                gpu_util=55.0 + len(self.events) % 40,
                peak_memory_mb=peak,
                note="NVML",
                devices=[{"index": 0, "name": "NVIDIA H100 80GB HBM3", "used_mb": float(used), "total_mb": 81559.0, "util": 60.0}],
            )

    def candidate(self, generation: int, phase: str, cell: int, status: str = "ok", duplicate_of: int | None = None, epochs: int = 3) -> int:
        cid = self.next_id
        self.next_id += 1
        budget = 12
        if status == "infeasible":
            self.emit(ev.CandidateFinished, 0.1, candidate_id=cid, generation=generation, phase=phase, key="", genotype=INFEASIBLE, status="infeasible", trained=self.trained, budget=budget)
            return cid
        g = genotype(cell)
        params, flops = CELLS[cell][5], CELLS[cell][6]
        if status == "duplicate":
            self.emit(
                ev.CandidateFinished, 0.1, candidate_id=cid, generation=generation, phase=phase, key=g["key"], genotype=g,
                status="duplicate", fitness=0.7, val_acc=0.7, val_auc=0.75, params=params, flops=flops,
                duplicate_of=duplicate_of, trained=self.trained, budget=budget,
            )
            return cid
        worker = "cuda:0" if not self.cpu else "local"
        self.emit(ev.CandidateStarted, 0.2, candidate_id=cid, generation=generation, phase=phase, key=g["key"], genotype=g,
                  vector=[round(self.rng.random(), 3) for _ in range(29)], params=params, flops=flops, worker=worker)
        if status == "oom":
            self.sample(peak=24000.0)
            self.emit(ev.CandidateFinished, 2.0, candidate_id=cid, generation=generation, phase=phase, key=g["key"], genotype=g,
                      status="oom", params=params, flops=flops, seconds=2.0, peak_memory_mb=24000.0,
                      error="CUDA out of memory. Tried to allocate 2.00 GiB", worker=worker, trained=self.trained, budget=budget)
            return cid
        acc = 0.5
        auc = 0.5
        for epoch in range(1, epochs + 1):
            acc = min(0.95, acc + self.rng.uniform(0.02, 0.12))
            auc = min(0.98, auc + self.rng.uniform(0.03, 0.12))
            self.emit(ev.EpochFinished, 4.0, candidate_id=cid, epoch=epoch, train_loss=round(0.7 / epoch, 4),
                      val_loss=round(0.75 / epoch + 0.05, 4), val_acc=round(acc, 4), val_auc=round(auc, 4), seconds=4.0, max_epochs=epochs)
            self.sample(peak=300.0 + cell * 50)
        self.trained += 1
        self.fitness[cid] = round(acc, 4)
        self.emit(ev.CandidateFinished, 0.1, candidate_id=cid, generation=generation, phase=phase, key=g["key"], genotype=g,
                  status="ok", fitness=round(acc, 4), val_acc=round(acc, 4), val_auc=round(auc, 4), params=params, flops=flops,
                  epochs=epochs, seconds=4.0 * epochs, peak_memory_mb=300.0 + cell * 50, worker=worker, trained=self.trained, budget=budget)
        return cid


def build_journal(cpu: bool = False, seed: int = 7, end: str = "finished") -> list[ev.Event]:
    """The journal of a small search.

    Args:
        cpu: resource samples without CUDA.
        end: ``finished`` (final phase + RunFinished), ``running`` (cut while a
            candidate trains in generation 2), or ``failed`` (RunFailed mid-run).
    """
    r = _Recorder(cpu, seed)
    r.emit(ev.RunStarted, 0.0, run_name="quick", run_dir="runs/quick-0001", dataset="adrenalmnist3d", size=28,
           device="cpu" if cpu else "cuda:0", budget=12, population=4, num_classes=2, task="binary-class",
           fitness="val_acc", pid=4242, profile={"search": {"population": 4, "budget": 12, "time_budget_minutes": 0}})
    r.sample()
    r.emit(ev.Log, 0.1, message="loaded adrenalmnist3d (28³): 1188 train / 98 val / 298 test")
    # opposition-based initialisation: a population and its opposites
    ids = [r.candidate(0, "init", c) for c in (0, 1, 2)]
    r.candidate(0, "init", 0, status="infeasible")
    r.candidate(0, "opposite", 3, status="oom")
    r.candidate(0, "opposite", 0, status="duplicate", duplicate_of=ids[0])
    r.candidate(0, "opposite", 4)
    r.generation(0)
    r.emit(ev.StateSaved, 0.1, path="runs/quick-0001/checkpoint.json", trained=r.trained, generation=0)
    # generation 1, paused in the middle
    r.candidate(1, "trial", 5)
    r.emit(ev.Paused, 0.5)
    r.emit(ev.Resumed, 30.0)
    r.candidate(1, "trial", 6)
    r.candidate(1, "trial", 2, epochs=2)
    r.generation(1)
    r.emit(ev.Jump, 0.1, generation=1, proposed=4)
    r.candidate(1, "jump", 1)
    r.emit(ev.StateSaved, 0.1, path="runs/quick-0001/checkpoint.json", trained=r.trained, generation=1)
    if end == "failed":
        r.emit(ev.CandidateStarted, 0.2, candidate_id=r.next_id, generation=2, phase="trial", key=genotype(5)["key"],
               genotype=genotype(5), params=CELLS[5][5], flops=CELLS[5][6])
        r.emit(ev.RunFailed, 1.0, error="RuntimeError: CUDA error: an illegal memory access was encountered")
        return r.events
    r.candidate(2, "trial", 3)
    r.candidate(2, "trial", 4)
    if end == "running":
        g = genotype(5)
        r.emit(ev.CandidateStarted, 0.2, candidate_id=r.next_id, generation=2, phase="trial", key=g["key"], genotype=g,
               params=CELLS[5][5], flops=CELLS[5][6], worker="cpu" if cpu else "cuda:0")
        r.emit(ev.EpochFinished, 4.0, candidate_id=r.next_id, epoch=1, train_loss=0.61, val_loss=0.66, val_acc=0.64, val_auc=0.7, seconds=4.0, max_epochs=3)
        r.sample(peak=420.0)
        return r.events
    r.candidate(2, "trial", 5)
    r.generation(2)
    r.emit(ev.StateSaved, 0.1, path="runs/quick-0001/checkpoint.json", trained=r.trained, generation=2)
    best = sorted(
        (e for e in r.events if isinstance(e, ev.CandidateFinished) and e.status == "ok"),
        key=lambda e: -(e.fitness or 0),
    )[:2]
    r.emit(ev.FinalStarted, 0.1, candidate_ids=[e.candidate_id for e in best], epochs=2, seeds=[0])
    for e in best:
        for epoch in (1, 2):
            r.emit(ev.EpochFinished, 6.0, candidate_id=e.candidate_id, epoch=epoch, train_loss=0.3, val_loss=0.35,
                   val_acc=0.8, val_auc=0.85, seconds=6.0, max_epochs=2, phase="final")
        r.emit(ev.FinalResult, 0.1, candidate_id=e.candidate_id, key=e.key, seed=0, test_auc=0.871, test_acc=0.812,
               val_acc=e.val_acc or 0.0, params=e.params or 0, flops=e.flops or 0, epochs=2, seconds=12.0,
               weights_path=f"runs/quick-0001/final/{e.candidate_id}-seed0.pt", genotype_path=f"runs/quick-0001/final/{e.candidate_id}.json")
    r.emit(ev.RunFinished, 0.5, reason="budget", trained=r.trained, seconds=r.t - T0, best_candidate_id=best[0].candidate_id,
           best_fitness=best[0].fitness)
    return r.events


@pytest.fixture
def journal() -> list[ev.Event]:
    return build_journal()


@pytest.fixture
def running_journal() -> list[ev.Event]:
    return build_journal(end="running")


@pytest.fixture
def cpu_journal() -> list[ev.Event]:
    return build_journal(cpu=True, end="running")


@pytest.fixture
def failed_journal() -> list[ev.Event]:
    return build_journal(end="failed")


def write_run_dir(path: Path, events: list[ev.Event]) -> Path:
    """A run directory holding ``events`` as its journal."""
    path.mkdir(parents=True, exist_ok=True)
    sink = JournalSink(path / "events.jsonl")
    for e in events:
        sink(e)
    sink.close()
    return path




async def settle(app, pilot, timeout: float = 120.0) -> None:
    """Wait until a replay handle delivered everything and the dashboard drew it.

    The wait ends as soon as the last event is delivered; the long bound only matters on a machine so
    busy that the replay thread is starved (a 5 s bound let a test read a half-replayed journal at load 7).
    """
    wait = getattr(app.handle, "wait", None)
    if wait is not None:
        assert wait(timeout), f"the replay did not deliver its journal within {timeout} s"
    await pilot.pause()
    app.drain_now()
    # A redraw takes several hops (a widget's idle -> a layout message to the screen -> the compositor) and
    # one pause can end between two of them on a busy machine, leaving a screen laid out for the old
    # content (a status line one row short). Pause until the screen stays the same three times in a row.
    previous, same = None, 0
    for _ in range(30):
        await pilot.pause()
        current = screen_text(app)
        same = same + 1 if current == previous else 0
        if same == 2:
            break
        previous = current


# Test modules take these through fixtures (``import conftest`` is ambiguous next to tests/conftest.py).
@pytest.fixture
def make_journal():
    return build_journal


@pytest.fixture
def make_run_dir():
    return write_run_dir


@pytest.fixture
def ui():
    """Helpers for pilot tests: ``ui.screen_text(app)``, ``await ui.settle(app, pilot)``."""
    from types import SimpleNamespace

    return SimpleNamespace(screen_text=screen_text, settle=settle)
