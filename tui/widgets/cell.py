"""The Cell panel: the decoded cell of the selected (or training) candidate, macro choices, cost and training trace.

The trace (``training.render_training``) makes a slow candidate visibly
alive: it redraws with every epoch and, while the candidate trains, with
every resource sample (its "training for" time runs on the event clock).
"""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..cellgraph import render_cell
from ..fmt import metric, si
from ..state import CandidateView, DashboardState
from .training import render_training

__all__ = ["CellPanel", "render_candidate"]


def render_candidate(cand: CandidateView, role: str = "", spacious: bool = False) -> Text:
    """The cell drawing of one candidate with its header and footer lines."""
    text = Text()
    text.append(f"#{cand.candidate_id}", style="bold")
    text.append(f" · gen {cand.generation} · {cand.phase or '?'} · {cand.status}")
    if cand.status == "running" and cand.max_epochs:
        text.append(f" · epoch {cand.epochs}/{cand.max_epochs}")
    text.append(f"  ({role})\n" if role else "\n", style="italic")
    g = cand.genotype
    matrix, ops = g.get("matrix") or [], g.get("ops") or []
    if not g.get("feasible", True) and not matrix:
        text.append(f"infeasible: {g.get('reason') or cand.error or 'no valid cell'}\n", style="italic")
        raw = g.get("raw_matrix")
        if raw:
            text.append("unpruned cell:\n", style="dim")
            matrix, ops = raw, g.get("raw_ops") or []
    try:
        drawing = render_cell(matrix, ops, spacious=spacious)
    except (TypeError, ValueError, IndexError, KeyError) as exc:  # a malformed genotype from a newer engine
        drawing = [f"cannot draw this cell: {exc!r}"]
    text.append("\n".join(drawing))
    text.append("\n\n")
    text.append(cand.macro)
    text.append(f"\nparams {si(cand.params)} · FLOPs {si(cand.flops)}")
    if cand.fitness is not None:
        text.append(f" · fitness {metric(cand.fitness)}")
    if cand.duplicate_of is not None:
        text.append(f"\nduplicate of #{cand.duplicate_of}", style="dim")
    return text


class CellPanel(VerticalScroll):
    """Follows the training candidate until a leaderboard row is selected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.selected: int | None = None  # None: follow the training candidate
        self._seen: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("no candidate yet", id="cell-text")

    def select(self, candidate_id: int | None, state: DashboardState) -> None:
        """Show ``candidate_id`` (None: follow the training candidate again)."""
        self.selected = candidate_id
        self._seen = None
        self.sync(state)

    def sync(self, state: DashboardState) -> None:
        """Redraw if the shown candidate or its data changed since the last call."""
        cand, role = self._target(state)
        running = cand is not None and cand.status == "running"
        key = (
            cand.candidate_id if cand else None,
            role,
            state.revision["cell"],
            state.revision["epochs"] if running else 0,
            state.revision["resources"] if running else 0,  # the time spent so far moves with the clock
            self.scrollable_content_region.width,
        )
        if key == self._seen:
            return
        self._seen = key
        static = self.query_one("#cell-text", Static)
        if cand is None:
            static.update(Text("no candidate yet", style="italic"))
            self.border_subtitle = ""
            return
        text = render_candidate(cand)
        fitness = state.run.fitness if state.run is not None else "val_acc"
        width = self.scrollable_content_region.width or 42
        trace = render_training(cand, state.last_ts, fitness=fitness, width=width)
        if trace:
            text.append("\n\n")
            text.append_text(trace)
        elif cand.trimmed and cand.epochs:  # a long run's older candidate: its epochs are in the journal, not in memory
            text.append(f"\n\ntrained {cand.epochs} epoch{'s' if cand.epochs != 1 else ''} · enter: its epochs",
                        style="dim")
        static.update(text)
        self.border_subtitle = f"#{cand.candidate_id} {role}"

    def followed(self, state: DashboardState) -> int | None:
        """The candidate shown while no leaderboard row is selected (None once the user picked one)."""
        if self.selected is not None:
            return None
        cand, _ = self._target(state)
        return cand.candidate_id if cand is not None else None

    def _target(self, state: DashboardState) -> tuple[CandidateView | None, str]:
        if self.selected is not None and self.selected in state.candidates:
            return state.candidates[self.selected], "selected · esc follows"
        cand = state.focus_candidate()
        if cand is None:
            return None, ""
        return cand, "training" if cand.candidate_id in state.in_flight else "best so far"
