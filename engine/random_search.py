"""Random search: the baseline NAS papers compare an evolutionary search against.

This module owns ``RandomSearch``, an ask/tell strategy with the ODE's
interface (``engine.ode``): every batch is ``population`` chromosomes drawn
uniformly from [0, 1]^dim, proposal ids numbered as the ODE numbers them, and
the same session rules apply to what it proposes (infeasible candidates are
never trained, duplicates reuse a result, only trained candidates spend the
budget). It keeps the best ``population`` candidates seen so far as its
"population", so per-generation best / mean / worst curves compare with the
ODE's. Its state, RNG included, is JSON-safe, so a resumed run proposes the
same vectors as an uninterrupted one.

It must not import torch or do any I/O.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import strategy as st
from .ode import KeyFn
from .strategy import Batch, select_best
from .vocab import CandidatePhase

__all__ = ["RandomSearch", "STATE_FORMAT"]

STATE_FORMAT = "nas3d-tui/random/1"


class RandomSearch:
    """Uniform random chromosomes, ``population`` per batch.

    Args:
        dim: vector length (29 for the paper's space).
        population: vectors per batch, and the size of the kept best set.
        seed: seeds the PCG64 generator the object owns.
        key_fn: accepted for interface parity with ``ODE``; unused (random
            search proposes infeasible and repeated architectures as they come).
    """

    phase: CandidatePhase = "random"

    def __init__(self, dim: int = 29, population: int = 20, seed: int = 42, key_fn: KeyFn | None = None) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"RandomSearch: dim = {dim!r} is not allowed; a positive integer")
        if isinstance(population, bool) or not isinstance(population, int) or population < 1:
            raise ValueError(f"RandomSearch: population = {population!r} is not allowed; an integer >= 1")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"RandomSearch: seed = {seed!r} is not allowed; a non-negative integer")
        self.dim = dim
        self.np = population
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._generation = 0
        self._next_id = 0
        self._evaluations = 0
        self._pending: Batch | None = None
        self._population = np.empty((0, dim))
        self._fitness = np.empty(0)
        self._secondary = np.empty((0, 0))
        self._population_ids: list[int] = []

    # ---------------------------------------------------------------- views
    @property
    def generation(self) -> int:
        """Index of the next (or pending) batch."""
        return self._generation

    @property
    def population(self) -> np.ndarray:
        return self._population.copy()

    @property
    def fitness(self) -> np.ndarray:
        return self._fitness.copy()

    @property
    def population_ids(self) -> list[int]:
        return list(self._population_ids)

    @property
    def pending(self) -> Batch | None:
        return self._pending

    @property
    def evaluations(self) -> int:
        return self._evaluations

    # ---------------------------------------------------------------- ask/tell
    def ask(self) -> Batch:
        """``population`` uniform vectors.

        Raises:
            ValueError: the previous batch has not been told yet.
        """
        if self._pending is not None:
            raise ValueError("RandomSearch.ask(): the previous batch is still waiting for tell()")
        vectors = self.rng.random((self.np, self.dim))
        batch = Batch(
            phase=self.phase,
            generation=self._generation,
            vectors=[[float(x) for x in v] for v in vectors],
            first_id=self._next_id,
        )
        self._next_id += len(batch)
        self._pending = batch
        return batch

    def tell(self, fitnesses: Sequence[float], secondary: Sequence[Sequence[float]] | None = None) -> None:
        """One fitness per vector of the pending batch; keeps the best ``population`` seen so far.

        Raises:
            ValueError: no batch pending, wrong length, or values that are not finite.
        """
        batch = self._pending
        if batch is None:
            raise ValueError("RandomSearch.tell(): no batch is pending; call ask() first")
        fit = st.vector([float(f) for f in fitnesses], "fitnesses")
        if len(fit) != len(batch):
            raise ValueError(f"RandomSearch.tell(): got {len(fit)} fitnesses for {len(batch)} vectors")
        sec = np.zeros((len(fit), 0)) if secondary is None else st.rows([[float(x) for x in r] for r in secondary], len(fit))
        pop_sec, sec = st.same_width(self._secondary, sec)
        all_v = np.concatenate([self._population, np.array(batch.vectors, dtype=float)])
        all_f = np.concatenate([self._fitness, fit])
        all_s = np.concatenate([pop_sec, sec])
        all_ids = self._population_ids + list(range(batch.first_id, batch.first_id + len(batch)))
        keep = select_best(all_f, self.np, all_s)
        self._population, self._fitness, self._secondary = all_v[keep], all_f[keep], all_s[keep]
        self._population_ids = [all_ids[i] for i in keep]
        self._evaluations += len(fit)
        self._generation += 1
        self._pending = None

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot: settings, RNG, the kept best set, the pending batch."""
        return {
            "format": STATE_FORMAT,
            "settings": {"dim": self.dim, "population": self.np, "seed": self.seed},
            "rng": st.jsonable(self.rng.bit_generator.state),
            "phase": self.phase,
            "generation": self._generation,
            "next_id": self._next_id,
            "evaluations": self._evaluations,
            "population": [[float(x) for x in v] for v in self._population],
            "fitness": [float(f) for f in self._fitness],
            "secondary": [[float(x) for x in row] for row in self._secondary],
            "population_ids": [int(i) for i in self._population_ids],
            "pending": None if self._pending is None else self._pending.to_dict(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], key_fn: KeyFn | None = None) -> "RandomSearch":
        """Rebuild from ``state_dict()`` output.

        Raises:
            ValueError: not a random-search state, or a field missing, mistyped or inconsistent.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"RandomSearch.from_state(): expected format {STATE_FORMAT!r}, got {found!r}")
        try:
            s = state["settings"]
            if not isinstance(s, dict):
                raise TypeError("settings is not an object")
            rs = cls(dim=s["dim"], population=s["population"], seed=s["seed"], key_fn=key_fn)
            rng = state["rng"]
            if not isinstance(rng, dict) or rng.get("bit_generator") != "PCG64":
                raise ValueError("rng is not a PCG64 state")
            rs.rng.bit_generator.state = rng
            rs._load_kept(state)
        except (KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise ValueError(f"RandomSearch.from_state(): malformed state ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise ValueError(f"RandomSearch.from_state(): {exc}") from None
        return rs

    def _load_kept(self, state: dict[str, Any]) -> None:
        """Counters, the kept best set and the pending batch from a saved state (shared with ``ExhaustiveSearch``).

        Raises:
            ValueError, KeyError, TypeError: a field missing, mistyped or inconsistent.
        """
        rs = self
        rs._generation = st.count(state, "generation")
        rs._next_id = st.count(state, "next_id")
        rs._evaluations = st.count(state, "evaluations")
        pop = st.matrix(state["population"], "population", rs.dim)
        fit = st.vector(state["fitness"], "fitness")
        ids = state["population_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise ValueError("population_ids is not a list of integers >= 0")
        if not (len(pop) == len(fit) == len(ids)) or len(pop) > rs.np:
            raise ValueError("population, fitness and population_ids differ in length or exceed the population")
        raw_sec = state.get("secondary", [[] for _ in ids])
        if not isinstance(raw_sec, list) or len(raw_sec) != len(ids):
            raise ValueError("secondary does not have one row per kept candidate")
        width = max((len(r) for r in raw_sec if isinstance(r, list)), default=0)
        rs._population, rs._fitness = pop, fit
        rs._secondary = st.matrix(raw_sec, "secondary", width) if ids else np.zeros((0, 0))
        rs._population_ids = list(ids)
        pending = state.get("pending")
        rs._pending = None if pending is None else st.batch_from_state(pending, rs.dim)
        if rs._pending is not None and (
            rs._pending.phase != rs.phase or rs._pending.first_id + len(rs._pending) != rs._next_id
        ):
            raise ValueError("the pending batch does not match the state")
