"""The shipped tabular benchmark (``quick-adrenalmnist3d``): its schema, its coverage of the space, and cells retrained.

The table was built by an exhaustive run of the ``quick`` space on the bundled
AdrenalMNIST3D (docs/RESULTS.md says how, on which machine and how long); this
checks it is what its header says and what training gives: two cells trained
again here with their own seeds and the table's protocol must give the table's
epochs and test metrics. On the machine that built it they are bitwise the
same; another CPU's floating point may move them a little, hence the tolerance.
"""
from __future__ import annotations

import pytest

from engine.bench_table import SHIPPED_TABLES, check_protocol, read_table, shipped_table_path, table_seed
from engine.exhaustive import enumerate_cells
from engine.profile import load_profile
from engine.records import selection_key
from engine.session.setup import space_of

NAME = "quick-adrenalmnist3d"
EXHAUSTIVE = ["search.strategy='exhaustive'", "search.budget=250", "search.pruning='none'", "final.top_k=0",
              "run.device='cpu'"]


@pytest.fixture(scope="module")
def table():
    assert NAME in SHIPPED_TABLES and shipped_table_path(NAME).is_file()
    return read_table(NAME)  # every field checked (engine.bench_table.table_from_dict)


def test_the_shipped_table_holds_every_cell_of_the_quick_space_once_with_test_metrics(table):
    profile = load_profile("quick", EXHAUSTIVE)
    check_protocol(table, profile.to_dict(), NAME)  # the quick protocol: data, subset, training, fitness
    h = table.header
    assert h["strategy"] == "exhaustive" and h["seed"] == profile.run.seed
    assert h["command"].startswith("nas3d-tui bench table") and h["machine"]["cpus"] >= 1
    cells = enumerate_cells(space_of(profile))
    assert h["space_cells"] == h["cells"] == len(cells) == len(table.cells) == 250
    assert set(table.cells) == {c.key for c in cells}
    run_ids = [es[0].record.candidate_id for es in table.cells.values()]
    assert sorted(run_ids) == list(range(250))  # each cell's first entry is the run's one training of it
    for key, entries in table.cells.items():
        first = entries[0]
        assert first.seed == table_seed(h["seed"], first.record.candidate_id)
        assert first.record.status == "ok" and first.record.epochs >= 1
        assert first.record.test_auc is not None and 0.0 <= first.record.test_auc <= 1.0
        assert first.record.test_acc is not None and 0.0 <= first.record.test_acc <= 1.0
        for extra in entries[1:]:  # second trainings (benchmarks/table_noise.py --add): other seeds
            assert extra.seed != first.seed and extra.record.candidate_id >= 250
    assert h["test_metrics"].startswith(f"test_acc/test_auc of {len(table.entries)} of {len(table.entries)} entries")


def _retrain_pick(table) -> list:
    """The table's best cell and its median cell (by the search's ranking of the first trainings)."""
    firsts = sorted((es[0] for es in table.cells.values()),
                    key=lambda e: selection_key(e.record.fitness, e.record.val_auc, e.record.flops, "val_auc"),
                    reverse=True)
    return [firsts[0], firsts[len(firsts) // 2]]


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_two_cells_trained_again_with_their_seeds_give_the_tables_results(table):
    from engine.table_training import TableProtocol

    protocol = TableProtocol.of(table, NAME)
    for entry in _retrain_pick(table):
        r = protocol.train(entry)
        t = entry.record
        assert (r.status, r.epochs) == (t.status, t.epochs), t.genotype["compact"]
        for got, want in zip(r.history, t.history):
            for name in ("train_loss", "val_loss"):
                assert got[name] == pytest.approx(want[name], rel=1e-3, abs=1e-4), (t.genotype["compact"], name)
            for name in ("val_acc", "val_auc"):
                assert got[name] == pytest.approx(want[name], abs=0.02), (t.genotype["compact"], name)
        assert r.fitness == pytest.approx(t.fitness, abs=0.02)
        assert r.test_auc == pytest.approx(t.test_auc, abs=0.02) and r.test_acc == pytest.approx(t.test_acc, abs=0.02)
