"""The run directory owns its names; one atomic writer and one checked JSON reader serve every run file."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from engine import control
from engine.errors import CorruptFileError, RunDirError
from engine.jsonfile import read_json
from engine.rundir import RunDir, epoch_checkpoint_in, refuse_run_file, result_path_in
from engine.search_state import SEARCH_STATE_FORMAT, SearchState

REPO = Path(__file__).resolve().parents[2]
NAMES = re.compile(r'"(events\.jsonl|control\.json|checkpoint\.json|training\.ckpt|profile\.toml|train\.json|result\.json|\.lock|driver\.json)"|seed\{')


def test_only_the_run_directory_spells_the_names_of_run_files() -> None:
    spelled = []
    for package in ("engine", "tui", "nas3d_tui"):
        for path in sorted((REPO / package).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if NAMES.search(line):
                    spelled.append(f"{path.relative_to(REPO)}:{n}")
    assert spelled and all(s.startswith("engine/rundir.py:") for s in spelled), spelled


def test_layout_keeps_the_names_old_runs_have(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert rd.search_state_path.name == "checkpoint.json"  # old run directories still resume
    assert rd.journal_path.name == "events.jsonl" and rd.control_path.name == "control.json"
    assert rd.epoch_checkpoint_path(7) == tmp_path / "candidates" / "000007.ckpt"
    assert rd.finalist_dir(7, 1) == tmp_path / "final" / "000007-seed1"
    assert rd.finalist_epoch_checkpoint(7, 1) == epoch_checkpoint_in(rd.finalist_dir(7, 1))
    assert rd.finalist_result_path(7, 1) == result_path_in(rd.finalist_dir(7, 1))
    assert rd.retrain_seed_dir(2) == tmp_path / "final" / "seed2"
    assert rd.export_path("md") == tmp_path / "leaderboard.md"
    with pytest.raises(ValueError):
        rd.export_path("xls")
    assert RunDir("~x", resolve=False).path == Path("~x")


def test_looks_like_run_and_refusal(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    assert not rd.looks_like_run()
    rd.create()
    rd.profile_path.write_text("")
    assert rd.looks_like_run()
    with pytest.raises(RunDirError, match="a file of the run"):
        refuse_run_file(rd.search_state_path)


def test_search_state_round_trip_and_checks(tmp_path: Path) -> None:
    rd = RunDir(tmp_path).create()
    assert rd.read_search_state() is None
    state = SearchState(state="search", strategy={"a": 1}, trained=3, elapsed=1.5, generation=2, written=9.0)
    rd.write_search_state(state)
    assert read_json(rd.search_state_path)["format"] == SEARCH_STATE_FORMAT == "nas3d-tui/checkpoint/1"
    assert rd.read_search_state() == state
    rd.search_state_path.write_text('{"format": "nas3d-tui/checkpoint/1", "state": "x"')
    with pytest.raises(CorruptFileError, match="checkpoint.json is corrupt"):
        rd.read_search_state()


def test_control_file_is_written_atomically_and_read_leniently(tmp_path: Path) -> None:
    path = RunDir(tmp_path).control_path
    assert control.read_command(path) is None
    control.write_command(path, "pause")
    assert control.read_command(path)[0] == "pause"  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]  # no temporary file left
    path.write_text("{garbage")
    assert control.read_command(path) is None


@pytest.mark.e2e
def test_the_lock_names_its_holder(tmp_path: Path) -> None:
    import os
    import sys

    rd = RunDir(tmp_path).create()
    code = f"import time; from engine.rundir import RunDir; RunDir({str(tmp_path)!r}).acquire(); print('ok', flush=True); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
        assert rd.locked_by_other() == proc.pid
        with pytest.raises(RunDirError, match=f"in use by process {proc.pid}"):
            rd.acquire()
        assert rd.lock_refused
    finally:
        proc.kill()
        proc.wait()
    assert rd.locked_by_other() is None
    rd.acquire()
    assert rd.lock_path.read_text() == str(os.getpid())
    rd.release()
