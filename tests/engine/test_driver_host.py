"""A run driven on another host (the run directory on a shared file system) does not look crashed.

The driver keeps ``driver.json`` (host, PID, start, heartbeat); ``runs`` and
``attach`` on another host trust a fresh heartbeat there, call an old one
``stale`` (with the resume command), and a second driver from another host
is refused while the heartbeat is fresh. The real test drives a run from its
own UTS namespace (host name ``other``) in the same kernel, and then lets go
of the kernel lock while it keeps beating: that is what the login node of a
cluster sees of a run on a compute node (its kernel knows nothing of the lock).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine.errors import RunDirError
from engine.journal import JournalSink
from engine.profile import load_profile
from engine.rundir import RunDir
from engine.runlock import DRIVER_FORMAT, STALE_AFTER_SECONDS, DriverInfo, read_driver, this_host
from engine.runs import RunCache, inspect_run, list_runs, who_drives

REPO = Path(__file__).resolve().parents[2]
OTHER = "other"  # the host name the namespaced driver takes
assert OTHER != this_host()


def make_run(path: Path, ended: bool = False) -> RunDir:
    """A run directory as a search leaves it: its profile and a journal that began (and maybe ended)."""
    rd = RunDir(path).create()
    load_profile("quick").save(rd.profile_path)
    sink = JournalSink(rd.journal_path)
    sink(ev.RunStarted(run_name="a", run_dir=str(rd.path), dataset="adrenalmnist3d", size=28, device="cpu",
                       budget=8, population=4, num_classes=2, task="binary-class"))
    if ended:
        sink(ev.RunFinished(reason="finished", trained=0, seconds=1.0))
    sink.close()
    return rd


def write_driver(rd: RunDir, host: str, pid: int, beat: float, started: float | None = None) -> None:
    info = DriverInfo(host=host, pid=pid, started=beat - 100 if started is None else started, beat=beat)
    rd.driver_path.write_text(json.dumps(info.to_dict()))


def wait_for(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- the driver's side -----------------------------------------------------------------------

def test_the_driver_keeps_a_heartbeat_and_removes_it_on_release(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    journal = rd.journal_path.stat().st_size
    rd.driver_file.beat_seconds = 0.05
    rd.acquire()
    try:
        first = read_driver(rd.driver_path)
        assert first is not None and (first.host, first.pid) == (this_host(), os.getpid())
        assert json.loads(rd.driver_path.read_text())["format"] == DRIVER_FORMAT
        wait_for(lambda: (read_driver(rd.driver_path) or first).beat > first.beat)
        assert read_driver(rd.driver_path).started == first.started  # type: ignore[union-attr]
    finally:
        rd.release()
    assert not rd.driver_path.exists()
    assert rd.journal_path.stat().st_size == journal  # the heartbeat never grows the journal
    assert not [p for p in rd.path.iterdir() if p.name.startswith(".driver")]  # no temporary file left


def test_nothing_is_written_before_a_resume_announces_itself(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    rd.acquire(announce=False)
    assert not rd.driver_path.exists()
    rd.announce()
    assert read_driver(rd.driver_path) is not None
    rd.release()
    assert not rd.driver_path.exists()


def test_a_second_driver_from_another_host_is_refused_while_its_heartbeat_is_fresh(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    write_driver(rd, OTHER, 4242, time.time() - 3)
    with pytest.raises(RunDirError, match=f"driven by process 4242 on host {OTHER} .*attach") as refused:
        RunDir(rd.path).acquire()
    assert "\n" not in str(refused.value)
    assert read_driver(rd.driver_path).host == OTHER  # type: ignore[union-attr]  # left alone
    # stale: presumed dead, the resume goes ahead and the file names the new driver
    write_driver(rd, OTHER, 4242, time.time() - STALE_AFTER_SECONDS - 5)
    again = RunDir(rd.path).acquire()
    try:
        assert read_driver(rd.driver_path).host == this_host()  # type: ignore[union-attr]
    finally:
        again.release()
    # on this host the kernel lock is the authority: a driver file naming this host never refuses
    write_driver(rd, this_host(), 4242, time.time())
    RunDir(rd.path).acquire(announce=False).release()


def test_a_driver_taken_over_stops_and_leaves_the_new_drivers_file(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    told: list[tuple[DriverInfo, DriverInfo]] = []
    rd.driver_file.beat_seconds = 0.05
    rd.driver_file.on_superseded = lambda mine, other: told.append((mine, other))
    rd.acquire()
    try:
        # another host resumed it while this one was not heard from (written again until a beat reads it:
        # a beat that read its own file just before may write over it once)
        wait_for(lambda: bool(told) or write_driver(rd, OTHER, 4242, time.time()))
        mine, other = told[0]
        assert mine.pid == os.getpid() and (other.host, other.pid) == (OTHER, 4242)
        time.sleep(0.2)
        assert read_driver(rd.driver_path).host == OTHER  # type: ignore[union-attr]  # never written over
    finally:
        rd.release()
    assert read_driver(rd.driver_path).host == OTHER  # type: ignore[union-attr]  # not removed either


@pytest.mark.e2e
def test_a_live_driver_taken_over_exits_at_once_without_writing(tmp_path: Path) -> None:
    from engine.runlock import SUPERSEDED_EXIT

    rd = make_run(tmp_path / "run")
    code = ("import sys, time; from engine.rundir import RunDir; rd = RunDir(sys.argv[1]); "
            "rd.driver_file.beat_seconds = 0.05; rd.acquire(); print('ok', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(rd.path)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
        wait_for(lambda: proc.poll() is not None or write_driver(rd, OTHER, 4242, time.time()), timeout=60)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == SUPERSEDED_EXIT, err
    assert f"taken over by process 4242 on {OTHER}" in err and err.count("\n") == 1
    assert read_driver(rd.driver_path).pid == 4242  # type: ignore[union-attr]


def test_a_driver_file_that_cannot_be_trusted_is_as_good_as_none(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    for text in ("{", "[]", '{"format": "x"}', json.dumps({"format": DRIVER_FORMAT, "host": OTHER, "pid": True,
                                                            "started": 1.0, "beat": time.time()})):
        rd.driver_path.write_text(text)
        assert read_driver(rd.driver_path) is None
        assert inspect_run(rd.path).state == "crashed"
        RunDir(rd.path).acquire(announce=False).release()
    rd.driver_path.unlink()
    os.mkfifo(rd.driver_path)  # never opened: reading it would wait for a writer forever
    assert read_driver(rd.driver_path) is None and inspect_run(rd.path).state == "crashed"


# -- what runs and attach see ----------------------------------------------------------------

def test_runs_without_a_driver_file_are_judged_as_before(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    info = inspect_run(rd.path)
    assert (info.state, info.pid, info.host, info.seen) == ("crashed", None, "", None)
    write_driver(rd, this_host(), 999_999, time.time())  # this host, no lock held: its driver died
    assert inspect_run(rd.path).state == "crashed" and who_drives(rd.path).state == "none"


def test_another_hosts_fresh_heartbeat_is_running_and_an_old_one_stale(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "run")
    now = time.time()
    write_driver(rd, OTHER, 4242, now - 3)
    info = inspect_run(rd.path)
    assert (info.state, info.pid, info.host, info.seen) == ("running", 4242, OTHER, now - 3)
    write_driver(rd, OTHER, 4242, now - 300)
    info = inspect_run(rd.path)
    assert (info.state, info.pid, info.host, info.seen) == ("stale", 4242, OTHER, now - 300)
    # a run that ended before its driver could remove the file says how it ended
    ended = make_run(tmp_path / "ended", ended=True)
    write_driver(ended, OTHER, 4242, now - 300)
    info = inspect_run(ended.path)
    assert (info.state, info.host, info.seen) == ("finished", "", None)


def test_the_list_that_refreshes_follows_the_heartbeat_without_reading_the_run_again(tmp_path: Path, monkeypatch) -> None:
    import engine.runs as runs

    rd = make_run(tmp_path / "run")
    now = time.time()
    write_driver(rd, OTHER, 4242, now - 3)
    cache = RunCache()
    assert [(r.state, r.seen) for r in list_runs(tmp_path, cache=cache)] == [("running", now - 3)]
    read: list[str] = []
    real = runs.inspect_run
    monkeypatch.setattr(runs, "inspect_run", lambda path, driver=None: read.append(Path(path).name) or real(path, driver))
    write_driver(rd, OTHER, 4242, now - 1)
    assert [(r.state, r.seen) for r in list_runs(tmp_path, cache=cache)] == [("running", now - 1)] and read == []
    write_driver(rd, OTHER, 4242, now - 600)
    assert [r.state for r in list_runs(tmp_path, cache=cache)] == ["stale"] and read == ["run"]


# -- a real driver on "another host" ---------------------------------------------------------

HOLDER = """
import os, sys, time
from engine.rundir import RunDir
rd = RunDir(sys.argv[1]).acquire()
print(os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "drop":  # let go of the kernel lock, keep beating: what another kernel sees
        rd._lock.release()
        print("dropped", flush=True)
"""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return False
    try:
        return subprocess.run(["unshare", "--uts", "sh", "-c", "hostname other-probe"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _runs_json(folder: Path) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "nas3d_tui", "runs", str(folder), "--format", "json"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_a_run_driven_from_another_host_is_running_there_then_stale_and_blocks_a_second_driver(tmp_path: Path) -> None:
    if not _unshare_works():
        pytest.skip("unshare --uts is not permitted here (needs root or user namespaces)")
    folder = tmp_path / "runs"
    rd = make_run(folder / "remote")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    script = f"hostname {OTHER} && exec {sys.executable} -c '{HOLDER}' {rd.path}"
    proc = subprocess.Popen(["unshare", "--uts", "sh", "-c", script], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        pid = int(proc.stdout.readline())
        [row] = _runs_json(folder)
        assert (row["state"], row["host"], row["pid"]) == ("running", OTHER, pid)
        proc.stdin.write("drop\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "dropped"
        assert RunDir(rd.path).locked_by_other() is None  # the kernel lock is gone, as on a login node
        [row] = _runs_json(folder)
        assert (row["state"], row["host"], row["pid"]) == ("running", OTHER, pid)  # not "crashed"
        assert 0 <= time.time() - row["seen"] < STALE_AFTER_SECONDS
        # a second driver here is refused, in one line naming the host and the PID
        resume = subprocess.run([sys.executable, "-m", "nas3d_tui", "resume", str(rd.path), "--headless"],
                                cwd=REPO, capture_output=True, text=True, timeout=300)
        assert resume.returncode == 2, resume.stderr
        assert f"process {pid} on host {OTHER}" in resume.stderr and resume.stderr.count("\n") == 1
        assert "Traceback" not in resume.stderr
    finally:
        proc.kill()
        proc.wait()
    # the driver died with its heartbeat five minutes old: stale, with the command that continues it
    info = read_driver(rd.driver_path)
    assert info is not None and info.host == OTHER
    write_driver(rd, OTHER, info.pid, time.time() - 300, started=info.started)
    [row] = _runs_json(folder)
    assert (row["state"], row["host"], row["pid"]) == ("stale", OTHER, info.pid)
    assert row["resume_command"].split()[-2:] == ["resume", str(rd.path)]
    table = subprocess.run([sys.executable, "-m", "nas3d_tui", "runs", str(folder)], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert f"stale — last seen on {OTHER} 5m 0" in table.stdout and row["resume_command"] in table.stdout
    RunDir(rd.path).acquire(announce=False).release()  # a stale heartbeat does not block a resume
    assert proc.returncode == -signal.SIGKILL
