"""Snapshots of the main screen built from the recorded journal (no clocks on screen).

Regenerate after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the SVGs under ``__snapshots__``. They depend on the Textual / plotext versions.
"""
from __future__ import annotations

import pytest

from tui.app import NasApp
from tui.replay import ReplayHandle

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def dashboard(make_journal, ui, monkeypatch):
    """App factory: a dashboard replaying the journal that ends with ``end``, and its settle step."""
    monkeypatch.delenv("NO_COLOR", raising=False)  # the snapshots are in colour

    def factory(end: str = "finished", cpu: bool = False):
        app = NasApp(ReplayHandle(make_journal(cpu=cpu, end=end)))

        async def run_before(pilot) -> None:
            await ui.settle(pilot.app, pilot)
            # Stacked (80×24), where the column scrolls depends on when the focused table was laid out:
            # the snapshot puts the Cell panel at the top, whole, so it never depends on timing.
            pilot.app.cell.scroll_visible(top=True, animate=False, immediate=True)
            await pilot.pause()

        return app, run_before

    return factory


class TestMainScreen:
    def test_finished_run_large(self, snap_compare, dashboard) -> None:
        app, run_before = dashboard("finished")
        assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)

    def test_running_cpu_small(self, snap_compare, dashboard) -> None:
        app, run_before = dashboard("running", cpu=True)
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)

    def test_failed_run(self, snap_compare, dashboard) -> None:
        app, run_before = dashboard("failed")
        assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
