"""Number and time formatting shared by the panels (pure, no Textual)."""
from __future__ import annotations

import math

__all__ = ["si", "mb", "duration", "metric", "elapsed", "pm"]

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
