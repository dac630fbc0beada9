"""A real Ray cluster on this machine: two raylets (a head and a worker node), and the worker node lost mid-run.

``ray.cluster_utils.Cluster`` starts a head node and a worker node, each its
own raylet: for Ray that is a two-node cluster, on one machine. A tiny search
is driven against its address with two candidates in flight; once two
candidates have finished and one is training on the worker node, that node is
removed, as a preempted or crashed machine leaves a cluster. The run must go
on -- the progress hub lives on the driver's node, the lost candidate is
retried once on the head -- say which node was lost, and end with the
leaderboard of an uninterrupted sequential run. A second test sends SIGTERM to
a real headless run on Ray: a checkpoint and exit 130, as without Ray.

Generous timeouts: CI has two shared cores and Ray's processes start slowly.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine.session import Session
from test_executors import board, sequential_board, tiny_profile
from tiny_search import TINY

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nas3d-tui[ray]')")

REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.ray, pytest.mark.e2e]


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()  # another module's local instance: this test drives its own cluster
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = c.add_node(num_cpus=1)
    c.wait_for_nodes(timeout=120)
    pids = _pids(c.head_node) | _pids(worker)
    try:
        yield c, worker
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        deadline = time.monotonic() + 120
        while _alive(pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _alive(pids), f"Ray processes left behind: {sorted(_alive(pids))}"


def _pids(node) -> set[int]:
    """The pids of a Ray node's own processes (raylet, GCS, ...)."""
    return {info.process.pid for infos in node.all_processes.values() for info in infos if info.process is not None}


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(") ", 1)[1][:1] != "Z":
                    alive.add(pid)
        except (OSError, IndexError):
            pass
    return alive


@pytest.mark.timeout(1500)
def test_a_worker_node_lost_mid_run_is_retried_on_the_rest_and_the_leaderboard_is_unchanged(cluster, tmp_path,
                                                                                        tmp_path_factory):
    c, worker = cluster
    worker_id = worker.node_id
    events: list[ev.Event] = []
    removed = threading.Event()

    def remove_the_worker_node() -> None:
        c.remove_node(worker, allow_graceful=False)  # as a crashed machine: no goodbye
        removed.set()

    def watch(event: ev.Event) -> None:
        events.append(event)
        finished = sum(isinstance(e, ev.CandidateFinished) for e in events)
        if (isinstance(event, ev.CandidateStarted) and worker_id[:8] in event.worker and finished >= 2
                and not removed.is_set() and not getattr(watch, "fired", False)):
            watch.fired = True
            threading.Thread(target=remove_the_worker_node, daemon=True).start()

    run_dir = tmp_path / "run"
    profile = tiny_profile("executor.kind='ray'", "executor.workers=2", f"executor.address='{c.address}'")
    session = Session(profile, run_dir)
    session.bus.subscribe(watch)
    outcome = session.run()
    assert outcome.state == "finished", outcome.error
    assert removed.is_set(), "the worker node never trained a candidate after two had finished"

    workers = {e.worker for e in events if isinstance(e, ev.CandidateStarted)}
    assert any(worker_id[:8] in w for w in workers), workers  # the column names the node, not only its IP
    assert all(w.startswith("ray:") and "/" in w for w in workers), workers
    lost = [e.message for e in events if isinstance(e, ev.Log) and "was lost" in e.message]
    assert lost and worker_id[:8] in lost[0] and "retrying it once on the remaining nodes" in lost[0], lost
    assert board(run_dir) == sequential_board(tmp_path_factory, 1)


TINY_RAY = [*TINY, "executor.kind='ray'", "executor.workers=2", "search.budget=200"]


@pytest.mark.timeout(900)
def test_sigterm_under_ray_writes_a_checkpoint_and_exits_130(tmp_path):
    if ray.is_initialized():
        ray.shutdown()
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run), "--set", *TINY_RAY]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        journal = run / "events.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and '"candidate_finished"' in journal.read_text(errors="replace"):
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.terminate()  # SIGTERM, as a batch scheduler sends it
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "search state saved; continue with:" in err and "resume" in err
    assert (run / "checkpoint.json").is_file()
