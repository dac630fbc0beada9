"""The log panel: the latest events as one line each."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from ..state import LOG_LINES, DashboardState

__all__ = ["EventLog"]

_LEVEL_STYLE = {"warning": "yellow", "error": "bold red"}


class EventLog(RichLog):
    """Appends the state's new log lines (a replay of thousands writes only the last few hundred)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=LOG_LINES, wrap=True, markup=False, highlight=False, **kwargs)
        self._last_seq = 0

    def sync(self, state: DashboardState) -> None:
        """Write the lines logged since the last call."""
        texts: list[Text] = []
        for line in state.log:
            if line.seq <= self._last_seq:
                continue
            self._last_seq = line.seq
            text = Text()
            text.append(state.offset(line.ts), style="dim")
            text.append("  ")
            text.append(line.text, style=_LEVEL_STYLE.get(line.level, ""))
            texts.append(text)
        if not texts:
            return
        # Wrap at the panel's width (the console's width is not the panel's), less a scrollbar whether
        # or not one shows yet: lines are wrapped once, when written, and the scrollbar appears when the
        # log fills, so which lines wrapped where would depend on timing (and snapshots on the load).
        width = self.content_region.width - self.styles.scrollbar_size_vertical
        if width > 20:
            # One write for all of them: the same lines as a write each, without a render per line
            # (attaching to a long run writes its last LOG_LINES at once).
            self.write(Text("\n").join(texts), width=width)
        else:  # (not laid out yet: each line at its own width, as RichLog measures it)
            for text in texts:
                self.write(text)
