"""``benchmarks/search_quality.py --table``: strategies searched against a synthetic table of a whole small space.

The statistics come from a fast path (``FastTable`` / ``fast_run``: vectors decoded by numpy, results from
arrays, one search per seed gives every budget). What makes its numbers trustworthy is that it answers every
proposal exactly as a real session searching through the table evaluator does, pruning included: checked
here proposal by proposal against ``Session`` (and, without pruning, against the plain ``simulate``).
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from engine.bench_table import read_table
from engine.profile import load_profile
from engine.records import TRAINED_STATUSES
from engine.rundir import RunDir
from engine.session import Session
from engine.session.setup import space_of
from tiny_search import TINY

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = pytest.mark.e2e  # sessions through the table and whole simulated searches: seconds each
# A small space (3 operations, at most 4 edges: 75 cells), three epochs a candidate so pruning can act after epoch 1.
SPACE = TINY + ["space.ops=[0,3,6]", "space.max_edges=4", "search.population=4", "training.epochs=3",
                "training.patience=3", "search.pruning_warmup=1"]


def load():
    spec = importlib.util.spec_from_file_location("bench_search_quality", BENCH / "search_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, int]:
    """Every cell of the small space with a made-up training (val AUC per epoch drawn at random, rounded so some tie)."""
    path = tmp_path_factory.mktemp("quality") / "table.json"
    n = load().synthetic_table(load_profile("quick", SPACE), path, seed=0)
    return path, n


def _fast(sq, path):
    profile = load_profile("quick", SPACE)
    return sq.FastTable(read_table(path), space_of(profile), profile.search, profile.training.epochs), profile


def test_the_fast_decoding_is_the_search_key(table):
    sq = load()
    ft, profile = _fast(sq, table[0])
    space = space_of(profile)
    rng = np.random.default_rng(1)
    V = rng.random((3000, 29))
    V[:1000, :21] = np.where(rng.random((1000, 21)) < 0.8, 0.25, 0.75)  # sparse cells: mostly feasible ones
    want = [space.key_of(v) for v in V]
    cells = ft.cells(V)
    assert [None if c < 0 else ft.keys[c] for c in cells] == want
    assert [sq.fast_key_fn(space)(v) for v in V[:300]] == want[:300]  # (the slow reference's own key)


@pytest.mark.parametrize("name", ["ode", "random", "exhaustive"])
def test_the_fast_path_is_simulate_without_pruning(table, name):
    path, n = table
    sq = load()
    ft, profile = _fast(sq, path)
    tab = read_table(path)
    space = space_of(profile)
    _, _, keys = sq._cell_quality(tab, profile.search.tie_break)
    for seed in range(4):
        slow = sq.simulate(name, seed, tab, space, profile.search, n, sq.fast_key_fn(space), 20 * n, keys)
        fast = sq.fast_run(ft, name, seed, n, 20 * n, "none")
        assert [ft.keys[c] if c >= 0 else None for c in fast] == slow, f"{name} seed {seed}"


@pytest.mark.parametrize("name", ["ode", "random", "exhaustive"])
def test_the_fast_path_answers_every_proposal_as_a_session_through_the_table_does_with_pruning(table, tmp_path, name):
    path, n = table
    sq = load()
    ft, profile = _fast(sq, path)
    budget = 14
    pruned = 0
    for seed in (3, 7):
        settings = SPACE + [f"search.strategy='{name}'", f"run.seed={seed}", f"search.budget={budget}",
                            "search.pruning='parent'", "executor.kind='table'", f"executor.table='{path}'"]
        run_dir = tmp_path / f"{name}-{seed}"
        assert Session(load_profile("quick", settings), run_dir).run().state == "finished"
        records = [r for _, r in sorted(RunDir(run_dir).read_records().items())]
        log: list = []
        trail = sq.fast_run(ft, name, seed, budget, 20 * budget, "parent", log=log)
        assert sq.fast_run(ft, name, seed, budget, 20 * budget, "parent") == trail  # (random, exhaustive: first proposals only)
        session = [(r.key, r.told_fitness) for r in records]
        assert [(ft.keys[c] if c >= 0 else None, told) for c, told in log] == session, f"{name} seed {seed}"
        best, session_trail = None, []
        for r in records:
            if r.status in TRAINED_STATUSES:
                if r.ok and (best is None or ft.quality[ft.index[r.key]] > ft.quality[ft.index[best]]):
                    best = r.key
                session_trail.append(best)
        assert [ft.keys[c] if c >= 0 else None for c in trail] == session_trail
        pruned += sum(r.status == "pruned" for r in records)
    assert pruned, "the check means something only where pruning acts"


@pytest.mark.parametrize("pruning, tie", [("none", "val_auc"), ("parent", "val_auc"), ("median", "val_auc"), ("parent", "none")])
def test_the_ode_of_many_seeds_at_once_is_the_ode_of_each_seed(table, pruning, tie):
    """``ode_lockstep`` (the ODE vectorised across seeds, numpy's draws replayed from raw PCG64 outputs) = ``fast_run``."""
    path, n = table
    sq = load()
    profile = load_profile("quick", SPACE + [f"search.tie_break='{tie}'"])
    ft = sq.FastTable(read_table(path), space_of(profile), profile.search, profile.training.epochs)
    seeds = range(12)
    for budget in (n, 9):
        together = sq.ode_lockstep(ft, seeds, budget, 20 * budget, pruning)
        alone = [sq.fast_run(ft, "ode", seed, budget, 20 * budget, pruning) for seed in seeds]
        assert together == alone, f"budget {budget}"
        assert max(len(t) for t in alone) == min(budget, 9) if budget == 9 else max(len(t) for t in alone) > 9


def test_statistics_are_sane_and_the_exhaustive_order_finds_the_best_at_the_full_budget(table):
    path, n = table
    stats = load().table_statistics(str(path), seeds=20, strategies=("ode", "random", "exhaustive"),
                                    pruning=("none", "parent"), processes=2)
    assert stats["cells"] == n and stats["budget"] == n
    for mode in ("none", "parent"):
        per = stats["pruning"][mode]
        full = per["exhaustive"][n - 1]
        if mode == "none":
            assert full["mean_rank"][0] == 1.0 and full["p_top1"][0] == 1.0 and full["regret"][0] == 0.0
            # every seed chose the best cell: the test AUC of the chosen cell is that cell's, for all of them
            assert full["test_auc"][:2] == pytest.approx((stats["optimum_test_auc"],) * 2, abs=1e-12)
        for name, rows in per.items():
            means = [r["mean_rank"][0] for r in rows]
            assert all(a >= b for a, b in zip(means, means[1:])), f"{name}: the best found never gets worse with budget"
            lo, hi = rows[9]["p_top5"][1:]
            assert 0.0 <= lo <= rows[9]["p_top5"][0] <= hi <= 1.0
        assert per["ode"][0]["reached"] == 20


def test_the_script_prints_the_comparison_last(table, capsys):
    path, n = table
    assert load().main(["--table", str(path), "--seeds", "15", "--max-budget", "12", "--processes", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(re.match(r"ode +budget +10 +rank ", line) for line in lines)
    assert any(line.startswith("test AUC of the chosen cell (the best found by validation): the table's test metrics "
                               f"of {n} of {n} cells") for line in lines)
    assert any(re.match(r"random +budget +10 +rank .* test AUC [\d.]+ \[[\d.]+, [\d.]+\] +reached", line) for line in lines)
    assert re.fullmatch(r"wall time [\d.]+ s \(6 x 15 searches to budget 12, 1 process\)", lines[-2])
    assert re.fullmatch(
        r"ode_vs_random_at_budget_10: mean rank ode [\d.]+ \[[\d.]+, [\d.]+\] vs random [\d.]+ \[[\d.]+, [\d.]+\]; "
        r"P\(top5%\) ode .*; test AUC ode [\d.]+ \[[\d.]+, [\d.]+\] vs random [\d.]+ \[[\d.]+, [\d.]+\]; "
        r"rank intervals overlap: (yes|no); with pruning parent: mean rank ode .*; "
        r"rank intervals overlap: (yes|no)", lines[-1])


def test_a_table_without_test_metrics_says_so_and_prints_no_test_auc(tmp_path, capsys):
    path = tmp_path / "untested.json"
    n = load().synthetic_table(load_profile("quick", SPACE), path, seed=3, test_metrics=False)
    assert load().main(["--table", str(path), "--seeds", "5", "--max-budget", "10", "--processes", "1",
                        "--pruning", "none"]) == 0
    out = capsys.readouterr().out
    assert "test AUC of the chosen cell: — (the table has no test metrics: none" in out and f": {n} cells," in out
    assert " test AUC " not in out.splitlines()[-1]
