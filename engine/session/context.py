"""What every phase of a run shares: its settings, its directory, where events go, its control, its device.

A ``RunContext`` is made once per run by the ``RunLifecycle`` (``context()``,
after the device is known) and handed, by name, to the phases
(``search.Search``, ``final.FinalPhase``, ``final.retrain``), so none of them
takes the same five things by position in its own order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import events as ev
from ..control import Control
from ..profile import Profile
from ..rundir import RunDir
from ..vocab import TieBreak

__all__ = ["RunContext", "Publish"]

Publish = Callable[[ev.Event], None]


@dataclass(frozen=True)
class RunContext:
    """The shared context of one run's phases.

    Attributes:
        profile: the resolved profile.
        run_dir: where the run's files go.
        publish: where events go (the session's bus).
        control: pause / stop flags; the phases stop at its batch gate.
        device: the resolved torch device string the run trains on.
    """

    profile: Profile
    run_dir: RunDir
    publish: Publish
    control: Control
    device: str

    @property
    def tie_break(self) -> TieBreak:
        """``search.tie_break``: how equal fitnesses are ordered (selection, ranking, best epoch)."""
        return self.profile.search.tie_break
