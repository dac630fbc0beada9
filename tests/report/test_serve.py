"""``nas3d-tui serve``: one background search, the dashboard in a real browser, Ctrl-C stops with a checkpoint.

Fast tests cover the pieces (loopback check, busy ports, refusing bad input
before anything starts, the background search's start and stop protocol,
with a stand-in process). The browser test starts ``serve run`` on the tiny
profile, opens the URL it prints (with its token) in headless Chromium,
reads the four panels off the page's terminal, presses ``p`` until PAUSED
shows, reconnects through the bare URL (the cookie suffices; no second
search), and stops serving with SIGINT: the search writes a checkpoint. The
token is in no process the server started and in no log.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from engine import events as ev

from engine.journal import read_journal
from engine.control import write_command
from engine.rundir import RunDir
from engine.errors import UserError
from headless_chromium import Browser, require_chromium
from nas3d_tui.serve import BackgroundSearch, check_port, exposure_warning, fresh_run_dir, is_loopback
from report_runs import REPO, synthetic_lines, write_journal
from test_serve_auth import PRINTED, descendants, proc_text
from tiny_search import TINY

pytestmark = pytest.mark.timeout(300)

COMMAND = Path(__file__).with_name("command.py")
PANELS = ("Population fitness", "Cell", "Leaderboard", "GPU memory")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    """``nas3d-tui serve ARGV`` through the command module, to its end."""
    return subprocess.run([sys.executable, str(COMMAND), "serve", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, **kwargs)


class TestPieces:
    def test_loopback_hosts(self) -> None:
        for host in ("127.0.0.1", "localhost", "::1", "127.3.2.1"):
            assert is_loopback(host) and exposure_warning(host, 8000) is None
        for host in ("0.0.0.0", "::", "192.168.1.5", "gpu-box.example.org"):
            assert not is_loopback(host)
            warning = exposure_warning(host, 8123)
            assert "\n" not in warning and f"{host}:8123" in warning and "anyone" in warning

    def test_a_busy_port_is_a_user_error(self) -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(UserError, match=f"127.0.0.1:{port}"):
                check_port("127.0.0.1", port)
        check_port("127.0.0.1", port)  # free again

    def test_fresh_run_dirs_are_never_reused(self, tmp_path: Path) -> None:
        first = fresh_run_dir(tmp_path, "quick")
        first.mkdir()
        second = fresh_run_dir(tmp_path, "quick")
        assert first.parent == second.parent == tmp_path
        assert first.name.startswith("quick-") and second.name.startswith(first.name) and second != first


@pytest.mark.e2e
class TestRefusals:
    def test_attach_needs_a_run_and_its_error_is_one_line_even_on_a_public_host(self, tmp_path: Path) -> None:
        result = serve("--host", "0.0.0.0", "--port", str(free_port()), "attach", str(tmp_path / "missing"))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "missing" in lines[0], lines  # the exposure warning comes only when serving
        assert "Traceback" not in result.stderr

    def test_a_host_that_does_not_resolve_is_one_line(self, tmp_path: Path) -> None:
        result = serve("--host", "not a host!", "--port", str(free_port()), "attach", str(tmp_path))
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "cannot serve on" in result.stderr

    def test_resume_of_a_run_that_cannot_continue_is_one_line_and_writes_nothing(self, tmp_path: Path) -> None:
        run_dir = write_journal(tmp_path / "run", synthetic_lines(final=False))
        (run_dir / "profile.toml").write_text("[run]\nname = 'x'\n")
        (run_dir / "checkpoint.json").write_text('{"format": "nas3d-tui/checkpoint/9"}')
        before = sorted(p.name for p in run_dir.iterdir())
        result = serve("--port", str(free_port()), "resume", str(run_dir))
        assert result.returncode == 2 and "checkpoint.json is corrupt" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert sorted(p.name for p in run_dir.iterdir()) == before  # no serve.log, no lock file

    def test_run_refuses_a_bad_profile_before_starting_anything(self, tmp_path: Path) -> None:
        run_dir = tmp_path / "run"
        result = serve("--port", str(free_port()), "run", "quick", "--set", "search.population=-3",
                       "--run-dir", str(run_dir))
        assert result.returncode == 2
        assert "population" in result.stderr and "Traceback" not in result.stderr
        assert not run_dir.exists()

    def test_run_with_a_data_file_that_cannot_be_read_is_one_line_and_leaves_nothing(self, tmp_path: Path) -> None:
        run_dir = tmp_path / "run"
        result = serve("--port", str(free_port()), "run", "quick", "--set", f"data.path='{tmp_path / 'none.npz'}'",
                       "--run-dir", str(run_dir))
        assert result.returncode == 2 and "none.npz: no such file" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not run_dir.exists()

    def test_run_refuses_a_directory_that_holds_a_run(self, tmp_path: Path) -> None:
        run_dir = write_journal(tmp_path / "run", synthetic_lines(final=False))
        result = serve("--port", str(free_port()), "run", "quick", "--run-dir", str(run_dir))
        assert result.returncode == 2
        assert "serve resume" in result.stderr and str(run_dir) in result.stderr
        assert not (run_dir / "serve.log").exists()

    def test_resume_needs_a_directory(self, tmp_path: Path) -> None:
        result = serve("--port", str(free_port()), "resume", str(tmp_path / "nothing"))
        assert result.returncode == 2 and "nothing" in result.stderr


# A stand-in for `nas3d-tui run --headless`: announces itself in the journal, obeys control.json like a session.
STAND_IN = textwrap.dedent("""
    import json, os, sys, time
    from engine.control import read_command
    from engine.rundir import RunDir
    run_dir = sys.argv[1]
    time.sleep(0.3)
    with open(os.path.join(run_dir, "events.jsonl"), "a") as fh:
        fh.write(json.dumps({"kind": "run_started", "ts": time.time(), "run_name": "stand-in", "run_dir": run_dir,
                             "dataset": "adrenalmnist3d", "size": 28, "device": "cpu", "budget": 1,
                             "population": 1, "num_classes": 2, "task": "binary-class", "pid": os.getpid()}) + "\\n")
    started = time.time()
    while time.time() - started < 60:
        command = read_command(RunDir(run_dir).control_path)
        if command and command[0] == "stop" and command[1] > started:
            print("stopped, search state saved")
            sys.exit(130)
        time.sleep(0.05)
    sys.exit(3)
""")


@pytest.mark.e2e
class TestBackgroundSearch:
    def test_started_once_its_run_started_is_in_the_journal_and_stopped_through_control(self, tmp_path) -> None:
        run_dir = tmp_path / "run"
        search = BackgroundSearch([sys.executable, "-c", STAND_IN, str(run_dir)], run_dir).start(timeout=60)
        assert search.running
        started = [e for e in read_journal(run_dir / "events.jsonl") if isinstance(e, ev.RunStarted)]
        assert [e.pid for e in started] == [search.process.pid]
        assert search.stop() == 130
        assert json.loads((run_dir / "control.json").read_text())["command"] == "stop"
        assert "stopped, search state saved" in (run_dir / "serve.log").read_text()

    def test_a_search_that_cannot_start_says_why(self, tmp_path: Path) -> None:
        run_dir = tmp_path / "run"
        failing = "import sys; print('nas3d-tui: error: no data at /nowhere/adrenal.npz'); sys.exit(2)"
        with pytest.raises(UserError) as info:
            BackgroundSearch([sys.executable, "-c", failing], run_dir).start(timeout=60)
        message = str(info.value)
        assert "exit 2" in message and "/nowhere/adrenal.npz" in message and "serve.log" in message

    def test_an_earlier_run_started_does_not_count(self, tmp_path: Path) -> None:
        """``serve resume``: the journal already holds the first segment's RunStarted."""
        run_dir = write_journal(tmp_path / "run", synthetic_lines(final=False))
        quiet = "import time; time.sleep(60)"
        search = BackgroundSearch([sys.executable, "-c", quiet], run_dir)
        with pytest.raises(UserError, match="did not start within"):
            search.start(timeout=1)
        assert search.process.wait(timeout=10) is not None


# -- in a browser ----------------------------------------------------------------------------

def wait_served(proc: subprocess.Popen, log: Path, timeout: float = 180) -> str:
    """The URL ``serve`` printed, once its server answers HTTP (401 without the token counts)."""
    deadline = time.monotonic() + timeout
    printed = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}"
        match = PRINTED.search(log.read_text(errors="replace"))
        printed = printed or (match.group(1) if match else None)
        if printed:
            try:
                with urllib.request.urlopen(printed.split("?")[0], timeout=5):
                    return printed
            except urllib.error.HTTPError:
                return printed  # an answer: the server is up
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
        time.sleep(0.25)
    raise AssertionError(f"nothing served after {timeout:.0f}s: {log.read_text(errors='replace')[-3000:]}")


async def drive(printed: str, shots: Path, while_connected) -> tuple[str, str]:
    """Open the printed URL, read the panels, press p until PAUSED shows, then reconnect; the screens seen."""
    async with Browser(size=(1280, 800)) as browser:
        await browser.navigate(printed)
        first = await browser.wait_for_text(*PANELS, "RUNNING", "trained", timeout=120)
        assert "token" not in await browser.evaluate("location.href")  # redirected without it
        await browser.capture(shots / "serve-running.png")
        while_connected()
        await browser.press("p")
        await browser.wait_for_text("PAUSED", timeout=120)
        await browser.capture(shots / "serve-paused.png")
        await browser.navigate(printed.split("?")[0])  # a new connection, the cookie only: the same search
        await asyncio.sleep(0.5)
        again = await browser.wait_for_text(*PANELS, "PAUSED", timeout=120)
        return first, again


def stop_everything(proc: subprocess.Popen, run_dir: Path) -> None:
    """After a failure: stop serving as Ctrl-C does, and make sure the background search stops too."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if not (run_dir / "events.jsonl").is_file():
        return
    write_command(RunDir(run_dir).control_path, "stop")  # obeyed by a search that outlived its serve process
    pids = {e.pid for e in read_journal(run_dir / "events.jsonl") if isinstance(e, ev.RunStarted)}
    deadline = time.monotonic() + 60
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        time.sleep(0.2)
    for pid in pids:  # it did not obey in time
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (Linux: a zombie, killed but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.e2e
@pytest.mark.browser
def test_serve_run_in_a_browser(tmp_path: Path) -> None:
    require_chromium()
    port, run_dir, log = free_port(), tmp_path / "run", tmp_path / "serve.out"
    sets = [a for t in TINY + ["search.budget=200"] for a in ("--set", t)]
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(COMMAND), "serve", "--port", str(port), "run", "quick",
                                 "--run-dir", str(run_dir), *sets], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        printed = wait_served(proc, log)
        assert printed.startswith(f"http://127.0.0.1:{port}/?token=")
        token = printed.split("token=", 1)[1]

        def token_nowhere_else() -> None:  # the background search and the attach process, each connected
            started = descendants(proc.pid)
            cmdlines = [proc_text(pid, "cmdline") for pid in started]
            assert any(" attach " in c for c in cmdlines) and any(" --headless" in c for c in cmdlines), cmdlines
            for pid in started:
                assert token not in proc_text(pid, "cmdline") and token not in proc_text(pid, "environ")

        first, again = asyncio.run(drive(printed, tmp_path, token_nowhere_else))
        for screen in (first, again):
            assert all(title in screen for title in PANELS)
        journal = read_journal(run_dir / "events.jsonl")
        assert sum(isinstance(e, ev.RunStarted) for e in journal) == 1  # two connections, one search
        assert any(isinstance(e, ev.Paused) for e in journal)
        proc.send_signal(signal.SIGINT)  # Ctrl-C in the serving terminal
        code = proc.wait(timeout=120)
    finally:
        stop_everything(proc, run_dir)
    output = log.read_text(errors="replace")
    assert code == 130, output[-3000:]
    # the hint names the program as it was started (here ``python -m nas3d_tui``)
    assert f" serve resume {run_dir}" in output and ("nas3d-tui" in output or "-m nas3d_tui" in output)
    journal = read_journal(run_dir / "events.jsonl")
    assert isinstance(journal[-1], ev.RunFinished) and journal[-1].reason == "stopped"
    assert (run_dir / "checkpoint.json").exists()
    assert (run_dir / "serve.log").read_text(errors="replace").strip()
    for written in (run_dir / "serve.log", log):  # the printed line is the one place the token shows
        text = written.read_text(errors="replace").replace(printed, "")
        assert token not in re.sub(r"\s", "", text), written
