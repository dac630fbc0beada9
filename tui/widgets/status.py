"""The status line: run, dataset, device, progress, ETA and the run state."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..fmt import duration, metric
from ..state import FAILED, FINISHED, PAUSED, RUNNING, STOPPING, DashboardState

__all__ = ["StatusLine"]

_STATE_STYLE = {
    RUNNING: "bold reverse green",
    PAUSED: "bold reverse yellow",
    STOPPING: "bold reverse magenta",
    FINISHED: "bold reverse blue",
    FAILED: "bold reverse red",
}


class StatusLine(Static):
    """One or two lines summarising the run; redrawn when the state changes."""

    DEFAULT_CSS = "StatusLine { height: auto; padding: 0 1; }"

    def __init__(self, attached: bool = False, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.attached = attached
        self._seen = -1

    def sync(self, state: DashboardState) -> None:
        """Redraw if the state changed since the last call."""
        rev = state.revision["status"]
        if rev == self._seen:
            return
        self._seen = rev
        text = self.render_state(state)
        # One row per line, set explicitly: left to `height: auto`, a status line that grew (the error
        # row of a failed run) was at times laid out at its old height on a busy machine.
        text.no_wrap, text.overflow = True, "ellipsis"
        self.styles.height = text.plain.count("\n") + 1
        self.update(text)
        for name in (RUNNING, PAUSED, STOPPING, FINISHED, FAILED):
            self.set_class(state.status == name, f"-{name.lower()}")

    def render_state(self, state: DashboardState) -> Text:
        text = Text()
        text.append(f" {state.status} ", style=_STATE_STYLE.get(state.status, "bold reverse"))
        if state.status == FINISHED and state.finish_reason:
            text.append(f" ({state.finish_reason})", style="bold")
        if state.pending and state.status not in (FINISHED, FAILED):
            verb = {"pause": "pausing", "resume": "resuming", "stop": "stopping"}.get(state.pending, state.pending)
            text.append(f" {verb}…", style="italic")
        if state.warming_up and state.status not in (FINISHED, FAILED):
            text.append(" warming up the GPU…", style="italic")
        sep = (" │ ", "dim")
        run = state.run
        text.append("  ")
        if run is not None:
            text.append(run.run_name, style="bold")
            text.append(f" · {run.dataset} {run.size}³ · {run.device}")
        else:
            text.append("waiting for the run to start…", style="italic")
        if self.attached:
            text.append(" · attached", style="italic")
        text.append("\n ")
        text.append(f"gen {state.generation}")
        text.append(*sep)
        text.append(f"trained {state.progress_text()}")
        eta = state.eta_seconds()
        if eta is not None:
            text.append(f" · ETA {duration(eta)}")
        text.append(*sep)
        text.append(f"in flight {len(state.in_flight)}")
        if state.final is not None:
            done = len({f.candidate_id for f in state.final_results})
            text.append(*sep)
            text.append(f"final phase {done}/{len(state.final.candidate_ids)}")
        best = state.best()
        if best is not None:
            text.append(*sep)
            text.append(f"best #{best.candidate_id} {metric(best.fitness)}")
        if state.status == FAILED and state.error:
            text.append("\n")
            text.append(" error ", style="bold reverse red")
            text.append(f" {state.error}")
        return text
