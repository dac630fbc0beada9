"""``benchmarks/search_quality.py --table``: strategies searched against a synthetic table of a whole small space."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from engine.bench_table import build_table, write_table
from engine.exhaustive import enumerate_cells
from engine.profile import load_profile
from engine.records import CandidateRecord
from engine.session.setup import space_of

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SPACE = ["space.ops=[0,3,6]", "space.stacks=[1]", "space.modules=[1]", "space.filters=[8]", "space.max_edges=4",
         "search.population=4", "search.fitness='val_auc'"]


def load():
    spec = importlib.util.spec_from_file_location("bench_search_quality", BENCH / "search_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[Path, int]:
    """Every cell of a small space with a made-up one-epoch training (val AUC drawn at random)."""
    profile = load_profile("quick", SPACE)
    space = space_of(profile)
    cells = enumerate_cells(space)
    rng = np.random.default_rng(0)
    records = {}
    for i, cell in enumerate(cells):
        auc = float(rng.uniform(0.5, 0.9))
        g = space.decode(cell.vector)
        h = {"epoch": 1, "train_loss": 0.6, "val_loss": 0.6, "val_acc": 0.7, "val_auc": auc, "seconds": 1.0}
        records[i] = CandidateRecord(i, i // 4, "exhaustive", "ok", key=cell.key, genotype=g.to_dict(),
                                     vector=list(cell.vector), fitness=auc, val_acc=0.7, val_auc=auc, params=100 + i,
                                     flops=1000 + i, epochs=1, seconds=1.0, history=[h], trained=i + 1)
    path = tmp_path_factory.mktemp("quality") / "table.json"
    write_table(build_table(profile.to_dict(), records, command="test", run_dir="-", space_cells=len(cells)), path)
    return path, len(cells)


def test_the_fast_key_is_the_search_key():
    sq = load()
    space = space_of(load_profile("quick", SPACE))
    key = sq.fast_key_fn(space)
    rng = np.random.default_rng(1)
    for _ in range(2000):
        v = rng.random(29)
        assert key(v) == space.key_of(v)


def test_statistics_are_sane_and_the_exhaustive_order_finds_the_best_at_the_full_budget(table):
    path, n = table
    stats = load().table_statistics(str(path), seeds=20, strategies=("ode", "random", "exhaustive"))
    assert stats["cells"] == n and stats["budget"] == n
    full = stats["strategies"]["exhaustive"][n - 1]
    assert full["mean_rank"][0] == 1.0 and full["p_top1"][0] == 1.0 and full["regret"][0] == 0.0
    for name, rows in stats["strategies"].items():
        means = [r["mean_rank"][0] for r in rows]
        assert all(a >= b for a, b in zip(means, means[1:])), f"{name}: the best found never gets worse with budget"
        lo, hi = rows[9]["p_top5"][1:]
        assert 0.0 <= lo <= rows[9]["p_top5"][0] <= hi <= 1.0
    assert stats["strategies"]["ode"][0]["reached"] == 20


def test_the_script_prints_the_comparison_last(table, capsys):
    path, n = table
    assert load().main(["--table", str(path), "--seeds", "15", "--max-budget", "12"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(re.match(r"ode +budget +10 +rank ", line) for line in lines)
    assert re.fullmatch(
        r"ode_vs_random_at_budget_10: mean rank ode [\d.]+ \[[\d.]+, [\d.]+\] vs random [\d.]+ \[[\d.]+, [\d.]+\]; "
        r"P\(top5%\) ode .*; rank intervals overlap: (yes|no)", lines[-1])
