"""Hints name a command that works from where the user stands (``nas3d_tui.hints``)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nas3d_tui import hints

REPO = Path(__file__).resolve().parents[1]


def _script(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_the_venv_script_off_path_is_named_by_its_path(tmp_path, monkeypatch):
    script = _script(tmp_path / ".venv" / "bin" / "nas3d-tui")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert hints.program() == os.path.join(".venv", "bin", "nas3d-tui")
    assert hints.command("resume", tmp_path / "runs" / "r1") == ".venv/bin/nas3d-tui resume runs/r1"


def test_a_script_on_path_is_named_plainly(tmp_path, monkeypatch):
    script = _script(tmp_path / "bin" / "nas3d-tui")
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert hints.program() == "nas3d-tui"


def test_python_dash_m_is_named_with_the_interpreter(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/somewhere/nas3d_tui/__main__.py"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert hints.program().endswith(" -m nas3d_tui")
    assert "python" in hints.program()


def test_paths_outside_the_current_folder_stay_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hints.shown_path(tmp_path / "a" / "b") == os.path.join("a", "b")
    assert hints.shown_path("/elsewhere/run") == "/elsewhere/run"
    assert hints.command("resume", Path("/run dir")) .endswith("resume '/run dir'")  # quoted for the shell


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_stopped_headless_run_prints_a_working_resume_command(tmp_path, tiny_overrides):
    """The hint the real process prints, run as the user would, works as printed."""
    run = tmp_path / "r"
    args = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run)]
    for s in [*tiny_overrides, "search.budget=1"]:
        args += ["--set", s]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.monotonic() + 120
    while not (run / "checkpoint.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(2)  # Ctrl-C: stop with a checkpoint
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = next(line for line in err.splitlines() if "continue with:" in line)
    command = line.split("continue with: ", 1)[1]
    assert command.endswith(f"resume {run}") and " -m nas3d_tui " in command
    done = subprocess.run([*command.split()[:-2], "resume", str(run), "--headless"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
