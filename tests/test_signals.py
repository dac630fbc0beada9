"""Ctrl-C / TERM / USR1 in a headless run: the handler asks to stop without taking any lock on the thread it interrupts.

A Python signal handler runs on the main thread between two bytecodes of
whatever it was doing, possibly while that thread holds the journal's or the
console's lock. A handler that published "stopping" itself deadlocked there:
a headless run then never ended after Ctrl-C (seen in CI as a 120 s timeout).

USR1 (a batch scheduler's warning ahead of a time limit) stops a real run as
TERM does: exit 130, a resumable run; ``run --resume`` -- the start a requeued
batch job repeats -- starts the run, continues it (in the search and in the
final retraining, from its epoch checkpoint), says a finished run is finished,
and ends with the leaderboard of an uninterrupted run.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine.journal import read_journal
from nas3d_tui.commands.run import stop_on_signals
from tiny_search import TINY

REPO = Path(__file__).resolve().parents[1]
FINAL = ["final.top_k=1", "final.epochs=3", "final.seeds=[0]"]


class LockedStop:
    """A control whose stop needs a lock that the interrupted (main) thread holds until ``release``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.ran_on_main: list[bool] = []
        self.done = threading.Event()

    def stop(self) -> None:
        self.ran_on_main.append(threading.current_thread() is threading.main_thread())
        self.release.wait(10)
        self.done.set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1])
def test_the_first_signal_returns_at_once_and_stops_off_the_interrupted_thread(signum):
    control = LockedStop()
    with stop_on_signals(control):
        t0 = time.monotonic()
        signal.raise_signal(signum)  # the handler runs here, on this (main) thread
        returned_after = time.monotonic() - t0
        control.release.set()  # the main thread "lets go of its lock"
        assert control.done.wait(10)
    assert returned_after < 2.0, f"the handler blocked the interrupted thread for {returned_after:.1f} s"
    assert control.ran_on_main == [False]


def test_a_second_signal_leaves_at_once_and_the_old_handlers_come_back():
    control = LockedStop()
    control.release.set()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with stop_on_signals(control):
            signal.raise_signal(signal.SIGINT)
            assert control.done.wait(10)
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    assert control.ran_on_main == [False]


def test_every_stop_signal_gets_its_old_handler_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    with stop_on_signals(LockedStop()):
        assert all(signal.getsignal(s) is not h for s, h in before.items())
    assert {s: signal.getsignal(s) for s in before} == before


# ---------------------------------------------------------------------------------------------
# Real processes: USR1 and `run --resume`
# ---------------------------------------------------------------------------------------------


def run_resume(run_dir: Path, *extra: str) -> list[str]:
    """``nas3d-tui run quick --headless --run-dir RUN --resume`` with the tiny search and a final phase."""
    args = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run_dir), "--resume"]
    for s in [*TINY, *FINAL, *extra]:
        args += ["--set", s]
    return args


def exported(run_dir: Path) -> list[dict]:
    """The exported leaderboard (``export --format json``) without what differs between two equal runs."""
    out = subprocess.run([sys.executable, "-m", "nas3d_tui", "export", str(run_dir), "--format", "json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [{k: v for k, v in row.items() if k not in ("seconds", "worker")} for row in json.loads(out.stdout)]


def journal_text(run_dir: Path) -> str:
    path = run_dir / "events.jsonl"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def final_epochs(run_dir: Path) -> int:
    """Final-phase epochs finished so far (read while the run writes: a half-written last line is left out)."""
    lines = journal_text(run_dir).splitlines()
    return sum(1 for line in lines if '"epoch_finished"' in line and '"phase":"final"' in line.replace(" ", ""))


def stop_with_usr1_when(run_dir: Path, ready, timeout: float = 300) -> tuple[int, str]:
    """Start ``run --resume``, send SIGUSR1 once ``ready(run_dir)``; returns its exit code and stderr."""
    proc = subprocess.Popen(run_resume(run_dir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready(run_dir) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before the signal: {proc.stderr.read()}"
        proc.send_signal(signal.SIGUSR1)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_usr1_stops_and_run_resume_starts_continues_and_ends_as_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run(run_resume(reference), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # --resume on a directory that does not exist: a new run

    run = tmp_path / "stopped"
    # USR1 during the search: exit 130, the search state saved, the resume hint.
    code, err = stop_with_usr1_when(run, lambda d: '"candidate_finished"' in journal_text(d))
    assert code == 130, err
    assert "Traceback" not in err and "search state saved; continue with:" in err
    assert (run / "checkpoint.json").is_file()
    # USR1 during the final retraining, after an epoch: its epoch checkpoint stays.
    code, err = stop_with_usr1_when(run, lambda d: final_epochs(d) >= 1)
    assert code == 130, err
    assert any(run.glob("final/*/training.ckpt")), "the final retraining's epoch checkpoint was not kept"
    # The same command continues it to the end.
    done = subprocess.run(run_resume(run), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    journal = read_journal(run / "events.jsonl", strict=True)
    starts = [e for e in journal if isinstance(e, ev.RunStarted)]
    assert [e.resumed for e in starts] == [False, True, True]
    assert any(isinstance(e, ev.TrainingResumed) and e.phase == "final" for e in journal)
    assert exported(run) == exported(reference)
    assert any(row["test_auc"] is not None for row in exported(run))

    # Once more (a requeued job of a finished run): it says so and exits 0, writing nothing.
    before = journal_text(run)
    again = subprocess.run(run_resume(run), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "has already finished" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert journal_text(run) == before


def _one_line_error(args: list[str]) -> str:
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas3d-tui: error: "), out.stderr
    return lines[0]


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_run_resume_refuses_another_run_a_damaged_one_and_no_run_dir_in_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # A run that never trained (the profile saved, the search state too), as a run stopped at once leaves it.
    from engine.profile import load_profile

    load_profile("quick", TINY + FINAL).save(run / "profile.toml")
    line = _one_line_error(run_resume(run, "run.seed=7"))
    assert "holds another run: run.seed = 42 there, 7 here" in line
    line = _one_line_error(run_resume(run, "search.budget=9"))
    assert "search.budget = 8 there, 9 here" in line
    (run / "checkpoint.json").write_text("{not json")
    line = _one_line_error(run_resume(run))
    assert "checkpoint.json" in line and "corrupt" in line
    (run / "checkpoint.json").unlink()
    (run / "profile.toml").unlink()
    (run / "events.jsonl").write_text('{"kind": "log"}\n')
    line = _one_line_error(run_resume(run))
    assert "not a nas3d-tui run directory" in line
    line = _one_line_error([sys.executable, "-m", "nas3d_tui", "run", "quick", "--resume"])
    assert "--resume needs --run-dir" in line
