"""The runs list as text (``tui.runlist``): what each state, kind and age reads as (pure, no Textual)."""
from __future__ import annotations

from engine.runs import RunInfo
from tui.runlist import COLUMNS, age, cells, progress_text, state_text, table

NOW = 1_800_000_000.0


def run(**fields) -> RunInfo:
    base = dict(path="/runs/a", name="a", kind="search", state="finished", trained=8, budget=8, generation=1,
                best_fitness=0.8123, best_candidate_id=7, started=NOW - 7200, last_event=NOW - 30)
    return RunInfo(**{**base, **fields})


def test_states_progress_and_ages() -> None:
    assert state_text(run(state="running", pid=4321)) == "running (pid 4321)"
    assert state_text(run(state="running", pid=-1)) == "running"  # the lock is held, its PID unknown
    assert progress_text(run(final_done=1, final_total=2)) == "8/8 trained · gen 1 · final 1/2"
    assert progress_text(run(kind="train", generation=None, final_done=2, final_total=3)) == "seeds 2/3"
    assert [age(s) for s in (3, 75, 3725, 2 * 86400 + 4 * 3600)] == ["3s ago", "1m 15s ago", "1h 02m ago",
                                                                      "2d 4h ago"]


def test_a_row_per_run_and_a_damaged_run_says_why() -> None:
    runs = [run(test_auc=0.71, test_auc_std=0.02, test_auc_seeds=3),
            run(name="b", state="damaged", kind="", error="/runs/b/checkpoint.json is corrupt: not JSON"),
            run(name="c", state="failed", error="RuntimeError: boom")]
    assert cells(runs[0], NOW)[COLUMNS.index("TEST AUC")] == "0.7100 ± 0.0200"
    assert cells(runs[0], NOW)[COLUMNS.index("BEST")] == "0.8123 #7"
    lines = table(runs, NOW).splitlines()
    assert len(lines) == 1 + len(runs)
    assert lines[2].split()[:3] == ["b", "?", "damaged"] and lines[2].endswith("not JSON")
    assert lines[3].endswith("(RuntimeError: boom)")
    # the damaged run's long message does not widen the PROGRESS column of the others
    assert lines[1].index("0.8123") < 60


def test_a_run_driven_on_another_host_and_a_stale_one() -> None:
    remote = run(state="running", pid=4321, host="node7", seen=NOW - 3)
    assert state_text(remote, NOW) == "running on node7 (pid 4321, seen 3s ago)"
    stale = run(name="s", state="stale", pid=4321, host="node7", seen=NOW - 300)
    assert state_text(stale, NOW) == "stale — last seen on node7 5m 00s ago"
    assert cells(stale, NOW)[COLUMNS.index("STATE")] == state_text(stale, NOW)
    lines = table([remote, stale], NOW, resume_command=lambda path: f"nas3d-tui resume {path}").splitlines()
    assert "running on node7" in lines[1] and "resume" not in lines[1]
    assert lines[2].endswith("(presumed dead: continue it with nas3d-tui resume /runs/a)")
