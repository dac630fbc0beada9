"""The random-search baseline: uniform proposals, the ODE's interface, a resumable state, and a real run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine import events as ev
from engine.random_search import RandomSearch
from engine.rundir import RunDir
from engine.session import Session


def test_batches_are_uniform_vectors_numbered_like_the_odes():
    rs = RandomSearch(population=6, seed=3)
    seen = []
    for g in range(40):
        batch = rs.ask()
        assert batch.phase == "random" and batch.generation == g and len(batch) == 6
        assert batch.first_id == 6 * g
        seen.extend(batch.vectors)
        rs.tell([float(v[0]) for v in batch.vectors])
    x = np.array(seen)
    assert x.shape == (240, 29) and x.min() >= 0 and x.max() <= 1
    assert abs(x.mean() - 0.5) < 0.03 and abs(x.std() - (1 / 12) ** 0.5) < 0.02  # uniform on [0, 1]


def test_keeps_the_best_population_seen_so_far_with_tie_breaks():
    rs = RandomSearch(population=3, seed=0)
    rs.ask()
    rs.tell([0.2, 0.5, 0.5], [[0.1, 0], [0.3, 0], [0.2, 0]])
    rs.ask()
    rs.tell([0.1, 0.6, 0.5], [[0, 0], [0, 0], [0.25, 0]])
    assert rs.population_ids == [4, 1, 5]  # 0.6; then 0.5 with AUC 0.3, 0.5 with 0.25 (beats 0.2)
    assert rs.fitness.tolist() == [0.6, 0.5, 0.5]


@pytest.mark.parametrize("split_at", [0, 1, 3])
def test_a_restored_state_proposes_what_an_uninterrupted_run_would(split_at):
    whole, part = RandomSearch(population=4, seed=9), RandomSearch(population=4, seed=9)
    for rs in (whole, part):
        for _ in range(split_at):
            b = rs.ask()
            rs.tell([sum(v) for v in b.vectors])
    part = RandomSearch.from_state(json.loads(json.dumps(part.state_dict())))
    for _ in range(3):
        a, b = whole.ask(), part.ask()
        assert a == b
        whole.tell([sum(v) for v in a.vectors])
        part.tell([sum(v) for v in b.vectors])


def test_a_corrupt_state_is_refused():
    state = RandomSearch(population=4).state_dict()
    for damage in ({"format": "x"}, {"generation": -1}, {"population": [[2.0] * 29]}, {"rng": {"bit_generator": "MT"}}):
        with pytest.raises(ValueError):
            RandomSearch.from_state({**state, **damage})


@pytest.mark.e2e
def test_a_random_search_session_spends_the_budget_on_trained_candidates_only(tmp_path, tiny_profile):
    run_dir = tmp_path / "random"
    session = Session(tiny_profile("search.strategy='random'"), run_dir)
    got: list[ev.Event] = []
    session.bus.subscribe(got.append)
    assert session.run().state == "finished"
    records = RunDir(run_dir).read_records()
    trained = [r for r in records.values() if r.spent_budget]
    assert len(trained) == 8
    assert {r.phase for r in records.values()} == {"random"}
    assert any(r.status == "infeasible" for r in records.values())  # uniform draws are often infeasible
    gens = [e for e in got if isinstance(e, ev.GenerationFinished)]
    assert gens and [g.generation for g in gens] == list(range(len(gens)))
