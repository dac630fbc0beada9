"""Tabular benchmarks: a table from a run (``nas3d-tui bench table``), its checked reader, and a search replayed through it."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.bench_table import FORMAT, TableError, random_expectation, read_table
from engine.journal import read_journal
from engine.leaderboard import Leaderboard
from engine.profile import load_profile
from engine.rundir import RunDir
from engine.session import Session
from nas3d_tui.cli import main as cli
from tiny_search import TINY

# Three epochs, parent pruning after the first: the live run prunes, and the replay must prune the same trainings.
LIVE = TINY + ["training.epochs=3", "training.patience=1", "search.pruning='parent'", "search.pruning_warmup=1",
               "search.budget=10"]


def _proposals(run_dir: Path) -> list[tuple]:
    records = RunDir(run_dir).read_records()
    return [(cid, r.phase, r.generation, r.vector, r.key, r.status, r.duplicate_of) for cid, r in sorted(records.items())]


def _board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl", strict=True)).rows(
        include_duplicates=True, include_infeasible=True)
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status, r.val_auc) for r in rows]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("table")
    run_dir = base / "live"
    assert Session(load_profile("quick", LIVE), run_dir).run().state == "finished"
    table = base / "table.json"
    assert cli(["bench", "table", str(run_dir), "-o", str(table)]) == 0
    return run_dir, table


@pytest.mark.e2e
def test_the_table_holds_every_trained_candidate_with_its_epochs_seed_and_header(live):
    run_dir, path = live
    table = read_table(path)
    records = RunDir(run_dir).read_records()
    trained = {cid: r for cid, r in records.items() if r.status in ("ok", "pruned", "oom", "failed")}
    assert sorted(e.record.candidate_id for e in table.entries) == sorted(trained)
    assert any(e.record.status == "pruned" for e in table.entries), "the live run should prune something"
    for e in table.entries:
        r = trained[e.record.candidate_id]
        assert (e.record.key, e.record.fitness, e.record.history, e.record.params, e.record.flops) == (
            r.key, r.fitness, r.history, r.params, r.flops)
    raw = json.loads(path.read_text())
    assert raw["format"] == FORMAT and raw["version"] == 1
    h = raw["header"]
    assert h["command"].startswith("nas3d-tui bench table") and h["profile"]["search"]["strategy"] == "ode"
    assert h["machine"]["cpus"] >= 1 and h["created"].endswith("Z") and "no weights" in h["test_metrics"]
    entry = raw["entries"][0]
    assert {"compact", "seed", "told_fitness", "history", "params", "flops", "candidate_id"} <= set(entry)
    # an ODE run scores nothing on the test split: its files have no test fields at all (as before they existed)
    assert "test_auc" not in entry and "test_acc" not in entry
    assert all("test_auc" not in json.loads(f.read_text()) for f in (run_dir / "candidates").glob("*.json"))


@pytest.mark.e2e
def test_a_search_through_the_table_replays_the_live_run_exactly(live, tmp_path):
    run_dir, table = live
    replay_dir = tmp_path / "replay"
    settings = LIVE + ["executor.kind='table'", f"executor.table='{table}'"]
    assert Session(load_profile("quick", settings), replay_dir).run().state == "finished"
    assert _proposals(replay_dir) == _proposals(run_dir)
    replayed = RunDir(replay_dir).read_records().values()
    assert {r.worker for r in replayed if r.status in ("ok", "pruned")} == {"table"}  # looked up, not trained
    assert _board(replay_dir) == _board(run_dir)
    pruned = [e.record.candidate_id for e in read_journal(replay_dir / "events.jsonl")
              if isinstance(e, ev.CandidateFinished) and e.record.status == "pruned"]
    assert pruned


@pytest.mark.e2e
def test_lookup_returns_the_seed_asked_for_else_the_first_training_of_the_cell(live):
    _, path = live
    table = read_table(path)
    e = table.entries[0]
    assert table.lookup(e.key, e.seed) is e
    assert table.lookup(e.key, 123456789) is table.cells[e.key][0]
    assert table.lookup("no-such-cell", 1) is None


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(version=2), "version = 2"),
        (lambda d: d.update(format="x"), "format"),
        (lambda d: d["header"].pop("machine"), "header: field 'machine' is missing"),
        (lambda d: d["entries"][0].update(seed="1"), "entries[0]: seed"),
        (lambda d: d["entries"][0].update(fitness=2.0), "entries[0] is corrupt: fitness"),
        (lambda d: d["entries"][0]["history"][0].update(val_auc="x"), "entries[0] is corrupt: history[0].val_auc"),
            (lambda d: d["entries"][0]["history"][0].update(epoch=3), "entries[0].history[0]: epoch = 3 is not 1"),
        (lambda d: d["entries"][0].update(told_fitness=0.123), "entries[0]: told_fitness"),
    ],
)
@pytest.mark.e2e
def test_a_bad_table_is_one_line_naming_the_field(live, tmp_path, edit, message):
    _, path = live
    data = json.loads(path.read_text())
    edit(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(TableError) as info:
        read_table(bad)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.e2e
def test_the_command_and_the_table_executor_refuse_bad_input_with_exit_2(live, tmp_path, capfd):
    run_dir, table = live
    assert cli(["bench", "table", str(tmp_path / "nope"), "-o", str(tmp_path / "t.json")]) == 2
    assert cli(["bench", "table", str(run_dir), "-o", str(tmp_path / "t.json")]) == 0  # a finished run
    other = LIVE + ["training.epochs=2", "executor.kind='table'", f"executor.table='{table}'"]
    with pytest.raises(TableError, match=r"built with training.epochs = 3; the profile has 2"):
        Session(load_profile("quick", other), tmp_path / "r").run()
    assert not (tmp_path / "r").exists()
    missing = LIVE + ["executor.kind='table'", f"executor.table='{tmp_path / 'none.json'}'"]
    with pytest.raises(TableError, match="no table file at"):
        Session(load_profile("quick", missing), tmp_path / "r2").run()
    err = capfd.readouterr().err
    assert "no run directory" in err


@pytest.mark.e2e
def test_an_entry_trained_again_with_its_seed_is_the_tables_training(live):
    from engine.table_training import TableProtocol

    _, path = live
    table = read_table(path)
    protocol = TableProtocol.of(table, str(path))
    entry = next(e for e in table.entries if e.record.ok)
    r = protocol.train(entry)
    assert (r.status, r.fitness, r.epochs) == (entry.record.status, entry.record.fitness, entry.record.epochs)
    assert [h["val_loss"] for h in r.history] == [h["val_loss"] for h in entry.record.history]
    assert r.test_auc is not None  # a retraining scores its best epoch on the test split


@pytest.mark.e2e
def test_table_noise_trains_the_best_cells_again_and_adds_them_as_other_seeds(live, tmp_path, capsys):
    import importlib.util

    from engine.bench_table import add_entries

    _, path = live
    copy = tmp_path / "table.json"
    copy.write_bytes(path.read_bytes())
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "table_noise.py"
    spec = importlib.util.spec_from_file_location("table_noise", bench)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(copy), "--top", "3", "--add"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("table_noise: top 3, fitness |diff| mean ") and "spearman" in lines[-1]
    before, after = read_table(path), read_table(copy)
    assert len(after.entries) == len(before.entries) + 3
    assert "the best 3 cells trained again" in after.header["extra_trainings"][0]
    extra = [e for e in after.entries if e.record.worker == "table_noise"]
    for e in extra:
        first = after.cells[e.key][0]
        assert first.record.candidate_id < e.record.candidate_id and e.seed != first.seed
        assert after.lookup(e.key, e.seed) is not None and after.lookup(e.key, e.seed).record.worker == "table_noise"
        assert after.lookup(e.key, first.seed).record.candidate_id == first.record.candidate_id  # the run's own
    with pytest.raises(TableError, match="already in the table"):
        add_entries(after, [(extra[0].record, extra[0].seed)], "again")


# -- the random-search expectation (pure) ---------------------------------------------------

def _brute_force(values: list[float]) -> list[float]:
    """The mean best over every subset of each size: the definition, enumerated."""
    n = len(values)
    return [math.fsum(max(c) for c in itertools.combinations(values, b)) / math.comb(n, b) for b in range(1, n + 1)]


@pytest.mark.parametrize("n", range(1, 11))
def test_random_expectation_is_the_mean_best_over_every_subset(n):
    rng = np.random.default_rng(n)
    for values in (rng.random(n).tolist(), (rng.integers(0, 4, n) / 4).tolist()):  # the second with ties
        got = random_expectation(values)
        assert len(got) == n
        for g, want in zip(got, _brute_force(values), strict=True):
            assert abs(g - want) <= 1e-12, (values, got)
        assert random_expectation(values[::-1]) == got  # order does not matter


def test_random_expectation_agrees_with_sampling_without_replacement():
    rng = np.random.default_rng(29)
    values = rng.beta(5, 2, 60)
    expected = random_expectation(values.tolist())
    draws = 20_000
    for b in (1, 2, 5, 20, 59):
        best = np.array([values[rng.choice(60, b, replace=False)].max() for _ in range(draws)])
        margin = 5 * best.std(ddof=1) / math.sqrt(draws) + 1e-9
        assert abs(best.mean() - expected[b - 1]) <= margin, (b, best.mean(), expected[b - 1])


def test_random_expectation_rises_from_the_mean_to_the_best_and_stays_finite_at_5000_cells():
    rng = np.random.default_rng(5)
    values = rng.random(5000).tolist()
    got = random_expectation(values)
    assert got[0] == pytest.approx(math.fsum(values) / 5000, abs=1e-12)
    assert got[-1] == max(values)
    assert all(np.isfinite(got)) and all(b >= a - 1e-15 for a, b in zip(got, got[1:]))
    assert random_expectation([]) == [] and random_expectation([0.5]) == [0.5]
