"""What every search strategy shares: the batch it proposes, its protocol, and its checked state.

This module owns ``Batch`` (vectors a strategy wants evaluated, numbered by
proposal), the ``Strategy`` protocol the session drives (``engine.ode.ODE``
and ``engine.random_search.RandomSearch`` implement it), the selection rule
with tie-breaks (``select_best``, ``at_least_as_good``) and the helpers that
read a saved strategy state back field by field, refusing anything that is
missing, mistyped or inconsistent.

Pure numpy: no torch, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from .vocab import CandidatePhase

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PHASES",
    "Batch",
    "Strategy",
    "select_best",
    "at_least_as_good",
    "same_width",
    "rows",
    "is_count",
    "count",
    "vector",
    "matrix",
    "batch_from_state",
    "jsonable",
    "NO_TIE_BREAK",
]

# Batch phases: the ODE's four, random search's one, and the exhaustive strategy's one.
PHASES = ("init", "opposite", "trial", "jump", "random", "exhaustive")


@dataclass(frozen=True)
class Batch:
    """Vectors a strategy wants evaluated; answer with one fitness per vector.

    Attributes:
        phase: ``init`` | ``opposite`` | ``trial`` | ``jump`` (ODE) or ``random``.
        generation: 0 for init/opposite, g for the trial and jump batches of
            generation g (random search: the batch index).
        vectors: plain Python floats in [0, 1] (JSON-safe), ``dim`` per vector.
        first_id: the proposal number of ``vectors[0]``; vector i is proposal
            ``first_id + i``. Proposals are numbered 0, 1, 2, … over the run
            (``ODE.population_ids`` uses the same numbers), so a caller that
            numbers candidates in proposal order can map population members
            back to its candidates.
    """

    phase: CandidatePhase
    generation: int
    vectors: list[list[float]]
    first_id: int = 0

    def __len__(self) -> int:
        return len(self.vectors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "generation": self.generation,
            "vectors": [list(v) for v in self.vectors],
            "first_id": self.first_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Batch":
        return cls(
            phase=data["phase"],  # (a saved state's: batch_from_state checks it)
            generation=int(data["generation"]),
            vectors=[[float(x) for x in v] for v in data["vectors"]],
            first_id=int(data.get("first_id", 0)),
        )


_Floats = NDArray[np.float64]  # (the protocol's ``np`` attribute hides the module inside the class)


class Strategy(Protocol):
    """An ask/tell search strategy as the session drives it (``ODE``, ``RandomSearch``).

    The session saves ``state_dict()`` before every ``ask`` (the resume point)
    and restores it with the implementation's ``from_state`` classmethod
    (``engine.session.setup.restore_strategy``); ``ask`` returns the pending
    batch again until it is answered by ``tell``.
    """

    np: int  # population size (batch size of random search)

    @property
    def phase(self) -> CandidatePhase:
        """The phase of the next (or pending) batch: after a ``tell``, ``trial`` / ``random`` means a generation is complete."""
        ...

    @property
    def generation(self) -> int: ...

    @property
    def fitness(self) -> _Floats: ...

    @property
    def population_ids(self) -> list[int]: ...

    @property
    def pending(self) -> Batch | None: ...

    def ask(self) -> Batch: ...

    def tell(self, fitnesses: Sequence[float], secondary: Sequence[Sequence[float]] | None = None) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...


def select_best(fitness: np.ndarray, n: int, secondary: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` best (highest) fitnesses, best first.

    Equal fitnesses are ordered by ``secondary`` (rows of tie-break values,
    compared left to right, higher first); complete ties keep the earlier index.
    """
    fit = np.asarray(fitness, dtype=float)
    keys = [np.arange(len(fit))]  # np.lexsort: the last key is the primary one
    if secondary is not None:
        sec = np.asarray(secondary, dtype=float).reshape(len(fit), -1)
        keys += [-sec[:, j] for j in range(sec.shape[1] - 1, -1, -1)]
    keys.append(-fit)
    return np.lexsort(keys)[:n]


def at_least_as_good(fit_a: float, sec_a: Sequence[float], fit_b: float, sec_b: Sequence[float]) -> bool:
    """Whether ``(fit_a, *sec_a)`` >= ``(fit_b, *sec_b)`` lexicographically (DE's greedy selection)."""
    return (float(fit_a), *map(float, sec_a)) >= (float(fit_b), *map(float, sec_b))


def same_width(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad the narrower tie-break matrix with a value below any real one (states from before tie-breaks)."""
    w = max(a.shape[1], b.shape[1])

    def pad(m: np.ndarray) -> np.ndarray:
        if m.shape[1] == w:
            return m
        return np.concatenate([m, np.full((m.shape[0], w - m.shape[1]), NO_TIE_BREAK)], axis=1)

    return pad(a), pad(b)


NO_TIE_BREAK = -1e300


def rows(values: object, n: int) -> np.ndarray:
    """``values`` as an ``n`` x w float matrix (w = 0 when there are no rows)."""
    arr = np.array(values, dtype=float)
    if n == 0:
        return np.zeros((0, arr.shape[1] if arr.ndim == 2 else 0))
    return arr.reshape(n, -1)


def is_count(v: object) -> bool:
    """An integer >= 0 (not a bool)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(v >= 0)


def count(state: dict[str, Any], name: str) -> int:
    """``state[name]`` checked to be an integer >= 0."""
    v = state[name]
    if not is_count(v):
        raise ValueError(f"{name} = {v!r} is not an integer >= 0")
    return int(v)


def vector(value: object, name: str) -> np.ndarray:
    """A JSON list of finite numbers as a float array."""
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise ValueError(f"{name} is not a list of numbers")
    out = np.array(value, dtype=float)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} holds values that are not finite")
    return out


def matrix(value: object, name: str, width: int) -> np.ndarray:
    """A JSON list of rows of ``width`` finite numbers as a float matrix."""
    if not isinstance(value, list):
        raise ValueError(f"{name} is not a list of rows")
    rows = [vector(r, f"{name} row {i}") for i, r in enumerate(value)]
    if any(len(r) != width for r in rows):
        raise ValueError(f"{name} rows must have {width} entries each")
    return np.array(rows, dtype=float).reshape(len(rows), width)


def batch_from_state(data: object, dim: int) -> Batch:
    """A pending batch from a saved state, checked against ``dim`` and ``PHASES``."""
    if not isinstance(data, dict):
        raise ValueError("pending is not an object")
    phase = data["phase"]
    if phase not in PHASES:
        raise ValueError(f"pending batch has unknown phase {phase!r}")
    vectors = matrix(data["vectors"], "pending vectors", dim)
    if len(vectors) == 0 or (vectors < 0).any() or (vectors > 1).any():
        raise ValueError("pending vectors are empty or outside [0, 1]")
    for name in ("generation", "first_id"):
        if not is_count(data.get(name)):
            raise ValueError(f"pending {name} is not an integer >= 0")
    return Batch.from_dict(data)


def jsonable(obj: object) -> Any:
    """Plain JSON types from a bit-generator state (numpy ints/arrays → Python)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj
