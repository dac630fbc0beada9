"""Commands to show the user: spelled so they work from where the user stands.

After ``make run`` the ``nas3d-tui`` script lives in ``.venv/bin/`` and is not
on ``PATH``; a hint that says ``nas3d-tui resume …`` would then fail. These
helpers name the program the way it was started (``nas3d-tui`` when that is
what ``PATH`` finds, else the script's path, else ``python -m nas3d_tui``)
and paths relative to the current directory when they are inside it.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["program", "command", "shown_path"]


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the current directory when it lies inside it, else as given."""
    p = Path(path)
    try:
        rel = p.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return str(path)
    return str(rel) if str(rel) != "." else "."


def program() -> str:
    """How to call nas3d-tui from here."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    found = shutil.which("nas3d-tui")
    if os.path.basename(argv0) == "nas3d-tui":
        if found and _same_file(found, argv0):
            return "nas3d-tui"
        shown = shown_path(argv0)
        return shown if os.sep in shown else f".{os.sep}{shown}"
    if found:
        return "nas3d-tui"
    python = shown_path(sys.executable)
    if os.sep not in python:
        python = f".{os.sep}{python}"
    return f"{python} -m nas3d_tui"


def command(*words: str | os.PathLike[str]) -> str:
    """A command line for the user, e.g. ``command("resume", run_dir)``; paths shown relative to here."""
    parts = [shown_path(w) if isinstance(w, Path) else str(w) for w in words]
    return " ".join([program(), *(shlex.quote(p) for p in parts)])
