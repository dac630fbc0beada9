"""Search space: decoding rules, feasibility, isomorphism-invariant keys, JSON round trip."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.space import EDGE_INDICES, OPERATIONS, VECTOR_LENGTH, Genotype, SearchSpace

SPACE = SearchSpace()
vectors = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=VECTOR_LENGTH, max_size=VECTOR_LENGTH)


def test_reference_chromosome_decodes_exactly(reference):
    config = SPACE.decode_config(reference["chromosome"])
    assert config == reference["decoded_config"]
    g = SPACE.decode(reference["chromosome"])
    expected = reference["decoded"]
    assert g.feasible
    assert g.matrix.tolist() == expected["pruned_matrix"]
    assert list(g.ops) == expected["pruned_ops"]
    assert (g.n_modules, g.n_stacks, g.n_filters) == (
        expected["n_modules"],
        expected["n_stacks"],
        expected["n_filters"],
    )


def test_bin_edges():
    v = np.zeros(VECTOR_LENGTH)
    v[0] = 0.5  # exactly 0.5 is an edge
    v[1] = np.nextafter(0.5, 0)
    cfg = SPACE.decode_config(v)
    assert cfg[0] == 1 and cfg[1] == 0
    v[21], v[22], v[23] = 1.0, 0.0, 14 / 15
    cfg = SPACE.decode_config(v)
    assert cfg[21:24] == [14, 0, 14]
    v[26], v[27], v[28] = 1.0, 0.5, 2 / 3
    cfg = SPACE.decode_config(v)
    assert cfg[26:29] == [1, 1, 2]
    g = SPACE.decode(v)
    assert (g.n_modules, g.n_stacks, g.n_filters) == (2, 2, 32)


def test_operation_table():
    assert len(OPERATIONS) == 15
    assert OPERATIONS[0].short == "conv3·IN·ReLU"
    assert OPERATIONS[5].short == "conv7·IN·Mish"
    assert OPERATIONS[7].short == "IN·Mish·conv5"
    assert OPERATIONS[9].short == "ReLU·conv3"
    assert OPERATIONS[14].short == "Mish·conv7"


@pytest.mark.parametrize(
    "bad",
    [[0.5] * 28, [0.5] * 30, [0.5] * 28 + [float("nan")], [0.5] * 28 + [1.01], [-0.1] + [0.5] * 28, "abc"],
)
def test_bad_vectors_rejected(bad):
    with pytest.raises(ValueError):
        SPACE.decode(bad)


def _reachable(m: np.ndarray) -> np.ndarray:
    n = len(m)
    r = (m + np.eye(n, dtype=int)) > 0
    for _ in range(n):
        r = (r.astype(int) @ r.astype(int)) > 0
    return r


@settings(max_examples=300, deadline=None)
@given(vectors)
def test_every_vector_decodes_and_feasibility_follows_the_rules(vec):
    g = SPACE.decode(vec)
    raw = np.zeros((7, 7), dtype=int)
    for x, (i, j) in zip(vec[:21], EDGE_INDICES):
        raw[i, j] = x >= 0.5
    r = _reachable(raw)
    on_path = [v for v in range(7) if r[0, v] and r[v, 6]]
    if not r[0, 6]:
        assert not g.feasible
        return
    kept = raw[np.ix_(on_path, on_path)]
    n_ops = len(on_path) - 2
    assert g.feasible == (n_ops >= 1 and kept.sum() <= 9)
    if g.feasible:
        assert g.matrix.tolist() == kept.tolist()
        assert len(g.ops) == n_ops
        assert g.key is not None
    else:
        assert g.key is None and g.reason


def _random_dag(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[int]]:
    while True:
        m = np.triu((rng.random((n, n)) < 0.5).astype(int), 1)
        g = Genotype.from_cell(m, rng.integers(0, 15, n - 2).tolist(), max_edges=21)
        if g.feasible and len(g.matrix) == n:
            return np.array(g.matrix), list(g.ops)


def _relabel(m: np.ndarray, ops: list[int], rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Relabel the intermediate vertices by another topological order."""
    n = len(m)
    indeg = m.sum(axis=0).tolist()
    order, ready = [], [0]
    m_left = m.copy()
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        order.append(v)
        for w in range(n):
            if m_left[v, w]:
                m_left[v, w] = 0
                indeg[w] -= 1
                if indeg[w] == 0 and w != n - 1:
                    ready.append(w)
    order.append(n - 1)
    perm = np.array(order)
    new_m = m[np.ix_(perm, perm)]
    new_ops = [ops[v - 1] for v in perm[1:-1]]
    return new_m, new_ops


def _isomorphic(a: Genotype, b: Genotype) -> bool:
    """Brute-force labelled isomorphism (input and output fixed)."""
    if len(a.matrix) != len(b.matrix) or sorted(a.ops) != sorted(b.ops):
        return False
    n = len(a.matrix)
    la, lb = [-1] + a.ops + [-2], [-1] + b.ops + [-2]
    for perm in itertools.permutations(range(1, n - 1)):
        p = (0,) + perm + (n - 1,)
        if all(la[p[v]] == lb[v] for v in range(n)) and (a.matrix[np.ix_(p, p)] == b.matrix).all():
            return True
    return False


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 7))
def test_key_invariant_under_relabelling(seed, n):
    rng = np.random.default_rng(seed)
    m, ops = _random_dag(rng, n)
    m2, ops2 = _relabel(m, ops, rng)
    a = Genotype.from_cell(m, ops, max_edges=21)
    b = Genotype.from_cell(m2, ops2, max_edges=21)
    assert a.key == b.key
    assert a == b and hash(a) == hash(b)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 7))
def test_key_differs_for_other_op_or_macro(seed, n):
    rng = np.random.default_rng(seed)
    m, ops = _random_dag(rng, n)
    base = Genotype.from_cell(m, ops, max_edges=21)
    j = int(rng.integers(len(ops)))
    other_ops = list(ops)
    other_ops[j] = (ops[j] + 1 + int(rng.integers(14))) % 15
    assert Genotype.from_cell(m, other_ops, max_edges=21).key != base.key
    assert Genotype.from_cell(m, ops, n_stacks=2, max_edges=21).key != base.key
    assert Genotype.from_cell(m, ops, n_modules=2, max_edges=21).key != base.key
    assert Genotype.from_cell(m, ops, n_filters=16, max_edges=21).key != base.key


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_key_equality_matches_brute_force_isomorphism(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    # a tiny op alphabet makes isomorphic pairs common
    def cell():
        while True:
            m = np.triu((rng.random((n, n)) < 0.6).astype(int), 1)
            g = Genotype.from_cell(m, rng.integers(0, 2, n - 2).tolist(), max_edges=21)
            if g.feasible:
                return g
    a, b = cell(), cell()
    assert (a.key == b.key) == _isomorphic(a, b)


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_json_round_trip(vec):
    g = SPACE.decode(vec)
    back = Genotype.from_json(g.to_json())
    assert back.feasible == g.feasible
    assert back.key == g.key
    assert back.matrix.tolist() == g.matrix.tolist() and back.ops == g.ops
    assert back.compact == g.compact


def test_from_dict_rejects_tampered_key(reference):
    d = SPACE.decode(reference["chromosome"]).to_dict()
    d["key"] = "0" * 32
    with pytest.raises(ValueError, match="key mismatch"):
        Genotype.from_dict(d)


def test_infeasible_cases():
    m = np.zeros((7, 7), dtype=int)
    assert Genotype.from_cell(m, [0] * 5).reason == "input does not reach output"
    m[0, 6] = 1
    assert "no operation" in Genotype.from_cell(m, [0] * 5).reason
    full = np.triu(np.ones((7, 7), dtype=int), 1)
    g = Genotype.from_cell(full, [0] * 5)
    assert not g.feasible and "edges" in g.reason


def test_configurable_space():
    space = SearchSpace(ops=(0, 9), stacks=(3,), modules=(1, 2, 3), filters=(4,), max_edges=5)
    v = np.full(VECTOR_LENGTH, 0.99)
    g = space.decode(v)
    assert not g.feasible  # 21 edges > 5
    cfg = space.decode_config(v)
    assert cfg[21:26] == [9] * 5 and cfg[26:] == [2, 0, 0]
    with pytest.raises(ValueError):
        SearchSpace(ops=(15,))
    with pytest.raises(ValueError):
        SearchSpace(filters=())


def test_compact_is_one_line(reference):
    g = SPACE.decode(reference["chromosome"])
    assert g.compact == "S1M1F8 4,9,10 01 02 13 24 34"
