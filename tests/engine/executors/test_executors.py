"""One behaviour suite for every executor: sequential, threads, worker processes and Ray.

The same cases run against each backend (a case that cannot happen on a
backend is skipped with the reason): every job trains to the sequential
result; a candidate that runs out of memory while sharing its device is
retried alone; a worker that dies is retried once, then the candidate is
``failed``; pause holds new candidates and is reported when the engine
actually waits; stop reports what finished; and at the session level a run
ends with the sequential leaderboard, also after a stop and a resume.

Thread count: on the CPU the torch thread count changes the float summation
order of the convolutions, so every sequential reference runs with the
thread count the backend trains with (``cores // workers`` for worker
processes, 1 for Ray tasks, the process's count for threads).
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import events as ev

from engine.journal import read_journal
from engine.control import Control
from engine.data import load_dataset
from engine.errors import SessionError, StopRequested
from engine.executors import Callbacks, Job, TrainSpec, available_cores, candidate_seed, check_executor, plan_workers
from engine.executors.pool import LocalPoolEvaluator
from engine.executors.sequential import SequentialEvaluator
from engine.executors.threads import ThreadEvaluator
from engine.leaderboard import Leaderboard
from engine.profile import TrainingConfig, load_profile
from engine.session import Session
from engine.space import SearchSpace
from faults import FaultyFactory
from tiny_search import TINY

pytestmark = pytest.mark.timeout(300)

WORKERS = 2
POOL_THREADS = max(1, available_cores() // WORKERS)
OOM_ID = 1000  # the candidate the tests fail with a (simulated) CUDA OOM through the model factory
BACKENDS = ("sequential", "threads", "processes", "ray")
# Every test of a backend trains real candidates (marked ``e2e`` below); Ray's also starts a Ray instance.
MARKED_BACKENDS = [pytest.param(b, marks=pytest.mark.ray) if b == "ray" else b for b in BACKENDS]


@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def threads_of(backend: str) -> int:
    """The torch thread count a backend's candidates train with on this machine."""
    return {"processes": POOL_THREADS, "ray": 1}.get(backend, torch.get_num_threads())


# -------------------------------------------------------------------------------- evaluator level


@pytest.fixture(scope="module")
def data():
    return load_dataset("adrenalmnist3d").search_subset(0.1, 42)


@pytest.fixture(scope="module")
def spec():
    # three short epochs: a worker killed after the first still has two to go
    return TrainSpec(TrainingConfig(epochs=3, patience=0, max_batches_per_epoch=1, batch_size=32), fitness="val_auc")


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

    def _here(self) -> None:
        assert threading.get_ident() == self.thread, "a callback ran off the session's thread"

    def on_start(self, job, worker):
        self._here()
        self.log.append(("start", job.candidate_id, worker))
        if "start" in self.hooks:
            self.hooks["start"](job, worker)

    def on_epoch(self, job, record):
        self._here()
        self.log.append(("epoch", job.candidate_id, record["epoch"]))
        if "epoch" in self.hooks:
            self.hooks["epoch"](job, record)

    def on_done(self, job, result, worker):
        self._here()
        self.log.append(("done", job.candidate_id, worker))
        self.results[job.candidate_id] = result
        self.workers[job.candidate_id] = worker
        if "done" in self.hooks:
            self.hooks["done"](job, result, worker)

    def run(self, evaluator, jobs):
        evaluator.evaluate(jobs, Callbacks(self.on_start, self.on_epoch, self.on_done))
        return self


def losses(result) -> list[tuple]:
    return [(h["train_loss"], h["val_loss"], h["val_auc"]) for h in result.history]


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nas3d-tui[ray]')")
    if not ray.is_initialized():
        # address="local": a new instance of our own, never a cluster another suite on this machine started
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module", params=MARKED_BACKENDS)
def backend(request, data, spec, tmp_path_factory):
    """``(name, evaluator)``; concurrent backends build their networks with a ``FaultyFactory``
    (``evaluator.model_factory``): tests arm it to fail a genotype with an OOM, and read who trains what."""
    name = request.param
    factory = FaultyFactory(str(tmp_path_factory.mktemp(f"faults-{name}")))
    if name == "sequential":
        evaluator = SequentialEvaluator(data, spec, "cpu")
    elif name == "threads":
        evaluator = ThreadEvaluator(data, spec, slots=plan_workers("cpu", WORKERS), model_factory=factory)
    elif name == "processes":
        evaluator = LocalPoolEvaluator(data, spec, slots=plan_workers("cpu", WORKERS), model_factory=factory)
    else:
        ray = request.getfixturevalue("ray_instance")
        import faults
        from engine.executors.ray import RayEvaluator

        ray.cloudpickle.register_pickle_by_value(faults)  # Ray workers do not have tests/ on their path
        evaluator = RayEvaluator(data, spec, workers=WORKERS, model_factory=factory)
    yield name, evaluator
    evaluator.close()
    if name == "processes":
        assert not any(w.proc for w in evaluator._workers), "close() left worker processes behind"


@pytest.fixture(scope="module")
def reference(data, spec, genotypes):
    """``reference(i, cid, threads)``: the sequential result of genotype i trained as candidate cid (cached)."""
    cache: dict[tuple, object] = {}

    def get(i: int, cid: int, threads: int):
        if (i, cid, threads) not in cache:
            with torch_threads(threads):
                rec = Recorder().run(SequentialEvaluator(data, spec, "cpu"), make_jobs([genotypes[i]], [cid]))
            cache[(i, cid, threads)] = rec.results[cid]
        return cache[(i, cid, threads)]

    return get


@pytest.mark.e2e
def test_every_job_trains_to_the_sequential_result(backend, genotypes, reference):
    name, evaluator = backend
    jobs = make_jobs(genotypes[:4], [100, 101, 102, 103])
    rec = Recorder().run(evaluator, jobs)
    assert sorted(rec.results) == [100, 101, 102, 103]
    for i, job in enumerate(jobs):
        got, want = rec.results[job.candidate_id], reference(i, job.candidate_id, threads_of(name))
        assert got.status == "ok" and got.fitness == want.fitness and losses(got) == losses(want)
    assert len([e for e in rec.log if e[0] == "epoch"]) == 4 * 3
    for cid in (100, 101, 102, 103):  # start, three epochs, done, in that order
        assert [e[0] for e in rec.log if e[1] == cid] == ["start", "epoch", "epoch", "epoch", "done"]
    if name in ("threads", "processes"):  # (Ray names its workers by node)
        assert len(set(rec.workers.values())) == 2, "both workers trained"


@pytest.mark.e2e
def test_oom_while_sharing_is_retried_alone(backend, genotypes, reference):
    name, evaluator = backend
    if name == "sequential":
        pytest.skip("sequential: nothing shares the device, so an OOM is final")
    jobs = make_jobs(genotypes[:3], [OOM_ID, 201, 202])
    evaluator.trace.clear()
    evaluator.model_factory.arm(genotypes[0])  # its first, shared, attempt runs out of memory
    try:
        rec = Recorder().run(evaluator, jobs)
    finally:
        evaluator.model_factory.disarm()
    assert rec.results[OOM_ID].status == "ok"
    assert losses(rec.results[OOM_ID]) == losses(reference(0, OOM_ID, threads_of(name)))
    trace = evaluator.trace
    assert ("oom-retry", OOM_ID) in [t[:2] for t in trace]
    start = next(i for i, t in enumerate(trace) if t[:2] == ("start", OOM_ID) and t[4])  # the alone attempt
    end = next(i for i, t in enumerate(trace) if t[:2] == ("done", OOM_ID))
    if name != "ray":  # Ray gives an alone task a whole GPU; on a CPU-only cluster it waits for an empty cluster
        running = {t[1] for t in trace[:start] if t[0] == "start"} - {
            t[1] for t in trace[:start] if t[0] in ("done", "oom-retry", "stopped")
        }
        assert running == set(), "the retry started while another candidate was running"
    assert not [t for t in trace[start + 1 : end] if t[0] == "start"], "a candidate started beside the alone retry"
    assert all(rec.results[c].status == "ok" for c in (201, 202))


@pytest.mark.e2e
def test_oom_with_the_device_to_itself_is_reported_oom(backend, genotypes):
    name, evaluator = backend
    if name == "sequential":
        pytest.skip("sequential: simulated OOMs are a concurrent backend's test hook")
    evaluator.model_factory.arm(genotypes[0])  # alone from the start: the OOM is final
    try:
        rec = Recorder().run(evaluator, make_jobs(genotypes[:1], [OOM_ID]))
    finally:
        evaluator.model_factory.disarm()
    result = rec.results[OOM_ID]
    assert result.status == "oom" and result.fitness is None and "out of memory" in result.error


def _kill_hook(evaluator, rec, victim: int, killed: list, when: str):
    """Kill the process that trains ``victim`` (the one that built its network, per the model factory)."""
    evaluator.model_factory.forget_pids()

    def kill(job, *_):
        if job.candidate_id != victim or (when == "epoch" and killed):
            return
        deadline = time.monotonic() + 20
        pid = None
        while pid is None and time.monotonic() < deadline:
            pid = evaluator.model_factory.pid_of(job.genotype)
            if pid is None or pid in killed:  # not built yet by this attempt's worker
                pid = None
                time.sleep(0.05)
        assert pid is not None and pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    return kill


@pytest.mark.e2e
def test_a_worker_killed_mid_candidate_is_retried_once(backend, genotypes, reference):
    name, evaluator = backend
    if name in ("sequential", "threads"):
        pytest.skip(f"{name}: candidates train in the session's own process; a crash ends the run and resume retrains")
    rec, killed = Recorder(), []
    rec.hooks["epoch"] = _kill_hook(evaluator, rec, 301, killed, "epoch")
    evaluator.trace.clear()
    rec.run(evaluator, make_jobs(genotypes[:3], [300, 301, 302]))
    assert killed and ("died", 301) in [t[:2] for t in evaluator.trace]
    assert [e[0] for e in rec.log if e[1] == 301].count("start") == 2
    assert rec.results[301].status == "ok" and losses(rec.results[301]) == losses(reference(1, 301, threads_of(name)))
    assert all(rec.results[c].status == "ok" for c in (300, 302))


@pytest.mark.e2e
def test_a_worker_killed_twice_reports_failed(backend, genotypes):
    name, evaluator = backend
    if name in ("sequential", "threads"):
        pytest.skip(f"{name}: candidates train in the session's own process")
    rec, killed = Recorder(), []
    kill = _kill_hook(evaluator, rec, 401, killed, "start")
    rec.hooks["start"] = lambda job, worker: kill(job) if job.candidate_id == 401 else None
    rec.run(evaluator, make_jobs(genotypes[:3], [400, 401, 402]))
    failed = rec.results[401]
    assert failed.status == "failed" and failed.fitness is None and "died twice" in failed.error
    assert rec.results[400].status == "ok" and rec.results[402].status == "ok"


@pytest.mark.e2e
def test_stop_raises_after_reporting_finished_candidates(backend, genotypes):
    name, evaluator = backend
    control = Control()
    evaluator.control = control
    try:
        rec = Recorder()
        rec.hooks["done"] = lambda job, result, worker: control.stop()
        with pytest.raises(StopRequested):
            rec.run(evaluator, make_jobs(genotypes, [500, 501, 502, 503, 504]))
        assert 1 <= len(rec.results) < 5
        assert all(r.status == "ok" for r in rec.results.values())
    finally:
        evaluator.control = None


@pytest.mark.e2e
def test_pause_holds_new_candidates_and_is_reported_when_the_engine_waits(backend, genotypes):
    name, evaluator = backend
    said: list[str] = []
    control = Control(on_change=said.append)
    evaluator.control = control
    rec = Recorder()
    paused_at = {}

    def resume_once_paused():
        deadline = time.monotonic() + 120
        while "paused" not in said and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # held while paused: no new candidate may start meanwhile
        paused_at["starts"] = len([e for e in rec.log if e[0] == "start"])
        control.resume()

    def pause_once(job, record):
        if not paused_at:
            paused_at["epochs"] = len([e for e in rec.log if e[0] == "epoch"])
            paused_at["starts_at_pause"] = len([e for e in rec.log if e[0] == "start"])
            control.pause()
            threading.Thread(target=resume_once_paused, daemon=True).start()

    rec.hooks["epoch"] = pause_once
    try:
        rec.run(evaluator, make_jobs(genotypes[:3], [600, 601, 602]))
    finally:
        evaluator.control = None
    assert sorted(rec.results) == [600, 601, 602]
    assert said[:2] == ["paused", "resumed"], said
    assert paused_at["starts"] == paused_at["starts_at_pause"], "a candidate started while paused"
    assert said.count("paused") == 1


# -------------------------------------------------------------------------------- session level


def tiny_profile(*extra: str):
    return load_profile("quick", TINY + list(extra))


def board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl")).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status) for r in rows]


SESSION_SETTINGS = {
    "sequential": [],
    "threads": ["executor.workers=2", "executor.concurrency='threads'"],
    "processes": ["executor.workers=2", "executor.concurrency='processes'"],
    "ray": ["executor.kind='ray'", "executor.workers=2"],
}
_BOARDS: dict[int, list[tuple]] = {}


def sequential_board(tmp_path_factory, threads: int) -> list[tuple]:
    """The leaderboard of a sequential tiny run made with ``threads`` torch threads (cached)."""
    if threads not in _BOARDS:
        run_dir = tmp_path_factory.mktemp(f"seq{threads}") / "run"
        with torch_threads(threads):
            assert Session(tiny_profile(), run_dir).run().state == "finished"
        _BOARDS[threads] = board(run_dir)
    return _BOARDS[threads]


@pytest.mark.e2e
@pytest.mark.parametrize("name", MARKED_BACKENDS)
def test_a_session_stopped_and_resumed_ends_with_the_sequential_leaderboard(name, request, tmp_path, tmp_path_factory):
    if name == "ray":
        request.getfixturevalue("ray_instance")
    run_dir = tmp_path / "run"
    control = Control()
    events: list[ev.Event] = []

    def stop_after_three(event):
        events.append(event)
        if isinstance(event, ev.CandidateFinished) and event.trained >= 3:
            control.stop()

    session = Session(tiny_profile(*SESSION_SETTINGS[name]), run_dir, control=control)
    session.bus.subscribe(stop_after_three)
    assert session.run().state == "stopped"
    assert 3 <= session.trained < 8
    resumed = Session.resume_from(run_dir)
    resumed.bus.subscribe(events.append)
    assert resumed.run().state == "finished"
    assert board(run_dir) == sequential_board(tmp_path_factory, threads_of(name))
    workers = {e.worker for e in events if isinstance(e, ev.CandidateStarted)}
    expected = {"sequential": {"local:cpu"}, "threads": {"w1:cpu", "w2:cpu"}, "processes": {"w1:cpu", "w2:cpu"}}
    if name in expected:
        assert workers == expected[name]
    else:
        assert workers and all(w.startswith("ray:") and w.endswith(":cpu") for w in workers)


def test_ray_missing_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    profile = tiny_profile("executor.kind='ray'")
    with pytest.raises(SessionError, match=r"needs Ray.*pip install") as info:
        check_executor(profile.executor)
    assert "\n" not in str(info.value)
    with pytest.raises(SessionError, match="needs Ray"):
        Session(profile, tmp_path / "run").run()  # before the run starts: the CLI exits 2
    assert not (tmp_path / "run").exists(), "a run that cannot start leaves no run directory"

    from nas3d_tui.cli import main

    args = ["run", "quick", "--headless", "--run-dir", str(tmp_path / "cli")]
    for s in TINY + ["executor.kind='ray'"]:
        args += ["--set", s]
    assert main(args) == 2


def test_plan_spreads_workers_over_gpus_and_splits_cpu_cores():
    slots = plan_workers("cuda:0", 2, 2, "auto", cuda_devices=2, cores=16)
    assert [(s.name, s.device) for s in slots] == [
        ("w1.1:cuda:0", "cuda:0"), ("w1.2:cuda:0", "cuda:0"), ("w2.1:cuda:1", "cuda:1"), ("w2.2:cuda:1", "cuda:1")]
    assert all(s.threads == 4 for s in slots)
    assert [s.device for s in plan_workers("cuda:1", 2, 1, "cuda:1", cuda_devices=4)] == ["cuda:1", "cuda:1"]
    cpu = plan_workers("cpu", 3, 4, "cpu", cores=8)
    assert [(s.name, s.threads) for s in cpu] == [("w1:cpu", 2), ("w2:cpu", 2), ("w3:cpu", 2)]


def test_the_profile_chooses_the_backend():
    from engine.executors import concurrency_of

    p = tiny_profile()
    assert concurrency_of(p.executor, "cpu") == "sequential"
    assert concurrency_of(p.executor, "cuda:0") == "sequential"
    per_gpu = tiny_profile("executor.per_gpu=4").executor
    assert concurrency_of(per_gpu, "cpu") == "sequential"  # per_gpu means nothing on the CPU
    assert concurrency_of(per_gpu, "cuda:0") == "threads"  # auto: one CUDA stream per candidate
    assert concurrency_of(tiny_profile("executor.workers=2").executor, "cpu") == "processes"
    assert concurrency_of(tiny_profile("executor.workers=2", "executor.concurrency='threads'").executor, "cpu") == "threads"
    assert concurrency_of(tiny_profile("executor.kind='ray'").executor, "cpu") == "ray"


# -------------------------------------------------------------------------------- CUDA (skipped by default: -m gpu)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ("threads", "processes"))
def test_cuda_backends_share_each_gpu_and_retry_an_oom_alone(name, data, spec, genotypes, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    gpus = torch.cuda.device_count()
    cuda_data = load_dataset("adrenalmnist3d", device="cuda:0").search_subset(0.1, 42)
    slots = plan_workers("cuda:0", gpus, 2, "auto", cuda_devices=gpus)
    cls = ThreadEvaluator if name == "threads" else LocalPoolEvaluator
    factory = FaultyFactory(str(tmp_path))
    factory.arm(genotypes[0])
    evaluator = cls(cuda_data, spec, slots=slots, model_factory=factory)
    try:
        rec = Recorder().run(evaluator, make_jobs(genotypes[:4], [OOM_ID, 801, 802, 803]))
    finally:
        evaluator.close()
    assert all(r.status == "ok" for r in rec.results.values()), {c: r.error for c, r in rec.results.items()}
    assert {w.split(":", 1)[1] for w in rec.workers.values()} <= {f"cuda:{i}" for i in range(gpus)}
    assert ("oom-retry", OOM_ID) in [t[:2] for t in evaluator.trace]
    assert all(r.peak_memory_mb for r in rec.results.values())  # CUDA peak, per candidate
