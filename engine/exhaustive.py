"""Exhaustive search: every distinct feasible cell of a (small) space, once, in a seeded order.

This module owns the exact enumeration of a ``SearchSpace`` (``enumerate_cells``,
``count_cells``) and ``ExhaustiveSearch``, an ask/tell strategy with the
interface of ``engine.random_search.RandomSearch`` that proposes one vector per
distinct cell. It is what a tabular benchmark of a whole space is built from
(issue 29: train every cell once, then search against the table).

Enumeration is exact, not sampled. A vector decodes to a 7-node cell, which
pruning reduces to a DAG on input, k operation nodes (1 ≤ k ≤ 5) and output,
in topological order, in which every operation node has an incoming and an
outgoing edge (that is exactly "lies on an input→output path"). So the
distinct pruned cells are enumerated directly: for each k, every edge set of
the (k + 2)-node upper triangle with k + 1 … ``max_edges`` edges in which
every operation node has an in- and an out-edge, times every labelling of the
k nodes by the space's operations, times every macro choice; each is keyed by
the search's own architecture key (``Genotype.key``: NAS-Bench-101 label
hashing + stacks/modules/filters) and the first of each key is kept. Each
kept cell is embedded in a 7-node vector (operation nodes 1…k, output 6,
unused nodes isolated, every gene at the centre of its bin) and checked to
decode back to its key. Distinct cells are then sorted by key and shuffled
with ``PCG64(seed)``: the run's order depends only on the space and the seed.

A space with more than ``MAX_CELLS`` distinct cells is refused: before
enumerating, a lower bound (every chain of operation nodes with every
labelling is a distinct cell) rejects big spaces at once, and enumeration
stops as soon as it has seen more than the limit.

It must not import torch or do any I/O.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import strategy as st
from .ode import KeyFn
from .random_search import RandomSearch
from .space import EDGE_INDICES, NUM_NODES, NUM_OP_GENES, SearchSpace, cell_hash
from .strategy import Batch

__all__ = ["MAX_CELLS", "STATE_FORMAT", "Cell", "SpaceTooLarge", "count_cells", "enumerate_cells", "ExhaustiveSearch"]

STATE_FORMAT = "nas3d-tui/exhaustive/1"
# The largest space the exhaustive strategy enumerates and trains: about a day of
# CPU for the `quick` protocol's candidates (10–25 s each), and a few seconds to enumerate.
MAX_CELLS = 5000


class SpaceTooLarge(ValueError):
    """The space has more distinct cells than the limit; ``at_least`` is a lower bound on how many."""

    def __init__(self, at_least: int, limit: int) -> None:
        self.at_least = at_least
        self.limit = limit
        super().__init__(
            f"the search space has more than {limit:,} distinct cells (at least {at_least:,}); "
            f"the exhaustive strategy trains every cell, so it takes at most {limit:,}: narrow [space] "
            "(ops, stacks, modules, filters, max_edges)"
        )


@dataclass(frozen=True)
class Cell:
    """One distinct feasible cell: its architecture key and one vector that decodes to it."""

    key: str
    vector: tuple[float, ...]


def _distinct(values: Sequence[int]) -> list[int]:
    """Indices of the first occurrence of each value (a profile may repeat a choice)."""
    seen: dict[int, int] = {}
    for i, v in enumerate(values):
        seen.setdefault(int(v), i)
    return sorted(seen.values())


def _lower_bound(space: SearchSpace) -> int:
    """Distinct chains input → 1 → … → k → output (k + 1 edges), every labelling, every macro choice."""
    macro = len(set(space.stacks)) * len(set(space.modules)) * len(set(space.filters))
    n_ops = len(set(space.ops))
    return int(macro * sum(n_ops**k for k in range(1, min(NUM_OP_GENES, space.max_edges - 1) + 1)))


def _graphs(k: int, max_edges: int) -> list[tuple[tuple[int, int], ...]]:
    """Edge sets of a (k + 2)-node DAG in topological order in which every operation node lies on an input→output path."""
    n = k + 2
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    need = ((1 << (k + 1)) - 1) & ~1  # bits 1..k
    out: list[tuple[tuple[int, int], ...]] = []
    for e in range(k + 1, min(max_edges, len(pairs)) + 1):
        for edges in itertools.combinations(pairs, e):
            ins = outs = 0
            for i, j in edges:
                ins |= 1 << j
                outs |= 1 << i
            if ins & need == need and outs & need == need:
                out.append(edges)
    return out


def _centre(index: int, bins: int) -> float:
    """The centre of bin ``index`` of ``bins`` equal bins of [0, 1]."""
    return (index + 0.5) / bins


def _vector(space: SearchSpace, k: int, edges: Sequence[tuple[int, int]], op_idx: Sequence[int], macro: tuple[int, int, int]) -> tuple[float, ...]:
    """A 29-entry vector whose 7-node cell is the pruned cell embedded at nodes 1..k (output 6)."""
    n = k + 2
    raw = {(i, NUM_NODES - 1 if j == n - 1 else j) for i, j in edges}
    v = [0.75 if pair in raw else 0.25 for pair in EDGE_INDICES]
    ops = list(op_idx) + [0] * (NUM_OP_GENES - k)  # unused nodes: isolated, any operation
    v += [_centre(o, len(space.ops)) for o in ops]
    m, s, f = macro
    v += [_centre(m, len(space.modules)), _centre(s, len(space.stacks)), _centre(f, len(space.filters))]
    return tuple(v)


def _enumerate(space: SearchSpace, limit: int) -> list[Cell]:
    """Every distinct feasible cell, sorted by key; raises ``SpaceTooLarge`` past ``limit``."""
    bound = _lower_bound(space)
    if bound > limit:
        raise SpaceTooLarge(bound, limit)
    op_choices = _distinct(space.ops)
    macros = [
        (m, s, f)
        for m in _distinct(space.modules)
        for s in _distinct(space.stacks)
        for f in _distinct(space.filters)
    ]
    macro_tags = [f"S{space.stacks[s]}|M{space.modules[m]}|F{space.filters[f]}" for m, s, f in macros]
    cells: dict[str, Cell] = {}
    for k in range(1, NUM_OP_GENES + 1):
        if k + 1 > space.max_edges:
            break
        n = k + 2
        for edges in _graphs(k, space.max_edges):
            matrix = np.zeros((n, n), dtype=np.int64)
            for i, j in edges:
                matrix[i, j] = 1
            for op_idx in itertools.product(op_choices, repeat=k):
                h = cell_hash(matrix, [space.ops[o] for o in op_idx])
                for macro, tag in zip(macros, macro_tags):
                    key = hashlib.md5(f"{h}|{tag}".encode()).hexdigest()
                    if key not in cells:
                        cells[key] = Cell(key, _vector(space, k, edges, op_idx, macro))
                        if len(cells) > limit:
                            raise SpaceTooLarge(len(cells), limit)
    out = [cells[key] for key in sorted(cells)]
    for cell in out:
        if space.key_of(cell.vector) != cell.key:  # the embedding must decode to the cell it stands for
            raise RuntimeError(f"exhaustive enumeration: the vector of cell {cell.key} decodes to another cell")
    return out


_CACHE: dict[tuple[SearchSpace, int], list[Cell] | SpaceTooLarge] = {}


def enumerate_cells(space: SearchSpace, limit: int = MAX_CELLS) -> list[Cell]:
    """Every distinct feasible cell of ``space`` (by ``Genotype.key``), sorted by key.

    Raises:
        SpaceTooLarge: more than ``limit`` distinct cells (a ``ValueError``).
    """
    cached = _CACHE.get((space, limit))
    if cached is None:
        try:
            cached = _enumerate(space, limit)
        except SpaceTooLarge as exc:
            cached = exc
        _CACHE[(space, limit)] = cached
    if isinstance(cached, SpaceTooLarge):
        raise SpaceTooLarge(cached.at_least, cached.limit)
    return list(cached)


def count_cells(space: SearchSpace, limit: int = MAX_CELLS) -> int | None:
    """How many distinct feasible cells ``space`` has; None when more than ``limit``."""
    try:
        return len(enumerate_cells(space, limit))
    except SpaceTooLarge:
        return None


def seeded_order(cells: Sequence[Cell], seed: int) -> list[Cell]:
    """The cells (sorted by key) shuffled by ``PCG64(seed)``: the order an exhaustive run trains them in."""
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(len(cells))
    return [cells[int(i)] for i in perm]


def _fingerprint(order: Sequence[Cell]) -> str:
    return hashlib.md5("\n".join(c.key for c in order).encode()).hexdigest()


class ExhaustiveSearch(RandomSearch):
    """Every distinct feasible cell of ``space``, once each, ``population`` per batch.

    The cells come in ``seeded_order(enumerate_cells(space), seed)``; proposal
    ids are numbered as the other strategies number them, and the best
    ``population`` seen so far are kept as its "population" (per-batch best /
    mean / worst curves compare with the other strategies'). Every proposal is
    a feasible cell not proposed before, so each one trains (unless the
    budget ends the run first: a budget below the space size trains the first
    ``budget`` cells of the order). After the last cell, ``exhausted`` is
    true and the session ends the search (reason ``space``).

    Args:
        space: the search space (at most ``limit`` distinct cells).
        population: vectors per batch, and the size of the kept best set.
        seed: the order's seed.

    Raises:
        SpaceTooLarge: the space has more than ``limit`` distinct cells.
    """

    phase = "exhaustive"

    def __init__(self, space: SearchSpace, population: int = 20, seed: int = 42, limit: int = MAX_CELLS) -> None:
        super().__init__(dim=space.dim, population=population, seed=seed)
        self.space = space
        self.order = seeded_order(enumerate_cells(space, limit), seed)
        self.fingerprint = _fingerprint(self.order)

    @property
    def cells(self) -> int:
        """How many distinct cells the space has (and the run proposes)."""
        return len(self.order)

    @property
    def exhausted(self) -> bool:
        """Every cell has been proposed and answered."""
        return self._pending is None and self._next_id >= len(self.order)

    def ask(self) -> Batch:
        """The next ``population`` cells of the order (fewer at the end).

        Raises:
            ValueError: the previous batch has not been told yet, or every cell was proposed.
        """
        if self._pending is not None:
            raise ValueError("ExhaustiveSearch.ask(): the previous batch is still waiting for tell()")
        if self._next_id >= len(self.order):
            raise ValueError("ExhaustiveSearch.ask(): every cell of the space has been proposed")
        chunk = self.order[self._next_id : self._next_id + self.np]
        batch = Batch(phase=self.phase, generation=self._generation, vectors=[list(c.vector) for c in chunk], first_id=self._next_id)
        self._next_id += len(batch)
        self._pending = batch
        return batch

    def tell(self, fitnesses: Sequence[float], secondary: Sequence[Sequence[float]] | None = None) -> None:
        """As ``RandomSearch.tell``: one fitness per vector of the pending batch."""
        super().tell(fitnesses, secondary)

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot: settings (with the space's cell count and order fingerprint), the kept set, the pending batch."""
        state = super().state_dict()
        state["format"] = STATE_FORMAT
        state["settings"] = {
            "dim": self.dim,
            "population": self.np,
            "seed": self.seed,
            "cells": len(self.order),
            "order": self.fingerprint,
        }
        del state["rng"]  # the order is a function of the space and the seed
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], key_fn: KeyFn | None = None, space: SearchSpace | None = None) -> "ExhaustiveSearch":
        """Rebuild from ``state_dict()`` output; ``space`` is the run's space (the order is enumerated again).

        Raises:
            ValueError: not an exhaustive state, no space, a field missing, mistyped or
                inconsistent, or a space whose cells differ from the saved order.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"ExhaustiveSearch.from_state(): expected format {STATE_FORMAT!r}, got {found!r}")
        if space is None:
            raise ValueError("ExhaustiveSearch.from_state(): the run's search space is needed to enumerate its cells")
        try:
            s = state["settings"]
            if not isinstance(s, dict):
                raise TypeError("settings is not an object")
            if not st.is_count(s.get("dim")) or s["dim"] != space.dim:
                raise ValueError(f"settings dim = {s.get('dim')!r} is not the space's {space.dim}")
            es = cls(space, population=s["population"], seed=s["seed"])
            if s.get("cells") != len(es.order) or s.get("order") != es.fingerprint:
                raise ValueError(
                    f"the saved order ({s.get('cells')!r} cells) is not the order of the run's space ({len(es.order)} cells)"
                )
            es._load_kept(state)
            if es._next_id > len(es.order):
                raise ValueError(f"next_id = {es._next_id} is past the {len(es.order)} cells of the space")
        except SpaceTooLarge as exc:
            raise ValueError(f"ExhaustiveSearch.from_state(): {exc}") from None
        except (KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise ValueError(f"ExhaustiveSearch.from_state(): malformed state ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise ValueError(f"ExhaustiveSearch.from_state(): {exc}") from None
        return es
