"""The search state: what a search resumes from (the run directory's ``checkpoint.json``).

``SearchState`` is written atomically before every batch and checked field by
field when read: a file that fails its check is a ``CorruptFileError`` naming
the file and the field, never replaced by a default. The file keeps its old
name and format string so run directories written before the rename still
resume. Where the file lives is ``engine.rundir.RunDir``'s business.

Pure Python: no torch, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import CorruptFileError

__all__ = ["SearchState", "SEARCH_STATE_FORMAT", "SEARCH_STATES"]

SEARCH_STATE_FORMAT = "nas3d-tui/checkpoint/1"  # the value predates the name; kept so old runs resume
SEARCH_STATES = ("search", "final", "finished")


@dataclass(frozen=True)
class SearchState:
    """The search state saved before every batch.

    Attributes:
        state: ``search`` (the search goes on), ``final`` (the search ended,
            the final phase runs) or ``finished``.
        reason: why the search ended (``budget`` / ``time``), once it has.
        strategy: the strategy's ``state_dict()`` (ODE or random search).
        trained: candidates trained when it was written.
        elapsed: seconds of run time before it was written (all segments).
        generation: the strategy's generation.
        written: wall-clock time it was written.
    """

    state: str
    strategy: dict[str, Any]
    trained: int
    elapsed: float
    generation: int
    written: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SEARCH_STATE_FORMAT,
            "state": self.state,
            "reason": self.reason,
            "ode": self.strategy,  # the key predates random search; kept so old runs resume
            "trained": self.trained,
            "elapsed": self.elapsed,
            "generation": self.generation,
            "written": self.written,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> "SearchState":
        """Check every field.

        Raises:
            CorruptFileError: a field is missing, of the wrong type, or an unknown value.
        """

        def bad(field: str, problem: str) -> CorruptFileError:
            return CorruptFileError(f"{where} is corrupt: {field} {problem}; cannot resume")

        if not isinstance(data, dict):
            raise CorruptFileError(f"{where} is corrupt: not a JSON object; cannot resume")
        if data.get("format") != SEARCH_STATE_FORMAT:
            raise bad("format", f"= {data.get('format')!r} (expected {SEARCH_STATE_FORMAT!r})")
        for name in ("state", "ode", "trained", "elapsed"):
            if name not in data:
                raise bad(name, "is missing")
        state = data["state"]
        if state not in SEARCH_STATES:
            raise bad("state", f"= {state!r} (expected one of {', '.join(SEARCH_STATES)})")
        if not isinstance(data["ode"], dict):
            raise bad("ode", "is not an object")
        counts: dict[str, int] = {}
        for name, default in (("trained", None), ("generation", 0)):
            v = data.get(name, default)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, f"= {v!r} (expected an integer >= 0)")
            counts[name] = v
        times: dict[str, float] = {}
        for name, fallback in (("elapsed", None), ("written", 0.0)):
            w = data.get(name, fallback)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise bad(name, f"= {w!r} (expected a number >= 0)")
            times[name] = float(w)
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise bad("reason", f"= {reason!r} (expected a string)")
        return cls(
            state=state,
            strategy=data["ode"],
            reason=reason,
            trained=counts["trained"],
            generation=counts["generation"],
            elapsed=times["elapsed"],
            written=times["written"],
        )
