"""The search session end to end on the real bundled data: runs, exports, journal replay,
kill -9 and resume, corrupt files, the run-directory lock."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import events as ev

from engine.journal import read_journal
from engine.control import Control
from engine.leaderboard import Leaderboard, export
from engine.profile import load_profile
from engine.rundir import RunDir, RunDirError
from engine.session import Session, SessionError

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.e2e  # every test here runs a tiny search, or the command line in a subprocess

def run_tiny(run_dir: Path, profile) -> tuple[Session, list[ev.Event]]:
    session = Session(profile, run_dir)
    got: list[ev.Event] = []
    session.bus.subscribe(got.append)
    outcome = session.run()
    assert outcome.state == "finished", outcome
    return session, got


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, tiny_profile) -> tuple[Path, list[ev.Event]]:
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    _, events = run_tiny(run_dir, tiny_profile())
    return run_dir, events


def proposals(run_dir: Path) -> dict[int, list[float]]:
    return {cid: rec.vector for cid, rec in RunDir(run_dir).read_records().items()}


def board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl")).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status) for r in rows]


def test_run_finishes_with_budget_and_every_event(reference_run, tiny_profile):
    run_dir, events = reference_run
    kinds = [e.kind for e in events]
    for kind in ("run_started", "candidate_started", "epoch_finished", "candidate_finished",
                 "generation_finished", "resource_sample", "state_saved", "run_finished"):
        assert kind in kinds, kind
    finished = [e for e in events if isinstance(e, ev.CandidateFinished)]
    trained = [e for e in finished if e.status in ("ok", "oom", "failed")]
    assert len(trained) == 8  # the budget, exactly
    assert events[-1].kind == "run_finished" and events[-1].reason == "budget"
    assert (run_dir / "profile.toml").exists() and load_profile(run_dir / "profile.toml") == tiny_profile()
    assert len(RunDir(run_dir).read_records()) == len(finished)


def test_journal_replays_into_the_same_leaderboard(reference_run):
    run_dir, events = reference_run
    live = Leaderboard()
    for e in events:
        live.update(e)
    assert Leaderboard.from_events(read_journal(run_dir / "events.jsonl")).rows() == live.rows()


def test_exports_parse(reference_run, tmp_path):
    run_dir, _ = reference_run
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl")).rows()
    parsed = list(csv.DictReader(io.StringIO(export(rows, "csv", tmp_path / "lb.csv"))))
    assert len(parsed) == len(rows) and parsed[0]["rank"] == "1"
    data = json.loads(export(rows, "json"))
    assert [d["candidate_id"] for d in data] == [r.candidate_id for r in rows]
    md = export(rows, "md").splitlines()
    assert md[0].startswith("|") and len(md) == len(rows) + 2


def test_cli_export_and_profiles(reference_run, tmp_path):
    run_dir, _ = reference_run
    out = tmp_path / "lb.json"
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", "export", str(run_dir), "--format", "json", "-o", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())[0]["rank"] == 1
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", "profiles"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0 and "quick" in r.stdout and "paper" in r.stdout


def _wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.returncode}\n{proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def _started_ids(run_dir: Path) -> list[int]:
    return [e.candidate_id for e in read_journal(run_dir / "events.jsonl") if isinstance(e, ev.CandidateStarted)]


@pytest.mark.timeout(600)
def test_kill_minus_nine_then_resume_equals_uninterrupted(reference_run, tmp_path, tiny_overrides):
    ref_dir, _ = reference_run
    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run_dir)]
    for s in tiny_overrides:
        args += ["--set", s]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # kill while a candidate is in flight, after a few have finished
        def mid_candidate() -> bool:
            done = RunDir(run_dir).read_records()
            started = _started_ids(run_dir) if (run_dir / "events.jsonl").exists() else []
            trained = [c for c, r in done.items() if r.status == "ok"]
            return len(trained) >= 3 and bool(started) and started[-1] not in done
        _wait_for(mid_candidate, 300, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = RunDir(run_dir).read_records()
    in_flight = _started_ids(run_dir)[-1]
    assert in_flight not in before

    session = Session.resume_from(run_dir)
    assert session.run().state == "finished"

    assert proposals(run_dir) == proposals(ref_dir)
    assert board(run_dir) == board(ref_dir)
    started = _started_ids(run_dir)
    for cid in before:  # no finished candidate was trained again
        assert started.count(cid) <= 1
    assert started.count(in_flight) == 2  # only the in-flight one was redone


def test_stop_then_resume_equals_uninterrupted(reference_run, tmp_path, tiny_profile):
    ref_dir, _ = reference_run
    run_dir = tmp_path / "stopped"
    control = Control()
    session = Session(tiny_profile(), run_dir, control=control)

    def stop_after_two(e: ev.Event) -> None:
        if isinstance(e, ev.CandidateFinished) and e.trained == 2:
            control.stop()

    session.bus.subscribe(stop_after_two)
    outcome = session.run()
    assert outcome.state == "stopped" and outcome.exit_code == 130
    assert read_journal(run_dir / "events.jsonl")[-1].reason == "stopped"
    assert Session.resume_from(run_dir).run().state == "finished"
    assert proposals(run_dir) == proposals(ref_dir)
    assert board(run_dir) == board(ref_dir)


def test_torn_journal_tail_is_tolerated(reference_run, tmp_path, tiny_profile):
    ref_dir, _ = reference_run
    run_dir = tmp_path / "torn"
    control = Control()
    session = Session(tiny_profile(), run_dir, control=control)
    session.bus.subscribe(lambda e: control.stop() if isinstance(e, ev.CandidateFinished) and e.trained == 1 else None)
    assert session.run().state == "stopped"
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('{"ts": 1, "kind": "candidate_fin')  # a crash mid-write
    assert Session.resume_from(run_dir).run().state == "finished"
    assert board(run_dir) == board(ref_dir)


def test_corrupt_checkpoint_is_reported(tmp_path, tiny_profile):
    run_dir = tmp_path / "corrupt"
    control = Control()
    session = Session(tiny_profile(), run_dir, control=control)
    session.bus.subscribe(lambda e: control.stop() if isinstance(e, ev.CandidateFinished) else None)
    session.run()
    (run_dir / "checkpoint.json").write_text('{"format": "nas3d-tui/checkp')
    with pytest.raises(RunDirError, match="corrupt"):
        Session.resume_from(run_dir).run()
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", "resume", str(run_dir), "--headless"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2
    assert "corrupt" in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_second_process_is_refused_with_the_holder_pid(tmp_path):
    rd = RunDir(tmp_path / "locked").create()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from engine.rundir import RunDir; RunDir(sys.argv[1]).acquire(); print('ok', flush=True); time.sleep(60)",
         str(rd.path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(RunDirError, match=f"in use by process {holder.pid}"):
            RunDir(rd.path).acquire()
    finally:
        holder.kill()
        holder.wait()
    RunDir(rd.path).acquire().release()  # the OS released the dead holder's lock


def test_finished_run_cannot_be_resumed_again(reference_run):
    run_dir, _ = reference_run
    with pytest.raises(SessionError, match="already finished"):
        Session.resume_from(run_dir).run()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "quick", "--headless", "--set", "search.populaton=4"], "search.populaton"),
        (["run", "quick", "--headless", "--set", "data.dataset='nosuchmnist3d'"], "data.dataset"),
        (["run", "no-such-profile", "--headless"], "no-such-profile"),
        (["run", "quick", "--headless", "--set", "data.dataset='organmnist3d'", "--set", "data.root='/nonexistent'"],
         "organmnist3d"),
        (["resume", "/nonexistent/run"], "/nonexistent/run"),
        (["attach", "/nonexistent/run"], "/nonexistent/run"),
        (["export", "/nonexistent/run", "--format", "csv"], "/nonexistent/run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, fragment, tmp_path):
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", *argv, *(["--run-dir", str(tmp_path / "r")] if argv[0] == "run" else [])],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr


def test_unwritable_run_directory(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/nas3d-run"  # root can write anywhere on disk, but not under /proc
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "run")
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", target],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "cannot write run directory" in r.stderr and "Traceback" not in r.stderr


def test_a_record_is_made_from_a_training_result_in_one_place(reference_run):
    """Every trained candidate's record carries its training result's fields (``CandidateRecord.trained_with``)."""
    from engine.records import CandidateRecord
    from engine.session import space_of
    from engine.training import CandidateResult

    run_dir, _ = reference_run
    stored = next(r for r in RunDir(run_dir).read_records().values() if r.status == "ok")
    space = space_of(load_profile(RunDir(run_dir).profile_path))
    genotype = space.decode(stored.vector)
    result = CandidateResult(stored.status, stored.fitness, stored.val_acc, stored.val_auc, stored.epochs,
                             stored.seconds, stored.peak_memory_mb, stored.error, tuple(stored.history))
    draft = CandidateRecord.proposed(stored.candidate_id, stored.generation, stored.phase, genotype, stored.vector)
    made = draft.trained_with(result, params=stored.params, flops=stored.flops, worker=stored.worker)
    assert made.replace(trained=stored.trained) == stored
