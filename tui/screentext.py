"""The dashboard's current screen as plain text: what a person would read in the terminal.

Used by the snapshot-like tests and by ``scripts/readme_figures.py`` (the README's capture). It renders
the screen's compositor (Textual has no public call for this) into a recording Rich console of the
app's size, without colours.
"""
from __future__ import annotations

import io

from rich.console import Console
from textual.app import App

__all__ = ["screen_text"]


def screen_text(app: App[object]) -> str:
    """The app's current screen as plain text (no colours; lines padded to the app's width)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()
