"""Run directories for the report tests: a synthetic journal (fast) and real tiny runs.

``synthetic_lines`` is what a run writes to its journal, with real
genotypes (``engine.space``): an opposition-based initialisation with an
infeasible, a duplicate, an out-of-memory and a failed candidate, three
generations with a generation jump, a crash and a resume (a gap in the
clock), resource samples, and a final phase over several seeds.

``make_real_runs`` starts three tiny real searches through the command line,
side by side: one runs to its budget, one is stopped with SIGINT and one is
killed with SIGKILL after their first trained candidate.

``write_synthetic_table`` writes a table (``engine.bench_table``) of the
synthetic journal's trained cells and a few cells the run never found.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import events as ev

from engine.bench_table import build_table, write_table
from engine.records import CandidateRecord
from engine.space import SearchSpace
from tiny_search import TINY

REPO = Path(__file__).resolve().parents[2]
T0 = 1_750_000_000.0
SEEDS = (0, 1, 2)
PROFILE = {
    "run": {"name": "synthetic", "seed": 42, "output_dir": "runs", "device": "cuda:0"},
    "search": {"population": 4, "budget": 14, "fitness": "val_acc", "jumping_rate": 0.3},
    "space": {"ops": "all", "stacks": [1, 2], "filters": [8, 16, 32]},
    "final": {"top_k": 2, "epochs": 5, "seeds": list(SEEDS)},
}


def _genotypes(n: int, seed: int) -> list[dict]:
    """``n`` distinct feasible genotypes and one infeasible one, decoded by the real search space."""
    space = SearchSpace()
    rng = np.random.default_rng(seed)
    found: dict[str, dict] = {}
    infeasible = None
    while len(found) < n or infeasible is None:
        g = space.decode(rng.random(29))
        if not g.feasible:
            infeasible = infeasible or g.to_dict()
        elif g.key not in found:
            found[g.key] = g.to_dict()
    return list(found.values()) + [infeasible]


class _Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self, dt: float = 1.0) -> float:
        self.t += dt
        return self.t


def synthetic_lines(final: bool = True, seeds: tuple[int, ...] = SEEDS, seed: int = 3) -> list[dict]:
    """The journal of a small search as the JSON objects of its lines (see the module docstring).

    Plain dicts in the journal's own format, so the same lines are read by
    ``engine.read_journal`` whatever the in-memory event classes are.
    """
    rng = np.random.default_rng(seed)
    genos = _genotypes(20, seed)
    infeasible = genos.pop()
    tick = _Clock()
    out: list[dict] = []
    trained = 0
    fitness: dict[int, float] = {}

    def emit(kind: str, dt: float, **fields) -> dict:
        line = {"kind": kind, "ts": tick(dt), **fields}
        out.append(line)
        return line

    def started(resumed: bool) -> None:
        emit("run_started", 0, run_name="synthetic", run_dir="runs/synthetic", dataset="adrenalmnist3d", size=28,
             device="cuda:0", budget=14, population=4, num_classes=2, task="binary-class", fitness="val_acc",
             resumed=resumed, pid=1234, profile=PROFILE)

    def sample(used: float) -> None:
        emit("resource_sample", 0.5, device="cuda:0", rss_mb=2000.0 + used / 10, gpu_name="H100",
             gpu_mem_used_mb=used, gpu_mem_total_mb=81559.0, gpu_util=50.0)

    def finished(cid: int, generation: int, phase: str, g: dict, status: str, **fields) -> None:
        emit("candidate_finished", fields.pop("dt", 0.1), candidate_id=cid, generation=generation, phase=phase,
             status=status, key=g.get("key"), genotype=g, vector=[0.5] * 29, worker="local:cuda:0",
             trained=trained, budget=14, **fields)

    def candidate(cid: int, generation: int, phase: str, status: str = "ok", dup_of: int | None = None) -> None:
        nonlocal trained
        g = infeasible if status == "infeasible" else genos[cid]
        params = int(10 ** rng.uniform(3.5, 6))
        flops = int(params * rng.uniform(800, 3000))
        if status == "infeasible":
            finished(cid, generation, phase, g, "infeasible", error=g.get("reason") or "infeasible")
            return
        if status == "duplicate":
            f = fitness[dup_of]
            finished(cid, generation, phase, genos[dup_of], "duplicate", fitness=f, val_acc=f, val_auc=f,
                     params=params, flops=flops, duplicate_of=dup_of)
            return
        emit("candidate_started", 0.2, candidate_id=cid, generation=generation, phase=phase, key=g["key"],
             genotype=g, params=params, flops=flops)
        if status in ("oom", "failed"):
            trained += 1
            finished(cid, generation, phase, g, status, dt=2.0, params=params, flops=flops,
                     peak_memory_mb=9000.0 if status == "oom" else None,
                     error="CUDA out of memory" if status == "oom" else "ValueError: boom")
            return
        acc = auc = 0.5
        for epoch in (1, 2, 3):
            acc = min(0.95, acc + float(rng.uniform(0.0, 0.12)))
            auc = min(0.98, auc + float(rng.uniform(0.0, 0.12)))
            emit("epoch_finished", 3.0, candidate_id=cid, epoch=epoch, train_loss=0.7 / epoch, val_loss=0.8 / epoch,
                 val_acc=acc, val_auc=auc, seconds=3.0, max_epochs=3)
            sample(1000.0 + 40 * cid + 5 * epoch)
        trained += 1
        fitness[cid] = round(acc, 2)  # rounded: ties in fitness exercise the tie-breaks
        finished(cid, generation, phase, g, "ok", fitness=fitness[cid], val_acc=fitness[cid], val_auc=auc,
                 params=params, flops=flops, epochs=3, seconds=9.0, peak_memory_mb=1500.0 + 10 * cid)

    def generation(g: int) -> None:
        best4 = sorted(fitness.values(), reverse=True)[:4]
        best_id = max(fitness, key=lambda c: (fitness[c], -c))
        emit("generation_finished", 0.1, generation=g, best=best4[0], mean=float(np.mean(best4)), worst=best4[-1],
             trained=trained, budget=14, best_candidate_id=best_id)

    started(resumed=False)
    sample(800.0)
    for cid in range(4):
        candidate(cid, 0, "init")
    candidate(4, 0, "init", status="infeasible")
    for cid in range(5, 8):
        candidate(cid, 0, "opposite")
    candidate(8, 0, "opposite", status="duplicate", dup_of=2)
    generation(0)
    candidate(9, 1, "trial")
    candidate(10, 1, "trial", status="oom")
    candidate(11, 1, "trial")
    # the run crashes here with #12 in flight; an hour later it is resumed
    emit("candidate_started", 0.2, candidate_id=12, generation=1, phase="trial", key=genos[12]["key"],
         genotype=genos[12])
    tick(3600.0)
    started(resumed=True)
    candidate(12, 1, "trial")
    candidate(13, 1, "trial", status="failed")
    emit("jump", 0.1, generation=1, proposed=4)
    candidate(14, 1, "jump")
    candidate(15, 1, "jump")
    generation(1)
    for cid in range(16, 19):
        candidate(cid, 2, "trial")
    generation(2)
    ok = [e for e in out if e["kind"] == "candidate_finished" and e["status"] == "ok"]
    if final:
        ranked = sorted(ok, key=lambda e: (-e["fitness"], -e["val_auc"], e["flops"], e["candidate_id"]))[:2]
        emit("final_started", 0.1, candidate_ids=[e["candidate_id"] for e in ranked], epochs=5, seeds=list(seeds))
        for e in ranked:
            for s in seeds:
                emit("final_result", 20.0, candidate_id=e["candidate_id"], key=e["key"], seed=s,
                     test_auc=float(rng.uniform(0.7, 0.9)), test_acc=float(rng.uniform(0.7, 0.9)),
                     val_acc=float(rng.uniform(0.7, 0.9)), params=e["params"], flops=e["flops"], epochs=5,
                     seconds=20.0)
    best = max(ok, key=lambda e: (e["fitness"], -e["candidate_id"]))
    emit("run_finished", 0.5, reason="budget", trained=trained, seconds=tick(0) - T0,
         best_candidate_id=best["candidate_id"], best_fitness=best["fitness"])
    return out


def synthetic_events(**kwargs) -> list[ev.Event]:
    """``synthetic_lines`` as event objects."""
    return [ev.event_from_dict(line) for line in synthetic_lines(**kwargs)]


def write_journal(run_dir: Path, lines: list[dict], torn: str = "") -> Path:
    """``run_dir/events.jsonl`` holding ``lines`` (and ``torn``, a line cut short by a crash)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line) + "\n")
        fh.write(torn)
    return run_dir


# The cells a table holds beyond the synthetic run's: one better than any the run found (0.97 is
# above its 0.95 ceiling), one pruned whose raw fitness is higher still (the search is told 0 for it).
UNSEEN = ((0.97, "ok"), (0.99, "pruned"), (0.30, "ok"))
TABLE_OPTIMUM = 0.97


def write_synthetic_table(path: Path, fitness: str = "val_acc") -> Path:
    """A table of the synthetic journal's trained cells plus ``UNSEEN``, built with ``fitness``."""
    records = {}
    for line in synthetic_lines(final=False):
        if line["kind"] != "candidate_finished" or line["status"] != "ok":
            continue
        acc, auc = line["val_acc"], line["val_auc"]
        records[line["candidate_id"]] = CandidateRecord(
            line["candidate_id"], line["generation"], line["phase"], "ok", key=line["key"], genotype=line["genotype"],
            fitness=acc if fitness == "val_acc" else auc, val_acc=acc, val_auc=auc, params=line["params"],
            flops=line["flops"], epochs=1, seconds=1.0, trained=line["trained"],
            history=[{"epoch": 1, "train_loss": 0.5, "val_loss": 0.5, "val_acc": acc, "val_auc": auc, "seconds": 1.0}])
    for i, (f, status) in enumerate(UNSEEN):
        records[100 + i] = CandidateRecord(
            100 + i, 9, "exhaustive", status, key=f"unseen-{i}", fitness=f, val_acc=f, val_auc=f, params=1000,
            flops=10**6, epochs=1, seconds=1.0, pruned_at=1 if status == "pruned" else None,
            history=[{"epoch": 1, "train_loss": 0.5, "val_loss": 0.5, "val_acc": f, "val_auc": f, "seconds": 1.0}])
    profile = {**PROFILE, "search": {**PROFILE["search"], "fitness": fitness, "strategy": "exhaustive"},
               "data": {"dataset": "adrenalmnist3d", "size": 28}, "training": {"epochs": 1}}
    write_table(build_table(profile, records, command="report_runs.write_synthetic_table", run_dir="-",
                            space_cells=None), path)
    return path


# -- real tiny runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class RealRun:
    """A run directory made by a real ``nas3d-tui run --headless`` and how its process ended."""

    run_dir: Path
    returncode: int
    ending: str  # finished | stopped | killed


def _launch(run_dir: Path, *extra: str) -> subprocess.Popen:
    sets = [a for t in TINY + list(extra) for a in ("--set", t)]
    cmd = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run_dir), *sets]
    with open(run_dir.parent / f"{run_dir.name}.log", "wb") as log:
        return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def _wait_trained(run_dir: Path, proc: subprocess.Popen, timeout: float) -> None:
    journal = run_dir / "events.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before training a candidate")
        if journal.exists() and any('"status":"ok"' in line and "candidate_finished" in line
                                    for line in journal.read_text(errors="replace").splitlines()):
            return
        time.sleep(0.1)
    raise AssertionError(f"no trained candidate in {journal} after {timeout:.0f}s")


def make_real_runs(root: Path) -> dict[str, RealRun]:
    """Three tiny real runs under ``root`` (finished, stopped, killed), made side by side."""
    dirs = {name: root / name for name in ("finished", "stopped", "killed")}
    procs = {
        "finished": _launch(dirs["finished"]),
        # a budget they cannot reach before the signal
        "stopped": _launch(dirs["stopped"], "search.budget=200"),
        "killed": _launch(dirs["killed"], "search.budget=200"),
    }
    try:
        for name, sig in (("stopped", signal.SIGINT), ("killed", signal.SIGKILL)):
            _wait_trained(dirs[name], procs[name], timeout=150)
            os.kill(procs[name].pid, sig)
        codes = {name: p.wait(timeout=150) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    logs = {name: (root / f"{name}.log").read_text(errors="replace")[-2000:] for name in dirs}
    assert codes["finished"] == 0, logs["finished"]
    assert codes["stopped"] == 130, logs["stopped"]
    assert codes["killed"] == -signal.SIGKILL, logs["killed"]
    return {name: RealRun(dirs[name], codes[name], name) for name in dirs}
