"""The run picker: the runs under a folder (as ``nas3d-tui runs`` lists them); Enter attaches to one.

``pick_run(folder)`` shows the list, refreshed every few seconds from a
worker thread (a long journal never blocks the screen), and returns the
chosen run directory, or None when the user leaves with ``q`` / ``escape``.
A damaged run cannot be picked: the screen says why instead.

Reads through ``engine.runs`` (which writes nothing); no torch.
"""
from __future__ import annotations

import time

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from engine.errors import UserError
from engine.runs import RunCache, RunInfo, list_runs

from ..runlist import COLUMNS, cells

__all__ = ["RunPicker", "pick_run", "REFRESH_SECONDS"]

REFRESH_SECONDS = 3.0
PROGRESS = COLUMNS.index("PROGRESS")  # where a damaged run's error stands
DAMAGED_WIDTH = 48  # ... cut there, so that it does not push the other columns off the screen


class RunPicker(App[str | None]):
    """A table of the runs under ``folder``; ``enter`` returns the selected run's directory."""

    TITLE = "nas3d-tui · runs"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #runs-header { height: 1; padding: 0 1; background: $boost; }
    #runs-table { height: 1fr; }
    #runs-note { height: auto; padding: 0 1; color: $warning; }
    """
    BINDINGS = [
        Binding("enter", "attach", "Attach"),
        Binding("r", "refresh", "Refresh"),
        Binding("q,escape", "leave", "Quit"),
    ]

    def __init__(self, folder: str, refresh_seconds: float = REFRESH_SECONDS) -> None:
        super().__init__()
        self.folder = folder
        self.refresh_seconds = refresh_seconds
        self.runs: list[RunInfo] = []
        self._cache = RunCache()  # a refresh reads again only the runs whose files changed

    def compose(self) -> ComposeResult:
        yield Static(f"Runs in {self.folder} · enter attaches · r refreshes · q quits", id="runs-header")
        table: DataTable[str] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="runs-note")
        yield Footer()

    @property
    def table(self) -> DataTable[str]:
        table: DataTable[str] = self.query_one("#runs-table", DataTable)
        return table

    def on_mount(self) -> None:
        self.table.focus()
        self.action_refresh()
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.action_refresh, name="refresh-runs")

    @work(thread=True, exclusive=True, group="runs")
    def action_refresh(self) -> None:
        try:
            runs, note = list_runs(self.folder, cache=self._cache), ""
        except UserError as exc:  # the folder went away or became unreadable
            runs, note = [], str(exc)
        self.call_from_thread(self._show, runs, note)

    def _show(self, runs: list[RunInfo], note: str) -> None:
        table = self.table
        keep = self.selected.path if self.selected is not None else None
        self.runs = runs
        table.clear()
        now = time.time()
        for r in runs:
            row = list(cells(r, now))
            if r.state == "damaged" and len(row[PROGRESS]) > DAMAGED_WIDTH:  # the whole message: on Enter, below
                row[PROGRESS] = row[PROGRESS][: DAMAGED_WIDTH - 1] + "…"
            table.add_row(*row, key=r.path)
        if not runs and not note:
            note = f"no runs in {self.folder}"
        self.query_one("#runs-note", Static).update(note)
        rows = [r.path for r in runs]
        if keep in rows:
            table.move_cursor(row=rows.index(keep))
        elif runs:  # the newest run that can be attached to
            usable = [k for k, r in enumerate(runs) if r.state != "damaged"]
            table.move_cursor(row=usable[-1] if usable else 0)

    @property
    def selected(self) -> RunInfo | None:
        if not self.runs:
            return None
        row = self.table.cursor_row
        return self.runs[row] if 0 <= row < len(self.runs) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_attach()

    def action_attach(self) -> None:
        r = self.selected
        if r is None:
            return
        if r.state == "damaged":
            self.query_one("#runs-note", Static).update(f"cannot attach to {r.name}: {r.error}")
            return
        self.exit(r.path)

    def action_leave(self) -> None:
        self.exit(None)


def pick_run(folder: str) -> str | None:
    """Show the picker; the chosen run directory, or None."""
    return RunPicker(folder).run()
