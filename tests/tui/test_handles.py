"""ReplayHandle and AttachHandle satisfy RunHandle and deliver journals from their own threads."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from engine import control
from engine import events as ev
from engine.journal import JournalSink
from engine.rundir import RunDir
from tui.attach import AttachError, AttachHandle
from tui.handle import HandleError, RunHandle
from tui.replay import ReplayHandle


class Collector:
    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, event: ev.Event) -> None:
        with self.lock:
            self.events.append(event)
            self.threads.add(threading.current_thread().name)

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events) >= n:
                return
            time.sleep(0.02)
        raise AssertionError(f"got {len(self.events)} events, wanted {n}")


def test_replay_handle_delivers_the_journal_from_a_thread(journal) -> None:
    handle = ReplayHandle(journal)
    assert isinstance(handle, RunHandle)
    assert handle.attached and handle.run_dir == Path("runs/quick-0001")
    sink = Collector()
    handle.start(sink)
    assert handle.wait(10)
    assert handle.finished
    assert sink.events == journal
    assert sink.threads == {"replay"}


def test_replay_handle_answers_commands_like_an_engine(running_journal) -> None:
    handle = ReplayHandle(running_journal)
    sink = Collector()
    handle.start(sink)
    handle.wait(10)
    handle.pause()
    handle.resume()
    handle.stop()
    assert handle.commands == ["pause", "resume", "stop"]
    assert [e.kind for e in sink.events[len(running_journal):]] == ["paused", "resumed", "stop_requested"]
    handle.close()
    assert handle.closed and handle.commands[-1] == "close"


def test_replay_handle_close_stops_a_slow_replay(journal) -> None:
    handle = ReplayHandle(journal, delay=0.05)
    sink = Collector()
    handle.start(sink)
    sink.wait_for(2)
    handle.close(timeout=5)
    assert handle.finished and len(sink.events) < len(journal)


def test_replay_from_run_dir(tmp_path: Path, journal, make_run_dir) -> None:
    run_dir = make_run_dir(tmp_path / "run", journal)
    handle = ReplayHandle.from_run_dir(run_dir)
    assert handle.run_dir == run_dir and handle.events == journal
    with pytest.raises(HandleError, match="no run directory"):
        ReplayHandle.from_run_dir(tmp_path / "missing")
    with pytest.raises(HandleError, match="no events.jsonl"):
        ReplayHandle.from_run_dir(tmp_path)


def test_attach_errors_are_one_line_value_errors(tmp_path: Path) -> None:
    with pytest.raises(AttachError) as missing:
        AttachHandle(tmp_path / "nope")
    assert isinstance(missing.value, ValueError) and isinstance(missing.value, HandleError)
    assert "no run directory" in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(AttachError, match="no events.jsonl"):
        AttachHandle(tmp_path)


def test_attach_tails_a_growing_journal(tmp_path: Path, journal) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sink_file = JournalSink(run_dir / "events.jsonl")
    half = len(journal) // 2
    for e in journal[:half]:
        sink_file(e)
    handle = AttachHandle(run_dir, poll=0.02)
    assert isinstance(handle, RunHandle) and handle.attached
    got = Collector()
    handle.start(got)
    got.wait_for(half)
    assert not handle.finished
    for e in journal[half:]:
        sink_file(e)
    sink_file.close()
    got.wait_for(len(journal))
    assert [e.to_dict() for e in got.events] == [e.to_dict() for e in journal]
    deadline = time.monotonic() + 5
    while not handle.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    assert handle.finished  # the journal ended with RunFinished
    handle.close(timeout=5)
    assert not handle._thread.is_alive()


def test_attach_sends_commands_through_the_control_file(tmp_path: Path, running_journal, make_run_dir) -> None:
    run_dir = make_run_dir(tmp_path / "run", running_journal)
    handle = AttachHandle(run_dir)
    before = time.time()
    for command in ("pause", "resume", "stop"):
        getattr(handle, command)()
        name, ts = control.read_command(RunDir(run_dir).control_path)
        assert name == command and ts >= before
    assert json.loads((run_dir / "control.json").read_text())["command"] == "stop"
    # the running session's Control obeys it at its next batch boundary
    flags = control.Control(command_file=RunDir(run_dir).control_path, poll=0.0)
    time.sleep(0.01)
    handle.stop()
    with pytest.raises(control.StopRequested):
        flags.at_batch_boundary()


def test_attach_delivers_the_history_at_once_then_follows_the_rest(tmp_path: Path, journal) -> None:
    """The history is read once (up to the last complete line); a line being written comes with the tail."""
    from engine.journal import open_history, read_history

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "events.jsonl"
    half = len(journal) // 2
    writer = JournalSink(path)
    for e in journal[:half]:
        writer(e)
    writer.close()
    torn = json.dumps(journal[half].to_dict(), separators=(",", ":"))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(torn[:20])  # the writer is in the middle of this line
    history, offset = read_history(path)
    assert [e.to_dict() for e in history] == [e.to_dict() for e in journal[:half]]
    assert offset == path.stat().st_size - 20
    opened = open_history(path)  # the same, one event at a time, and the last one known at once
    assert (opened.offset, opened.last.to_dict()) == (offset, journal[half - 1].to_dict())
    assert [e.to_dict() for e in opened.events] == [e.to_dict() for e in history]
    # The handle takes the history as read and does not read it again: give it only its first events.
    handle = AttachHandle(run_dir, poll=0.02, history=(history[:3], offset))
    assert not handle.catching_up  # not started
    got = Collector()
    handle.start(got)
    got.wait_for(3)
    deadline = time.monotonic() + 5
    while handle.catching_up and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not handle.catching_up
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(torn[20:] + "\n")
    writer = JournalSink(path)
    for e in journal[half + 1:]:
        writer(e)
    writer.close()
    got.wait_for(3 + len(journal) - half)
    handle.close(timeout=5)
    assert [e.to_dict() for e in got.events] == [e.to_dict() for e in journal[:3] + journal[half:]]
    assert handle.finished



def test_the_last_event_of_a_history_skips_what_cannot_be_read(tmp_path: Path, journal) -> None:
    from engine.journal import open_history

    path = tmp_path / "events.jsonl"
    path.write_text("")
    assert open_history(path).last is None and list(open_history(path).events) == []
    writer = JournalSink(path)
    for e in journal[:5]:
        writer(e)
    writer.close()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"kind": "candidate_finished", "candidate_id": "x"}\n\n{"kind": "from_a_newer_version"}\n{"kind": "run_fin')
    opened = open_history(path)
    assert opened.last.to_dict() == journal[4].to_dict()  # not the damaged, blank, unknown or torn lines
    assert [e.to_dict() for e in opened.events] == [e.to_dict() for e in journal[:5]]
    # a line with bytes that are not UTF-8 reads as the whole-file reader reads it
    log = next(e for e in journal if isinstance(e, ev.Log))
    line = json.dumps(dict(log.to_dict(), message="caf@ au lait")).encode().replace(b"@", b"\xe9")
    with open(path, "ab") as fh:
        fh.write(b"\n" + line + b"\n")
    from engine.journal import read_history

    opened, (whole, _) = open_history(path), read_history(path)
    assert opened.last.to_dict() == whole[-1].to_dict() and "caf\ufffd au lait" in whole[-1].message
    assert [e.to_dict() for e in opened.events] == [e.to_dict() for e in whole]


@pytest.mark.parametrize("end", ["finished", "crashed", "elsewhere", "stale"])
def test_the_attach_command_follows_a_driven_or_ended_run_and_replays_a_crashed_one(tmp_path: Path, make_journal,
                                                                                   make_run_dir, monkeypatch, end) -> None:
    """``elsewhere``: driven on another host (fresh heartbeat, no lock here); ``stale``: its heartbeat stopped."""
    import argparse
    import json
    import time

    import tui.app
    from engine.rundir import RunDir
    from engine.runlock import DriverInfo
    from nas3d_tui.commands import attach

    events = make_journal(end="finished" if end == "finished" else "running")
    run_dir = make_run_dir(tmp_path / "run", events)
    if end in ("elsewhere", "stale"):
        beat = time.time() - (3 if end == "elsewhere" else 300)
        info = DriverInfo(host="node-elsewhere", pid=4242, started=beat - 60, beat=beat)
        RunDir(run_dir).driver_path.write_text(json.dumps(info.to_dict()))
    shown: list[RunHandle] = []
    monkeypatch.setattr(tui.app, "run_attached", lambda handle, folder, **kw: (shown.append(handle), (0, False))[1])
    assert attach.main(argparse.Namespace(run_dir=str(run_dir))) == 0
    (handle,) = shown
    got = Collector()
    handle.start(got)
    if end in ("finished", "elsewhere"):
        assert isinstance(handle, AttachHandle)
        got.wait_for(len(events))
        assert [e.to_dict() for e in got.events] == [e.to_dict() for e in events]
    else:  # nobody holds the run's lock (or its heartbeat stopped) and it never ended
        assert isinstance(handle, ReplayHandle)
        got.wait_for(len(events) + 1)
        assert [e.to_dict() for e in got.events[:-1]] == [e.to_dict() for e in events]
        assert isinstance(got.events[-1], ev.RunFailed)
        if end == "crashed":
            assert "no process is driving this run" in got.events[-1].error
        else:
            assert "stale — last seen on node-elsewhere 5m 0" in got.events[-1].error
            assert "(process 4242;" in got.events[-1].error and f"resume {run_dir}`" in got.events[-1].error
    handle.close(timeout=5)


def test_r_in_an_attached_dashboard_goes_to_the_runs_list_and_attaches_to_the_chosen_one(tmp_path: Path, make_journal,
                                                                                       make_run_dir, monkeypatch) -> None:
    import argparse

    import tui.app
    import tui.screens.runs
    from nas3d_tui.commands import attach

    first = make_run_dir(tmp_path / "runs" / "a", make_journal())
    second = make_run_dir(tmp_path / "runs" / "b", make_journal())
    attached: list[tuple[Path, str]] = []
    answers = iter([(0, True), (1, False)])  # R in the first dashboard; q in the second (its run failed: 1)
    monkeypatch.setattr(tui.app, "run_attached", lambda handle, folder, **kw: (attached.append((handle.run_dir, folder)),
                                                                               next(answers))[1])
    offered: list[str] = []
    monkeypatch.setattr(tui.screens.runs, "pick_run", lambda folder: (offered.append(folder), str(second))[1])
    assert attach.main(argparse.Namespace(run_dir=str(first))) == 1
    assert attached == [(first, str(tmp_path / "runs")), (second, str(tmp_path / "runs"))]
    assert offered == [str(tmp_path / "runs")]
    # leaving the list with q (no run chosen) ends the command with the dashboard's code
    answers = iter([(0, True)])
    monkeypatch.setattr(tui.screens.runs, "pick_run", lambda folder: None)
    assert attach.main(argparse.Namespace(run_dir=str(first))) == 0
