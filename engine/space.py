"""The search space: decoding 29-entry vectors into cell genotypes (SPEC §3).

This module owns the single encode/decode boundary between the optimiser's
real vectors in [0, 1]^29 and architectures: the operation table, the
NAS-Bench-101 pruning and feasibility rules, and the isomorphism-invariant
architecture key. It is pure numpy and must not create models or import
torch (``engine.model`` builds networks from a ``Genotype``).

Vector layout (fixed by the published code and genotypes):

* 0–20  strictly upper-triangular 7×7 adjacency, row-major over (i, j), i < j;
        an edge exists when the entry is >= 0.5.
* 21–25 operation of nodes 1–5: [0, 1] split into ``len(ops)`` equal bins.
* 26    modules per stack, 27 stacks, 28 initial filters (equal bins each).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .operations import OPERATIONS, Operation

__all__ = [
    "Operation",
    "OPERATIONS",
    "NUM_NODES",
    "VECTOR_LENGTH",
    "EDGE_INDICES",
    "SearchSpace",
    "Genotype",
    "cell_hash",
]

NUM_NODES = 7  # input, five operation nodes, output
# Upper bounds of the macro choices a profile or `train` accepts: far above the
# paper's space ({1, 2} stacks and modules, {8, 16, 32} filters), low enough that
# a typo is refused in one line instead of exhausting memory.
MAX_STACKS, MAX_MODULES, MAX_FILTERS = 16, 64, 4096
EDGE_INDICES: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(NUM_NODES) for j in range(i + 1, NUM_NODES)
)
NUM_EDGE_GENES = len(EDGE_INDICES)  # 21
NUM_OP_GENES = NUM_NODES - 2  # 5
VECTOR_LENGTH = NUM_EDGE_GENES + NUM_OP_GENES + 3  # 29
MODULES_GENE, STACKS_GENE, FILTERS_GENE = 26, 27, 28




def _bin(x: float, n: int) -> int:
    """Index of the equal-width bin of [0, 1] that holds x (1.0 in the last bin)."""
    return min(int(math.floor(x * n)), n - 1)


def _prune(matrix: np.ndarray) -> tuple[np.ndarray, list[int]] | None:
    """Keep the vertices on some input→output path (NAS-Bench-101 rules).

    Returns the pruned matrix and the kept original vertex indices, or None
    when the output is not reachable from the input.
    """
    n = matrix.shape[0]
    from_input = {0}
    for v in range(1, n):  # topological order: edges go from lower to higher index
        if any(matrix[u, v] and u in from_input for u in range(v)):
            from_input.add(v)
    to_output = {n - 1}
    for v in range(n - 2, -1, -1):
        if any(matrix[v, w] and w in to_output for w in range(v + 1, n)):
            to_output.add(v)
    if n - 1 not in from_input:
        return None
    keep = sorted(from_input & to_output)
    return matrix[np.ix_(keep, keep)].copy(), keep


def cell_hash(matrix: np.ndarray, ops: Sequence[int]) -> str:
    """Isomorphism-invariant hash of a labelled DAG (NAS-Bench-101's iterative label hashing).

    Args:
        matrix: pruned adjacency, vertex 0 the input, the last vertex the output.
        ops: operation indices of the intermediate vertices.
    """
    n = matrix.shape[0]
    labels = [-1] + [int(o) for o in ops] + [-2]
    in_deg = matrix.sum(axis=0).tolist()
    out_deg = matrix.sum(axis=1).tolist()
    hashes = [
        hashlib.md5(f"{in_deg[v]}|{out_deg[v]}|{labels[v]}".encode()).hexdigest() for v in range(n)
    ]
    for _ in range(n):
        new = []
        for v in range(n):
            ins = sorted(hashes[u] for u in range(n) if matrix[u, v])
            outs = sorted(hashes[w] for w in range(n) if matrix[v, w])
            new.append(hashlib.md5(("".join(ins) + "|" + "".join(outs) + "|" + hashes[v]).encode()).hexdigest())
        hashes = new
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Genotype:
    """A decoded candidate: its pruned cell and macro choices (a value object).

    Attributes:
        matrix: pruned adjacency (numpy int array, read-only), input first, output last.
            Empty (0×0) when the candidate is infeasible because nothing is connected.
        ops: operation indices (0–14) of the pruned intermediate nodes, in order.
        n_stacks, n_modules, n_filters: macro choices.
        feasible: whether it can be trained; ``reason`` says why not.
        key: isomorphism-invariant architecture key (None when infeasible).
        raw_matrix, raw_ops: the unpruned 7×7 cell and its five operations.
    """

    matrix: np.ndarray
    ops: list[int]
    n_stacks: int
    n_modules: int
    n_filters: int
    feasible: bool
    reason: str | None
    key: str | None
    raw_matrix: np.ndarray = field(repr=False)
    raw_ops: list[int] = field(repr=False)

    @classmethod
    def from_cell(
        cls,
        matrix: Sequence[Sequence[int]] | np.ndarray,
        ops: Sequence[int],
        n_stacks: int = 1,
        n_modules: int = 1,
        n_filters: int = 8,
        max_edges: int = 9,
    ) -> "Genotype":
        """Prune a cell and decide feasibility.

        Args:
            matrix: square upper-triangular 0/1 adjacency, input vertex 0, output last.
            ops: operation index of every intermediate vertex (len = vertices − 2).

        Raises:
            ValueError: the matrix is not square, has more than ``NUM_NODES`` vertices, is
                not strictly upper-triangular or not 0/1, ``ops`` has the wrong length or
                unknown operations, or a macro choice is not a positive integer.
        """
        raw = np.array(matrix, dtype=np.int64)
        if raw.ndim != 2 or raw.shape[0] != raw.shape[1] or raw.shape[0] < 2:
            raise ValueError(f"cell matrix must be square with at least 2 vertices, got shape {raw.shape}")
        if raw.shape[0] > NUM_NODES:
            raise ValueError(f"a cell has at most {NUM_NODES} vertices (input, five operations, output), got {raw.shape[0]}")
        for name, value in (("n_stacks", n_stacks), ("n_modules", n_modules), ("n_filters", n_filters)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} = {value!r}: expected a positive integer")
        if not np.isin(raw, (0, 1)).all():
            raise ValueError("cell matrix entries must be 0 or 1")
        if np.tril(raw).any():
            raise ValueError("cell matrix must be strictly upper-triangular (a DAG in topological order)")
        raw_ops = [int(o) for o in ops]
        if len(raw_ops) != raw.shape[0] - 2:
            raise ValueError(f"expected {raw.shape[0] - 2} operations, got {len(raw_ops)}")
        bad = [o for o in raw_ops if not 0 <= o < len(OPERATIONS)]
        if bad:
            raise ValueError(f"unknown operation index {bad[0]}: valid are 0–{len(OPERATIONS) - 1}")

        pruned = _prune(raw)
        reason: str | None = None
        if pruned is None:
            matrix_p, ops_p = np.zeros((0, 0), dtype=np.int64), []
            reason = "input does not reach output"
        else:
            matrix_p, keep = pruned
            ops_p = [raw_ops[v - 1] for v in keep[1:-1]]
            if not ops_p:
                reason = "no operation node on an input→output path"
            elif int(matrix_p.sum()) > max_edges:
                reason = f"{int(matrix_p.sum())} edges after pruning (max {max_edges})"
        feasible = reason is None
        key = None
        if feasible:
            macro = f"S{int(n_stacks)}|M{int(n_modules)}|F{int(n_filters)}"
            key = hashlib.md5(f"{cell_hash(matrix_p, ops_p)}|{macro}".encode()).hexdigest()
        matrix_p.setflags(write=False)
        raw.setflags(write=False)
        return cls(
            matrix=matrix_p,
            ops=list(ops_p),
            n_stacks=int(n_stacks),
            n_modules=int(n_modules),
            n_filters=int(n_filters),
            feasible=feasible,
            reason=reason,
            key=key,
            raw_matrix=raw,
            raw_ops=raw_ops,
        )

    # -- identity -----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Genotype):
            return NotImplemented
        if self.feasible and other.feasible:
            return self.key == other.key
        return self._raw_identity() == other._raw_identity()

    def __hash__(self) -> int:
        return hash(self.key if self.feasible else self._raw_identity())

    def _raw_identity(self) -> tuple[bytes, tuple[int, ...], int, int, int]:
        return (
            self.raw_matrix.tobytes(),
            tuple(self.raw_ops),
            self.n_stacks,
            self.n_modules,
            self.n_filters,
        )

    # -- views ----------------------------------------------------------------------
    @property
    def edges(self) -> list[tuple[int, int]]:
        """Edges of the pruned cell as (from, to) vertex pairs."""
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(self.matrix))]

    @property
    def compact(self) -> str:
        """One line for tables, e.g. ``S1M1F8 4,9,10 01 02 13 24 34``."""
        macro = f"S{self.n_stacks}M{self.n_modules}F{self.n_filters}"
        if not self.feasible:
            return f"{macro} infeasible ({self.reason})"
        ops = ",".join(str(o) for o in self.ops)
        edges = " ".join(f"{i}{j}" if len(self.matrix) <= 10 else f"{i}-{j}" for i, j in self.edges)
        return f"{macro} {ops} {edges}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; ``Genotype.from_dict`` restores an equal genotype."""
        return {
            "matrix": self.matrix.tolist(),
            "ops": list(self.ops),
            "n_stacks": self.n_stacks,
            "n_modules": self.n_modules,
            "n_filters": self.n_filters,
            "feasible": self.feasible,
            "reason": self.reason,
            "key": self.key,
            "compact": self.compact,
            "raw_matrix": self.raw_matrix.tolist(),
            "raw_ops": list(self.raw_ops),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any], max_edges: int = 9) -> "Genotype":
        """Rebuild from ``to_dict`` output (from the raw cell when present, else the pruned one).

        Raises:
            ValueError: malformed data, or a stored key that does not match the cell.
        """
        if not isinstance(data, dict):
            raise ValueError(f"malformed genotype data: expected an object, got {type(data).__name__}")
        try:
            use_raw = data.get("raw_matrix") is not None
            g = cls.from_cell(
                data["raw_matrix"] if use_raw else data["matrix"],
                data["raw_ops"] if use_raw else data["ops"],
                data["n_stacks"],
                data["n_modules"],
                data["n_filters"],
                max_edges=max_edges,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed genotype data: {exc!r}") from None
        stored = data.get("key")
        if stored is not None and stored != g.key:
            raise ValueError(f"genotype key mismatch: stored {stored}, computed {g.key}")
        return g

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_compact(cls, text: str, max_edges: int = 9) -> "Genotype":
        """Parse the one-line form ``compact`` gives (``S1M1F8 4,9,10 01 02 13 24 34``).

        The macro choices, the operations of the pruned cell's nodes in order,
        then its edges as ``ij`` (or ``i-j`` for cells of more than ten nodes).

        Raises:
            ValueError: not that form, or a cell ``from_cell`` refuses.
        """
        parts = str(text).split()
        macro = re.fullmatch(r"S(\d+)M(\d+)F(\d+)", parts[0]) if parts else None
        if macro is None or len(parts) < 3:
            raise ValueError(
                f"not a compact genotype: {text!r}; expected e.g. 'S1M1F8 4,9,10 01 02 13 24 34' "
                "(stacks/modules/filters, operations, edges)"
            )
        try:
            ops = [int(o) for o in parts[1].split(",")]
        except ValueError:
            raise ValueError(f"not a compact genotype: operations {parts[1]!r} must be integers separated by commas") from None
        n = len(ops) + 2
        matrix = np.zeros((n, n), dtype=np.int64)
        for edge in parts[2:]:
            pair = edge.split("-") if "-" in edge else list(edge)
            if len(pair) != 2 or not all(p.isdigit() for p in pair):
                raise ValueError(f"not a compact genotype: edge {edge!r} must be 'ij' (or 'i-j')")
            i, j = (int(p) for p in pair)
            if not (0 <= i < j < n):
                raise ValueError(f"not a compact genotype: edge {edge!r} outside a {n}-node cell (i < j < {n})")
            matrix[i, j] = 1
        s, m, f = (int(x) for x in macro.groups())
        return cls.from_cell(matrix, ops, n_stacks=s, n_modules=m, n_filters=f, max_edges=max_edges)


@dataclass(frozen=True)
class SearchSpace:
    """The paper's search space by default; every choice can be narrowed by a profile.

    Args:
        ops: operation indices selectable by the five operation genes.
        stacks, modules, filters: choices of the macro genes (equal bins each).
        max_edges: feasibility limit on edges of the pruned cell.
    """

    ops: tuple[int, ...] = tuple(range(len(OPERATIONS)))
    stacks: tuple[int, ...] = (1, 2)
    modules: tuple[int, ...] = (1, 2)
    filters: tuple[int, ...] = (8, 16, 32)
    max_edges: int = 9

    def __post_init__(self) -> None:
        for name in ("ops", "stacks", "modules", "filters"):
            values = tuple(int(v) for v in getattr(self, name))
            if not values:
                raise ValueError(f"search space {name} must not be empty")
            object.__setattr__(self, name, values)
        bad = [o for o in self.ops if not 0 <= o < len(OPERATIONS)]
        if bad:
            raise ValueError(f"unknown operation index {bad[0]}: valid are 0–{len(OPERATIONS) - 1}")
        if any(v < 1 for v in self.stacks + self.modules + self.filters):
            raise ValueError("stacks, modules and filters must be positive")
        if not 1 <= self.max_edges <= NUM_EDGE_GENES:
            raise ValueError(f"max_edges must be in 1–{NUM_EDGE_GENES}, got {self.max_edges}")

    @property
    def dim(self) -> int:
        return VECTOR_LENGTH

    @staticmethod
    def check_vector(vector: Iterable[float]) -> np.ndarray:
        """Validate a candidate vector.

        Raises:
            ValueError: wrong length, NaN/inf, or an entry outside [0, 1].
        """
        try:
            v = np.asarray(list(vector) if not isinstance(vector, np.ndarray) else vector, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("candidate vector must be a sequence of numbers") from None
        if v.shape != (VECTOR_LENGTH,):
            raise ValueError(f"candidate vector must have {VECTOR_LENGTH} entries, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"candidate vector has NaN or infinite entries at {np.flatnonzero(~np.isfinite(v)).tolist()}")
        if (v < 0).any() or (v > 1).any():
            idx = np.flatnonzero((v < 0) | (v > 1)).tolist()
            raise ValueError(f"candidate vector entries must be in [0, 1]; out of range at {idx}")
        return v

    def decode_config(self, vector: Iterable[float]) -> list[int]:
        """The integer configuration of a vector: 21 edge bits, 5 op indices, 3 macro bin indices."""
        v = self.check_vector(vector)
        edges = [int(x >= 0.5) for x in v[:NUM_EDGE_GENES]]
        ops = [self.ops[_bin(x, len(self.ops))] for x in v[NUM_EDGE_GENES:NUM_EDGE_GENES + NUM_OP_GENES]]
        macro = [
            _bin(v[MODULES_GENE], len(self.modules)),
            _bin(v[STACKS_GENE], len(self.stacks)),
            _bin(v[FILTERS_GENE], len(self.filters)),
        ]
        return edges + ops + macro

    def decode(self, vector: Iterable[float]) -> Genotype:
        """Decode a 29-entry vector in [0, 1] into a (pruned) ``Genotype``.

        Raises:
            ValueError: see ``check_vector``.
        """
        config = self.decode_config(vector)
        matrix = np.zeros((NUM_NODES, NUM_NODES), dtype=np.int64)
        for bit, (i, j) in zip(config[:NUM_EDGE_GENES], EDGE_INDICES):
            matrix[i, j] = bit
        ops = config[NUM_EDGE_GENES:NUM_EDGE_GENES + NUM_OP_GENES]
        m, s, f = config[NUM_EDGE_GENES + NUM_OP_GENES:]
        return Genotype.from_cell(
            matrix,
            ops,
            n_stacks=self.stacks[s],
            n_modules=self.modules[m],
            n_filters=self.filters[f],
            max_edges=self.max_edges,
        )

    def key_of(self, vector: Iterable[float]) -> str | None:
        """Architecture key of a vector, None when infeasible (the ODE's ``key_fn``)."""
        return self.decode(vector).key
