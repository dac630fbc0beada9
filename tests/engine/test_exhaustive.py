"""The exhaustive strategy: exact enumeration of a space's distinct cells, its ask/tell, its state, and a run of it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.bench_table import read_table
from engine.errors import SessionError
from engine.exhaustive import MAX_CELLS, ExhaustiveSearch, SpaceTooLarge, count_cells, enumerate_cells, seeded_order
from engine.journal import read_journal
from engine.leaderboard import Leaderboard
from engine.profile import load_profile
from engine.rundir import RunDir
from engine.session import Session
from engine.session.setup import make_strategy, restore_strategy, space_of
from engine.space import SearchSpace
from nas3d_tui.cli import main as cli
from tiny_search import TINY

REPO = Path(__file__).resolve().parents[2]
QUICK = SearchSpace(ops=(0, 3, 6, 9, 12), stacks=(2,), modules=(1,), filters=(8,), max_edges=4)
# Two operations, at most three edges: 8 cells (k=1: two graphs x two ops; k=2: the chain x four labellings).
SMALL = SearchSpace(ops=(0, 3), stacks=(1,), modules=(1,), filters=(8,), max_edges=3)
SMALL_SET = ["space.ops=[0,3]", "space.max_edges=3", "search.strategy='exhaustive'", "search.budget=20"]


def test_the_quick_space_has_exactly_250_cells_each_once_each_vector_decoding_to_it():
    cells = enumerate_cells(QUICK)
    assert len(cells) == 250
    keys = [c.key for c in cells]
    assert keys == sorted(set(keys))
    assert all(QUICK.key_of(c.vector) == c.key for c in cells)


def test_every_sampled_feasible_vector_decodes_to_an_enumerated_cell():
    keys = {c.key for c in enumerate_cells(QUICK)}
    rng = np.random.default_rng(3)
    for _ in range(3000):
        key = QUICK.key_of(rng.random(29))
        assert key is None or key in keys


def test_small_space_by_hand_and_repeated_choices_do_not_add_cells():
    assert count_cells(SMALL) == 8
    assert count_cells(SearchSpace(ops=(0, 3, 0), stacks=(1, 1), modules=(1,), filters=(8,), max_edges=3)) == 8
    two_macros = SearchSpace(ops=(0, 3), stacks=(1, 2), modules=(1,), filters=(8,), max_edges=3)
    assert count_cells(two_macros) == 16


def test_a_space_too_large_is_refused_in_one_line_naming_its_size():
    assert count_cells(SearchSpace()) is None
    with pytest.raises(SpaceTooLarge) as info:
        enumerate_cells(SearchSpace())
    assert f"more than {MAX_CELLS:,}" in str(info.value) and "\n" not in str(info.value)
    assert count_cells(QUICK, limit=100) is None
    profile = load_profile("paper", ["search.strategy='exhaustive'"])
    with pytest.raises(SessionError, match=r'search.strategy = "exhaustive": the search space has more than 5,000'):
        make_strategy(profile, space_of(profile))


def test_the_order_is_seeded_and_every_cell_is_proposed_once():
    cells = enumerate_cells(QUICK)
    assert seeded_order(cells, 1) == seeded_order(cells, 1) != seeded_order(cells, 2)
    es = ExhaustiveSearch(QUICK, population=7, seed=1)
    keys = []
    while not es.exhausted:
        batch = es.ask()
        assert batch.phase == "exhaustive" and batch.first_id == len(keys)
        keys += [QUICK.key_of(v) for v in batch.vectors]
        es.tell([float(i) for i in range(len(batch))])
    assert keys == [c.key for c in seeded_order(cells, 1)] and len(set(keys)) == 250
    with pytest.raises(ValueError, match="every cell"):
        es.ask()
    assert len(es.population_ids) == 7


def test_state_round_trips_with_a_pending_batch_and_a_changed_space_is_refused():
    es = ExhaustiveSearch(QUICK, population=5, seed=4)
    es.tell([0.1] * len(es.ask()))
    pending = es.ask()
    state = es.state_dict()
    back = ExhaustiveSearch.from_state(state, space=QUICK)
    assert back.state_dict() == state and back.pending == pending
    back.tell([0.5] * 5)
    es.tell([0.5] * 5)
    assert back.ask() == es.ask()
    restored = restore_strategy(state, QUICK, "checkpoint.json")
    assert isinstance(restored, ExhaustiveSearch)
    other = SearchSpace(ops=(0, 3, 6, 9), stacks=(2,), modules=(1,), filters=(8,), max_edges=4)
    with pytest.raises(ValueError, match="is not the order of the run's space"):
        ExhaustiveSearch.from_state(state, space=other)
    with pytest.raises(ValueError, match="malformed"):
        ExhaustiveSearch.from_state({k: v for k, v in state.items() if k != "population"}, space=QUICK)


def _board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl", strict=True)).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status) for r in rows]


@pytest.fixture(scope="module")
def exhaustive_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("exhaustive") / "run"
    assert Session(load_profile("quick", TINY + SMALL_SET), run_dir).run().state == "finished"
    return run_dir


@pytest.mark.e2e
def test_an_exhaustive_run_trains_every_cell_once_and_ends_with_reason_space(exhaustive_run):
    journal = read_journal(exhaustive_run / "events.jsonl", strict=True)
    done = [e.record for e in journal if isinstance(e, ev.CandidateFinished)]
    assert [r.status for r in done] == ["ok"] * 8
    assert sorted(r.key for r in done) == [c.key for c in enumerate_cells(SMALL)]
    assert isinstance(journal[-1], ev.RunFinished) and journal[-1].reason == "space"
    # each training's best epoch was scored on the test split (the table's test AUC/ACC), in events and files
    assert all(r.test_auc is not None and 0 <= r.test_auc <= 1 and 0 <= r.test_acc <= 1 for r in done)
    assert RunDir(exhaustive_run).read_records()[done[0].candidate_id].test_auc == done[0].test_auc


@pytest.mark.e2e
def test_the_table_of_an_exhaustive_run_carries_each_cells_test_metrics(exhaustive_run, tmp_path):
    table_path = tmp_path / "table.json"
    assert cli(["bench", "table", str(exhaustive_run), "-o", str(table_path)]) == 0
    table = read_table(table_path)
    assert len(table.cells) == 8 and table.header["space_cells"] == 8
    assert table.header["test_metrics"].startswith("test_acc/test_auc of 8 of 8 entries")
    records = RunDir(exhaustive_run).read_records()
    for e in table.entries:
        assert (e.record.test_auc, e.record.test_acc) == (records[e.record.candidate_id].test_auc,
                                                          records[e.record.candidate_id].test_acc)


@pytest.mark.e2e
def test_a_budget_below_the_space_trains_the_first_cells_of_the_order(tmp_path):
    run_dir = tmp_path / "run"
    settings = TINY + SMALL_SET + ["search.budget=3"]
    assert Session(load_profile("quick", settings), run_dir).run().state == "finished"
    done = [e.record for e in read_journal(run_dir / "events.jsonl", strict=True) if isinstance(e, ev.CandidateFinished)]
    want = [c.key for c in seeded_order(enumerate_cells(SMALL), 42)[:3]]
    assert [r.key for r in done if r.status == "ok"] == want


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_an_exhaustive_run_killed_mid_search_resumes_to_the_same_leaderboard(exhaustive_run, tmp_path):
    import signal
    import time

    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run_dir)]
    for s in TINY + SMALL_SET:
        args += ["--set", s]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    journal = run_dir / "events.jsonl"
    end = time.monotonic() + 300
    while time.monotonic() < end and proc.poll() is None:
        if journal.exists() and journal.read_text(errors="replace").count('"candidate_finished"') >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read() if proc.stderr else ''}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([sys.executable, "-m", "nas3d_tui", "resume", str(run_dir), "--headless"], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _board(run_dir) == _board(exhaustive_run)
    events = read_journal(journal, strict=True)
    assert sum(isinstance(e, ev.RunStarted) for e in events) == 2
    assert isinstance(events[-1], ev.RunFinished) and events[-1].reason == "space"


@pytest.mark.e2e
def test_profiles_says_how_many_cells_each_space_has():
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", "profiles"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert "250 cells" in lines["quick"] and f"more than {MAX_CELLS:,} cells" in lines["paper"]


@pytest.mark.e2e
def test_runs_and_report_read_an_exhaustive_run(exhaustive_run, tmp_path):
    import json

    listed = subprocess.run([sys.executable, "-m", "nas3d_tui", "runs", str(exhaustive_run.parent), "--format", "json"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["state"], row["trained"], row["budget"]) == ("finished", 8, 8)  # the budget shown is the space's 8 cells
    report = subprocess.run([sys.executable, "-m", "nas3d_tui", "report", str(exhaustive_run), "-o", str(tmp_path / "r")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "r" / "report.md").exists()
