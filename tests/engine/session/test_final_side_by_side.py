"""The final phase's retrainings side by side on the CPU (engine.session.final.side_by_side / run_side_by_side).

What must hold: the rule depends on the whole phase, never on what is left
(a resume trains with the thread count an uninterrupted run used); results
come out in the order one-after-the-other gives them; finished work is never
dropped; and a retraining's weights are bit for bit those of the same
retraining run alone with the same thread count, before and after a stop and
a resume.
"""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import torch

from engine import events as ev
from engine.control import Control
from engine.errors import StopRequested
from engine.profile import load_profile
from engine.records import CandidateRecord
from engine.rundir import RunDir
from engine.session.context import RunContext
from engine.session.final import FinalPhase, run_side_by_side, side_by_side
from engine.session.setup import load_data
from engine.space import Genotype
from tests.tiny_search import TINY, small_dataset

GENOTYPE = Genotype.from_compact("S1M1F8 6 01 12")


@pytest.fixture
def torch_threads():
    """Put torch's thread count back as it was (tests here change it)."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def _profile(*extra: str):
    return load_profile("quick", TINY + ["final.top_k=1", "final.epochs=2", "final.seeds=[0, 1]", *extra])


# ---------------------------------------------------------------- the rule


def test_on_the_cpu_two_retrainings_share_the_threads_by_default():
    p = _profile()
    assert side_by_side(p, "cpu", 2, 2) == (2, 1)
    assert side_by_side(p, "cpu", 6, 8) == (2, 4)
    assert side_by_side(p, "cpu", 2, 1) == (1, 1)  # one thread: nothing to share
    assert side_by_side(p, "cpu", 1, 2) == (1, 2)  # one retraining: it keeps every thread


def test_cuda_retrains_one_at_a_time_and_an_explicit_count_is_kept():
    assert side_by_side(_profile(), "cuda:0", 4, 16) == (1, 16)
    assert side_by_side(_profile("final.parallel=2"), "cuda", 4, 16) == (1, 16)
    assert side_by_side(_profile("final.parallel=1"), "cpu", 4, 16) == (1, 16)
    assert side_by_side(_profile("final.parallel=3"), "cpu", 9, 16) == (3, 5)
    assert side_by_side(_profile("final.parallel=3"), "cpu", 2, 16) == (2, 8)  # never more than the phase has
    assert side_by_side(_profile("final.parallel=4"), "cpu", 4, 2) == (4, 1)


def test_a_bad_parallel_is_one_line():
    from engine.profile.resolve import ProfileError

    with pytest.raises(ProfileError, match="final.parallel"):
        _profile("final.parallel=-1")


# ---------------------------------------------------------------- the runner


def test_results_come_out_in_job_order_whatever_order_the_jobs_finish_in(torch_threads):
    second_done = threading.Event()
    seen_threads: list[int] = []

    def first():
        assert second_done.wait(30)  # job 1 finishes before job 0
        seen_threads.append(torch.get_num_threads())
        return "a"

    def second():
        seen_threads.append(torch.get_num_threads())
        second_done.set()
        return "b"

    out: list[tuple[int, str]] = []
    run_side_by_side([first, second, lambda: "c"], 2, 1, lambda i, r: out.append((i, r)))
    assert out == [(0, "a"), (1, "b"), (2, "c")]
    assert seen_threads == [1, 1]  # each job's thread has its share
    assert torch.get_num_threads() == torch_threads  # the caller's count is as it was


def test_after_a_failure_finished_work_is_still_handed_over_and_the_error_raised(torch_threads):
    failed, running = threading.Event(), threading.Event()

    def boom():
        assert running.wait(30)  # fails while job 1 runs
        failed.set()
        raise RuntimeError("boom")

    def slow_ok():
        running.set()
        assert failed.wait(30)  # finishes after the failure
        return "kept"

    started: list[int] = []

    def never():
        started.append(1)
        return "x"

    out: list[tuple[int, str]] = []
    with pytest.raises(RuntimeError, match="boom"):
        run_side_by_side([boom, slow_ok, never], 2, 1, lambda i, r: out.append((i, r)))
    assert out == [(1, "kept")]
    assert started == []  # no job starts after a failure


def test_a_stop_wins_over_another_error(torch_threads):
    stopped, running = threading.Event(), threading.Event()

    def stop():
        assert running.wait(30)
        stopped.set()
        raise StopRequested()

    def fail():
        running.set()
        assert stopped.wait(30)
        raise ValueError("later")

    with pytest.raises(StopRequested):
        run_side_by_side([stop, fail], 2, 1, lambda i, r: None)


# ---------------------------------------------------------------- real retrainings


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _final(tmp_path: Path, name: str, *extra: str, control: Control | None = None, done=frozenset()):
    profile = _profile(f"data.path='{tmp_path / 'small.npz'}'", *extra)
    rd = RunDir(tmp_path / name)
    rd = rd if rd.path.exists() else rd.create()
    published: list[ev.Event] = []
    ctx = RunContext(profile, rd, published.append, control or Control(), "cpu")
    record = CandidateRecord(candidate_id=3, generation=0, phase="init", status="ok", key=GENOTYPE.key,
                             fitness=0.5, trained=1, genotype=GENOTYPE.to_dict(), params=1, flops=1)
    phase = FinalPhase(ctx, {3: record}, load_data(profile, "cpu"), set(done))
    return phase, published, rd


def _results(rd: RunDir) -> dict[int, tuple[str, float, float]]:
    out = {}
    for seed in (0, 1):
        result = ev.final_result_from_dict(
            json.loads(rd.finalist_result_path(3, seed).read_text()), "result.json")
        weights = Path(result.weights_path)
        out[seed] = (_digest(weights), result.test_auc, result.val_acc)
    return out


@pytest.mark.e2e
def test_side_by_side_equals_one_after_the_other_with_the_same_threads(tmp_path, torch_threads):
    small_dataset(tmp_path / "small.npz")
    phase, published, rd = _final(tmp_path, "side", "final.parallel=2")
    at_once, each = side_by_side(phase.profile, "cpu", 2, torch.get_num_threads())
    assert at_once == 2
    phase.run()
    assert torch.get_num_threads() == torch_threads
    finals = [(e.candidate_id, e.seed) for e in published if isinstance(e, ev.FinalResult)]
    assert finals == [(3, 0), (3, 1)]  # in seed order, whichever finished first
    epochs = [e for e in published if isinstance(e, ev.EpochFinished)]
    assert sorted((e.seed, e.epoch) for e in epochs) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert all(e.phase == "final" and "seed" in e.to_dict() for e in epochs)

    torch.set_num_threads(each)
    alone, _, rd_alone = _final(tmp_path, "alone", "final.parallel=1")
    alone.run()
    assert _results(rd) == _results(rd_alone)


@pytest.mark.e2e
def test_a_side_by_side_phase_stopped_and_resumed_gives_the_uninterrupted_results(tmp_path, torch_threads):
    small_dataset(tmp_path / "small.npz")
    whole, _, rd_whole = _final(tmp_path, "whole", "final.parallel=2", "final.epochs=3")
    whole.run()

    control = Control()
    phase, published, rd = _final(tmp_path, "cut", "final.parallel=2", "final.epochs=3", control=control)

    def stop_at_first_epoch(event: ev.Event) -> None:
        published.append(event)
        if isinstance(event, ev.EpochFinished):
            control.stop()

    phase.publish = stop_at_first_epoch
    phase.ctx = RunContext(phase.profile, rd, stop_at_first_epoch, control, "cpu")
    with pytest.raises(StopRequested):
        phase.run()
    assert torch.get_num_threads() == torch_threads
    assert not any(isinstance(e, ev.FinalResult) for e in published)
    assert any(rd.finalist_dir(3, seed).joinpath("training.ckpt").exists() for seed in (0, 1))

    again, published_again, _ = _final(tmp_path, "cut", "final.parallel=2", "final.epochs=3")
    again.run()
    assert any(isinstance(e, ev.TrainingResumed) for e in published_again)
    assert _results(rd) == _results(rd_whole)
