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
import typing
from dataclasses import dataclass
from typing import Any, Literal

from . import schema
from .errors import CorruptFileError

__all__ = ["SearchState", "SEARCH_STATE_FORMAT", "SEARCH_STATES"]

_Format = Literal["nas3d-tui/checkpoint/1"]  # the value predates the name; kept so old runs resume
_StateName = Literal["search", "final", "finished"]
SEARCH_STATE_FORMAT: str = typing.get_args(_Format)[0]
SEARCH_STATES: tuple[str, ...] = typing.get_args(_StateName)


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
        """Check every field (``engine.schema``, against the file's form ``_SavedState``).

        Raises:
            CorruptFileError: a field is missing, of the wrong type, or an unknown value.
        """
        try:
            saved = schema.load(_SavedState, data, _written_by_a_run)
        except schema.SchemaError as exc:
            raise CorruptFileError(f"{where} is corrupt: {exc}; cannot resume") from None
        return cls(
            state=saved.state,
            strategy=saved.ode,
            reason=saved.reason,
            trained=saved.trained,
            generation=saved.generation,
            elapsed=saved.elapsed,
            written=saved.written,
        )


@dataclass(frozen=True)
class _SavedState:
    """``checkpoint.json`` as written: its keys predate the names of ``SearchState``'s fields."""

    format: _Format
    state: _StateName
    ode: dict[str, Any]
    trained: int
    elapsed: float
    generation: int = 0
    written: float = 0.0
    reason: str = ""


def _written_by_a_run(name: str, value: float) -> str:
    """The schema's rule of the search state's floats (times): finite and >= 0 (its integers are counts)."""
    return "" if math.isfinite(value) and value >= 0 else "expected a finite number >= 0"
