"""Rough edges a new user met (issue 21): each at 80×24 (stacked) and 120×40 (full layout)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import events as ev
from tui.app import NasApp
from tui.fmt import export_note, toast_text_width, wrap_path
from tui.replay import ReplayHandle
from tui.screens import CandidateDetails
from tui.state import DashboardState

pytestmark = pytest.mark.timeout(120)

SIZES = [(80, 24), (120, 40)]


def notes_of(app: NasApp) -> list[str]:
    """Collects what ``app.notify`` is asked to show."""
    notes: list[str] = []
    original = app.notify
    app.notify = lambda message, **kw: (notes.append(message), original(message, **kw))[1]
    return notes


@pytest.mark.parametrize("size", SIZES)
async def test_the_cell_panel_shows_its_cost_and_trace_and_its_bottom_border(size, cpu_journal, ui) -> None:
    app = NasApp(ReplayHandle(cpu_journal))
    async with app.run_test(size=size) as pilot:
        await ui.settle(app, pilot)
        app.cell.scroll_visible(animate=False, immediate=True)
        await pilot.pause()
        text = ui.screen_text(app)
        assert "params 251.0k · FLOPs 188.7M" in text
        assert "train loss" in text
        assert "#13 training ─╯" in text  # the panel's bottom border with its subtitle
        cell, board = app.cell.region, app.leaderboard.region
        assert cell.bottom <= board.y or board.bottom <= cell.y or not board  # the leaderboard never covers it


@pytest.mark.parametrize("size", SIZES)
async def test_o_names_the_column_as_its_header_says(size, journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=size) as pilot:
        await ui.settle(app, pilot)
        notes = notes_of(app)
        await pilot.press("o")
        await pilot.pause()
        assert notes == ["leaderboard sorted by id"]
        assert app.leaderboard.sort_key == "candidate_id"


@pytest.mark.parametrize("size", SIZES)
async def test_the_export_toast_breaks_the_folder_between_names_and_fits(size, tmp_path, journal, ui) -> None:
    run_dir = tmp_path / "a-rather-long-folder-name-for-runs" / "experiments-2026" / "quick-adrenalmnist3d-0001"
    run_dir.mkdir(parents=True)
    app = NasApp(ReplayHandle(journal, run_dir=run_dir))
    async with app.run_test(size=size) as pilot:
        await ui.settle(app, pilot)
        notes = notes_of(app)
        await pilot.press("e")
        await pilot.pause()
        (note,) = notes
        width = toast_text_width(size[0])
        lines = note.split("\n")
        assert lines[0] == "leaderboard.csv, leaderboard.json, leaderboard.md"
        assert all(len(line) <= width for line in lines[1:]), lines
        assert "quick-adrenalmnist3d-0001" in lines[-1]  # the run's own folder, whole, on the last line


class TestWrapPath:
    def test_breaks_after_a_separator_never_inside_a_name(self) -> None:
        lines = wrap_path("/home/someone/projects/nas/runs/quick-0001", 16)
        assert "".join(lines) == "/home/someone/projects/nas/runs/quick-0001"
        assert all(len(line) <= 16 for line in lines)
        assert all(line.endswith("/") for line in lines[:-1])

    def test_keeps_the_end_of_a_deep_path(self) -> None:
        lines = wrap_path("/" + "/".join(f"folder{i}" for i in range(20)) + "/run-7", 20, max_lines=2)
        assert len(lines) == 2 and lines[0].startswith("…/") and lines[-1].endswith("run-7")

    def test_elides_a_name_longer_than_a_line(self) -> None:
        (line,) = wrap_path("x" * 50, 11)
        assert len(line) == 11 and "…" in line

    def test_the_note_names_the_folder_relative_to_the_working_directory(self, monkeypatch, tmp_path) -> None:
        monkeypatch.chdir(tmp_path)
        note = export_note(["leaderboard.csv"], tmp_path / "runs" / "quick-0001", 120)
        assert note == "leaderboard.csv\nin runs/quick-0001"


@pytest.mark.e2e
@pytest.mark.parametrize("size", SIZES)
async def test_enter_on_a_finished_run_opens_the_candidate_the_cell_panel_shows(size, journal, ui) -> None:
    # Live, rows arrive one by one: the cursor once sat on the first row ever shown (#0) for good.
    first = next(i for i, e in enumerate(journal) if isinstance(e, ev.CandidateFinished)) + 1
    app = NasApp(ReplayHandle(journal[:first]))
    async with app.run_test(size=size) as pilot:
        await ui.settle(app, pilot)
        assert app.leaderboard.table.current_candidate() == 0
        for e in journal[first:]:
            app._sink(e)
            if isinstance(e, ev.CandidateFinished):
                await ui.settle(app, pilot)
        await ui.settle(app, pilot)
        best = app.state.best().candidate_id
        assert best != 0 and app.cell.followed(app.state) == best
        assert app.leaderboard.table.current_candidate() == best
        await pilot.press("enter")
        for _ in range(50):  # a screen is pushed after a few message hops: more of them on a busy machine
            if isinstance(app.screen, CandidateDetails):
                break
            await pilot.pause()
        assert isinstance(app.screen, CandidateDetails) and app.screen.candidate.candidate_id == best
        await pilot.press("escape")
        for _ in range(50):  # back on the main screen before the next key, or it goes to the details
            if not isinstance(app.screen, CandidateDetails):
                break
            await pilot.pause()
        await pilot.press("down")  # the user's own choice is kept
        await ui.settle(app, pilot)
        chosen = app.leaderboard.table.current_candidate()
        assert chosen != best and app.cell.selected == chosen


def test_a_training_candidate_counts_the_time_of_its_finished_epochs(cpu_journal) -> None:
    state = DashboardState.from_events(cpu_journal)
    (cand,) = state.in_flight.values()
    assert cand.record is None and cand.epochs == 1 and cand.seconds == 4.0


@pytest.mark.parametrize("size", SIZES)
async def test_details_of_a_training_candidate_show_its_time_so_far(size, cpu_journal, ui) -> None:
    app = NasApp(ReplayHandle(cpu_journal))
    async with app.run_test(size=size) as pilot:
        await ui.settle(app, pilot)
        app.action_details()  # the Cell panel follows the training candidate, #13
        await pilot.pause()
        assert isinstance(app.screen, CandidateDetails)
        summary = str(app.screen.query_one("#details-summary").render())
        assert "epochs / time 1 / 4.0s" in summary


def long_journal(generations: int = 143) -> list[ev.Event]:
    """143 DE generations, a generation jump in every other one (what a long paper-space run journals)."""
    events: list[ev.Event] = [ev.RunStarted(ts=0.0, run_name="long", run_dir="runs/long", dataset="adrenalmnist3d",
                                            size=28, device="cpu", budget=generations * 5, population=5,
                                            num_classes=2, task="binary-class")]
    for g in range(generations):
        best = 0.6 + 0.002 * g
        events.append(ev.GenerationFinished(ts=g + 1.0, generation=g, best=best, mean=best - 0.05, worst=best - 0.1,
                                            trained=5 * (g + 1), budget=generations * 5, best_candidate_id=0))
        if g % 2:
            events.append(ev.Jump(ts=g + 1.5, generation=g, proposed=5))
    return events


@pytest.mark.parametrize("size", SIZES)
async def test_the_generation_plot_of_a_long_run_shows_recent_generations_and_marks_jumps_sparingly(size, ui) -> None:
    from tui.widgets.fitness import GENERATION_WINDOW

    app = NasApp(ReplayHandle(long_journal()))
    async with app.run_test(size=size) as pilot:
        await ui.settle(app, pilot)
        app.fitness.scroll_visible(animate=False, immediate=True)
        await pilot.pause()
        text = ui.screen_text(app)
        assert f"gen last {GENERATION_WINDOW}/143  (▾ jump)" in text
        assert "142" in text
        plot = [line for line in text.splitlines() if "┤" in line]  # the rows of the plots
        marked = [line for line in plot if "▾" in line]
        assert len(marked) == 1 and marked[0] == plot[0]  # jumps: small marks above the curves, not a line each
        assert 0 < marked[0].count("▾") <= GENERATION_WINDOW // 2
