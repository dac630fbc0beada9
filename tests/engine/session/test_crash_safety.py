"""Crash safety: SIGKILL at random moments, resume after each, and the run still ends exactly as an uninterrupted one.

* A tiny headless run (search and final retraining) is killed at least ten
  times at random moments, each time resumed; its leaderboard, its final test
  metrics and its final weights equal an uninterrupted run's, and every
  journal line still parses.
* A final retraining killed after an epoch resumes from its per-epoch
  checkpoint (``training_resumed`` in the journal) and ends with bitwise the
  same weights and test metrics (CPU).
* The same for a ``nas3d-tui train`` run.
"""
from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from engine import events as ev

from engine.journal import read_journal
from engine.leaderboard import Leaderboard
from engine.profile import load_profile
from engine.session import Session
from engine.session.retrain import Retrain
from engine.space import Genotype
from tiny_search import TINY, small_dataset

REPO = Path(__file__).resolve().parents[3]
FINAL = ["final.top_k=1", "final.epochs=3", "final.seeds=[0]"]
LIGHT = "S1M1F8 0,3 01 12 23"  # input -> conv3 -> conv3 -> output: a cheap real network

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas3d_tui", *args]


def run_args(run_dir: Path) -> list[str]:
    args = cli("run", "quick", "--headless", "--run-dir", str(run_dir))
    for s in [*TINY, *FINAL]:
        args += ["--set", s]
    return args


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def run_starts(run_dir: Path) -> int:
    """How many times an engine started on ``run_dir`` (its journal's ``run_started`` lines)."""
    journal = run_dir / "events.jsonl"
    if not journal.exists():
        return 0
    return len(re.findall(r'"kind":\s*"run_started"', journal.read_text(encoding="utf-8", errors="replace")))


def board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl", strict=True)).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status, r.test_auc, r.test_acc) for r in rows]


def weights(run_dir: Path) -> dict:
    files = sorted(run_dir.glob("final/*/weights.safetensors"))
    assert files, f"no bundle in {run_dir}"
    return {f.parent.name: load_file(str(f)) for f in files}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        x.keys() == y.keys() and all(x[k].equal(y[k]) for k in x) for x, y in ((a[n], b[n]) for n in a)
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run: search and final retraining of the tiny profile."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    assert Session(load_profile("quick", TINY + FINAL), run_dir).run().state == "finished"
    return run_dir


def test_ten_random_kills_then_resume_end_as_an_uninterrupted_run(reference, tmp_path):
    run_dir = tmp_path / "killed"
    rng = random.Random(7)
    kills = 0
    while True:
        args = cli("resume", str(run_dir), "--headless") if (run_dir / "profile.toml").exists() else run_args(run_dir)
        before = run_starts(run_dir)
        proc = start(args)
        if kills >= 10:
            assert proc.wait(timeout=600) == 0, proc.stderr.read()
            break
        # The kill comes at a random moment of the engine's run, timed from its RunStarted: on a busy machine
        # Python and torch can take longer to start than any fixed delay, and a kill before the run began
        # tests nothing.
        wait_for(lambda: run_starts(run_dir) > before, proc)
        try:
            proc.wait(timeout=rng.uniform(0.5, 5.0))
        except subprocess.TimeoutExpired:
            kill(proc)
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()  # it finished before this kill came
        break
    assert kills >= 10 or (run_dir / "checkpoint.json").exists()
    assert board(run_dir) == board(reference)
    assert same_weights(weights(run_dir), weights(reference))
    journal = read_journal(run_dir / "events.jsonl", strict=True)  # every complete line parses
    assert isinstance(journal[-1], ev.RunFinished) and journal[-1].reason == "budget"
    assert sum(isinstance(e, ev.RunStarted) for e in journal) >= 2


def _final_epochs(run_dir: Path) -> int:
    if not (run_dir / "events.jsonl").exists():
        return 0
    return sum(1 for e in read_journal(run_dir / "events.jsonl") if isinstance(e, ev.EpochFinished) and e.phase == "final")


def test_a_final_retraining_killed_after_an_epoch_resumes_from_it(reference, tmp_path):
    run_dir = tmp_path / "final-killed"
    proc = start(run_args(run_dir))
    ckpt = run_dir / "final"
    wait_for(lambda: any(ckpt.glob("*/training.ckpt")) and _final_epochs(run_dir) >= 1, proc)
    kill(proc)
    resumed = subprocess.run(cli("resume", str(run_dir), "--headless"), cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    again = [e for e in journal if isinstance(e, ev.TrainingResumed) and e.phase == "final"]
    assert again and again[0].epoch >= 1 and again[0].max_epochs == 3
    assert not any(run_dir.glob("final/*/training.ckpt")), "the checkpoint is removed once the training finished"
    assert board(run_dir) == board(reference)
    assert same_weights(weights(run_dir), weights(reference))


def test_a_train_run_killed_after_an_epoch_resumes_from_it(tmp_path):
    data = small_dataset(tmp_path / "own.npz")
    settings = [f"data.path='{data}'", "training.patience=100", "training.batch_size=16"]
    reference = tmp_path / "train-ref"
    profile = load_profile("paper", ["run.name='train'", "run.device='cpu'", "final.epochs=30", "final.seeds=[0]",
                                     *settings])
    job = Retrain(profile, Genotype.from_compact(LIGHT), reference)
    assert job.run().state == "finished"

    run_dir = tmp_path / "train-killed"
    args = ["train", LIGHT, "--epochs", "30", "--seeds", "0", "--device", "cpu", "--out", str(run_dir)]
    for s in settings:
        args += ["--set", s]
    proc = start(cli(*args))
    wait_for(lambda: (run_dir / "final" / "seed0" / "training.ckpt").exists() and _final_epochs(run_dir) >= 2, proc)
    kill(proc)
    resumed = subprocess.run(cli("resume", str(run_dir), "--headless"), cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    assert any(isinstance(e, ev.TrainingResumed) and e.epoch >= 1 for e in journal)
    got = json.loads((run_dir / "final" / "seed0" / "result.json").read_text())
    want = json.loads((reference / "final" / "seed0" / "result.json").read_text())
    assert (got["test_auc"], got["test_acc"], got["val_acc"], got["epochs"]) == (
        want["test_auc"], want["test_acc"], want["val_acc"], want["epochs"])
    assert same_weights(weights(run_dir), weights(reference))
