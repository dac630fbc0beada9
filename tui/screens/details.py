"""Details of one candidate: genotype, cell, per-epoch history and test metrics."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from engine.leaderboard import mean_std

from ..fmt import duration, mb, metric, pm
from ..state import CandidateView
from ..widgets.cell import render_candidate

__all__ = ["CandidateDetails"]


def _summary(c: CandidateView) -> Text:
    t = Text()
    rows = [
        ("status", c.status + (f" — {c.error}" if c.error else "")),
        ("key", c.key or "—"),
        ("genotype", c.compact),
        ("fitness", metric(c.fitness)),
        ("val ACC / AUC", f"{metric(c.val_acc)} / {metric(c.val_auc)}"),
        ("epochs / time", f"{c.epochs} / {duration(c.seconds)}"),
        ("peak memory", mb(c.peak_memory_mb)),
        ("worker", c.worker),
    ]
    for name, value in rows:
        t.append(f"{name:<14}", style="bold")
        t.append(f"{value}\n")
    return t


class CandidateDetails(ModalScreen[None]):
    """A modal over the dashboard; escape closes it."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, candidate: CandidateView, missing: str | None = None) -> None:
        """``missing``: why a trimmed candidate's epochs could not be read back (shown instead of them)."""
        super().__init__()
        self.candidate = candidate
        self.missing = missing

    def compose(self) -> ComposeResult:
        c = self.candidate
        with VerticalScroll(id="details-box", classes="dialog") as box:
            box.border_title = f"Candidate #{c.candidate_id}"
            yield Static(_summary(c), id="details-summary")
            yield Static(render_candidate(c, spacious=True), id="details-cell")
            yield Static(Text("Per-epoch history", style="bold"), classes="details-heading")
            yield DataTable(id="details-epochs", cursor_type="none", zebra_stripes=True)
            if self.missing is not None:
                yield Static(Text(f"not kept in memory, and not read back: {self.missing}", style="italic"),
                             id="details-missing")
            yield Static(Text("Test metrics", style="bold"), classes="details-heading")
            yield Static(self._finals(), id="details-finals")

    def on_mount(self) -> None:
        table = self.query_one("#details-epochs", DataTable)
        table.add_columns("phase", "epoch", "train loss", "val loss", "val ACC", "val AUC", "time")
        for e in self.candidate.history:
            table.add_row(
                e.phase,
                f"{e.epoch}/{e.max_epochs}" if e.max_epochs else str(e.epoch),
                metric(e.train_loss),
                metric(e.val_loss),
                metric(e.val_acc),
                metric(e.val_auc),
                duration(e.seconds),
            )
        if not self.candidate.history:
            table.display = False

    def _finals(self) -> Text:
        finals = self.candidate.finals
        if not finals:
            return Text("not retrained in the final phase", style="italic")
        t = Text()
        for f in finals:
            t.append(f"seed {f.seed}: test AUC {metric(f.test_auc)} · test ACC {metric(f.test_acc)}"
                     f" · val ACC {metric(f.val_acc)} · {f.epochs} epochs, {duration(f.seconds)}\n")
            if f.weights_path:
                t.append(f"  weights {f.weights_path}\n", style="dim")
        if len(finals) > 1:
            auc = pm(*mean_std([f.test_auc for f in finals]))
            acc = pm(*mean_std([f.test_acc for f in finals]))
            t.append(f"mean ± std over {len(finals)} seeds: test AUC {auc} · test ACC {acc}")
        return t
