"""The dashboard model without Textual: replay equals live, panels' data match the journal."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine import events as ev
from engine.journal import read_journal
from engine.leaderboard import Leaderboard
from tui.state import FAILED, FINISHED, PAUSED, RUNNING, STARTING, STOPPING, DashboardState


def test_replayed_journal_equals_live_state(tmp_path: Path, journal, make_run_dir) -> None:
    live = DashboardState()
    for event in journal:
        live.apply(event)
    run_dir = make_run_dir(tmp_path / "run", journal)
    replayed = DashboardState.from_events(read_journal(run_dir / "events.jsonl"))
    assert replayed.snapshot() == live.snapshot()
    assert replayed.revision.keys() == live.revision.keys()


@pytest.mark.parametrize("end", ["finished", "running", "failed"])
def test_state_of_a_prefix_is_the_state_of_that_moment(end: str, make_journal) -> None:
    events = make_journal(end=end)
    state = DashboardState()
    for i, event in enumerate(events):
        state.apply(event)
        if i % 7 == 0:
            assert state.snapshot() == DashboardState.from_events(events[: i + 1]).snapshot()


def test_leaderboard_matches_the_journal(journal) -> None:
    state = DashboardState.from_events(journal)
    finished = [e for e in journal if isinstance(e, ev.CandidateFinished) and e.status == "ok"]
    rows = state.leaderboard.rows()
    ranked = [r for r in rows if r.rank is not None]
    expected = sorted(finished, key=lambda e: (-e.fitness, e.flops, e.candidate_id))
    assert [r.candidate_id for r in ranked] == [e.candidate_id for e in expected]
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    assert rows == Leaderboard.from_events(journal).rows()
    finals = {e.candidate_id for e in journal if isinstance(e, ev.FinalResult)}
    assert {r.candidate_id for r in rows if r.test_auc is not None} == finals
    assert state.best().candidate_id == expected[0].candidate_id


def test_fitness_series_match_generation_events(journal) -> None:
    state = DashboardState.from_events(journal)
    gens = [e for e in journal if isinstance(e, ev.GenerationFinished)]
    assert state.fitness_series() == (
        [e.generation for e in gens],
        [e.best for e in gens],
        [e.mean for e in gens],
        [e.worst for e in gens],
    )
    assert state.jumps == [e.generation for e in journal if isinstance(e, ev.Jump)]
    ok = {e.candidate_id: e for e in journal if isinstance(e, ev.CandidateFinished) and e.status == "ok"}
    points = state.scatter_points()
    assert {p[0] for p in points} == set(ok)
    for cid, flops, params, fitness in points:
        assert (flops, params, fitness) == (ok[cid].flops, ok[cid].params, ok[cid].fitness)


def test_status_follows_the_run(running_journal) -> None:
    state = DashboardState()
    assert state.status == STARTING
    seen = []
    for event in running_journal:
        state.apply(event)
        if isinstance(event, (ev.RunStarted, ev.Paused, ev.Resumed)):
            seen.append(state.status)
    assert seen == [RUNNING, PAUSED, RUNNING]
    assert state.status == RUNNING
    assert list(state.in_flight) == [max(state.candidates)]
    assert state.generation == 2
    assert state.progress_text() == f"{state.trained}/12"
    eta = state.eta_seconds()
    assert eta is not None and eta > 0
    # a user stop shows STOPPING until the run says it finished
    state.request("stop")
    assert state.status == STOPPING
    state.apply(ev.Paused(ts=state.last_ts + 1))
    assert state.status == STOPPING
    state.apply(ev.StateSaved(ts=state.last_ts + 1, path="c", trained=state.trained, generation=2))
    assert state.status == STOPPING
    state.apply(ev.RunFinished(ts=state.last_ts + 1, reason="stopped", trained=state.trained, seconds=10))
    assert state.status == FINISHED and state.finish_reason == "stopped"
    assert state.in_flight == {} and state.eta_seconds() is None
    # a resumed run starts a new segment and runs again
    state.apply(ev.RunStarted(ts=state.last_ts + 1, run_name="quick", run_dir="r", dataset="adrenalmnist3d", size=28,
                              device="cpu", budget=12, population=4, num_classes=2, task="binary-class", resumed=True))
    assert state.status == RUNNING and state.finish_reason is None


def test_pause_request_waits_for_the_engine(running_journal) -> None:
    state = DashboardState.from_events(running_journal)
    state.request("pause")
    assert state.status == RUNNING and state.pending == "pause"
    state.apply(ev.Paused(ts=state.last_ts + 1))
    assert state.status == PAUSED and state.pending is None
    state.request("resume")
    assert state.status == PAUSED and state.pending == "resume"
    state.apply(ev.Resumed(ts=state.last_ts + 5))
    assert state.status == RUNNING and state.pending is None


def test_failure_is_shown_with_its_error(failed_journal) -> None:
    state = DashboardState.from_events(failed_journal)
    assert state.status == FAILED
    assert "illegal memory access" in state.error
    assert state.in_flight == {}
    assert state.log[-1].level == "error"
    other = DashboardState()
    other.fail("could not start: boom")
    assert other.status == FAILED and other.error == "could not start: boom"


def test_candidates_of_every_status(journal) -> None:
    state = DashboardState.from_events(journal)
    statuses = {c.status for c in state.candidates.values()}
    assert {"ok", "infeasible", "duplicate", "oom"} <= statuses
    oom = next(c for c in state.candidates.values() if c.status == "oom")
    assert "out of memory" in oom.error and oom.peak_memory_mb == 24000.0
    dup = next(c for c in state.candidates.values() if c.status == "duplicate")
    assert dup.duplicate_of is not None
    texts = "\n".join(line.text for line in state.log)
    assert "infeasible: input does not reach output" in texts
    assert f"duplicate of #{dup.duplicate_of}" in texts
    assert any(line.level == "warning" and "out of memory" in line.text for line in state.log)
    # per-epoch history (search and final phase) and test metrics reach the candidate
    final_ids = [e.candidate_id for e in journal if isinstance(e, ev.FinalResult)]
    for cid in final_ids:
        cand = state.candidates[cid]
        assert {h.phase for h in cand.history} == {"search", "final"}
        assert cand.finals and cand.finals[0].test_auc == pytest.approx(0.871)


def test_resources_gpu_and_cpu(running_journal, cpu_journal) -> None:
    gpu = DashboardState.from_events(running_journal)
    samples = [e for e in running_journal if isinstance(e, ev.ResourceSample)]
    assert gpu.resource == samples[-1]
    assert list(gpu.memory_history) == [s.gpu_mem_used_mb for s in samples]
    assert gpu.candidate_peak_mb == 420.0
    cpu = DashboardState.from_events(cpu_journal)
    assert cpu.resource.gpu_mem_used_mb is None
    assert list(cpu.memory_history) == [s.rss_mb for s in cpu_journal if isinstance(s, ev.ResourceSample)]


def test_focus_follows_training_then_best(running_journal, journal) -> None:
    running = DashboardState.from_events(running_journal)
    assert running.focus_candidate().candidate_id == max(running.in_flight)
    done = DashboardState.from_events(journal)
    assert done.focus_candidate() is done.best()


def test_unknown_and_partial_events_do_not_break_it() -> None:
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True)
    class Future(ev.Event):
        kind: ClassVar[str] = "from_the_future"

    state = DashboardState()
    state.apply(Future(ts=1.0))
    state.apply(ev.EpochFinished(ts=2.0, candidate_id=99, epoch=1, train_loss=1, val_loss=1, val_acc=0.5, val_auc=0.5, seconds=1))
    state.apply(ev.CandidateFinished.from_fields(dict(ts=3.0, candidate_id=99, generation=0, phase="init", key="k", genotype={},
                                     status="failed", error="boom", fitness=float("nan"))))
    assert state.candidates[99].status == "failed" and state.candidates[99].fitness is None
    assert state.status == STARTING


def test_an_old_journals_checkpoint_saved_line_reads_as_state_saved(tmp_path: Path) -> None:
    """Journals written before the rename say ``checkpoint_saved``: they still read, fold and narrate."""
    from tui.narrate import describe

    old = {"kind": "checkpoint_saved", "ts": 5.0, "path": "runs/quick-0001/checkpoint.json", "trained": 3, "generation": 1}
    event = ev.event_from_dict(old)
    assert isinstance(event, ev.StateSaved) and event.kind == "state_saved"
    assert (event.path, event.trained, event.generation, event.ts) == (old["path"], 3, 1, 5.0)
    journal = tmp_path / "events.jsonl"
    journal.write_text(json.dumps(old) + "\n", encoding="utf-8")
    [read] = read_journal(journal, strict=True)
    assert read == event
    state = DashboardState.from_events([read])
    assert state.search_state == event
    assert describe(event) == ("info", "search state saved: 3 trained, generation 1")
    # new journals write the new kind
    assert ev.event_from_dict(json.loads(json.dumps(event.to_dict()))) == event
    assert event.to_dict()["kind"] == "state_saved"


def test_the_log_keeps_the_last_lines_with_the_words_of_their_events(make_journal) -> None:
    """Lines are described when read, and read as describe() words them; only the last LOG_LINES stay."""
    from tui.narrate import describe, has_line
    from tui.state import LOG_LINES

    events = make_journal(end="finished")
    while sum(has_line(e) for e in events) <= LOG_LINES:  # a history longer than the log keeps
        events = events + [ev.Log(level="info", message=f"note {len(events)}")]
    said = [describe(e) for e in events if has_line(e)]
    assert all(words is not None for words in said)
    assert all(describe(e) is None for e in events if not has_line(e))
    assert {type(e) for e in events if not has_line(e)} <= {ev.EpochFinished, ev.ResourceSample}
    state = DashboardState.from_events(events)
    assert [(line.level, line.text) for line in state.log] == said[-LOG_LINES:]
    assert [line.seq for line in state.log] == list(range(len(said) - LOG_LINES + 1, len(said) + 1))
