"""The headless console (``run --headless`` / ``resume --headless``): what a batch job's log shows."""
from __future__ import annotations

import io

from rich.console import Console

from engine import events as ev
from nas3d_tui.console import ConsoleSink


def sink(terminal: bool) -> tuple[ConsoleSink, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=160, color_system=None, highlight=False, soft_wrap=True)
    return ConsoleSink(console), out


def started(resumed: bool = False) -> ev.RunStarted:
    return ev.RunStarted(ts=1.0, run_name="quick", run_dir="runs/quick-0001", dataset="adrenalmnist3d", size=28,
                         device="cpu", budget=20, population=5, num_classes=2, task="binary-class", resumed=resumed)


def test_a_resumed_run_shows_its_progress_from_the_first_checkpoint() -> None:
    console, _ = sink(terminal=True)
    try:
        console(started(resumed=True))
        task = console._progress.tasks[0]
        assert task.completed == 0 and task.total == 20
        console(ev.StateSaved(ts=2.0, path="runs/quick-0001/checkpoint.json", trained=3, generation=0))
        assert task.completed == 3  # not "0/20 trained" until the next candidate finishes
        console(ev.GenerationFinished(ts=3.0, generation=1, best=0.8, mean=0.7, worst=0.6, trained=5, budget=20,
                                      best_candidate_id=2))
        assert task.completed == 5
    finally:
        console.close()


def test_a_final_retraining_prints_each_epoch() -> None:
    # (retrainings may run side by side: an epoch names its seed; an older journal's has none)
    console, out = sink(terminal=False)
    console(started())
    console(ev.FinalStarted(ts=2.0, candidate_ids=[6, 1], epochs=30, seeds=[0, 1]))
    console(ev.EpochFinished(ts=40.0, candidate_id=6, epoch=1, train_loss=0.61, val_loss=0.66, val_acc=0.64,
                             val_auc=0.7, seconds=37.2, max_epochs=30, phase="final"))
    console(ev.EpochFinished(ts=41.0, candidate_id=3, epoch=1, train_loss=0.5, val_loss=0.5, val_acc=0.5,
                             val_auc=0.5, seconds=4.0, max_epochs=3))  # a search epoch: its result line is enough
    console(ev.FinalResult(ts=80.0, candidate_id=6, key="k", seed=0, test_auc=0.87, test_acc=0.81, val_acc=0.8,
                           params=7650, flops=3_538_944, epochs=30, seconds=1100.0))
    console(ev.EpochFinished(ts=120.0, candidate_id=6, epoch=2, train_loss=0.5, val_loss=0.55, val_acc=0.7,
                             val_auc=0.75, seconds=36.0, max_epochs=30, phase="final", seed=1))
    lines = out.getvalue().splitlines()
    finals = [line for line in lines if line.startswith("  final #")]
    assert finals == [
        "  final #6 epoch 1/30: train loss 0.6100 · val loss 0.6600 · val ACC 0.6400 · val AUC 0.7000 · 37s"
        " (0/4 retrainings done)",
        "  final #6 seed 1 epoch 2/30: train loss 0.5000 · val loss 0.5500 · val ACC 0.7000 · val AUC 0.7500 · 36s"
        " (1/4 retrainings done)",
    ]
    assert not any("#3 epoch" in line for line in lines)
