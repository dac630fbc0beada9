"""Tests of engine/ode.py: the ODE ask/tell protocol, its operators and its state."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.ode import (
    ODE,
    Batch,
    boundary_check,
    crossover_bin,
    generation_jump,
    mutation_rand1,
    opposite,
    select_best,
)

DIM = 29


def sphere(v) -> float:
    """Cheap synthetic objective, best at x = 0.3 (higher is better)."""
    x = np.asarray(v, dtype=float)
    return float(-np.sum((x - 0.3) ** 2))


def coarse_key(v: np.ndarray) -> str | None:
    """A stand-in for the architecture key: infeasible when v[0] < 0.2, coarse bins otherwise."""
    if v[0] < 0.2:
        return None
    return "".join(str(int(x * 2)) for x in v[:6])


def step(ode: ODE, log: list[Batch]) -> None:
    """One ask + tell with the synthetic objective."""
    batch = ode.ask()
    log.append(batch)
    ode.tell([sphere(v) for v in batch.vectors])


def run_batches(ode: ODE, n: int) -> list[Batch]:
    log: list[Batch] = []
    for _ in range(n):
        step(ode, log)
    return log


# ---------------------------------------------------------------- protocol


def test_phase_sequence_and_generation_numbers():
    ode = ODE(population=6, jumping_rate=1.0, seed=1)
    log = run_batches(ode, 6)
    assert [(b.phase, b.generation) for b in log] == [
        ("init", 0),
        ("opposite", 0),
        ("trial", 1),
        ("jump", 1),
        ("trial", 2),
        ("jump", 2),
    ]
    assert all(len(b) == 6 and all(len(v) == DIM for v in b.vectors) for b in log)
    # proposals are numbered consecutively over the run
    assert [b.first_id for b in log] == [0, 6, 12, 18, 24, 30]


def test_no_jump_when_rate_zero():
    ode = ODE(population=5, jumping_rate=0.0, seed=3)
    log = run_batches(ode, 12)
    assert [b.phase for b in log[2:]] == ["trial"] * 10
    assert [b.generation for b in log[2:]] == list(range(1, 11))


def test_vectors_are_plain_floats_and_json_safe():
    ode = ODE(population=4, seed=0)
    batch = ode.ask()
    assert all(type(x) is float for v in batch.vectors for x in v)
    json.dumps(batch.to_dict())
    assert Batch.from_dict(json.loads(json.dumps(batch.to_dict()))) == batch


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    population=st.integers(4, 10),
    jr=st.sampled_from([0.0, 0.3, 1.0]),
    f=st.floats(0.1, 2.0),
    cr=st.floats(0.0, 1.0),
)
def test_best_never_gets_worse_and_vectors_stay_in_unit_cube(seed, population, jr, f, cr):
    ode = ODE(population=population, mutation_factor=f, crossover_rate=cr, jumping_rate=jr, seed=seed)
    best = -math.inf
    for _ in range(14):
        batch = ode.ask()
        arr = np.array(batch.vectors)
        assert arr.shape == (population, DIM)
        assert np.all((arr >= 0.0) & (arr <= 1.0))
        ode.tell([sphere(v) for v in batch.vectors])
        _, fit = ode.best()
        assert fit >= best
        best = fit
        assert len(ode.population) == population
        # the stored fitness belongs to the stored vector
        assert np.allclose(ode.fitness, [sphere(v) for v in ode.population])


def test_search_improves_on_synthetic_objective():
    ode = ODE(population=10, seed=42)
    run_batches(ode, 2)
    _, start = ode.best()
    run_batches(ode, 60)
    _, end = ode.best()
    assert end > start


def test_opposites_are_exactly_one_minus_init():
    ode = ODE(population=7, seed=5)
    init = ode.ask()
    ode.tell([sphere(v) for v in init.vectors])
    opp = ode.ask()
    assert opp.phase == "opposite"
    assert np.array_equal(np.array(opp.vectors), 1.0 - np.array(init.vectors))


def test_jump_vectors_are_min_plus_max_minus_x_of_population():
    ode = ODE(population=6, jumping_rate=1.0, seed=9)
    log = run_batches(ode, 3)  # init, opposite, trial
    pop = ode.population
    jump = ode.ask()
    assert jump.phase == "jump" and log[-1].phase == "trial"
    expected = pop.min(axis=0) + pop.max(axis=0) - pop
    assert np.array_equal(np.array(jump.vectors), expected)


def test_opposition_keeps_best_np_of_union_stable_on_ties():
    ode = ODE(population=4, seed=2)
    init = ode.ask()
    ode.tell([0.0] * 4)
    opp = ode.ask()
    ode.tell([0.0, 1.0, 0.0, 0.0])
    # opposite 1 is best; then ties keep the earlier (init) members in order
    expected = [opp.vectors[1], init.vectors[0], init.vectors[1], init.vectors[2]]
    assert np.array_equal(ode.population, np.array(expected))
    assert ode.population_ids == [5, 0, 1, 2]


def test_trial_replaces_target_when_fitness_ties():
    ode = ODE(population=5, jumping_rate=0.0, seed=4)
    run_batches(ode, 2)
    before = ode.fitness
    trial = ode.ask()
    ode.tell(list(before))  # equal fitness: >= means the trial wins
    assert np.array_equal(ode.population, np.array(trial.vectors))
    assert ode.population_ids == list(range(trial.first_id, trial.first_id + 5))


def test_trial_loses_when_worse():
    ode = ODE(population=5, jumping_rate=0.0, seed=4)
    run_batches(ode, 2)
    pop, fit = ode.population, ode.fitness
    ode.ask()
    ode.tell(list(fit - 1.0))
    assert np.array_equal(ode.population, pop)


def test_jump_merge_keeps_best_of_union():
    ode = ODE(population=4, jumping_rate=1.0, seed=11)
    run_batches(ode, 3)
    fit = ode.fitness
    jump = ode.ask()
    top = float(fit.max()) + 1.0
    ode.tell([top, -1e9, -1e9, -1e9])
    assert np.array_equal(ode.population[0], np.array(jump.vectors[0]))
    assert ode.fitness[0] == top
    assert ode.generation == 2 and ode.phase == "trial"


# ---------------------------------------------------------------- init with key_fn


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), population=st.integers(4, 12))
def test_init_vectors_are_distinct_feasible_by_key_fn(seed, population):
    ode = ODE(population=population, seed=seed, key_fn=coarse_key)
    batch = ode.ask()
    keys = [coarse_key(np.array(v)) for v in batch.vectors]
    assert None not in keys
    assert len(set(keys)) == population


def test_init_gives_up_on_an_infeasible_space():
    ode = ODE(population=4, seed=0, key_fn=lambda v: None)
    with pytest.raises(RuntimeError, match="distinct feasible"):
        ode.ask()


def test_key_fn_is_not_used_after_init():
    calls = []

    def key_fn(v):
        calls.append(1)
        return str(v.tolist())

    ode = ODE(population=4, seed=0, key_fn=key_fn)
    run_batches(ode, 1)
    n = len(calls)
    run_batches(ode, 6)
    assert len(calls) == n == 4


# ---------------------------------------------------------------- operators


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cr=st.floats(0.0, 1.0),
    dim=st.integers(1, 40),
)
def test_crossover_takes_at_least_one_mutant_gene(seed, cr, dim):
    rng = np.random.default_rng(seed)
    target = np.zeros(dim)
    mutant = np.ones(dim)
    trial = crossover_bin(target, mutant, cr, rng)
    assert trial.sum() >= 1
    assert set(np.unique(trial)) <= {0.0, 1.0}


def test_crossover_rate_extremes():
    rng = np.random.default_rng(0)
    t, m = np.zeros(29), np.ones(29)
    assert crossover_bin(t, m, 1.0, rng).sum() == 29
    assert crossover_bin(t, m, 0.0, rng).sum() == 1


@settings(max_examples=50, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-3.0, 4.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_boundary_check_redraws_only_out_of_range(x, seed):
    out = boundary_check(x, np.random.default_rng(seed))
    assert np.all((out >= 0.0) & (out <= 1.0))
    inside = (x >= 0.0) & (x <= 1.0)
    assert np.array_equal(out[inside], x[inside])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), target=st.integers(0, 3))
def test_mutation_rand1_uses_three_distinct_others(seed, target):
    # rows with distinct powers of ten make r1 + (r2 - r3) identify its indices
    pop = np.array([[1.0], [10.0], [100.0], [1000.0]])
    mutant = mutation_rand1(pop, target, 1.0, np.random.default_rng(seed))
    others = [float(pop[i, 0]) for i in range(4) if i != target]
    candidates = {a + b - c for a in others for b in others for c in others if len({a, b, c}) == 3}
    assert float(mutant[0]) in candidates


def test_mutation_needs_four():
    with pytest.raises(ValueError, match="at least 4"):
        mutation_rand1(np.zeros((3, 2)), 0, 0.5, np.random.default_rng(0))


@settings(max_examples=30, deadline=None)
@given(pop=hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 6)), elements=st.floats(0, 1)))
def test_opposite_and_generation_jump_stay_in_bounds(pop):
    assert np.array_equal(opposite(pop), 1.0 - pop)
    j = generation_jump(pop)
    lo, hi = pop.min(axis=0), pop.max(axis=0)
    assert np.all(j >= lo - 1e-12) and np.all(j <= hi + 1e-12)


def test_select_best_is_stable():
    assert select_best(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 3).tolist() == [1, 2, 4]


# ---------------------------------------------------------------- determinism and state


def _same(a: list[Batch], b: list[Batch]) -> bool:
    return [x.to_dict() for x in a] == [y.to_dict() for y in b]


def test_same_seed_same_proposals_and_other_seed_differs():
    a = run_batches(ODE(population=6, seed=42, key_fn=coarse_key), 10)
    b = run_batches(ODE(population=6, seed=42, key_fn=coarse_key), 10)
    c = run_batches(ODE(population=6, seed=43, key_fn=coarse_key), 10)
    assert _same(a, b)
    assert not _same(a, c)


def test_state_dict_is_json_safe():
    ode = ODE(population=5, seed=1)
    for _ in range(3):
        ode.ask()
        json.dumps(ode.state_dict(), allow_nan=False)
        ode.tell([0.5] * 5)
        json.dumps(ode.state_dict(), allow_nan=False)


def _split_run(n_calls: int, split_at: int, **kw) -> list[Batch]:
    """Alternate ask/tell for n_calls calls; round-trip the state through JSON after split_at calls."""
    ode = ODE(key_fn=coarse_key, **kw)
    log: list[Batch] = []
    for call in range(n_calls):
        if call == split_at:
            state = json.loads(json.dumps(ode.state_dict()))
            ode = ODE.from_state(state, key_fn=coarse_key)
        if call % 2 == 0:
            log.append(ode.ask())
        else:
            ode.tell([sphere(v) for v in log[-1].vectors])
    return log


@pytest.mark.parametrize("jr", [0.0, 0.3, 1.0])
def test_split_run_at_every_point_proposes_identical_batches(jr):
    kw = dict(population=5, seed=7, jumping_rate=jr)
    n_calls = 24
    reference = _split_run(n_calls, split_at=-1, **kw)
    for split_at in range(n_calls):
        assert _same(_split_run(n_calls, split_at, **kw), reference), split_at


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), split_at=st.integers(0, 29))
def test_split_run_hypothesis(seed, split_at):
    kw = dict(population=4, seed=seed, jumping_rate=0.5, crossover_rate=0.9, mutation_factor=1.5)
    assert _same(_split_run(30, split_at, **kw), _split_run(30, -1, **kw))


def test_restore_with_pending_batch_accepts_tell():
    ode = ODE(population=4, seed=3)
    run_batches(ode, 2)
    batch = ode.ask()
    restored = ODE.from_state(json.loads(json.dumps(ode.state_dict())))
    assert restored.tell_pending and restored.pending == batch
    with pytest.raises(ValueError, match="still waiting"):
        restored.ask()
    restored.tell([0.0] * 4)
    assert not restored.tell_pending
    assert restored.evaluations == 12


def test_views_are_copies():
    ode = ODE(population=4, seed=0)
    run_batches(ode, 2)
    ode.population[:] = 5.0
    ode.fitness[:] = 5.0
    assert np.all(ode.population <= 1.0)
    assert np.all(ode.fitness <= 0.0)


# ---------------------------------------------------------------- misuse


def test_ask_twice_raises():
    ode = ODE(population=4)
    ode.ask()
    with pytest.raises(ValueError, match="tell"):
        ode.ask()


def test_tell_without_ask_raises():
    with pytest.raises(ValueError, match="ask"):
        ODE(population=4).tell([1.0] * 4)


def test_tell_wrong_length_raises_and_keeps_batch_pending():
    ode = ODE(population=4)
    ode.ask()
    with pytest.raises(ValueError, match="got 3 fitnesses .* 4 vectors"):
        ode.tell([1.0, 2.0, 3.0])
    assert ode.tell_pending
    ode.tell([1.0] * 4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "x", None])
def test_tell_non_finite_or_non_number_raises(bad):
    ode = ODE(population=4)
    ode.ask()
    with pytest.raises(ValueError):
        ode.tell([1.0, 1.0, 1.0, bad])
    assert ode.tell_pending


def test_best_before_any_tell_raises():
    with pytest.raises(ValueError, match="no population"):
        ODE(population=4).best()


@pytest.mark.parametrize(
    "kw",
    [
        {"population": 3},
        {"population": True},
        {"mutation_factor": 0.0},
        {"mutation_factor": 2.5},
        {"crossover_rate": -0.1},
        {"jumping_rate": 1.5},
        {"dim": 0},
        {"seed": -1},
    ],
)
def test_bad_settings_raise(kw):
    with pytest.raises(ValueError):
        ODE(**kw)


def test_from_state_rejects_foreign_state():
    with pytest.raises(ValueError, match="format"):
        ODE.from_state({"format": "something-else"})
    state = ODE(population=4).state_dict()
    del state["rng"]
    with pytest.raises(ValueError, match="malformed"):
        ODE.from_state(state)


# ---------------------------------------------------------------- tie-breaks (search.tie_break)


def _after_opposition(population: int = 5) -> ODE:
    """An ODE whose population has been told, every member with fitness 0.5 and secondary (0.5, -100)."""
    ode = ODE(population=population, jumping_rate=0.0, seed=4)
    for _ in range(2):
        batch = ode.ask()
        ode.tell([0.5] * len(batch), [[0.5, -100.0]] * len(batch))
    return ode


def test_equal_fitness_with_a_better_tie_break_replaces_the_target():
    ode = _after_opposition()
    pop = ode.population
    trial = ode.ask()
    # targets 0, 2: better val AUC; 1: worse val AUC; 3: same AUC, fewer FLOPs; 4: same AUC, more FLOPs
    ode.tell([0.5] * 5, [[0.6, -100.0], [0.4, -100.0], [0.9, -1.0], [0.5, -50.0], [0.5, -200.0]])
    got = ode.population
    for j, wins in enumerate([True, False, True, True, False]):
        expected = trial.vectors[j] if wins else pop[j]
        assert np.array_equal(got[j], np.array(expected)), j


def test_complete_ties_and_no_tie_break_go_to_the_trial_as_in_the_paper():
    ode = _after_opposition()
    trial = ode.ask()
    ode.tell([0.5] * 5, [[0.5, -100.0]] * 5)  # equal in everything: >= keeps the paper's rule
    assert np.array_equal(ode.population, np.array(trial.vectors))
    plain = ODE(population=5, jumping_rate=0.0, seed=4)
    run_batches(plain, 2)
    fit = plain.fitness
    trial = plain.ask()
    plain.tell(list(fit))  # no secondary values at all (search.tie_break = "none")
    assert np.array_equal(plain.population, np.array(trial.vectors))


def test_a_higher_fitness_wins_whatever_the_tie_break():
    ode = _after_opposition()
    pop = ode.population
    trial = ode.ask()
    ode.tell([0.51, 0.49, 0.5, 0.5, 0.5], [[0.0, -1e9], [1.0, 0.0], [0.5, -100.0], [0.5, -100.0], [0.5, -100.0]])
    assert np.array_equal(ode.population[0], np.array(trial.vectors[0]))
    assert np.array_equal(ode.population[1], pop[1])


def test_opposition_keeps_the_best_by_tie_break_among_equal_fitness():
    ode = ODE(population=4, jumping_rate=0.0, seed=1)
    ode.ask()
    ode.tell([0.5] * 4, [[0.1, 0], [0.2, 0], [0.3, 0], [0.4, 0]])
    opp = ode.ask()
    ode.tell([0.5] * 4, [[0.9, 0], [0.05, 0], [0.35, 0], [0.3, -5]])
    # best 4 by (fitness, auc, -flops): opp0 (0.9), init3 (0.4), opp2 (0.35), then init2 (0.3, 0) before opp3 (0.3, -5)
    assert ode.population_ids == [opp.first_id + 0, 3, opp.first_id + 2, 2]


def test_select_best_orders_ties_by_the_secondary_columns():
    fit = np.array([1.0, 1.0, 1.0, 2.0, 1.0])
    sec = np.array([[0.1, 0.0], [0.3, -9.0], [0.3, -1.0], [0.0, 0.0], [0.1, 0.0]])
    assert select_best(fit, 5, sec).tolist() == [3, 2, 1, 0, 4]
    assert select_best(fit, 5).tolist() == [3, 0, 1, 2, 4]


def test_tie_break_values_survive_a_state_round_trip_and_old_states_load():
    ode = _after_opposition()
    state = json.loads(json.dumps(ode.state_dict()))
    assert state["secondary"] == [[0.5, -100.0]] * 5
    again = ODE.from_state(state)
    a, b = ode.ask(), again.ask()
    assert a.vectors == b.vectors
    old = dict(state)
    del old["secondary"]  # a checkpoint written before tie-breaks existed
    restored = ODE.from_state(old)
    restored.ask()
    restored.tell([0.5] * 5, [[0.0, -1e9]] * 5)  # any tie-break value beats "unknown": the trial wins, as before
    assert restored.population_ids == list(range(b.first_id, b.first_id + 5))
