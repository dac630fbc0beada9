"""The leaderboard panel: a sortable table of the candidates with a result.

Rows come from ``engine.leaderboard`` (the same ranking the exports use); the
panel only orders and formats them, and shows the first ``SHOWN_ROWS`` of the
current order (the subtitle says how many there are; ``export`` has them all),
so a redraw costs the same at 200 candidates as at 10,000. Moving the cursor selects a candidate
(``LeaderboardTable.CandidateSelected``), ``enter`` asks for its details
(``LeaderboardTable.DetailsRequested``), ``escape`` goes back to following
the training candidate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable

from engine.leaderboard import Row

from ..fmt import duration, metric, pm, si
from ..state import DashboardState

__all__ = ["COLUMNS", "COLUMN_LABELS", "SHOWN_ROWS", "LeaderboardTable", "LeaderboardPanel", "column_widths", "sort_rows"]

SHOWN_ROWS = 100  # rows drawn, in the current order


@dataclass(frozen=True)
class Column:
    key: str  # the name of the ``engine.leaderboard.Row`` property it shows (its sort key)
    label: str
    get: Callable[[Row], Any]  # that property's value
    fmt: Callable[[Any], str]
    descending: bool = False  # the first click sorts best first
    numeric: bool = True
    render: Callable[[Row], str] | None = None  # the whole row -> text, when one value is not enough

    def text(self, row: Row) -> str:
        return self.render(row) if self.render is not None else self.fmt(self.get(row))


def _text(v: Any) -> str:
    return "—" if v is None else str(v)


def _status(row: Row) -> str:
    """``pruned@3`` for a training stopped at epoch 3 by its pruning rule, else the status."""
    status, at = row.status, row.pruned_at
    return f"pruned@{at}" if status == "pruned" and at else _text(status)


COLUMNS: tuple[Column, ...] = (
    Column("rank", "rank", lambda r: r.rank, _text),
    Column("candidate_id", "id", lambda r: r.candidate_id, lambda v: f"#{v}"),
    Column("fitness", "fitness", lambda r: r.fitness, metric, descending=True),
    # what placed a row below an equally fit one: val AUC, then FLOPs, then id (search.tie_break)
    Column("tie_break", "tie", lambda r: r.tie_break, lambda v: v or "", numeric=False),
    Column("val_auc", "val AUC", lambda r: r.val_auc, metric, descending=True),
    Column("params", "params", lambda r: r.params, si),
    Column("flops", "FLOPs", lambda r: r.flops, si),
    Column("epochs", "epochs", lambda r: r.epochs, _text),
    Column("seconds", "time", lambda r: r.seconds, duration),
    Column("status", "status", lambda r: r.status, _text, numeric=False, render=_status),
    Column("worker", "worker", lambda r: r.worker, _text, numeric=False),
    Column("test_auc", "test AUC", lambda r: r.test_auc, metric, descending=True,
           render=lambda r: pm(r.test_auc, r.test_auc_std)),
)
_BY_KEY = {c.key: c for c in COLUMNS}
COLUMN_LABELS = {c.key: c.label for c in COLUMNS}  # field -> the header the user sees


def sort_rows(rows: list[Row], key: str, descending: bool) -> list[Row]:
    """Rows ordered by column ``key``; missing values always last, ties by rank then id."""
    get = _BY_KEY[key].get

    def tie(r: Row) -> tuple[float, int]:
        rank = r.rank
        return (rank if rank is not None else float("inf"), r.candidate_id)

    present = [r for r in rows if get(r) is not None]
    missing = [r for r in rows if get(r) is None]
    present.sort(key=tie)
    present.sort(key=get, reverse=descending)
    return present + sorted(missing, key=tie)


def column_widths(labels: list[Text], body: list[list[Text]]) -> dict[str, int]:
    """Each column's width in cells: its widest header or cell (fixed, never left to a redraw)."""
    widths = {}
    for i, col in enumerate(COLUMNS):
        widths[col.key] = max([labels[i].cell_len, *(cells[i].cell_len for cells in body)])
    return widths


class LeaderboardTable(DataTable[Text]):
    """The table; row keys are candidate ids."""

    BINDINGS = [
        Binding("enter", "details", "Details"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("escape", "follow", "Follow training", show=False),
    ]

    @dataclass
    class CandidateSelected(Message):
        """The user moved to a candidate's row (None: follow the training candidate)."""

        candidate_id: int | None

    @dataclass
    class DetailsRequested(Message):
        """The user asked for the details of a candidate."""

        candidate_id: int

    @dataclass
    class SortChanged(Message):
        """The user asked for another order."""

        key: str
        descending: bool

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._user_moves = 0  # cursor moves by the user whose RowHighlighted is not handled yet

    # Cursor moves made by the user (not by a rebuild) select a candidate. Each one that moved the
    # cursor posts one RowHighlighted, handled later: keys pressed quickly (a held arrow over SSH)
    # are several moves before the first is handled, and each must count.
    def _user(self, action: Callable[[], Any]) -> Any:
        before = self.cursor_coordinate
        result = action()
        if self.cursor_coordinate != before:
            self._user_moves += 1
        return result

    def action_cursor_up(self) -> None:
        self._user(super().action_cursor_up)

    def action_cursor_down(self) -> None:
        self._user(super().action_cursor_down)

    def action_page_up(self) -> None:
        self._user(super().action_page_up)

    def action_page_down(self) -> None:
        self._user(super().action_page_down)

    def action_scroll_top(self) -> None:
        self._user(super().action_scroll_top)

    def action_scroll_bottom(self) -> None:
        self._user(super().action_scroll_bottom)

    @property
    def moves_pending(self) -> bool:
        """Whether the user moved the cursor and the dashboard has not handled every move yet."""
        return self._user_moves > 0

    def take_user_move(self) -> bool:
        """Whether the RowHighlighted being handled came from a move by the user (counted once)."""
        if self._user_moves:
            self._user_moves -= 1
            return True
        return False

    def current_candidate(self) -> int | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return int(key.value) if key.value is not None else None

    def action_details(self) -> None:
        cid = self.current_candidate()
        if cid is not None:
            self.post_message(self.DetailsRequested(cid))

    def action_follow(self) -> None:
        self.post_message(self.CandidateSelected(None))

    def action_cycle_sort(self) -> None:
        panel = self.parent
        if isinstance(panel, LeaderboardPanel):
            keys = [c.key for c in COLUMNS]
            nxt = COLUMNS[(keys.index(panel.sort_key) + 1) % len(COLUMNS)]
            self.post_message(self.SortChanged(nxt.key, nxt.descending))

    def action_reverse_sort(self) -> None:
        panel = self.parent
        if isinstance(panel, LeaderboardPanel):
            self.post_message(self.SortChanged(panel.sort_key, not panel.descending))


class LeaderboardPanel(Vertical):
    """Holds the table, its order, and rebuilds the rows when the ranking changes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sort_key = "rank"
        self.descending = False
        self._seen = -1
        self.row_ids: list[int] = []

    def compose(self) -> ComposeResult:
        yield LeaderboardTable(id="leaderboard-table")

    @property
    def table(self) -> LeaderboardTable:
        return self.query_one(LeaderboardTable)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self, widths: dict[str, int] | None = None) -> None:
        table = self.table
        for col in COLUMNS:
            table.add_column(self._label(col), key=col.key, width=(widths or {}).get(col.key))

    def _label(self, col: Column) -> Text:
        if col.key != self.sort_key:
            return Text(col.label)
        return Text(f"{col.label} {'▼' if self.descending else '▲'}", style="bold")

    @staticmethod
    def _cells(row: Row) -> list[Text]:
        cells = []
        for col in COLUMNS:
            value = col.get(row)
            cell = Text(col.text(row), justify="right" if col.numeric else "left")
            if col.key == "status" and value not in (None, "ok"):
                cell.stylize("yellow" if value in ("oom", "duplicate", "running", "pruned") else "dim")
            cells.append(cell)
        return cells

    def set_sort(self, key: str, descending: bool | None, state: DashboardState) -> None:
        """Order by ``key`` (None: the column's natural direction, or flip if already sorted by it)."""
        if key not in _BY_KEY:
            return
        if descending is None:
            descending = (not self.descending) if key == self.sort_key else _BY_KEY[key].descending
        self.sort_key, self.descending = key, descending
        self._seen = -1  # the next sync rebuilds rows and headers (with the sort arrow)
        self.sync(state)

    def sync(self, state: DashboardState, follow: int | None = None) -> None:
        """Rebuild the rows if the ranking changed; the cursor stays on the same candidate.

        ``follow``: the candidate the Cell panel shows while the user has not picked a row;
        the cursor sits on its row when it has one, so Enter opens what the panel shows.
        """
        table = self.table
        rev = state.revision["leaderboard"]
        if rev != self._seen:
            self._seen = rev
            self._rebuild(state, table.current_candidate())
        # (not while the user's own moves wait to be handled: a redraw between a key and its
        # handling would put the cursor back on the followed row and lose the moves)
        if (follow is not None and not table.moves_pending and follow in self.row_ids
                and table.current_candidate() != follow):
            table.move_cursor(row=self.row_ids.index(follow), animate=False)

    def _rebuild(self, state: DashboardState, current: int | None) -> None:
        table = self.table
        board = state.leaderboard
        if self.sort_key == "rank" and not self.descending:  # the leaderboard's own order: its top rows alone
            rows, total = board.head(SHOWN_ROWS), board.count()
        else:
            rows = sort_rows(board.rows(), self.sort_key, self.descending)
            total = len(rows)
        self.border_subtitle = f"first {SHOWN_ROWS} of {total:,} · e exports all" if total > SHOWN_ROWS else ""
        rows = rows[:SHOWN_ROWS]
        # Columns are rebuilt with widths measured here, from the rows they hold: a DataTable left
        # to measure widths itself does so on its next idle moment, and rows painted before that
        # (a busy machine) stay cached at the old widths, so a screen would depend on timing.
        body = [self._cells(row) for row in rows]
        table.clear(columns=True)
        self._add_columns(column_widths([self._label(c) for c in COLUMNS], body))
        self.row_ids = []
        for row, cells in zip(rows, body):
            table.add_row(*cells, key=str(row.candidate_id))
            self.row_ids.append(int(row.candidate_id))
        if current is not None and current in self.row_ids:
            table.move_cursor(row=self.row_ids.index(current), animate=False)
