"""The dashboard app: panels over a ``DashboardState``, fed by a ``RunHandle``.

Events arrive on engine (or tailing) threads through ``_sink``, which only
appends to a deque; a timer on the UI thread drains it a few times a second,
folds every event into the state and redraws the panels whose data changed.
So the UI never waits on the engine, and bursts of epoch and resource events
cost one redraw. An engine failure, or a handle that raises, shows as FAILED;
it never takes the app down.

Must not import torch (``tests/tui/test_boundary.py`` checks).
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Callable, TypeVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Footer, Static

from engine.events import Event
from engine.vocab import Command

from .fmt import export_note
from .handle import RunHandle
from .screens import CandidateDetails, ConfirmQuit, HelpScreen
from .state import FAILED, PAUSED, STOPPING, DashboardState
from .widgets import (
    COLUMN_LABELS,
    CellPanel,
    EventLog,
    FitnessPanel,
    LeaderboardPanel,
    LeaderboardTable,
    MemoryPanel,
    StatusLine,
)

__all__ = ["NasApp", "run_dashboard", "run_attached", "MIN_SIZE"]

MIN_SIZE = (60, 20)  # below this the dashboard shows a message instead of panels
STACKED_BELOW = (110, 34)  # below this the panels stack in one scrolling column
MAX_EVENTS_PER_TICK = 20_000  # a replay of a huge journal is spread over several ticks
CATCH_UP_EVERY = 0.01  # seconds between folds while a handle delivers a run's history
W = TypeVar("W", bound=Widget)


class NasApp(App[int]):
    """The nas3d-tui dashboard.

    Args:
        handle: the run to watch and steer (in-process session, attach, replay).
        title: shown in the terminal title; defaults to the run directory name.
        refresh_hz: how often queued events are applied and panels redrawn.
        resume_command: the command the quit dialog offers to continue the run.
        runs_folder: the folder of runs this attached run belongs to: ``R`` leaves the
            dashboard asking for their list (``wants_runs``), to attach to another.
    """

    CSS_PATH = "app.tcss"
    TITLE = "nas3d-tui"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("p", "toggle_pause", "Pause/Resume"),
        Binding("s", "stop", "Stop"),
        Binding("e", "export", "Export"),
        Binding("enter", "details", "Details"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("x", "toggle_x_axis", "FLOPs/params", show=False),
        Binding("R", "runs", "Runs", key_display="R"),
    ]

    def __init__(
        self,
        handle: RunHandle,
        title: str | None = None,
        *,
        refresh_hz: float = 5.0,
        resume_command: str | None = None,
        runs_folder: str | None = None,
    ) -> None:
        super().__init__()
        self.handle = handle
        self.runs_folder = runs_folder if handle.attached else None  # (an in-process search is not left for another)
        self.wants_runs = False
        # how the user continues this run later, spelled to work from where they started us
        self.resume_command = resume_command or f"nas3d-tui resume {handle.run_dir}"
        self.title = title or f"nas3d-tui · {Path(handle.run_dir).name}"
        self.refresh_hz = refresh_hz
        self.state = DashboardState()
        self._inbox: deque[Event] = deque()
        self._quitting = False
        self._started = False
        self._soon = False  # a fold is scheduled before the next tick (catching up)
        self._panels: dict[str, Widget] = {}

    # -- typed access to the panels (kept from compose: no queries while the app shuts down) --
    @property
    def status_line(self) -> StatusLine:
        return self._panels["status"]  # type: ignore[return-value]

    @property
    def fitness(self) -> FitnessPanel:
        return self._panels["fitness"]  # type: ignore[return-value]

    @property
    def memory(self) -> MemoryPanel:
        return self._panels["memory"]  # type: ignore[return-value]

    @property
    def cell(self) -> CellPanel:
        return self._panels["cell"]  # type: ignore[return-value]

    @property
    def leaderboard(self) -> LeaderboardPanel:
        return self._panels["leaderboard"]  # type: ignore[return-value]

    @property
    def event_log(self) -> EventLog:
        return self._panels["log"]  # type: ignore[return-value]

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        p = self._panels = {
            "status": StatusLine(attached=self.handle.attached, id="status"),
            "fitness": self._titled(FitnessPanel(id="fitness"), "Population fitness"),
            "cell": self._titled(CellPanel(id="cell"), "Cell"),
            "leaderboard": self._titled(LeaderboardPanel(id="leaderboard"), "Leaderboard"),
            "log": self._titled(EventLog(id="log"), "Log"),
            "memory": self._titled(MemoryPanel(id="memory"), "GPU memory"),
        }
        yield p["status"]
        yield Static(id="too-small")
        with VerticalScroll(id="main"):
            with Horizontal(id="top"):
                yield p["fitness"]
                yield p["cell"]
            yield p["leaderboard"]
            with Horizontal(id="bottom"):
                yield p["log"]
                yield p["memory"]
        yield Footer()

    @staticmethod
    def _titled(widget: W, title: str) -> W:
        widget.border_title = title
        widget.add_class("panel")
        return widget

    def on_mount(self) -> None:
        self._apply_size(self.size.width, self.size.height)
        self.leaderboard.table.focus()
        self.set_interval(1 / self.refresh_hz, self._drain, name="drain-events")
        self._sync_panels()
        try:
            self.handle.start(self._sink)
            self._started = True
        except Exception as exc:  # the handle could not start: show it, keep the app up
            self.state.fail(f"could not start: {exc}")
            self._sync_panels()

    def on_resize(self, event: Resize) -> None:
        """Switch between the full layout, the stacked one and the too-small message."""
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        stacked = width < STACKED_BELOW[0] or height < STACKED_BELOW[1]
        self.screen.set_class(too_small, "-too-small")
        self.screen.set_class(stacked and not too_small, "-stacked")
        if too_small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small ({width}×{height}).\n"
                f"nas3d-tui needs at least {MIN_SIZE[0]}×{MIN_SIZE[1]}: enlarge the window.\n"
                "The search goes on; q quits."
            )

    # -- events in (any thread) → state (UI thread) --------------------------------------
    def _sink(self, event: Event) -> None:
        """Called on engine threads: never blocks, never touches widgets."""
        self._inbox.append(event)

    def _drain(self) -> None:
        """Fold queued events into the state and redraw what changed (timer, UI thread)."""
        handle_done = self._started and self._safe_finished()
        # While the handle delivers a run's history (attach), fold it all and draw once it is in:
        # drawing part of it at every tick would cost a redraw per tick for nothing anyone reads.
        catching_up = self._started and self._safe_catching_up()
        applied = 0
        while self._inbox and (catching_up or applied < MAX_EVENTS_PER_TICK):
            event = self._inbox.popleft()
            applied += 1
            try:
                self.state.apply(event)
            except Exception as exc:  # a malformed event must not take the dashboard down
                self.state.note("error", f"could not show {event.kind}: {exc!r}")
        if catching_up:
            # The handle delivers a history one event at a time (attach of a long run): fold what came
            # again soon, so that it never piles up in the inbox (the 5 Hz tick would let thousands).
            if not self._soon:
                self._soon = True
                self.set_timer(CATCH_UP_EVERY, self._drain_soon)
            return
        if handle_done and not self._inbox and not self.state.terminal and not self.handle.attached:
            self.state.fail("the engine stopped without reporting an end (see the log)")
        self._sync_panels()  # each panel redraws only when its part of the state changed

    def _drain_soon(self) -> None:
        self._soon = False
        self._drain()

    def _safe_catching_up(self) -> bool:
        try:
            return bool(getattr(self.handle, "catching_up", False))
        except Exception:
            return False

    def _safe_finished(self) -> bool:
        try:
            return bool(self.handle.finished)
        except Exception:
            return False

    def _sync_panels(self) -> None:
        if not self._panels or not self.is_running:
            return
        state = self.state
        try:
            self.status_line.sync(state)
            self.fitness.sync(state)
            self.cell.sync(state)
            self.leaderboard.sync(state, follow=self.cell.followed(state))
            self.memory.sync(state)
            self.event_log.sync(state)
        except NoMatches:  # a timer tick while the app is being torn down
            pass

    def drain_now(self) -> None:
        """Apply every queued event and draw immediately (tests; the timer does this in normal use).

        Draws even when nothing is queued: a history folded while the handle was catching up
        is drawn by the first drain after it.
        """
        self._drain()
        while self._inbox:
            self._drain()

    # -- leaderboard ↔ cell ---------------------------------------------------------------
    @on(LeaderboardTable.RowHighlighted)
    def _select_highlighted(self, message: LeaderboardTable.RowHighlighted) -> None:
        """Show the cell of the row the user moved to."""
        table = self.leaderboard.table
        if table.take_user_move() and message.row_key.value is not None:
            self.cell.select(int(message.row_key.value), self.state)

    @on(LeaderboardTable.RowSelected)
    def _select_clicked(self, message: LeaderboardTable.RowSelected) -> None:
        """A click on a row selects it too."""
        if message.row_key.value is not None:
            self.cell.select(int(message.row_key.value), self.state)

    @on(LeaderboardTable.CandidateSelected)
    def _follow(self, message: LeaderboardTable.CandidateSelected) -> None:
        """Escape: the Cell panel follows the training candidate again."""
        self.cell.select(message.candidate_id, self.state)

    @on(LeaderboardTable.HeaderSelected)
    def _sort_by_header(self, message: LeaderboardTable.HeaderSelected) -> None:
        """Clicking a header sorts by it (again: reverses)."""
        self.leaderboard.set_sort(str(message.column_key.value), None, self.state)

    @on(LeaderboardTable.SortChanged)
    def _sort_by_key(self, message: LeaderboardTable.SortChanged) -> None:
        """o / r sort the leaderboard."""
        self.leaderboard.set_sort(message.key, message.descending, self.state)
        label = COLUMN_LABELS.get(message.key, message.key)  # the header the user sees, not the field
        self.notify(f"leaderboard sorted by {label}{' (descending)' if message.descending else ''}", timeout=2)

    @on(LeaderboardTable.DetailsRequested)
    def _details_of_row(self, message: LeaderboardTable.DetailsRequested) -> None:
        """Enter on a row opens its details."""
        self._open_details(message.candidate_id)

    def action_details(self) -> None:
        """Details of the selected candidate, else the one the Cell panel shows."""
        cid = self.cell.selected
        if cid is None:
            focus = self.state.focus_candidate()
            cid = focus.candidate_id if focus else None
        if cid is None:
            self.notify("no candidate yet", severity="warning", timeout=3)
            return
        self._open_details(cid)

    def _open_details(self, cid: int) -> None:
        cand = self.state.candidates.get(cid)
        if cand is None:
            self.notify(f"no details for #{cid}", severity="warning", timeout=3)
            return
        missing = None
        if cand.trimmed:  # a long run's dashboard let its epochs go: the journal has them
            from engine.errors import RunDirError
            from engine.journal import read_candidate
            from engine.rundir import RunDir

            journal = RunDir(self.handle.run_dir, resolve=False).journal_path
            try:
                whole = DashboardState.candidate_from_events(cid, read_candidate(journal, cid))
            except RunDirError as exc:
                whole, missing = None, str(exc)
            if whole is not None and whole.record is not None:
                cand = whole
            else:
                missing = missing or f"{journal} no longer has candidate #{cid}"
        self.push_screen(CandidateDetails(cand, missing=missing))

    def action_toggle_x_axis(self) -> None:
        axis = self.fitness.toggle_x_axis(self.state)
        self.notify(f"scatter against {'FLOPs' if axis == 'flops' else 'parameters'}", timeout=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``R`` (the runs list) only where there is one to go to."""
        if action == "runs":
            return self.runs_folder is not None
        return True

    def action_runs(self) -> None:
        """R: detach and show the runs of this folder, to attach to another."""
        if self.runs_folder is None or self._quitting:
            return
        self.wants_runs = True
        self._close_and_exit()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # -- commands -------------------------------------------------------------------------
    def _command(self, name: Command, send: Callable[[], None]) -> bool:
        """Send one command to the handle (``send``); a handle that raises shows the error, not a crash."""
        try:
            send()
        except Exception as exc:
            self.state.note("error", f"{name} failed: {exc}")
            self.notify(f"{name} failed: {exc}", severity="error")
            self._sync_panels()
            return False
        return True

    def action_toggle_pause(self) -> None:
        """p: pause, or resume a paused run."""
        state = self.state
        if state.terminal:
            self.notify(f"the run is {state.status.lower()}", timeout=3)
            return
        if state.status == STOPPING:
            self.notify("the run is stopping", timeout=3)
            return
        resume = state.status == PAUSED or state.pending == "pause"
        command: Command = "resume" if resume else "pause"
        if resume:
            sent = self._command(command, lambda: self.handle.resume())
        else:
            sent = self._command(command, lambda: self.handle.pause())
        if sent:
            state.request(command)
            self._sync_panels()
            if not resume:
                self.notify("pausing at the next batch boundary…", timeout=3)

    def action_stop(self) -> None:
        """s: stop, saving the search state."""
        state = self.state
        if state.terminal:
            self.notify(f"the run is {state.status.lower()}", timeout=3)
            return
        if state.status == STOPPING:
            return
        if self._command("stop", lambda: self.handle.stop()):
            state.request("stop")
            self._sync_panels()
            self.notify("stopping: the search state is saved at the next batch boundary", timeout=4)

    def action_export(self) -> None:
        """e: write the leaderboard as CSV, JSON and Markdown into the run directory."""
        from engine.leaderboard import EXPORT_FORMATS, export
        from engine.rundir import RunDir

        run_dir = RunDir(self.handle.run_dir, resolve=False)
        rows = list(self.state.leaderboard.rows())
        written: list[str] = []
        try:
            run_dir.path.mkdir(parents=True, exist_ok=True)
            for fmt in EXPORT_FORMATS:
                export(rows, fmt, run_dir.export_path(fmt))
                written.append(str(run_dir.export_path(fmt)))
        except Exception as exc:
            self.notify(f"export failed: {exc}", severity="error")
            return
        self.notify(export_note([Path(p).name for p in written], run_dir.path, self.size.width),
                    title=f"leaderboard exported ({len(rows)} rows)", timeout=6, markup=False)

    # -- quitting -------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """q: detach (attached, or the run has ended), or confirm and stop, saving the search state."""
        if self._quitting:
            return
        if self.handle.attached or self.state.terminal or self._safe_finished():
            self._close_and_exit()
            return
        self.push_screen(ConfirmQuit(self.resume_command), self._confirmed_quit)

    def _confirmed_quit(self, yes: bool | None) -> None:
        if yes:
            self._close_and_exit()

    def _close_and_exit(self) -> None:
        self._quitting = True
        if self.handle.attached:
            try:
                self.handle.close()
            finally:
                self.exit(self.exit_code, return_code=self.exit_code)
            return
        if not self.state.terminal:
            self.state.request("stop")
            self._sync_panels()
            self.notify("saving the search state before quitting…", timeout=30)
        self._close_in_background()

    @work(thread=True, exclusive=True, exit_on_error=False, group="close")
    def _close_in_background(self) -> None:
        """Join the engine off the UI thread, then leave."""
        code = None
        try:
            self.handle.close()
        except Exception:
            code = 1
        code = code if code is not None else self.exit_code
        self.call_from_thread(self.exit, code, code)

    @property
    def exit_code(self) -> int:
        """1 when the run failed, else 0."""
        return 1 if self.state.status == FAILED else 0


def run_dashboard(handle: RunHandle, title: str | None = None, resume_command: str | None = None) -> int:
    """Run the dashboard on ``handle`` until the user quits; returns the exit code (1: the run failed)."""
    return run_attached(handle, None, resume_command=resume_command, title=title)[0]


def run_attached(handle: RunHandle, runs_folder: str | None, resume_command: str | None = None,
                 title: str | None = None) -> tuple[int, bool]:
    """Run the dashboard on an attached ``handle``; returns the exit code and whether the user left
    with ``R`` for the list of the runs in ``runs_folder``."""
    app = NasApp(handle, title=title, resume_command=resume_command, runs_folder=runs_folder)
    result = app.run()
    code = result if isinstance(result, int) else (app.return_code or 0)
    return code, app.wants_runs
