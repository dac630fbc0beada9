"""Pruning: trainings that can no longer win stop early, and nothing else about the search changes.

* the rules on crafted learning curves: the epoch a trial is pruned at, never
  before the warm-up, never at its last epoch, carried-forward parents,
  the median of earlier candidates;
* the trainer applies a rule at the end of an epoch, and a training stopped
  and resumed from its per-epoch checkpoint prunes exactly as an
  uninterrupted one;
* a pruned candidate is its own status: it spends budget, loses its
  selection, is never a finalist, and shows in the journal, leaderboard,
  export and report;
* a real tiny search killed (SIGKILL) during a pruned training resumes to
  the leaderboard of an uninterrupted run;
* the final retraining breaks ties in validation ACC by validation AUC.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from engine import events as ev
from engine.control import Control, StopRequested
from engine.data import Dataset, Split
from engine.journal import read_journal
from engine.leaderboard import Leaderboard, export
from engine.profile import TrainingConfig, load_profile
from engine.pruning import PruneRule, best_curve, median_rule, parent_rule, prune_epoch
from engine.records import CandidateRecord
from engine.errors import CorruptFileError
from engine.session import Session
from engine.session.final import finalists
from engine.training import final_train, train_candidate
from tiny_search import TINY

REPO = Path(__file__).resolve().parents[2]


def h(*values: float, metric: str = "val_auc") -> list[dict]:
    return [{"epoch": i + 1, metric: v} for i, v in enumerate(values)]


# -- the rules ---------------------------------------------------------------------------------


def test_a_trial_below_its_parents_curve_is_pruned_at_the_first_epoch_after_the_warmup():
    parent = h(0.60, 0.70, 0.80, 0.80, 0.85)
    trial = h(0.50, 0.55, 0.60, 0.90, 0.90)  # would have won at epoch 4: the price of pruning
    for warmup, expected in ((1, 1), (2, 2), (3, 3), (4, None)):
        rule = parent_rule(parent, "val_auc", 5, warmup=warmup, margin=0.0, parent_id=7)
        assert prune_epoch(trial, "val_auc", rule, 5) == expected, warmup
    rule = parent_rule(parent, "val_auc", 5, warmup=1, margin=0.0, parent_id=7)
    assert rule.reference == "parent #7" and rule.bars == pytest.approx((0.60, 0.70, 0.80, 0.80, 0.85))


def test_the_margin_lets_a_close_trial_go_on_and_a_trial_level_with_its_parent_is_never_pruned():
    parent = h(0.60, 0.70, 0.80)
    rule = parent_rule(parent, "val_auc", 5, warmup=1, margin=0.25)
    assert prune_epoch(h(0.50, 0.55, 0.60, 0.6, 0.6), "val_auc", rule, 5) is None  # within 0.25 everywhere
    exact = parent_rule(parent, "val_auc", 5, warmup=1, margin=0.0)
    assert prune_epoch(h(0.60, 0.70, 0.80, 0.80, 0.80), "val_auc", exact, 5) is None


def test_an_early_stopped_parent_is_carried_forward_and_the_last_epoch_is_never_a_pruning_point():
    parent = h(0.5, 0.9, 0.7)  # stopped early after 3 epochs; its best 0.9 stands for epochs 4 and 5
    rule = parent_rule(parent, "val_auc", 5, warmup=1, margin=0.0)
    assert rule.bars == pytest.approx((0.5, 0.9, 0.9, 0.9, 0.9))
    late = h(0.6, 0.95, 0.95, 0.95, 0.85)
    assert prune_epoch(late, "val_auc", rule, 5) is None
    below_only_at_the_end = h(0.6, 0.95, 0.95, 0.95, 0.95)
    assert prune_epoch(below_only_at_the_end, "val_auc", PruneRule((0.0, 0.0, 0.0, 0.0, 1.0)), 5) is None
    # a history cut by early stopping is not pruned at its last epoch either
    assert prune_epoch(h(0.6, 0.6), "val_auc", PruneRule((0.0, 0.9, 0.9)), 3, stopped_early=True) is None


def test_the_running_best_is_what_is_compared_and_undefined_values_never_prune():
    assert best_curve(h(0.4, float("nan"), 0.3, 0.6), "val_auc") == [0.4, 0.4, 0.4, 0.6]
    assert best_curve(h(float("nan"), 0.5), "val_auc") == [None, 0.5]
    rule = PruneRule((0.9, 0.9, 0.9), warmup=1)
    assert not rule.prunes(1, None) and not rule.prunes(1, float("nan")) and rule.prunes(1, 0.5)
    assert not PruneRule((None, 0.9), warmup=1).prunes(1, 0.1)


def test_a_parent_that_never_had_a_value_gives_no_rule():
    assert parent_rule(h(float("nan"), float("nan")), "val_auc", 4, warmup=1, margin=0.0) is None
    assert parent_rule([], "val_auc", 4, warmup=1, margin=0.0) is None


def test_the_median_rule_needs_enough_earlier_candidates_and_does_not_carry_pruned_ones_forward():
    refs = [(h(0.5, 0.6), True), (h(0.7, 0.8), True)]
    assert median_rule(refs, "val_auc", 3, warmup=1, margin=0.0) is None  # fewer than MIN_REFERENCE
    refs.append((h(0.9), False))  # pruned after one epoch: a value at epoch 1 only
    rule = median_rule(refs, "val_auc", 3, warmup=1, margin=0.0)
    # epoch 1: median of 0.5, 0.7, 0.9; epoch 2: only two values (the pruned one stopped) -> no bar
    assert rule.bars[0] == pytest.approx(0.7) and rule.bars[1] is None and rule.bars[2] is None
    refs.append((h(0.2, 0.3, 0.4), True))
    rule = median_rule(refs, "val_auc", 3, warmup=1, margin=0.05)
    assert rule.bars == pytest.approx((0.6 - 0.05, 0.6 - 0.05, 0.6 - 0.05))
    assert rule.reference == "median of 4"


# -- the trainer --------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))


def tiny_fn(genotype, in_channels=1, num_classes=2):
    return Tiny(in_channels, num_classes)


def synthetic(n_train=16, n_val=8, n_test=8, size=6, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def split(n):
        return Split(x=torch.rand(n, 1, size, size, size, generator=g), y=(torch.arange(n) % 2).long())

    return Dataset(flag="adrenalmnist3d", size=size, task="binary-class", num_classes=2, path="<synthetic>",
                   train=split(n_train), val=split(n_val), test=split(n_test))


FAST = TrainingConfig(epochs=5, patience=0, batch_size=4, channels_last=False)
ALWAYS = PruneRule((2.0,) * 5, warmup=3, reference="bar above any AUC")  # a metric never reaches 2.0
NEVER = PruneRule((-1.0,) * 5, warmup=1, reference="bar below any AUC")


@pytest.mark.e2e
def test_the_trainer_stops_a_training_below_its_bar_at_the_warmup_epoch_and_not_before():
    seen: list[int] = []
    result = train_candidate(None, synthetic(), FAST, fitness="val_auc", model_fn=tiny_fn, prune=ALWAYS,
                             on_epoch=lambda r: seen.append(r["epoch"]))
    assert result.status == "pruned" and result.pruned_at == 3 and result.epochs == 3 and seen == [1, 2, 3]
    assert result.fitness == max(r["val_auc"] for r in result.history)
    assert result.error.startswith("pruned at epoch 3: best val_auc") and "bar above any AUC" in result.error
    whole = train_candidate(None, synthetic(), FAST, fitness="val_auc", model_fn=tiny_fn, prune=NEVER)
    assert whole.status == "ok" and whole.pruned_at is None and whole.epochs == 5
    # pruning changes nothing about the epochs it lets run
    assert [r["val_loss"] for r in result.history] == [r["val_loss"] for r in whole.history[:3]]


@pytest.mark.e2e
def test_a_pruned_training_stopped_and_resumed_from_its_checkpoint_prunes_as_an_uninterrupted_one(tmp_path):
    config = replace(FAST, checkpoint_after_seconds=0.0)
    whole = train_candidate(None, synthetic(), config, fitness="val_auc", model_fn=tiny_fn, prune=ALWAYS)
    ckpt = tmp_path / "c.ckpt"
    control = Control()

    def stop_after_two(record):
        if record["epoch"] == 2:
            control.stop()

    with pytest.raises(StopRequested):
        train_candidate(None, synthetic(), config, fitness="val_auc", model_fn=tiny_fn, prune=ALWAYS,
                        control=control, on_epoch=stop_after_two, epoch_checkpoint=ckpt)
    assert ckpt.exists()
    again = train_candidate(None, synthetic(), config, fitness="val_auc", model_fn=tiny_fn, prune=ALWAYS,
                            epoch_checkpoint=ckpt)
    assert again.resumed_from == 2 and not ckpt.exists()
    assert (again.status, again.pruned_at, again.fitness) == (whole.status, whole.pruned_at, whole.fitness)
    assert [r["val_loss"] for r in again.history] == [r["val_loss"] for r in whole.history]


# -- the record ---------------------------------------------------------------------------------


def record(cid: int, status: str = "ok", fitness: float | None = 0.8, **kw) -> CandidateRecord:
    return CandidateRecord(candidate_id=cid, generation=0, phase="init", status=status, key=f"k{cid}",
                           genotype={"feasible": True}, vector=[0.5] * 29, fitness=fitness, val_auc=fitness, **kw)


def test_a_pruned_record_spends_budget_loses_its_selection_and_is_never_a_finalist():
    pruned = record(1, "pruned", 0.99, pruned_at=2, epochs=2)  # the highest fitness of all, and still out
    ok = [record(2, fitness=0.7), record(3, fitness=0.6)]
    assert pruned.spent_budget and pruned.told_fitness == 0.0 and ok[0].told_fitness == 0.7
    profile = load_profile("quick", ["final.top_k=3"])
    chosen = finalists({r.candidate_id: r for r in [pruned, *ok]}, profile)
    assert [r.candidate_id for r in chosen] == [2, 3]
    dup = record(4, "duplicate", None).reuse(pruned)
    assert dup.pruned_at == 2 and dup.told_fitness == 0.0, "a duplicate of a pruned training is pruned too"


def test_a_pruned_record_round_trips_and_one_no_run_writes_is_corrupt():
    pruned = record(1, "pruned", 0.5, pruned_at=2, epochs=2)
    assert CandidateRecord.from_dict(json.loads(json.dumps(pruned.to_dict()))) == pruned
    for bad in (
        {**pruned.to_dict(), "pruned_at": None},
        {**pruned.to_dict(), "fitness": None},
        {**record(2).to_dict(), "pruned_at": 3},  # an ok record that says it was pruned
        {**pruned.to_dict(), "pruned_at": -1},
    ):
        with pytest.raises(CorruptFileError):
            CandidateRecord.from_dict(bad)
    old = {k: v for k, v in record(3).to_dict().items() if k != "pruned_at"}  # a record written before pruning
    assert CandidateRecord.from_dict(old).pruned_at is None


# -- a real tiny search ------------------------------------------------------------------------

PRUNING = [
    "search.pruning='parent'",
    "search.pruning_warmup=2",
    "search.budget=12",
    "training.epochs=4",
    "training.patience=10",
    "training.checkpoint_after_seconds=0",
]


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("pruning") / "run"
    profile = load_profile("quick", TINY + PRUNING + ["final.top_k=1", "final.epochs=1", "final.seeds=[0]"])
    assert Session(profile, run_dir).run().state == "finished"
    return run_dir


def board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl", strict=True)).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status, r.pruned_at, r.epochs, r.test_auc) for r in rows]


@pytest.mark.e2e
def test_a_tiny_search_with_parent_pruning_shows_pruned_candidates_everywhere(pruned_run, tmp_path):
    journal = read_journal(pruned_run / "events.jsonl", strict=True)
    done = [e for e in journal if isinstance(e, ev.CandidateFinished)]
    pruned = [e for e in done if e.status == "pruned"]
    assert pruned, "the tiny search pruned nothing: the test shows nothing"
    for e in pruned:
        assert 2 <= e.pruned_at < 4 and e.epochs == e.pruned_at and e.fitness is not None
        assert e.error.startswith(f"pruned at epoch {e.pruned_at}")
    assert {e.phase for e in pruned} <= {"opposite", "trial", "jump"}, "init candidates have nothing to compare with"
    # budget: a pruned candidate counts; the search ended at its budget
    assert max(e.trained for e in done) == 12
    # the leaderboard and its export: unranked, with the epoch it stopped at
    board_ = Leaderboard.from_events(journal)
    rows = {r.candidate_id: r for r in board_.rows()}
    for e in pruned:
        assert rows[e.candidate_id].rank is None and rows[e.candidate_id].status == "pruned"
    out = tmp_path / "board.json"
    export(board_.rows(), "json", out)
    exported = {d["candidate_id"]: d for d in json.loads(out.read_text())}
    assert all(exported[e.candidate_id]["pruned_at"] == e.pruned_at for e in pruned)
    # never a finalist
    finals = {e.candidate_id for e in journal if isinstance(e, ev.FinalResult)}
    assert finals and not finals & {e.candidate_id for e in pruned}
    # the report counts them
    from nas3d_tui.report.summary import summarise

    summary = summarise(journal)
    assert summary.counts["pruned"] == len(pruned)
    from nas3d_tui.report.render import facts

    line = dict(facts(summary, pruned_run / "events.jsonl"))["pruned"]
    assert line.startswith(f"{len(pruned)} stopped early") and f"#{pruned[0].candidate_id} at epoch" in line


@pytest.mark.e2e
def test_a_run_killed_during_a_pruned_training_resumes_to_the_leaderboard_of_an_uninterrupted_run(pruned_run, tmp_path):
    journal = read_journal(pruned_run / "events.jsonl", strict=True)
    victim = next(e for e in journal if isinstance(e, ev.CandidateFinished) and e.status == "pruned")
    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(run_dir)]
    for s in TINY + PRUNING + ["final.top_k=1", "final.epochs=1", "final.seeds=[0]"]:
        args += ["--set", s]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def victim_is_training() -> bool:
        path = run_dir / "events.jsonl"
        if not path.exists():
            return False
        return any(isinstance(e, ev.EpochFinished) and e.candidate_id == victim.candidate_id and e.phase == "search"
                   for e in read_journal(path))

    end = time.monotonic() + 600
    while not victim_is_training():
        assert proc.poll() is None, f"the run ended before #{victim.candidate_id} trained: {proc.stderr.read()}"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "candidates" / f"{victim.candidate_id:06d}.json").exists(), "killed after it finished"
    resumed = subprocess.run([sys.executable, "-m", "nas3d_tui", "resume", str(run_dir), "--headless"], cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert board(run_dir) == board(pruned_run)


# -- the final retraining's epoch ------------------------------------------------------------------


class ScriptedScores(nn.Module):
    """Every validation sample predicted as class 0 (so val ACC is the majority's in every epoch), with a
    class-1 score whose ranking of the samples is scripted per epoch (so val AUC differs)."""

    def __init__(self, orders: list[list[int]]) -> None:
        super().__init__()
        self.orders = orders
        self.evaluations = 0
        self.w = nn.Parameter(torch.zeros(()))

    def train(self, mode: bool = True):
        if not mode:
            self.evaluations += 1
        return super().train(mode)

    def forward(self, x):
        n = x.shape[0]
        if self.training:
            return torch.zeros(n, 2) + self.w
        index = x[:, 0, 0, 0, 0].round().long()  # the sample's number, written into its voxels
        order = self.orders[min(self.evaluations - 1, len(self.orders) - 1)]
        rank = torch.tensor(order, dtype=torch.float32)[index]
        return torch.stack([torch.full((n,), 10.0), rank / 100.0], dim=1) + 0 * self.w


@pytest.mark.e2e  # seconds of CPU in process (the marker's rule): not in `make check`
def test_a_final_retraining_whose_validation_acc_ties_keeps_the_epoch_with_the_best_validation_auc():
    # validation: samples 0..5, class 1 for samples 4 and 5 (majority class 0: ACC 4/6 in every epoch)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    xs = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1, 1).expand(6, 1, 4, 4, 4).contiguous()
    split = Split(x=xs, y=y)
    data = Dataset(flag="adrenalmnist3d", size=4, task="binary-class", num_classes=2, path="<crafted>",
                   train=split, val=split, test=split)
    worst = [5, 4, 3, 2, 1, 0]  # class-1 samples scored lowest: AUC 0
    best = [0, 1, 2, 3, 4, 5]  # scored highest: AUC 1
    middle = [0, 1, 4, 5, 2, 3]
    made: list[ScriptedScores] = []

    def model_fn(genotype, in_channels=1, num_classes=2):
        made.append(ScriptedScores([worst, middle, best]))
        return made[-1]

    config = TrainingConfig(epochs=3, patience=0, batch_size=6, channels_last=False)
    outcome = final_train(None, data, config, seed=0, model_fn=model_fn)
    accs = [r["val_acc"] for r in outcome.history]
    aucs = [r["val_auc"] for r in outcome.history]
    assert accs == [pytest.approx(4 / 6)] * 3 and aucs == pytest.approx([0.0, 0.5, 1.0])
    assert outcome.best_epoch == 3
    plain = final_train(None, data, config, seed=0, model_fn=model_fn, tie_break="none")
    assert plain.best_epoch == 1, "the paper's plain rule keeps the first of the tied epochs"
