"""A long run costs the dashboard what a short one does: history folded before drawing, a bounded leaderboard."""
from __future__ import annotations

import math
import time

import pytest

from engine import events as ev
from engine.journal import read_journal
from tui.app import NasApp
from tui.replay import ReplayHandle
from engine.leaderboard import EXPORT_FORMATS, export
from tui.state import FINISHED, DashboardState
from tui.widgets.cell import render_candidate
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


def long_journal(journal: list[ev.Event], n: int, epochs: int = 3) -> list[ev.Event]:
    """``journal`` with ``n`` more candidates, each started, trained ``epochs`` epochs and finished (fitness
    spread over the run, so the best are not the latest), before its final phase."""
    start = next(e for e in journal if isinstance(e, ev.CandidateStarted)).to_dict()
    done = next(e for e in journal if isinstance(e, ev.CandidateFinished) and e.status == "ok").to_dict()
    epoch = next(e for e in journal if isinstance(e, ev.EpochFinished)).to_dict()
    first = max(e.candidate_id for e in journal if isinstance(e, ev.CandidateFinished)) + 1
    cut = next(i for i, e in enumerate(journal) if isinstance(e, ev.FinalStarted))
    extra: list[ev.Event] = []
    for i in range(n):
        cid, fitness = first + i, 0.5 + ((i * 37) % n) / (4 * n)
        extra.append(ev.event_from_dict(dict(start, candidate_id=cid)))
        extra += [ev.event_from_dict(dict(epoch, candidate_id=cid, epoch=k, max_epochs=epochs)) for k in range(1, epochs + 1)]
        extra.append(ev.event_from_dict(dict(done, candidate_id=cid, fitness=fitness, epochs=epochs)))
    return journal[:cut] + extra + journal[cut:]


def whole(view) -> bool:
    return view.started is not None or bool(view.history)


def test_a_long_run_keeps_whole_only_the_latest_and_the_best_candidates(journal) -> None:
    events = long_journal(journal, 300)
    kept = 20
    state = DashboardState(details_kept=kept)
    untrimmed = DashboardState(details_kept=10**9)
    for e in events:
        state.apply(e)
        untrimmed.apply(e)
        assert sum(whole(c) for c in state.candidates.values()) <= 3 * kept + len(state.in_flight)
    finished = [e.candidate_id for e in events if isinstance(e, ev.CandidateFinished) and e.status != "infeasible"]
    best = [r.candidate_id for r in state.leaderboard.rows()[:kept]]
    for cid in {*finished[-kept:], *best}:
        assert not state.candidates[cid].trimmed
        assert state.candidates[cid].snapshot() == untrimmed.candidates[cid].snapshot()
    trimmed = [c for c in state.candidates.values() if c.trimmed]
    assert len(trimmed) >= len(state.candidates) - 3 * kept > 200
    for cand in trimmed:
        assert cand.history == [] and cand.started is None
        # what is still shown of it is what the untrimmed state shows
        other = untrimmed.candidates[cand.candidate_id]
        assert cand.record == other.record.light() and cand.record.vector == []
        assert (cand.epochs, cand.params, cand.flops, cand.compact, cand.macro) == (
            other.epochs, other.params, other.flops, other.compact, other.macro)
        assert render_candidate(cand).plain == render_candidate(other).plain  # the same cell drawn
        # and its events give back the whole view
        again = DashboardState.candidate_from_events(cand.candidate_id, events)
        assert again is not None and again.snapshot() == other.snapshot()
    # light records rank and export as the whole ones
    assert [r.candidate_id for r in state.leaderboard.rows()] == [r.candidate_id for r in untrimmed.leaderboard.rows()]
    for fmt in EXPORT_FORMATS:
        assert export(state.leaderboard.rows(), fmt) == export(untrimmed.leaderboard.rows(), fmt)
    assert state.scatter_points() == untrimmed.scatter_points()


def test_read_candidate_gives_the_journal_events_of_one_candidate(tmp_path, journal, make_run_dir) -> None:
    from engine.journal import read_candidate, read_journal

    events = long_journal(journal, 30)
    path = make_run_dir(tmp_path / "run", events) / "events.jsonl"
    everything = read_journal(path)
    for cid in {getattr(e, "candidate_id", None) for e in everything} - {None}:
        expected = [e.to_dict() for e in everything if getattr(e, "candidate_id", None) == cid]
        assert [e.to_dict() for e in read_candidate(path, cid)] == expected
    assert read_candidate(path, 10**6) == []


def _state_bytes(events: list[ev.Event], **kwargs) -> int:
    """Bytes the state holds after folding ``events`` decoded from their journal lines, as ``attach`` does."""
    import gc
    import json
    import tracemalloc

    from engine import fastjson

    lines = [json.dumps(e.to_dict()) for e in events]
    gc.collect()
    tracemalloc.start()
    try:
        state = DashboardState(**kwargs)
        for line in lines:
            state.apply(ev.event_from_dict(fastjson.loads(line)))
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.e2e
def test_the_dashboard_keeps_a_light_record_per_candidate_and_not_its_epochs(journal) -> None:
    """Memory counted by tracemalloc (allocations, not the process's size: the same under load)."""
    short, long = long_journal(journal, 400, epochs=10), long_journal(journal, 800, epochs=10)
    per_candidate = (_state_bytes(long) - _state_bytes(short)) / 400
    whole_per_candidate = (_state_bytes(long, details_kept=10**9) - _state_bytes(short, details_kept=10**9)) / 400
    print(f"bytes per candidate: {per_candidate:.0f} (all kept whole: {whole_per_candidate:.0f})")
    # one light record (its numbers, compact genotype, shared matrix rows) and a view
    assert per_candidate < 1500, per_candidate
    assert whole_per_candidate > 4 * per_candidate, whole_per_candidate  # what the trim saves: start event, epochs


@pytest.mark.e2e  # seconds of CPU in process (the marker's rule): not in `make check`
async def test_details_of_a_trimmed_candidate_read_its_epochs_back_from_the_journal(tmp_path, journal, make_run_dir, ui) -> None:
    from textual.widgets import DataTable

    from tui.attach import AttachHandle
    from tui.screens import CandidateDetails
    from tui.state import DETAILS_KEPT

    events = long_journal(journal, 3 * DETAILS_KEPT + 50)
    run_dir = make_run_dir(tmp_path / "run", events)
    app = NasApp(AttachHandle(run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        deadline = time.monotonic() + 30
        while (app.handle.catching_up or app._inbox) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await ui.settle(app, pilot)
        # the history, read and folded one event at a time, gives the state of the whole journal
        assert app.state.snapshot() == DashboardState.from_events(read_journal(run_dir / "events.jsonl")).snapshot()
        cand = next(c for c in app.state.candidates.values() if c.trimmed and c.status == "ok")
        app.cell.select(cand.candidate_id, app.state)
        await ui.settle(app, pilot)
        assert "trained 3 epochs · enter: its epochs" in ui.screen_text(app)
        app.action_details()
        await ui.settle(app, pilot)
        assert isinstance(app.screen, CandidateDetails)
        assert app.screen.query_one("#details-epochs", DataTable).row_count == 3
        assert app.screen.candidate.candidate_id == cand.candidate_id and not app.screen.candidate.trimmed
        await pilot.press("escape")
        await ui.settle(app, pilot)
        # the journal gone: the details say why the epochs are not shown, nothing breaks
        (run_dir / "events.jsonl").rename(run_dir / "moved.jsonl")
        app.action_details()
        await ui.settle(app, pilot)
        assert isinstance(app.screen, CandidateDetails)
        assert "not kept in memory, and not read back" in ui.screen_text(app)
