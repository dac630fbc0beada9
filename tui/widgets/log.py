"""The log panel: the latest events as one line each."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from ..state import DashboardState

__all__ = ["EventLog"]

_LEVEL_STYLE = {"warning": "yellow", "error": "bold red"}


class EventLog(RichLog):
    """Appends the state's new log lines (a replay of thousands writes only the last few hundred)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=500, wrap=True, markup=False, highlight=False, **kwargs)
        self._last_seq = 0

    def sync(self, state: DashboardState) -> None:
        """Write the lines logged since the last call."""
        for line in state.log:
            if line.seq <= self._last_seq:
                continue
            self._last_seq = line.seq
            text = Text()
            text.append(state.offset(line.ts), style="dim")
            text.append("  ")
            text.append(line.text, style=_LEVEL_STYLE.get(line.level, ""))
            # Wrap at the panel's width (the console's width is not the panel's), less a scrollbar whether
            # or not one shows yet: lines are wrapped once, when written, and the scrollbar appears when the
            # log fills, so which lines wrapped where would depend on timing (and snapshots on the load).
            width = self.content_region.width - self.styles.scrollbar_size_vertical
            self.write(text, width=width if width > 20 else None)
