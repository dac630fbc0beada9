"""Number and time formatting shared by the panels (pure, no Textual)."""
from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["si", "mb", "duration", "metric", "elapsed", "pm", "wrap_path", "toast_text_width", "export_note"]

DASH = "—"


def si(value: float | int | None, digits: int = 1) -> str:
    """``1234567`` → ``1.2M``; None → ``—``."""
    if value is None:
        return DASH
    v = float(value)
    if math.isnan(v):
        return DASH
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.{digits}f}{unit}"
    return f"{v:.0f}"


def mb(value: float | None) -> str:
    """Megabytes as ``812 MB`` or ``3.2 GB``."""
    if value is None:
        return DASH
    if value >= 1024:
        return f"{value / 1024:.1f} GB"
    return f"{value:.0f} MB"


def duration(seconds: float | None) -> str:
    """``3725`` → ``1h 02m``; ``75`` → ``1m 15s``; ``9.4`` → ``9.4s``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {sec:02d}s"
    return f"{sec}s"


def elapsed(seconds: float) -> str:
    """Clock-like offset from the run start: ``+1:02:05``."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"+{h}:{m:02d}:{sec:02d}"


def metric(value: float | None, digits: int = 4) -> str:
    """A fitness / AUC / accuracy, or ``—``."""
    if value is None or value != value:
        return DASH
    return f"{value:.{digits}f}"


def pm(mean: float | None, std: float | None, digits: int = 4) -> str:
    """``0.8650 ± 0.0100``; the mean alone when there is no spread; ``—`` when unknown."""
    if std is None or std != std:
        return metric(mean, digits)
    return f"{metric(mean, digits)} ± {std:.{digits}f}"


def toast_text_width(screen_width: int) -> int:
    """Characters per line inside a Textual toast (60 wide, at most half the screen, less its edge and padding)."""
    return max(12, min(60, screen_width // 2) - 4)


def _elide(part: str, width: int) -> str:
    if len(part) <= width:
        return part
    keep = width - 1
    return part[: keep - keep // 2] + "…" + part[len(part) - keep // 2 :]


def wrap_path(path: str, width: int, max_lines: int = 3) -> list[str]:
    """``path`` in lines of at most ``width`` characters, broken after a ``/`` (never inside a name).

    A name longer than a line is elided in its middle; beyond ``max_lines`` the
    leading folders are dropped (``…/``), so the end of the path (the run) stays.
    """
    width = max(4, width)
    parts = path.split("/")
    pieces = [p + "/" for p in parts[:-1]] + [parts[-1]]
    pieces = [_elide(p, width) for p in pieces if p]
    lines: list[str] = []
    for piece in pieces:
        if lines and len(lines[-1]) + len(piece) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    if len(lines) > max_lines:
        lines = lines[-max_lines:]
        first = "…/" + lines[0]
        lines[0] = first if len(first) <= width else _elide(first, width)
    return lines or [""]


def export_note(names: list[str], folder: Path, screen_width: int) -> str:
    """The toast after an export: the file names, then the folder (relative when under the cwd), wrapped to fit."""
    try:
        shown = os.path.relpath(folder)
        if shown.startswith(".."):
            shown = str(folder)
    except ValueError:  # another drive
        shown = str(folder)
    width = toast_text_width(screen_width)
    return ", ".join(names) + "\nin " + "\n   ".join(wrap_path(shown, width - 3))
