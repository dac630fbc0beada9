"""Many runs in one folder: ``nas3d-tui runs`` (list, JSON, picker) and a comparison of two real runs.

One folder holds real tiny searches made once for this module -- one
finished ODE search and one finished random search, one killed with SIGKILL
(crashed) and one still driven by a live process (suspended with SIGSTOP once
it saved its first checkpoint, so it holds its lock without using the CPU) --
beside copies of the finished run with a damaged checkpoint and a damaged
journal, and journals of a stopped run, a failed run and a train run, and a
folder that is not a run.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from engine.journal import read_journal
from engine.runs import STATES, inspect_run, list_runs
from headless_chromium import screenshot
from report_runs import REPO, _launch, synthetic_lines, write_journal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

REAL = ("finished", "random", "crashed", "running")


def _wait_for(run_dir: Path, proc: subprocess.Popen, kind: str, timeout: float = 500) -> None:
    """Until the run's journal holds an event of ``kind``."""
    journal = run_dir / "events.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before a {kind} event"
        if journal.exists() and f'"kind":"{kind}"' in journal.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event in {journal} after {timeout:.0f}s")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The folder of runs described in the module docstring; yields ``(root, running_pid)``."""
    root = tmp_path_factory.mktemp("runs")
    dirs = {name: root / name for name in REAL}
    procs = {
        "finished": _launch(dirs["finished"], "search.budget=4"),
        "random": _launch(dirs["random"], "search.budget=4", "search.strategy='random'"),
        "crashed": _launch(dirs["crashed"], "search.budget=200"),
        "running": _launch(dirs["running"], "search.budget=200"),
    }
    try:
        for name, sig in (("running", signal.SIGSTOP), ("crashed", signal.SIGKILL)):
            _wait_for(dirs[name], procs[name], "state_saved")
            os.kill(procs[name].pid, sig)
        codes = {name: procs[name].wait(timeout=600) for name in ("finished", "random", "crashed")}
        logs = {name: (root / f"{name}.log").read_text(errors="replace")[-2000:] for name in REAL}
        assert codes == {"finished": 0, "random": 0, "crashed": -signal.SIGKILL}, logs
        # copies of the finished run, each with one damaged file (and no lock file: listing must not make one)
        for name, damage in (("bad-checkpoint", "checkpoint.json"), ("bad-journal", "events.jsonl")):
            shutil.copytree(dirs["finished"], root / name)
            (root / name / ".lock").unlink()
            path = root / name / damage
            if damage == "checkpoint.json":
                path.write_text(path.read_text()[:40])
            else:
                lines = path.read_text().splitlines(keepends=True)
                path.write_text("".join(lines[:3]) + '{"kind": "candidate_finished", "status": 3}\n' + "".join(lines[3:]))
        # a stopped, a failed and a train run (journals in the engine's format, the profile of a real run)
        stopped = synthetic_lines(final=False)[:-1] + [{"kind": "run_finished", "ts": 1_750_100_000.0,
                                                        "reason": "stopped", "trained": 17, "seconds": 99.0}]
        write_journal(root / "stopped", stopped)
        failed = synthetic_lines(final=False)[:-1] + [{"kind": "run_failed", "ts": 1_750_100_000.0,
                                                       "error": "RuntimeError: the disk went away"}]
        write_journal(root / "failed", failed)
        train = [dict(line, run_kind="train") if line["kind"] == "run_started" else line for line in synthetic_lines()]
        write_journal(root / "train", train)
        for name in ("stopped", "failed", "train"):
            shutil.copy(dirs["finished"] / "profile.toml", root / name / "profile.toml")
        (root / "train" / "train.json").write_text(json.dumps({"format": "nas3d-tui/train/1", "genotype": {}}))
        (root / "notes").mkdir()  # not a run: left out
        (root / "notes" / "todo.txt").write_text("compare ODE with random search\n")
        yield root, procs["running"].pid
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()


class TestRunsList:
    def test_every_state_in_one_folder_and_nothing_written(self, folder) -> None:
        root, running_pid = folder
        before = _snapshot(root)
        runs = {r.name: r for r in list_runs(root)}
        assert _snapshot(root) == before  # not a byte, not a lock file
        assert set(runs) == {*REAL, "stopped", "bad-checkpoint", "bad-journal", "failed", "train"}
        expected = {"finished": "finished", "random": "finished", "stopped": "stopped", "crashed": "crashed",
                    "running": "running", "bad-checkpoint": "damaged", "bad-journal": "damaged",
                    "failed": "failed", "train": "finished"}
        assert {name: r.state for name, r in runs.items()} == expected
        assert set(expected.values()) == set(STATES) - {"stale"}  # stale: tests/engine/test_driver_host.py
        assert runs["running"].pid == running_pid
        assert all(r.pid is None for name, r in runs.items() if name != "running")
        for name in ("finished", "random"):
            r = runs[name]
            events = read_journal(root / name / "events.jsonl", strict=True)
            ok = [e for e in events if getattr(e, "status", None) == "ok"]
            assert r.kind == "search" and r.trained == r.budget == 4
            assert r.best_fitness == max(e.fitness for e in ok)
            assert r.fitness_metric == "val_auc" and r.final_total is None
            assert r.started == events[0].ts and r.last_event == events[-1].ts
        for name in ("crashed", "running"):
            assert runs[name].budget == 200 and 0 <= runs[name].trained < 200
            assert runs[name].generation == 0 and runs[name].last_event is not None
        assert runs["stopped"].trained == 17 and runs["stopped"].budget == 14
        assert "checkpoint.json" in runs["bad-checkpoint"].error
        assert "events.jsonl line 4" in runs["bad-journal"].error
        assert runs["failed"].error == "RuntimeError: the disk went away"
        assert runs["train"].kind == "train"

    def test_a_train_run_counts_its_seeds(self, folder) -> None:
        root, _ = folder
        r = inspect_run(root / "train")
        lines = synthetic_lines()
        seeds = next(line for line in lines if line["kind"] == "final_started")["seeds"]
        results = [line for line in lines if line["kind"] == "final_result"]
        assert r.kind == "train" and r.final_total == len(seeds)
        assert r.final_done == len({(x["candidate_id"], x["seed"]) for x in results})

    def test_the_command_prints_one_line_per_run(self, folder) -> None:
        root, running_pid = folder
        result = subprocess.run([sys.executable, "-m", "nas3d_tui", "runs", str(root)], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split()[:3] == ["RUN", "KIND", "STATE"]
        assert len(lines) == 1 + 9
        by_name = {line.split()[0]: line for line in lines[1:]}
        assert f"running (pid {running_pid})" in by_name["running"]
        assert "4/4 trained" in by_name["finished"] and "crashed" in by_name["crashed"]
        assert "damaged" in by_name["bad-checkpoint"] and "checkpoint.json" in by_name["bad-checkpoint"]
        assert "the disk went away" in by_name["failed"]
        assert "Traceback" not in result.stderr

    def test_json_for_scripts(self, folder) -> None:
        root, _ = folder
        result = subprocess.run([sys.executable, "-m", "nas3d_tui", "runs", str(root), "--format", "json"],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert [d["name"] for d in data] == [r.name for r in list_runs(root)]
        assert {d["name"]: d["state"] for d in data}["running"] == "running"

    @pytest.mark.parametrize("where", ["missing", "a-file"])
    def test_a_bad_folder_is_one_line_and_exit_2(self, tmp_path: Path, where: str) -> None:
        (tmp_path / "a-file").write_text("x")
        result = subprocess.run([sys.executable, "-m", "nas3d_tui", "runs", str(tmp_path / where)], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and where in result.stderr and "Traceback" not in result.stderr


class TestPicker:
    def test_enter_picks_a_run_and_a_damaged_one_says_why(self, folder) -> None:
        from tui.screens.runs import RunPicker

        root, _ = folder

        async def drive() -> tuple[str | None, str]:
            app = RunPicker(str(root), refresh_seconds=0)
            async with app.run_test(size=(160, 30)) as pilot:
                for _ in range(200):
                    await pilot.pause(0.05)
                    if app.runs:
                        break
                names = [r.name for r in app.runs]
                app.table.move_cursor(row=names.index("bad-checkpoint"))
                await pilot.press("enter")
                await pilot.pause(0.1)
                note = str(app.query_one("#runs-note").content)
                assert app.is_running  # a damaged run cannot be picked
                app.table.move_cursor(row=names.index("running"))
                await pilot.press("enter")
                await pilot.pause(0.1)
            return app.return_value, note

        chosen, note = asyncio.run(drive())
        assert chosen == str((root / "running").resolve())
        assert "cannot attach to bad-checkpoint" in note and "checkpoint.json" in note

    def test_the_picker_imports_no_torch(self) -> None:
        code = ("import sys; import tui.screens.runs, tui.runlist, engine.runs, nas3d_tui.commands.runs; "
                "assert 'torch' not in sys.modules")
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr


# -- two real runs side by side, in a browser ------------------------------------------------

@pytest.mark.browser
def test_a_comparison_of_two_real_runs_in_chromium(folder, tmp_path: Path) -> None:
    from nas3d_tui.report.compare_build import build_comparison
    from nas3d_tui.report.compare_figures import COLOURS, COMPARE_CHARTS
    from nas3d_tui.report.figures import CHART_SIZE, pixel_size

    root, _ = folder
    files = build_comparison([root / "finished", root / "random"], tmp_path / "cmp")
    c = files.comparison
    assert [r.label for r in c.runs] == ["finished", "random"]
    assert [r.strategy for r in c.runs] == ["ode", "random"]
    assert all(len(r.seconds) == len(r.summary.anytime) >= 1 for r in c.runs)
    assert ("search.strategy", ("ode", "random")) in c.profile_diff
    assert "search.budget" not in dict(c.profile_diff)  # equal in both: left out
    html = files.html.read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(COMPARE_CHARTS)
    for f in files.figures:
        assert imread(f.png).shape[:2] == pixel_size(CHART_SIZE)[::-1]
    shot = tmp_path / "page.png"
    screenshot(files.html.as_uri(), shot, size=(1280, 2600))
    rgb = imread(shot)[..., :3]
    assert rgb.shape[:2] == (2600, 1280) and float(np.std(rgb)) > 0.05  # not a blank page
    for colour in COLOURS[:2]:  # both runs' curves are drawn on the page
        target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
        assert int(np.all(np.abs(rgb - target) < 0.06, axis=-1).sum()) > 100, colour
