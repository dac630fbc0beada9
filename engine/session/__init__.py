"""The search session: the one place that combines strategy, evaluation, persistence and events.

Modules: ``runner`` (``Session``: the life of a run directory), ``search``
(the search phase: triage, dispatch, record), ``final`` (retraining the top-k),
``measure`` (model size counted off the critical path), ``setup`` (device,
run directory name, data, strategy) and ``context`` (``RunContext``: what the
phases share -- profile, run directory, ``publish``, control, device).
"""
from __future__ import annotations

from ..errors import SessionError
from .context import RunContext
from .runner import Session, SessionOutcome
from .setup import load_data, make_strategy, new_run_dir, resolve_device, restore_strategy, space_of

__all__ = [
    "RunContext",
    "Session",
    "SessionOutcome",
    "SessionError",
    "resolve_device",
    "new_run_dir",
    "space_of",
    "make_strategy",
    "restore_strategy",
    "load_data",
]
