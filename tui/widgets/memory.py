"""The GPU memory panel: used / total per device, the current candidate's peak, a sparkline.

Without CUDA (the GPU fields of ``ResourceSample`` are None) it shows the
process memory (RSS) and says so.

The panel owns its inner layout (``DEFAULT_CSS``): the sparkline shares the
rows the readings leave when the panel has a fixed height (the full layout),
and takes three rows of its own when the panel is as tall as its content
(the stacked layout below 110×34), where a ``1fr`` height has nothing to
share and made the panel taller than what the scrolling column could show.
"""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Mount, Resize
from textual.widgets import Sparkline, Static

from ..fmt import mb
from ..state import DashboardState

__all__ = ["MemoryPanel"]


def _bar(fraction: float, width: int = 16) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    full = round(fraction * width)
    return "█" * full + "░" * (width - full)


def _device_field(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if d.get(n) is not None:
            return d[n]
    return None


class MemoryPanel(Vertical):
    """Resource readings; redrawn when a new sample arrives."""

    DEFAULT_CSS = """
    MemoryPanel > #memory-trend {
        width: 1fr;
        height: 1fr;
        min-height: 1;
        max-height: 3;
        margin-top: 1;
    }
    MemoryPanel.-fit-content > #memory-trend {
        height: 3;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seen = -1

    def compose(self) -> ComposeResult:
        yield Static("waiting for a resource sample…", id="memory-text")
        yield Sparkline([], id="memory-trend")

    def on_mount(self, event: Mount) -> None:
        self._fit()

    def on_resize(self, event: Resize) -> None:
        """The layout may have switched between a fixed height and a content height."""
        self._fit()

    def _fit(self) -> None:
        """Give the sparkline rows of its own when the panel's height comes from its content."""
        height = self.styles.height
        self.set_class(height is not None and height.is_auto, "-fit-content")

    def sync(self, state: DashboardState) -> None:
        """Redraw if a resource sample arrived since the last call."""
        rev = state.revision["resources"] + state.revision["candidates"]
        if rev == self._seen:
            return
        self._seen = rev
        self.query_one("#memory-text", Static).update(self.render_state(state))
        self.query_one("#memory-trend", Sparkline).data = list(state.memory_history)

    @staticmethod
    def render_state(state: DashboardState) -> Text:
        s = state.resource
        text = Text()
        if s is None:
            text.append("waiting for a resource sample…", style="italic")
            return text
        peak = state.candidate_peak_mb
        if s.gpu_mem_used_mb is None:
            text.append("CPU", style="bold")
            text.append(f" · {s.device} · no CUDA device\n")
            text.append(f"process RSS  {mb(s.rss_mb)}\n")
            if peak is not None:
                text.append(f"peak {mb(peak)}" + (f" (#{state.last_started})" if state.in_flight else "") + "\n")
            text.append("sparkline: RSS over time", style="dim")
            return text
        devices = [d for d in (s.devices or []) if isinstance(d, dict)]
        if len(devices) > 1:
            for i, d in enumerate(devices):
                used = _device_field(d, "used_mb", "mem_used_mb", "gpu_mem_used_mb")
                total = _device_field(d, "total_mb", "mem_total_mb", "gpu_mem_total_mb")
                util = _device_field(d, "util", "gpu_util")
                label = _device_field(d, "index", "device")
                label = str(i if label is None else label)
                text.append(f"gpu {label:<3} ", style="bold")
                if used is not None and total:
                    text.append(f"{_bar(used / total, 10)} {mb(used)}/{mb(total)}")
                if util is not None:
                    text.append(f" {util:.0f}%")
                text.append("\n")
        else:
            text.append(f"{s.gpu_name or 'GPU'}", style="bold")
            text.append(f" · {s.device}")
            text.append(f" · {s.note}\n" if s.note else "\n", style="dim")
            total = s.gpu_mem_total_mb
            if total:
                text.append(f"{_bar(s.gpu_mem_used_mb / total)} ")
                text.append(f"{mb(s.gpu_mem_used_mb)} / {mb(total)} ({100 * s.gpu_mem_used_mb / total:.0f}%)\n")
            else:
                text.append(f"used {mb(s.gpu_mem_used_mb)}\n")
        line = []
        if peak is not None:
            line.append(f"peak {mb(peak)}" + (f" (#{state.last_started})" if state.in_flight else ""))
        if s.gpu_util is not None:
            line.append(f"util {s.gpu_util:.0f}%")
        text.append(" · ".join(line) + ("\n" if line else ""))
        text.append(f"process RSS {mb(s.rss_mb)}")
        return text
