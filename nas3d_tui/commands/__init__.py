"""The subcommands of ``nas3d-tui``, one module each.

A command module defines ``NAME`` (the word after ``nas3d-tui``), ``HELP``
(one line for ``--help``), ``add_arguments(parser)`` and ``main(args) -> int``
(the exit code). ``nas3d_tui.cli`` builds the parser from ``COMMANDS`` and
runs the chosen one inside its single error boundary, so a command raises
``engine.errors.UserError`` (or an ``OSError`` about a user's path) for bad
input and never prints a traceback itself.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["COMMANDS", "load"]

# Order of --help. Each name is a module of this package.
COMMANDS = (
    "run",
    "resume",
    "attach",
    "runs",
    "export",
    "train",
    "profiles",
    "models",
    "report",
    "serve",
    "data",
    "predict",
    "export-model",
    "bench",
)


def load(name: str) -> ModuleType:
    """The module of command ``name``."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
