"""Several candidates at once: the local worker pool and the Ray backend on the CPU.

Same fitness and same leaderboard as a sequential run, stop and resume, a
worker killed mid-candidate (retried once, then ``failed``), an out-of-memory
error while sharing a device (retried alone), Ray on 2 CPUs, Ray missing.

Thread count: on the CPU the torch thread count changes the float summation
order of the convolutions, so every sequential reference here runs with the
thread count the parallel workers use (``cores // workers`` for the local
pool, 1 for Ray tasks).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import events as ev
from engine.control import Control, StopRequested
from engine.data import load_dataset
from engine.evaluator import Job, SequentialEvaluator, candidate_seed
from engine.leaderboard import Leaderboard
from engine.parallel import LocalPoolEvaluator, available_cores, check_executor, plan_workers
from engine.profile import load_profile
from engine.session import Session, SessionError
from engine.space import SearchSpace
from engine.train import TrainConfig
from tiny_search import TINY

pytestmark = pytest.mark.timeout(300)

WORKERS = 2
POOL_THREADS = max(1, available_cores() // WORKERS)
OOM_ID = 1000  # the candidate the pool below fails with a (simulated) CUDA OOM whenever it shares the device


@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -------------------------------------------------------------------------------- evaluator level


@pytest.fixture(scope="module")
def data():
    return load_dataset("adrenalmnist3d").search_subset(0.1, 42)


@pytest.fixture(scope="module")
def config():
    # three short epochs: a worker killed after the first still has two to go
    return TrainConfig(epochs=3, patience=0, max_batches_per_epoch=1, batch_size=32, fitness="val_auc")


@pytest.fixture(scope="module")
def genotypes():
    space = SearchSpace(ops=(0, 3, 9, 12), stacks=(1,), modules=(1,), filters=(8,))
    rng = np.random.default_rng(7)
    out = []
    while len(out) < 5:
        g = space.decode(rng.random(space.dim))
        if g.feasible and all(g.key != o.key for o in out):
            out.append(g)
    return out


def make_jobs(genotypes, ids):
    return [Job(candidate_id=cid, genotype=g, seed=candidate_seed(42, cid)) for cid, g in zip(ids, genotypes)]


class Recorder:
    """Collects the callbacks and checks they run on the calling thread."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.log: list[tuple] = []
        self.results: dict[int, object] = {}
        self.workers: dict[int, str] = {}
        self.hooks: dict[str, object] = {}

    def on_start(self, job, worker):
        assert threading.get_ident() == self.thread
        self.log.append(("start", job.candidate_id, worker))
        if "start" in self.hooks:
            self.hooks["start"](job, worker)

    def on_epoch(self, job, record):
        assert threading.get_ident() == self.thread
        self.log.append(("epoch", job.candidate_id, record["epoch"]))
        if "epoch" in self.hooks:
            self.hooks["epoch"](job, record)

    def on_done(self, job, result, worker):
        assert threading.get_ident() == self.thread
        self.log.append(("done", job.candidate_id, worker))
        self.results[job.candidate_id] = result
        self.workers[job.candidate_id] = worker
        if "done" in self.hooks:
            self.hooks["done"](job, result, worker)

    def run(self, evaluator, jobs):
        evaluator.evaluate(jobs, self.on_start, self.on_epoch, self.on_done)
        return self


def losses(result) -> list[tuple]:
    return [(h["train_loss"], h["val_loss"], h["val_auc"]) for h in result.history]


def sequential(data, config, jobs, threads):
    with torch_threads(threads):
        return Recorder().run(SequentialEvaluator(data, config, "cpu"), jobs).results


@pytest.fixture(scope="module")
def pool(data, config):
    evaluator = LocalPoolEvaluator(data, config, "cpu", workers=WORKERS, simulate_oom=[OOM_ID])
    yield evaluator
    evaluator.close()
    assert not any(w.proc for w in evaluator._workers)


@pytest.fixture(scope="module")
def reference(data, config, genotypes):
    """``reference(i, cid)``: the sequential result of genotype i trained as candidate cid (cached),
    with the pool's thread count."""
    cache: dict[tuple[int, int], object] = {}

    def get(i: int, cid: int):
        if (i, cid) not in cache:
            cache[(i, cid)] = sequential(data, config, make_jobs([genotypes[i]], [cid]), POOL_THREADS)[cid]
        return cache[(i, cid)]

    return get


def test_plan_spreads_workers_over_gpus_and_splits_cpu_cores():
    slots = plan_workers("cuda:0", 2, 2, "auto", cuda_devices=2, cores=16)
    assert [(s.name, s.device) for s in slots] == [
        ("w1.1:cuda:0", "cuda:0"), ("w1.2:cuda:0", "cuda:0"), ("w2.1:cuda:1", "cuda:1"), ("w2.2:cuda:1", "cuda:1")]
    assert all(s.threads == 4 for s in slots)
    assert [s.device for s in plan_workers("cuda:1", 2, 1, "cuda:1", cuda_devices=4)] == ["cuda:1", "cuda:1"]
    cpu = plan_workers("cpu", 3, 4, "cpu", cores=8)
    assert [(s.name, s.threads) for s in cpu] == [("w1:cpu", 2), ("w2:cpu", 2), ("w3:cpu", 2)]


def test_two_workers_give_the_sequential_fitness_and_the_pool_persists(pool, genotypes, reference):
    jobs = make_jobs(genotypes[:4], [100, 101, 102, 103])
    rec = Recorder().run(pool, jobs)
    assert sorted(rec.results) == [100, 101, 102, 103]
    for i, job in enumerate(jobs):
        got, want = rec.results[job.candidate_id], reference(i, job.candidate_id)
        assert got.status == "ok" and got.fitness == want.fitness and losses(got) == losses(want)
    assert set(rec.workers.values()) == {"w1:cpu", "w2:cpu"}  # both workers trained
    epochs = [e for e in rec.log if e[0] == "epoch"]
    assert len(epochs) == 4 * 3
    pids = pool.worker_pids()
    assert len(pids) == 2 and os.getpid() not in pids.values()
    # a second batch runs on the same (persistent) processes
    rec2 = Recorder().run(pool, make_jobs(genotypes[4:5], [104]))
    assert losses(rec2.results[104]) == losses(reference(4, 104))
    assert pool.worker_pids() == pids


def test_oom_while_sharing_is_retried_alone(pool, genotypes, reference):
    jobs = make_jobs(genotypes[:3], [OOM_ID, 201, 202])
    pool.trace.clear()
    rec = Recorder().run(pool, jobs)
    assert rec.results[OOM_ID].status == "ok" and losses(rec.results[OOM_ID]) == losses(reference(0, OOM_ID))
    trace = pool.trace
    assert ("oom-retry", OOM_ID) in [(t[0], t[1]) for t in trace]
    start = next(i for i, t in enumerate(trace) if t[:2] == ("start", OOM_ID) and t[4])  # the alone attempt
    end = next(i for i, t in enumerate(trace) if t[:2] == ("done", OOM_ID))
    running_before = {t[1] for t in trace[:start] if t[0] == "start"} - {t[1] for t in trace[:start] if t[0] in ("done", "oom-retry")}
    assert running_before == set(), "the retry started while another candidate was running"
    assert not [t for t in trace[start + 1:end] if t[0] == "start"], "a candidate started beside the alone retry"
    assert all(rec.results[c].status == "ok" for c in (201, 202))


def test_oom_with_the_device_to_itself_is_reported_oom(pool, genotypes):
    rec = Recorder().run(pool, make_jobs(genotypes[:1], [OOM_ID]))
    result = rec.results[OOM_ID]
    assert result.status == "oom" and result.fitness is None and "out of memory" in result.error


def test_worker_killed_mid_candidate_is_retried_once(pool, genotypes, reference):
    rec = Recorder()
    killed = []

    def kill_after_first_epoch(job, record):
        if job.candidate_id == 301 and record["epoch"] == 1 and not killed:
            worker = [e[2] for e in rec.log if e[:2] == ("start", 301)][-1]
            os.kill(pool.worker_pids()[worker], signal.SIGKILL)
            killed.append(worker)

    rec.hooks["epoch"] = kill_after_first_epoch
    pool.trace.clear()
    rec.run(pool, make_jobs(genotypes[:3], [300, 301, 302]))
    assert killed and ("died", 301) in [t[:2] for t in pool.trace]
    assert [e[0] for e in rec.log if e[1] == 301].count("start") == 2
    assert rec.results[301].status == "ok" and losses(rec.results[301]) == losses(reference(1, 301))
    assert all(rec.results[c].status == "ok" for c in (300, 302))
    assert len(pool.worker_pids()) == 2  # the dead worker was replaced


def test_worker_killed_twice_reports_failed(pool, genotypes):
    rec = Recorder()

    def kill_on_start(job, worker):
        if job.candidate_id == 401:
            os.kill(pool.worker_pids()[worker], signal.SIGKILL)

    rec.hooks["start"] = kill_on_start
    rec.run(pool, make_jobs(genotypes[:3], [400, 401, 402]))
    failed = rec.results[401]
    assert failed.status == "failed" and failed.fitness is None and "died twice" in failed.error
    assert rec.results[400].status == "ok" and rec.results[402].status == "ok"


def test_stop_raises_after_reporting_finished_candidates(pool, genotypes):
    control = Control()
    pool.control = control
    try:
        rec = Recorder()
        rec.hooks["done"] = lambda job, result, worker: control.stop()
        with pytest.raises(StopRequested):
            rec.run(pool, make_jobs(genotypes, [500, 501, 502, 503, 504]))
        assert 1 <= len(rec.results) < 5
        assert all(r.status == "ok" for r in rec.results.values())
    finally:
        pool.control = None


def test_pause_holds_new_candidates_until_resume(pool, genotypes):
    control = Control()
    control.pause()
    pool.control = control
    try:
        rec = Recorder()
        timer = threading.Timer(1.0, lambda: (rec.log.append(("resumed",)), control.resume()))
        timer.start()
        rec.run(pool, make_jobs(genotypes[:2], [600, 601]))
        timer.join()
        assert rec.log[0] == ("resumed",)  # nothing started while paused
        assert sorted(rec.results) == [600, 601]
    finally:
        pool.control = None


# -------------------------------------------------------------------------------- session level


def tiny_profile(*extra: str):
    return load_profile("quick", TINY + list(extra))


def board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(ev.read_journal(run_dir / "events.jsonl")).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status) for r in rows]


def run_session(run_dir: Path, *extra: str, control: Control | None = None):
    session = Session(tiny_profile(*extra), run_dir, control=control)
    got: list[ev.Event] = []
    session.bus.subscribe(got.append)
    return session, session.run(), got


_BOARDS: dict[int, list[tuple]] = {}


def sequential_board(tmp_path_factory, threads: int) -> list[tuple]:
    """The leaderboard of a sequential tiny run made with ``threads`` torch threads (cached)."""
    if threads not in _BOARDS:
        run_dir = tmp_path_factory.mktemp(f"seq{threads}") / "run"
        with torch_threads(threads):
            _, outcome, _ = run_session(run_dir)
        assert outcome.state == "finished"
        _BOARDS[threads] = board(run_dir)
    return _BOARDS[threads]


def test_session_with_two_workers_ends_with_the_sequential_leaderboard(tmp_path, tmp_path_factory):
    _, outcome, events = run_session(tmp_path / "par", "executor.workers=2")
    assert outcome.state == "finished"
    started = {e.worker for e in events if isinstance(e, ev.CandidateStarted)}
    assert started == {"w1:cpu", "w2:cpu"}
    finished = [e for e in events if isinstance(e, ev.CandidateFinished) and e.status in ("ok", "oom", "failed")]
    assert len(finished) == 8 and all(e.worker in started for e in finished)
    assert board(tmp_path / "par") == sequential_board(tmp_path_factory, POOL_THREADS)


def test_session_stopped_during_parallel_evaluation_resumes_to_the_same_leaderboard(tmp_path, tmp_path_factory):
    run_dir = tmp_path / "stopped"
    control = Control()

    def stop_after_three(event):
        if isinstance(event, ev.CandidateFinished) and event.trained >= 3:
            control.stop()

    session = Session(tiny_profile("executor.workers=2"), run_dir, control=control)
    session.bus.subscribe(stop_after_three)
    outcome = session.run()
    assert outcome.state == "stopped"
    assert 3 <= session.trained < 8
    resumed = Session.resume_from(run_dir)
    assert resumed.run().state == "finished"
    assert board(run_dir) == sequential_board(tmp_path_factory, POOL_THREADS)


# -------------------------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nas3d-tui[ray]')")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_backend_gives_the_sequential_leaderboard_on_two_cpus(ray_instance, tmp_path, tmp_path_factory):
    _, outcome, events = run_session(tmp_path / "ray", "executor.kind='ray'", "executor.workers=2")
    assert outcome.state == "finished", outcome
    workers = {e.worker for e in events if isinstance(e, ev.CandidateFinished) and e.status == "ok"}
    assert workers and all(w.startswith("ray:") and w.endswith(":cpu") for w in workers)
    epochs = [e for e in events if isinstance(e, ev.EpochFinished)]
    assert len(epochs) == 8  # one epoch per trained candidate, each reported once
    assert board(tmp_path / "ray") == sequential_board(tmp_path_factory, 1)  # Ray tasks train with 1 thread


def test_ray_oom_while_sharing_is_retried_alone(ray_instance, data, config, genotypes, reference):
    from engine.ray_backend import RayEvaluator

    evaluator = RayEvaluator(data, config, "cpu", workers=2, simulate_oom=[OOM_ID])
    try:
        rec = Recorder().run(evaluator, make_jobs(genotypes[:2], [OOM_ID, 701]))
    finally:
        evaluator.close()
    assert ("oom-retry", OOM_ID) in [t[:2] for t in evaluator.trace]
    assert rec.results[OOM_ID].status == "ok" and rec.results[701].status == "ok"
    if POOL_THREADS == 1:  # Ray tasks train with 1 thread
        assert losses(rec.results[OOM_ID]) == losses(reference(0, OOM_ID))


def test_ray_missing_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    profile = tiny_profile("executor.kind='ray'")
    with pytest.raises(SessionError, match=r"needs Ray.*pip install") as info:
        check_executor(profile.executor)
    assert "\n" not in str(info.value)
    with pytest.raises(SessionError, match="needs Ray"):
        Session(profile, tmp_path / "run").run()  # before the run starts: the CLI exits 2

    from nas3d_tui.cli import main

    args = ["run", "quick", "--headless", "--run-dir", str(tmp_path / "cli")]
    for s in TINY + ["executor.kind='ray'"]:
        args += ["--set", s]
    assert main(args) == 2


# -------------------------------------------------------------------------------- CUDA (skipped by default: -m gpu)


@pytest.mark.gpu
def test_cuda_pool_shares_each_gpu_and_retries_an_oom_alone(data, config, genotypes):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    gpus = torch.cuda.device_count()
    pool = LocalPoolEvaluator(data, config, "cuda:0", workers=gpus, per_gpu=2, simulate_oom=[OOM_ID])
    try:
        rec = Recorder().run(pool, make_jobs(genotypes[:4], [OOM_ID, 801, 802, 803]))
    finally:
        pool.close()
    assert all(r.status == "ok" for r in rec.results.values())
    assert {w.split(":", 1)[1] for w in rec.workers.values()} <= {f"cuda:{i}" for i in range(gpus)}
    assert ("oom-retry", OOM_ID) in [t[:2] for t in pool.trace]
    assert all(r.peak_memory_mb for r in rec.results.values())  # per-process CUDA peak, per candidate
