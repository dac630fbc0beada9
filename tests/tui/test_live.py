"""Pilot tests of the dashboard driving a real tiny search on the bundled data (in process)."""
from __future__ import annotations

import asyncio
import time

import pytest

from engine import events as ev

from engine.journal import read_journal
from engine.session import Session
from nas3d_tui.handle import SessionHandle
from tui.app import NasApp
from tui.state import FINISHED, PAUSED, RUNNING

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def wait_until(app, pilot, predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.drain_now()
        await pilot.pause()
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out; dashboard state {app.state.status}")


async def test_live_search_populates_pauses_exports_and_quits_resumably(tmp_path, tiny_profile, ui) -> None:
    run_dir = tmp_path / "run"
    session = Session(tiny_profile("search.budget=60"), run_dir)  # far more than the test lets it train
    handle = SessionHandle(session)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(app, pilot, lambda: len(app.state.leaderboard.rows()) >= 2)
        text = ui.screen_text(app)
        for title in ("Population fitness", "GPU memory", "Cell", "Leaderboard", "Log"):
            assert title in text
        assert "CPU" in str(app.memory.query_one("#memory-text").render())
        assert app.leaderboard.table.row_count >= 2
        assert "input" in str(app.cell.query_one("#cell-text").render())

        await pilot.press("p")
        await wait_until(app, pilot, lambda: app.state.status == PAUSED, timeout=60)
        paused_at = len(read_journal(run_dir / "events.jsonl"))
        await pilot.press("p")
        await wait_until(app, pilot, lambda: app.state.status == RUNNING, timeout=60)
        assert paused_at > 0

        await pilot.press("e")
        await pilot.pause()
        await wait_until(app, pilot, lambda: all((run_dir / f"leaderboard.{x}").exists() for x in ("csv", "json", "md")), 30)

        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(app, pilot, lambda: handle.finished, timeout=120)
    journal = read_journal(run_dir / "events.jsonl")
    kinds = [e.kind for e in journal]
    assert "paused" in kinds and "resumed" in kinds
    assert handle.outcome.state == "stopped" and journal[-1].reason == "stopped"
    assert (run_dir / "checkpoint.json").exists()
    # the checkpoint is resumable: the run continues where it stopped
    trained_before = journal[-1].trained
    resumed = Session.resume_from(run_dir)
    resumed.bus.subscribe(lambda e: resumed.control.stop() if isinstance(e, ev.CandidateFinished) and e.status == "ok" else None)
    assert resumed.run().state == "stopped"
    assert read_journal(run_dir / "events.jsonl")[-1].trained == trained_before + 1


async def test_live_run_finishes_and_shows_finished(tmp_path, tiny_profile, ui) -> None:
    session = Session(tiny_profile("search.budget=4", "final.top_k=1", "final.epochs=1"), tmp_path / "run")
    app = NasApp(SessionHandle(session))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(app, pilot, lambda: app.state.status == FINISHED, timeout=240)
        text = ui.screen_text(app)
        assert "FINISHED" in text
        finalist = [r for r in app.state.leaderboard.rows() if r.test_auc is not None]
        assert len(finalist) == 1
