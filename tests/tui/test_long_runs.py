"""A long run costs the dashboard what a short one does: history folded before drawing, a bounded leaderboard."""
from __future__ import annotations

import math

from engine import events as ev
from tui.app import NasApp
from tui.replay import ReplayHandle
from tui.state import FINISHED, DashboardState
from tui.widgets.leaderboard import SHOWN_ROWS


class GatedReplay(ReplayHandle):
    """An instant replay that says its history is still being delivered until the test opens the gate."""

    def __init__(self, events) -> None:
        super().__init__(events)
        self.gate_open = False

    @property
    def catching_up(self) -> bool:
        return not self.gate_open


def many_candidates(journal: list[ev.Event], n: int) -> list[ev.Event]:
    """``journal`` with ``n`` more finished candidates (copies of its first ok one, distinct fitness) before its end."""
    template = next(e for e in journal if isinstance(e, ev.CandidateFinished) and e.status == "ok").to_dict()
    first = max(e.candidate_id for e in journal if isinstance(e, ev.CandidateFinished)) + 1
    extra = [ev.event_from_dict(dict(template, candidate_id=first + i, fitness=0.5 + i / (4 * n))) for i in range(n)]
    return journal[:-1] + extra + journal[-1:]


async def test_a_history_is_folded_in_and_drawn_once_it_is_all_in(journal, ui) -> None:
    handle = GatedReplay(journal)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        assert handle.wait(10)
        app.drain_now()
        await pilot.pause()
        # every event is in the state, but nothing was drawn while the history came in
        assert app.state.events_applied == len(journal) and app.state.status == FINISHED
        assert app.leaderboard.table.row_count == 0
        handle.gate_open = True
        await ui.settle(app, pilot)
        assert app.leaderboard.table.row_count == len(app.state.leaderboard.rows()) > 0
        assert "FINISHED" in ui.screen_text(app)
        assert app.state.snapshot() == DashboardState.from_events(journal).snapshot()


async def test_the_leaderboard_draws_a_bounded_number_of_rows(journal, ui) -> None:
    events = many_candidates(journal, SHOWN_ROWS + 150)
    app = NasApp(ReplayHandle(events))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        total = len(app.state.leaderboard.rows())
        assert total > SHOWN_ROWS + 150
        panel = app.leaderboard
        assert app.leaderboard.table.row_count == SHOWN_ROWS
        assert panel.row_ids == [r.candidate_id for r in app.state.leaderboard.rows()[:SHOWN_ROWS]]  # the best first
        assert f"first {SHOWN_ROWS} of {total:,}" in str(panel.border_subtitle)
        panel.set_sort("candidate_id", False, app.state)  # another order shows its own first rows
        await pilot.pause()
        assert panel.row_ids == sorted(r.candidate_id for r in app.state.leaderboard.rows())[:SHOWN_ROWS]


async def test_a_short_leaderboard_has_no_subtitle(journal, ui) -> None:
    app = NasApp(ReplayHandle(journal))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        assert app.leaderboard.table.row_count == len(app.state.leaderboard.rows()) <= SHOWN_ROWS
        assert not app.leaderboard.border_subtitle


async def test_attaching_to_a_failed_run_shows_its_error_once_the_history_is_in(tmp_path, make_journal, make_run_dir, ui):
    import asyncio

    from tui.attach import AttachHandle

    journal = make_journal(end="failed")
    handle = AttachHandle(make_run_dir(tmp_path / "run", journal), poll=0.02)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(250):
            await asyncio.sleep(0.02)
            if not handle.catching_up and app.state.events_applied == len(journal):
                break
        assert not handle.catching_up
        for _ in range(3):  # a few ticks of the live dashboard
            app.drain_now()
            await pilot.pause(0.25)
        text = ui.screen_text(app)
        assert "FAILED" in text and "illegal memory access" in text


def test_the_scatter_draws_at_most_one_point_per_cell_whatever_the_run_length() -> None:
    """Thousands of candidates fall on a bounded grid: the scatter's cost stops growing, and no cell is lost."""
    import random

    from tui.widgets.fitness import thin_points

    rng = random.Random(0)
    many = [(10 ** rng.uniform(6, 9), rng.uniform(0.5, 0.9)) for _ in range(20_000)]
    kept = thin_points(many)
    # 3 decades / 0.01 x 0.4 / 0.002 cells bound it; far fewer than the candidates
    assert len(kept) <= 300 * 200 and len(kept) < len(many)
    cells = lambda pts: {(int(math.log10(x) // 0.01), int(y // 0.002)) for x, y in pts}  # noqa: E731
    assert cells(kept) == cells(many)  # every occupied cell is still drawn
    assert thin_points(many[:3]) == many[:3]  # a short run is drawn as it is
    same_cell = [(1e6, 0.8), (1.0001e6, 0.8001)]
    assert thin_points(same_cell) == [(1e6, 0.8)]
