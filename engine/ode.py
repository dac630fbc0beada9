"""Opposition-based Differential Evolution (ODE) as a pure ask/tell object.

This module owns the search algorithm of the paper (§2.3, SPEC §7):
opposition-based initialisation, DE/rand/1/bin generations with greedy
selection, and generation jumping. Every individual is a vector in [0, 1]^dim;
decoding a vector into an architecture is the caller's business (an optional
``key_fn`` is injected only so that the initial population holds distinct
feasible architectures).

The object owns its ``numpy.random.Generator`` and serialises everything,
RNG state included, to a JSON-safe dict: a run restored from ``state_dict()``
at any point between two calls proposes exactly the batches an uninterrupted
run would.

It must not import torch or a UI library, and it must not do any I/O (no
files, no events, no logging): the session persists and reports.

Protocol::

    ode = ODE(seed=42, key_fn=lambda v: space.decode(v).key if ... else None)
    while not done:
        batch = ode.ask()            # Batch(phase, generation, vectors, first_id)
        ode.tell([evaluate(v) for v in batch.vectors])   # higher is better

Tie-breaks: ``tell`` may carry, per vector, secondary values (validation AUC,
then minus FLOPs, say) that decide between exactly equal fitnesses; without
them ties go as in the paper.

Sequence of batches: ``init`` (NP distinct feasible random vectors) →
``opposite`` (1 − x of those; the best NP of the 2·NP survive) → for
g = 1, 2, …: ``trial`` (NP DE/rand/1/bin trials; a trial replaces its target
when its fitness is ≥ the target's), then with probability JR a ``jump``
batch (min_d + max_d − x_d against the population; the best NP of the union
survive).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from . import strategy as st
from .strategy import Batch, at_least_as_good, select_best
from .vocab import CandidatePhase

__all__ = [
    "Batch",
    "ODE",
    "KeyFn",
    "PHASES",
    "STATE_FORMAT",
    "mutation_rand1",
    "crossover_bin",
    "boundary_check",
    "opposite",
    "generation_jump",
    "select_best",
    "at_least_as_good",
]

KeyFn = Callable[[np.ndarray], "str | None"]

PHASES = ("init", "opposite", "trial", "jump")  # the ODE's batch phases, in order
STATE_FORMAT = "nas3d-tui/ode/1"

# Give up drawing the initial population after this many draws per individual:
# a space (or key_fn) that yields almost nothing feasible is a configuration
# error, not something to loop on forever.
_MAX_INIT_DRAWS_PER_INDIVIDUAL = 10_000


# --------------------------------------------------------------------------
# Operators (pure functions; randomness only through the Generator passed in)
# --------------------------------------------------------------------------


def mutation_rand1(
    population: np.ndarray, target: int, mutation_factor: float, rng: np.random.Generator
) -> np.ndarray:
    """DE/rand/1 mutant for ``target``: r1 + F·(r2 − r3).

    r1, r2, r3 are drawn without replacement from the population indices other
    than ``target`` (standard DE/rand/1).

    Raises:
        ValueError: fewer than four individuals.
    """
    n = len(population)
    if n < 4:
        raise ValueError(f"DE/rand/1 needs a population of at least 4, got {n}")
    others = np.array([i for i in range(n) if i != target])
    r1, r2, r3 = rng.choice(others, size=3, replace=False)
    mutant: np.ndarray = population[r1] + mutation_factor * (population[r2] - population[r3])
    return mutant


def crossover_bin(
    target: np.ndarray, mutant: np.ndarray, crossover_rate: float, rng: np.random.Generator
) -> np.ndarray:
    """Binomial crossover: each gene from the mutant with probability CR.

    Gene ``j_rand`` (drawn uniformly) always comes from the mutant, so the
    trial differs from the target in at least one gene's origin.
    """
    dim = len(target)
    take = rng.random(dim) < crossover_rate
    j_rand = int(rng.integers(dim))
    take[j_rand] = True
    return np.where(take, mutant, target)


def boundary_check(vector: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Entries outside [0, 1] are redrawn uniformly in [0, 1]; others kept."""
    out = np.array(vector, dtype=float, copy=True)
    bad = (out < 0.0) | (out > 1.0)
    n_bad = int(bad.sum())
    if n_bad:
        out[bad] = rng.random(n_bad)
    return out


def opposite(vectors: np.ndarray) -> np.ndarray:
    """Opposite points in [0, 1]^dim: 1 − x."""
    return 1.0 - np.asarray(vectors, dtype=float)


def generation_jump(population: np.ndarray) -> np.ndarray:
    """Opposites against the population's per-dimension bounds: min_d + max_d − x_d."""
    pop = np.asarray(population, dtype=float)
    jumped: np.ndarray = pop.min(axis=0) + pop.max(axis=0) - pop
    return jumped


# --------------------------------------------------------------------------
# The optimiser
# --------------------------------------------------------------------------


class ODE:
    """Opposition-based DE (DE/rand/1/bin with opposition init and generation jumping).

    Args:
        dim: vector length (29 for the paper's space).
        population: NP, at least 4.
        mutation_factor: F, in (0, 2].
        crossover_rate: CR, in [0, 1].
        jumping_rate: JR, in [0, 1].
        seed: seeds the PCG64 generator the object owns.
        key_fn: ``key_fn(vector) -> str | None``; the architecture key of a
            vector, or None when it is infeasible. Used only to draw the
            initial population as NP distinct feasible architectures. With
            None every vector is accepted.

    Raises:
        ValueError: a setting out of range.
    """

    def __init__(
        self,
        dim: int = 29,
        population: int = 20,
        mutation_factor: float = 0.5,
        crossover_rate: float = 0.5,
        jumping_rate: float = 0.3,
        seed: int = 42,
        key_fn: KeyFn | None = None,
    ) -> None:
        _check_settings(dim, population, mutation_factor, crossover_rate, jumping_rate, seed)
        self.dim = int(dim)
        self.np = int(population)
        self.mutation_factor = float(mutation_factor)
        self.crossover_rate = float(crossover_rate)
        self.jumping_rate = float(jumping_rate)
        self.seed = int(seed)
        self.key_fn = key_fn
        self.rng = np.random.Generator(np.random.PCG64(self.seed))

        self._phase: CandidatePhase = "init"  # phase of the next (or pending) batch
        self._generation = 0
        self._pending: Batch | None = None
        self._next_id = 0
        self._evaluations = 0
        self._population = np.empty((0, self.dim))
        self._fitness = np.empty(0)
        self._secondary = np.empty((0, 0))
        self._population_ids: list[int] = []

    # ---------------------------------------------------------------- views

    @property
    def population(self) -> np.ndarray:
        """Current population (NP × dim; empty before the first tell). A copy."""
        return self._population.copy()

    @property
    def fitness(self) -> np.ndarray:
        """Fitness of each population member (aligned with ``population``). A copy."""
        return self._fitness.copy()

    @property
    def population_ids(self) -> list[int]:
        """Proposal number (see ``Batch.first_id``) of each population member."""
        return list(self._population_ids)

    @property
    def generation(self) -> int:
        """Generation of the next (or pending) batch: 0 during initialisation."""
        return self._generation

    @property
    def phase(self) -> CandidatePhase:
        """Phase of the next (or pending) batch."""
        return self._phase

    @property
    def pending(self) -> Batch | None:
        """The batch asked for and not yet told, or None."""
        return self._pending

    @property
    def tell_pending(self) -> bool:
        """True between ``ask()`` and the matching ``tell()``."""
        return self._pending is not None

    @property
    def evaluations(self) -> int:
        """Number of fitness values told so far (all phases)."""
        return self._evaluations

    def best(self) -> tuple[np.ndarray, float]:
        """The best population member and its fitness (first one on ties).

        Raises:
            ValueError: no fitness has been told yet.
        """
        if len(self._fitness) == 0:
            raise ValueError("ODE.best(): no population yet; tell the init batch first")
        i = int(np.argmax(self._fitness))
        return self._population[i].copy(), float(self._fitness[i])

    # ---------------------------------------------------------------- ask/tell

    def ask(self) -> Batch:
        """Propose the next batch of vectors to evaluate.

        Raises:
            ValueError: the previous batch has not been told yet.
            RuntimeError: ``key_fn`` rejected too many random vectors while
                drawing the initial population.
        """
        if self._pending is not None:
            raise ValueError(
                f"ODE.ask(): the {self._pending.phase} batch of generation "
                f"{self._pending.generation} ({len(self._pending)} vectors) is still "
                "waiting for tell(); call tell() before asking again"
            )
        if self._phase == "init":
            vectors = self._draw_initial()
        elif self._phase == "opposite":
            vectors = opposite(self._population)
        elif self._phase == "trial":
            vectors = self._trials()
        elif self._phase == "jump":
            vectors = generation_jump(self._population)
        else:  # pragma: no cover - guarded by from_state
            raise RuntimeError(f"unknown ODE phase {self._phase!r}")
        batch = Batch(
            phase=self._phase,
            generation=self._generation,
            vectors=[[float(x) for x in v] for v in vectors],
            first_id=self._next_id,
        )
        self._next_id += len(batch)
        self._pending = batch
        return batch

    def tell(self, fitnesses: Sequence[float], secondary: Sequence[Sequence[float]] | None = None) -> None:
        """Give one fitness per vector of the pending batch (higher is better).

        Args:
            fitnesses: one number per vector.
            secondary: optional tie-break values per vector (a row of numbers,
                higher is better, compared left to right) used only when
                fitnesses are exactly equal; without them ties go to the
                trial (the paper's plain ``>=``).

        Raises:
            ValueError: no batch is pending, the length differs from the
                batch's, or a fitness is not a finite number.
        """
        batch = self._pending
        if batch is None:
            raise ValueError("ODE.tell(): no batch is pending; call ask() first")
        try:
            fit = np.array([float(f) for f in fitnesses], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ODE.tell(): fitnesses must be numbers ({exc})") from None
        if len(fit) != len(batch):
            raise ValueError(
                f"ODE.tell(): got {len(fit)} fitnesses for the {batch.phase} batch of "
                f"{len(batch)} vectors; give exactly one per vector"
            )
        if not np.all(np.isfinite(fit)):
            raise ValueError(
                "ODE.tell(): fitnesses must be finite numbers (tell infeasible or failed "
                f"candidates a low finite value such as 0.0), got {fit.tolist()}"
            )
        sec = self._check_secondary(secondary, len(fit))
        vectors = np.array(batch.vectors, dtype=float)
        ids = list(range(batch.first_id, batch.first_id + len(batch)))

        if batch.phase == "init":
            self._set_population(vectors, fit, ids, sec)
            self._phase = "opposite"
        elif batch.phase == "opposite":
            self._merge(vectors, fit, ids, sec)
            self._generation = 1
            self._phase = "trial"
        elif batch.phase == "trial":
            pop_sec, sec = st.same_width(self._secondary, sec)
            self._secondary = pop_sec
            better = np.array(
                [at_least_as_good(fit[j], sec[j], self._fitness[j], pop_sec[j]) for j in range(len(fit))], dtype=bool
            )
            self._population[better] = vectors[better]
            self._fitness[better] = fit[better]
            self._secondary[better] = sec[better]
            for j in np.flatnonzero(better):
                self._population_ids[j] = ids[j]
            # The JR coin is drawn here, right after selection, so the RNG
            # sequence does not depend on when the next ask() happens.
            if self.rng.random() < self.jumping_rate:
                self._phase = "jump"
            else:
                self._generation += 1
                self._phase = "trial"
        elif batch.phase == "jump":
            self._merge(vectors, fit, ids, sec)
            self._generation += 1
            self._phase = "trial"
        self._evaluations += len(fit)
        self._pending = None

    # ---------------------------------------------------------------- internals

    def _draw_initial(self) -> np.ndarray:
        vectors: list[np.ndarray] = []
        seen: set[str] = set()
        limit = _MAX_INIT_DRAWS_PER_INDIVIDUAL * self.np
        draws = 0
        while len(vectors) < self.np:
            if draws >= limit:
                raise RuntimeError(
                    f"ODE: drew {draws} random vectors but found only {len(vectors)} distinct "
                    f"feasible architectures (population {self.np}); the search space is too "
                    "small or almost never feasible"
                )
            v = self.rng.random(self.dim)
            draws += 1
            if self.key_fn is None:
                vectors.append(v)
                continue
            key = self.key_fn(v.copy())
            if key is None or key in seen:
                continue
            seen.add(key)
            vectors.append(v)
        return np.array(vectors)

    def _trials(self) -> np.ndarray:
        trials = np.empty_like(self._population)
        for j in range(self.np):
            mutant = mutation_rand1(self._population, j, self.mutation_factor, self.rng)
            trial = crossover_bin(self._population[j], mutant, self.crossover_rate, self.rng)
            trials[j] = boundary_check(trial, self.rng)
        return trials

    def _check_secondary(self, secondary: Sequence[Sequence[float]] | None, n: int) -> np.ndarray:
        if secondary is None:
            return np.zeros((n, 0))
        try:
            sec = st.rows([[float(x) for x in row] for row in secondary], n)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"ODE.tell(): secondary must be one row of numbers per vector ({exc})") from None
        if not np.all(np.isfinite(sec)):
            raise ValueError("ODE.tell(): secondary values must be finite numbers")
        return sec

    def _set_population(self, vectors: np.ndarray, fit: np.ndarray, ids: list[int], secondary: np.ndarray) -> None:
        self._population = np.array(vectors, dtype=float)
        self._fitness = np.array(fit, dtype=float)
        self._secondary = st.rows(secondary, len(self._fitness))
        self._population_ids = list(ids)

    def _merge(self, vectors: np.ndarray, fit: np.ndarray, ids: list[int], secondary: np.ndarray) -> None:
        """Keep the best NP of population ∪ batch (population first, so complete ties keep it)."""
        pop_sec, secondary = st.same_width(self._secondary, secondary)
        all_v = np.concatenate([self._population, vectors])
        all_f = np.concatenate([self._fitness, fit])
        all_s = np.concatenate([pop_sec, secondary])
        all_ids = self._population_ids + ids
        keep = select_best(all_f, self.np, all_s)
        self._set_population(all_v[keep], all_f[keep], [all_ids[i] for i in keep], all_s[keep])

    # ---------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot (``json.dumps`` works): settings, RNG, population, pending batch."""
        rng_state = self.rng.bit_generator.state
        return {
            "format": STATE_FORMAT,
            "settings": {
                "dim": self.dim,
                "population": self.np,
                "mutation_factor": self.mutation_factor,
                "crossover_rate": self.crossover_rate,
                "jumping_rate": self.jumping_rate,
                "seed": self.seed,
            },
            "rng": st.jsonable(rng_state),
            "phase": self._phase,
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
    def from_state(cls, state: dict[str, Any], key_fn: KeyFn | None = None) -> "ODE":
        """Rebuild an ODE from ``state_dict()`` output (after a JSON round trip too).

        Every field is checked: a state that would not let the run go on
        exactly as an uninterrupted one is refused, never patched.

        Raises:
            ValueError: not an ODE state, an unknown format, or a field that is
                missing, of the wrong type, or inconsistent with the others.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"ODE.from_state(): expected a state with format {STATE_FORMAT!r}, got {found!r}"
            )
        try:
            s = state["settings"]
            if not isinstance(s, dict):
                raise TypeError("settings is not an object")
            ode = cls(
                dim=s["dim"],
                population=s["population"],
                mutation_factor=s["mutation_factor"],
                crossover_rate=s["crossover_rate"],
                jumping_rate=s["jumping_rate"],
                seed=s["seed"],
                key_fn=key_fn,
            )
            phase = state["phase"]
            if phase not in PHASES:
                raise ValueError(f"unknown phase {phase!r}")
            rng = state["rng"]
            if not isinstance(rng, dict) or rng.get("bit_generator") != "PCG64":
                raise ValueError("rng is not a PCG64 state")
            ode.rng.bit_generator.state = rng
            ode._phase = phase
            ode._generation = st.count(state, "generation")
            ode._next_id = st.count(state, "next_id")
            ode._evaluations = st.count(state, "evaluations")
            pop = st.matrix(state["population"], "population", ode.dim)
            fit = st.vector(state["fitness"], "fitness")
            ids = state["population_ids"]
            if not isinstance(ids, list) or not all(st.is_count(i) for i in ids):
                raise ValueError("population_ids is not a list of integers >= 0")
            if not (len(pop) == len(fit) == len(ids)):
                raise ValueError("population, fitness and population_ids differ in length")
            if (pop < 0).any() or (pop > 1).any():
                raise ValueError("population holds entries outside [0, 1]")
            expected = 0 if phase == "init" else ode.np
            if len(pop) != expected:
                raise ValueError(f"{len(pop)} population members in phase {phase!r}; expected {expected}")
            if any(i >= ode._next_id for i in ids):
                raise ValueError("a population id was never proposed (>= next_id)")
            raw_sec = state.get("secondary", [[] for _ in ids])  # absent in states from before tie-breaks
            if not isinstance(raw_sec, list) or len(raw_sec) != len(ids):
                raise ValueError("secondary does not have one row per population member")
            width = max((len(r) for r in raw_sec if isinstance(r, list)), default=0)
            sec = st.matrix(raw_sec, "secondary", width) if ids else np.zeros((0, 0))
            ode._set_population(pop, fit, [int(i) for i in ids], sec)
            pending = state.get("pending")
            ode._pending = None if pending is None else st.batch_from_state(pending, ode.dim)
            if ode._pending is not None:
                if ode._pending.phase != phase:
                    raise ValueError(f"pending batch phase {ode._pending.phase!r} differs from phase {phase!r}")
                if ode._pending.first_id + len(ode._pending) != ode._next_id:
                    raise ValueError("the pending batch does not end at next_id")
        except (KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise ValueError(f"ODE.from_state(): malformed state ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise ValueError(f"ODE.from_state(): {exc}") from None
        return ode


def _check_settings(
    dim: int, population: int, f: float, cr: float, jr: float, seed: int
) -> None:
    def bad(name: str, value: object, allowed: str) -> ValueError:
        return ValueError(f"ODE: {name} = {value!r} is not allowed; {allowed}")

    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise bad("dim", dim, "a positive integer")
    if isinstance(population, bool) or not isinstance(population, (int, np.integer)) or population < 4:
        raise bad("population", population, "an integer >= 4 (DE/rand/1 needs 3 others)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise bad("seed", seed, "a non-negative integer")
    for name, value, lo, lo_open, hi in (
        ("mutation_factor", f, 0.0, True, 2.0),
        ("crossover_rate", cr, 0.0, False, 1.0),
        ("jumping_rate", jr, 0.0, False, 1.0),
    ):
        ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
        if not ok:
            lo_txt = f"{lo} < " if lo_open else f"{lo} <= "
            raise bad(name, value, f"a number with {lo_txt}{name} <= {hi}")
