"""Pilot tests of the dashboard driven by a ReplayHandle on the recorded journal."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from engine import events as ev

from engine.journal import JournalSink
from engine.leaderboard import Leaderboard
from engine.rundir import RunDir
from tui.app import NasApp
from tui.replay import ReplayHandle
from tui.screens import CandidateDetails, ConfirmQuit, HelpScreen
from tui.state import FAILED, FINISHED, PAUSED, RUNNING, STOPPING, DashboardState
from tui.widgets import CellPanel, FitnessPanel, LeaderboardPanel, MemoryPanel

pytestmark = pytest.mark.timeout(120)

TITLES = ["Population fitness", "GPU memory", "Cell", "Leaderboard", "Log"]


class InProcessReplay(ReplayHandle):
    """A replay that behaves like an in-process run: the engine lives until ``close``."""

    attached = False

    @property
    def finished(self) -> bool:
        return self.closed


class DeadEngine(ReplayHandle):
    """An in-process run whose engine thread ended without a RunFinished / RunFailed."""

    attached = False


class BrokenHandle(ReplayHandle):
    def start(self, sink) -> None:
        raise RuntimeError("engine exploded at start")


async def test_panels_populate(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(140, 44)) as pilot:
        await ui.settle(app, pilot)
        text = ui.screen_text(app)
        for title in TITLES:
            assert title in text
        assert app.state.snapshot() == DashboardState.from_events(journal).snapshot()
        assert app.state.status == FINISHED
        assert "FINISHED" in text and "quick" in text and "adrenalmnist3d" in text and "cuda:0" in text
        board = app.leaderboard
        rows = app.state.leaderboard.rows()
        assert board.row_ids == [r.candidate_id for r in rows]
        assert board.table.row_count == len(rows) == len(Leaderboard.from_events(journal).rows())
        assert "0.871" in text  # test AUC of a finalist
        assert "fitness vs FLOPs" in text and "generation" in text
        assert "NVIDIA H100" in text
        best = app.state.best()
        assert f"#{best.candidate_id}" in str(app.cell.query_one("#cell-text").render())
        assert "run finished (budget)" in text


async def test_cpu_run_shows_process_memory(cpu_journal, ui) -> None:
    app = NasApp(ReplayHandle(cpu_journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        memory = str(app.memory.query_one("#memory-text").render())
        assert "CPU" in memory and "RSS" in memory
        assert app.state.status == RUNNING and "in flight 1" in ui.screen_text(app)


async def test_p_pauses_and_resumes(running_journal, ui) -> None:
    handle = ReplayHandle(running_journal)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        assert app.state.status == RUNNING
        await pilot.press("p")
        assert handle.commands == ["pause"]
        await ui.settle(app, pilot)
        assert app.state.status == PAUSED
        assert "PAUSED" in ui.screen_text(app)
        await pilot.press("p")
        assert handle.commands == ["pause", "resume"]
        await ui.settle(app, pilot)
        assert app.state.status == RUNNING


async def test_pause_waits_for_the_engine(running_journal, ui) -> None:
    handle = ReplayHandle(running_journal, echo_commands=False)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        await pilot.press("p")
        await ui.settle(app, pilot)
        assert app.state.status == RUNNING and app.state.pending == "pause"
        assert "pausing…" in ui.screen_text(app)
        app._sink(ev.Paused(ts=app.state.last_ts + 1))
        await ui.settle(app, pilot)
        assert app.state.status == PAUSED


async def test_s_stops_until_the_run_finishes(running_journal, ui) -> None:
    handle = ReplayHandle(running_journal, echo_commands=False)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        await pilot.press("s")
        assert handle.commands == ["stop"]
        assert app.state.status == STOPPING
        await pilot.press("p")  # no pausing while stopping
        assert handle.commands == ["stop"]
        last = app.state.last_ts
        app._sink(ev.StateSaved(ts=last + 1, path="c.json", trained=app.state.trained, generation=2))
        await ui.settle(app, pilot)
        assert app.state.status == STOPPING and "STOPPING" in ui.screen_text(app)
        app._sink(ev.RunFinished(ts=last + 2, reason="stopped", trained=app.state.trained, seconds=100.0))
        await ui.settle(app, pilot)
        assert app.state.status == FINISHED and "FINISHED" in ui.screen_text(app)


async def test_e_exports_the_leaderboard(tmp_path: Path, journal, ui) -> None:
    handle = ReplayHandle(journal, run_dir=tmp_path / "run")
    (tmp_path / "run").mkdir()
    app = NasApp(handle)
    notes = []
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        original = app.notify
        app.notify = lambda message, **kw: (notes.append(message), original(message, **kw))[1]
        await pilot.press("e")
        await pilot.pause()
    rows = Leaderboard.from_events(journal).rows()
    for name in ("leaderboard.csv", "leaderboard.json", "leaderboard.md"):
        assert (tmp_path / "run" / name).is_file()
        assert any(name in n for n in notes), notes
    data = json.loads((tmp_path / "run" / "leaderboard.json").read_text())
    assert [d["candidate_id"] for d in data] == [r.candidate_id for r in rows]
    assert (tmp_path / "run" / "leaderboard.csv").read_text().count("\n") == len(rows) + 1


async def test_q_detaches_when_attached(running_journal, ui) -> None:
    handle = ReplayHandle(running_journal)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert handle.closed and "stop" not in handle.commands
    assert app.return_code == 0


async def test_q_confirms_then_closes_an_in_process_run(running_journal, ui) -> None:
    handle = InProcessReplay(running_journal)
    hint = ".venv/bin/nas3d-tui resume runs/quick-0001"  # what `make run` users can type where they stand
    app = NasApp(handle, resume_command=hint)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuit)
        assert hint in ui.screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmQuit) and not handle.closed
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert handle.closed
    assert app.return_code == 0


async def test_in_process_engine_that_dies_silently_is_failed(running_journal, ui) -> None:
    handle = DeadEngine(running_journal)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        app._drain()
        assert app.state.status == FAILED
        await pilot.press("q")  # nothing to confirm: the run is over
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert handle.closed and app.return_code == 1


async def test_selecting_a_row_shows_its_cell(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        cell: CellPanel = app.cell
        assert cell.selected is None
        board: LeaderboardPanel = app.leaderboard
        # a rebuild of the table does not count as a selection
        assert cell.selected is None
        await pilot.press("down", "down")
        await pilot.pause()
        chosen = board.row_ids[2]
        assert cell.selected == chosen
        shown = str(cell.query_one("#cell-text").render())
        assert shown.startswith(f"#{chosen} ")
        cand = app.state.candidates[chosen]
        for op in cand.genotype["ops"]:
            from tui.cellgraph import op_label

            assert op_label(op) in shown
        assert "input" in shown and "output" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert cell.selected is None


async def test_moves_made_before_the_first_is_handled_all_count(journal, ui) -> None:
    """A held arrow key over SSH: several cursor moves arrive before the dashboard handles the first;
    the Cell panel ends on the row the cursor is on (so Enter opens what it shows)."""
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        table = app.leaderboard.table
        for _ in range(3):  # three moves, no message handled in between
            table.action_cursor_down()
        app.drain_now()  # a redraw (the timer's, on a busy machine) before the moves are handled keeps them
        await ui.settle(app, pilot)
        assert table.current_candidate() == app.leaderboard.row_ids[3]
        assert app.cell.selected == table.current_candidate()
        table.action_cursor_up()
        table.action_cursor_up()
        await ui.settle(app, pilot)
        assert app.cell.selected == table.current_candidate() == app.leaderboard.row_ids[1]


async def test_enter_opens_details(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CandidateDetails)
        first = app.leaderboard.row_ids[0]
        assert app.screen.candidate.candidate_id == first
        text = ui.screen_text(app)
        assert f"Candidate #{first}" in text and "Per-epoch history" in text and "Test metrics" in text
        assert "test AUC 0.8710" in text
        epochs = app.screen.query_one("#details-epochs")
        assert epochs.row_count == len(app.state.candidates[first].history)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CandidateDetails)


async def test_sorting_by_header_and_key(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        board = app.leaderboard
        rows = {r.candidate_id: r for r in app.state.leaderboard.rows()}
        board.set_sort("params", None, app.state)
        params = [rows[c].params for c in board.row_ids]
        assert params == sorted(params)
        board.set_sort("params", None, app.state)  # again: reversed
        assert [rows[c].params for c in board.row_ids] == sorted(params, reverse=True)
        await pilot.press("o")  # next column after params
        await pilot.pause()
        assert board.sort_key == "flops"
        await pilot.press("r")
        await pilot.pause()
        assert board.sort_key == "flops" and board.descending
        table = board.table
        rank_width = table.columns["rank"].get_render_width(table)
        await pilot.click("#leaderboard-table", offset=(rank_width + 1, 0))  # the "id" header
        await pilot.pause()
        assert board.sort_key == "candidate_id"
        assert board.row_ids == sorted(board.row_ids)


async def test_help_screen(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(100, 30)) as pilot:
        await ui.settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "pause / resume" in ui.screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_too_small_terminal_shows_a_message(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(50, 15)) as pilot:
        await ui.settle(app, pilot)
        text = ui.screen_text(app)
        assert "Terminal too small (50×15)" in text
        assert "Leaderboard" not in text
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        text = ui.screen_text(app)
        assert "too small" not in text and "Leaderboard" in text


async def test_small_terminal_stacks_and_scrolls(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.settle(app, pilot)
        assert app.screen.has_class("-stacked")
        main = app.query_one("#main")
        assert main.max_scroll_y > 0
        for title in TITLES:
            panel = next(w for w in app.query(".panel") if w.border_title == title)
            panel.scroll_visible(animate=False)
            await pilot.pause()
            assert title in ui.screen_text(app)


async def test_run_failed_shows_failed(failed_journal, ui) -> None:
    app = NasApp(ReplayHandle(failed_journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        assert app.state.status == FAILED
        text = ui.screen_text(app)
        assert "FAILED" in text and "illegal memory access" in text
        await pilot.press("p")  # commands on a failed run are refused politely
        assert app.handle.commands == []
        assert app.is_running


async def test_handle_that_cannot_start_is_failed(journal, ui) -> None:
    app = NasApp(BrokenHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.state.status == FAILED
        assert "engine exploded at start" in ui.screen_text(app)


async def test_events_from_many_threads_are_coalesced(running_journal, ui) -> None:
    handle = ReplayHandle(running_journal)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        cid = max(app.state.in_flight)
        base = app.state.last_ts

        def flood(offset: int) -> None:
            for i in range(2000):
                app._sink(ev.ResourceSample(ts=base + offset + i * 1e-4, device="cuda:0", rss_mb=1.0,
                                            gpu_mem_used_mb=float(i), gpu_mem_total_mb=8000.0))

        threads = [threading.Thread(target=flood, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        redraws = app.fitness._seen
        await ui.settle(app, pilot)
        assert app.state.events_applied == len(running_journal) + 8000
        assert len(app.state.memory_history) == app.state.memory_history.maxlen
        assert app.fitness._seen == redraws  # resource samples do not replot the fitness charts
        assert cid in app.state.in_flight


async def test_works_without_colour(monkeypatch, running_journal, ui) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = NasApp(ReplayHandle(running_journal))
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.settle(app, pilot)
        assert app.no_color
        text = ui.screen_text(app)
        assert "RUNNING" in text and "Leaderboard" in text
        await pilot.press("p")
        await ui.settle(app, pilot)
        assert "PAUSED" in ui.screen_text(app)


async def test_x_switches_the_scatter_axis(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        fitness: FitnessPanel = app.fitness
        assert fitness.x_axis == "flops" and "fitness vs FLOPs" in ui.screen_text(app)
        await pilot.press("x")
        await pilot.pause()
        assert fitness.x_axis == "params" and "fitness vs params" in ui.screen_text(app)


def test_memory_panel_lists_every_device(running_journal) -> None:
    state = DashboardState.from_events(running_journal)
    state.apply(ev.ResourceSample(
        ts=state.last_ts + 1, device="cuda", rss_mb=900.0, gpu_name="NVIDIA A100", gpu_mem_used_mb=3000.0,
        gpu_mem_total_mb=40960.0, gpu_util=50.0,
        devices=[
            {"index": 0, "name": "NVIDIA A100", "used_mb": 3000.0, "total_mb": 40960.0, "util": 50.0},
            {"index": 1, "name": "NVIDIA A100", "used_mb": 1024.0, "total_mb": 40960.0, "util": 10.0},
        ],
    ))
    text = MemoryPanel.render_state(state).plain
    assert "gpu 0" in text and "gpu 1" in text
    assert "2.9 GB/40.0 GB" in text and "1.0 GB/40.0 GB" in text
    assert "peak" in text and "RSS" in text


async def test_attached_dashboard_follows_a_growing_journal(tmp_path: Path, journal, ui) -> None:
    import asyncio

    from engine import control
    from tui.attach import AttachHandle

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = JournalSink(run_dir / "events.jsonl")
    half = len(journal) // 2
    for e in journal[:half]:
        writer(e)
    handle = AttachHandle(run_dir, poll=0.02)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await asyncio.sleep(0.02)
            app.drain_now()
            if app.state.events_applied >= half:
                break
        assert app.state.events_applied == half and app.state.status in (RUNNING, PAUSED)
        await pilot.press("p")
        assert control.read_command(RunDir(run_dir).control_path)[0] == "pause"
        for e in journal[half:]:
            writer(e)
        writer.close()
        for _ in range(200):
            await asyncio.sleep(0.02)
            app.drain_now()
            if app.state.status == FINISHED:
                break
        assert app.state.snapshot() == DashboardState.from_events(journal).snapshot()
        await pilot.press("q")
        await pilot.pause()
    assert control.read_command(RunDir(run_dir).control_path)[0] == "pause"  # quitting detached: no stop was sent
    assert not handle._thread.is_alive()


async def test_r_leaves_an_attached_dashboard_for_the_runs_list(journal, ui, tmp_path) -> None:
    app = NasApp(ReplayHandle(journal), runs_folder=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        assert "R Runs" in ui.screen_text(app)  # in the footer
        await pilot.press("R")
        await pilot.pause()
    assert app.wants_runs and app.handle.closed


async def test_r_does_nothing_without_a_runs_list_or_in_a_search_this_dashboard_drives(journal, ui, tmp_path) -> None:
    class Driving(ReplayHandle):
        attached = False  # as the in-process session: leaving would stop the search

    for app in (NasApp(ReplayHandle(journal)), NasApp(Driving(journal), runs_folder=str(tmp_path))):
        async with app.run_test(size=(120, 40)) as pilot:
            await ui.settle(app, pilot)
            assert "R Runs" not in ui.screen_text(app)
            await pilot.press("R")
            await ui.settle(app, pilot)
            assert app.is_running and not app.wants_runs and not app.handle.closed
