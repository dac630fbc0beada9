"""engine.training: candidate training, early stopping, OOM / failure handling, pause / stop,
the final retraining, and per-epoch checkpoints.

Real-data tests use small subsets of the bundled AdrenalMNIST3D and the
published genotype; the control-flow tests use a tiny stand-in network passed
through ``model_fn`` so they cost milliseconds.
"""
from __future__ import annotations

import gc
import math
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine import metrics
from engine.control import Control, StopRequested
from engine.data import Dataset, Split, load_dataset
from engine.model import build_network
from engine.profile import TrainingConfig
from engine.space import Genotype, SearchSpace
from engine.training import (
    CandidateResult,
    EarlyStopping,
    final_train,
    is_out_of_memory,
    train_candidate,
)

FAST = TrainingConfig(epochs=2, patience=5, batch_size=16)


def score(net: nn.Module, split: Split, task: str) -> tuple[float, float]:
    """``(auc, acc)`` of ``net`` on ``split``: a plain loop, independent of the trainer's own evaluation."""
    net.eval()
    with torch.no_grad():
        scores = torch.cat([torch.softmax(net(split.x[i : i + 64]), 1) for i in range(0, len(split), 64)]).numpy()
    y = split.y.numpy()
    return metrics.auc(y, scores, task), metrics.accuracy(y, scores, task)


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genotype(reference) -> Genotype:
    g = SearchSpace().decode(reference["chromosome"])
    assert g.feasible
    return g


@pytest.fixture(scope="module")
def light() -> tuple[Genotype, Genotype]:
    """Two small real genotypes (conv3 cells, 1 stack, 8 filters): cheap enough to train many times."""
    space = SearchSpace(ops=(0, 3, 9, 12), stacks=(1,), modules=(1,), filters=(8,))
    rng = np.random.default_rng(11)
    found: list[Genotype] = []
    while len(found) < 2:
        g = space.decode(rng.random(space.dim))
        if g.feasible and all(g.key != f.key for f in found):
            found.append(g)
    return found[0], found[1]


@pytest.fixture(scope="module")
def adrenal() -> Dataset:
    return load_dataset("adrenalmnist3d")


def _take(split: Split, n: int) -> Split:
    return split.subset(torch.arange(n))


@pytest.fixture(scope="module")
def small(adrenal: Dataset) -> Dataset:
    """32 train / 16 val / 32 test real volumes."""
    return replace(adrenal, train=_take(adrenal.train, 32), val=_take(adrenal.val, 16), test=_take(adrenal.test, 32))


def write_npz(path: Path, size: int, n: tuple[int, int, int]) -> Path:
    """A small random file in MedMNIST3D's npz layout."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(count, size, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % 2).astype(np.uint8).reshape(count, 1)
    np.savez_compressed(path, **arrays)
    return path


def synthetic(n_train=8, n_val=4, n_test=4, size=6, classes=2, val_label=None, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def split(n, label=None):
        y = torch.full((n,), label) if label is not None else torch.arange(n) % classes
        return Split(x=torch.rand(n, 1, size, size, size, generator=g), y=y.long())

    return Dataset(
        flag="adrenalmnist3d" if classes == 2 else "organmnist3d",
        size=size,
        task="binary-class" if classes == 2 else "multi-class",
        num_classes=classes,
        path="<synthetic>",
        train=split(n_train),
        val=split(n_val, val_label),
        test=split(n_test),
    )


class Tiny(nn.Module):
    """Stand-in network: conv -> global average pool -> linear; counts forward calls."""

    def __init__(self, in_channels: int, num_classes: int, delay: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)
        self.delay = delay
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))


def tiny_fn(made: list | None = None, delay: float = 0.0, hook=None):
    def model_fn(genotype, in_channels=1, num_classes=2):
        net = Tiny(in_channels, num_classes, delay)
        if hook is not None:
            net.fc.register_forward_hook(hook)
        if made is not None:
            made.append(net)
        return net

    return model_fn


class Scripted(nn.Module):
    """Evaluation logits ``[0, b_e]`` for every sample, ``b_e`` scripted per epoch: a crafted val-loss curve."""

    def __init__(self, margins: list[float]) -> None:
        super().__init__()
        self.margins = margins
        self.evaluations = 0
        self.w = nn.Parameter(torch.zeros(()))  # Adam needs a parameter; its gradient is zero

    def train(self, mode: bool = True):
        if not mode:
            self.evaluations += 1
        return super().train(mode)

    def forward(self, x):
        n = x.shape[0]
        b = self.margins[min(self.evaluations, len(self.margins)) - 1] if not self.training else 0.0
        base = torch.tensor([0.0, b]).expand(n, 2)
        return base + 0 * self.w


# -- early stopping ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "losses, patience, stop_at",
    [
        ([1.0, 0.9, 0.8, 0.7], 2, None),
        ([1.0, 1.1, 1.2], 2, 3),
        ([1.0, 0.9, 0.95, 0.91, 0.85, 0.9, 0.9], 2, 4),
        ([1.0, 1.0, 1.0], 2, 3),  # equal is not an improvement
        ([0.5, 0.6, 0.4, 0.45, 0.41, 0.42, 0.43, 0.44], 5, 8),
        ([float("nan"), 1.0, float("nan"), float("nan")], 2, 4),
        ([1.0, 2.0, 3.0, 4.0], 0, None),  # patience 0: never stop
    ],
)
def test_early_stopping_rule(losses, patience, stop_at):
    stopper = EarlyStopping(patience)
    stopped = None
    for epoch, loss in enumerate(losses, start=1):
        if stopper.update(loss):
            stopped = epoch
            break
    assert stopped == stop_at


def test_early_stopping_triggers_in_training_on_a_crafted_curve():
    # val labels all 1: loss = log(1 + exp(-b)) -> 0.69, 0.31 (best), 0.47, 0.60, then 0.05
    margins = [0.0, 1.0, 0.5, 0.2, 3.0, 3.0]
    data = synthetic(val_label=1)
    result = train_candidate(None, data, replace(FAST, epochs=6, patience=2), model_fn=lambda g, **k: Scripted(margins))
    assert result.status == "ok"
    assert result.epochs == 4
    assert [round(h["val_loss"], 3) for h in result.history] == [0.693, 0.313, 0.474, 0.598]
    longer = train_candidate(None, data, replace(FAST, epochs=6, patience=3), model_fn=lambda g, **k: Scripted(margins))
    assert longer.epochs == 6


# -- learning on real data ------------------------------------------------------------------


@pytest.mark.e2e
def test_published_genotype_learns_on_a_real_subset(genotype, adrenal):
    # 64 real volumes (11% positive), 3 epochs of 4 batches. The published cell learns the
    # images slowly (see the slow test below), but within a few steps it must at least fit
    # the class balance: a loop that feeds wrong labels, never steps or diverges ends near
    # or above ln 2.
    data = adrenal.search_subset(64 / 1188, seed=0)
    data = replace(data, val=_take(adrenal.val, 32))
    epochs: list[dict] = []
    result = train_candidate(genotype, data, TrainingConfig(epochs=3, patience=5, batch_size=16), on_epoch=epochs.append)
    assert result.status == "ok", result.error
    assert result.epochs == 3 and [e["epoch"] for e in epochs] == [1, 2, 3]
    assert list(result.history) == epochs
    assert set(epochs[0]) == {"epoch", "train_loss", "val_loss", "val_acc", "val_auc", "seconds"}
    assert epochs[-1]["train_loss"] < math.log(2) - 0.15
    assert all(math.isfinite(e["val_loss"]) and e["seconds"] > 0 for e in epochs)
    assert result.fitness == max(e["val_acc"] for e in epochs)
    assert 0.0 <= result.fitness <= 1.0
    assert result.peak_memory_mb is not None and result.peak_memory_mb >= 0


@pytest.mark.slow
def test_published_genotype_generalises_on_a_search_quarter(genotype, adrenal):
    # ~2 minutes on two CPU cores: the search protocol's quarter of train, the full val split
    data = replace(adrenal.search_subset(0.25, seed=0), val=adrenal.val)
    result = train_candidate(genotype, data, TrainingConfig(epochs=12, patience=0))
    assert result.status == "ok"
    assert max(h["val_auc"] for h in result.history) > 0.65


@pytest.mark.e2e
@pytest.mark.parametrize("channels_last, rel", [(False, 1e-5), (True, 1e-2)])
def test_trainer_matches_a_plain_pytorch_loop(genotype, small, channels_last, rel):
    # Same init, same batch order: the trainer's epoch is exactly Adam + cross-entropy over
    # label-aligned batches. channels_last_3d changes the rounding, and Adam's first step
    # (about lr * sign(grad)) amplifies it for near-zero gradients, hence the looser bound.
    config = TrainingConfig(epochs=1, batch_size=16, channels_last=channels_last)
    result = train_candidate(genotype, small, config, seed=3)

    torch.manual_seed(3)
    net = build_network(genotype, in_channels=1, num_classes=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    perm = torch.randperm(len(small.train), generator=torch.Generator().manual_seed(3))
    total = 0.0
    net.train()
    for start in range(0, len(perm), 16):
        idx = perm[start : start + 16]
        loss = nn.functional.cross_entropy(net(small.train.x[idx]), small.train.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    net.eval()
    with torch.no_grad():
        val_loss = nn.functional.cross_entropy(net(small.val.x), small.val.y).item()
    assert result.history[0]["train_loss"] == pytest.approx(total / len(perm), rel=rel)
    assert result.history[0]["val_loss"] == pytest.approx(val_loss, rel=rel)


@pytest.mark.e2e
def test_same_seed_same_fitness(genotype, small):
    config = TrainingConfig(epochs=2, batch_size=16)
    a = train_candidate(genotype, small, config, seed=5)
    b = train_candidate(genotype, small, config, seed=5)
    assert a.status == b.status == "ok"
    assert a.fitness == b.fitness
    assert [(h["train_loss"], h["val_loss"], h["val_auc"]) for h in a.history] == [
        (h["train_loss"], h["val_loss"], h["val_auc"]) for h in b.history
    ]
    c = train_candidate(genotype, small, replace(config, epochs=1), seed=6)
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_fitness_can_be_validation_auc():
    result = train_candidate(None, synthetic(), replace(FAST, epochs=3), fitness="val_auc", model_fn=tiny_fn())
    assert result.status == "ok"
    assert result.fitness == max(h["val_auc"] for h in result.history)
    best = max(result.history, key=lambda h: h["val_auc"])
    assert (result.val_acc, result.val_auc) == (best["val_acc"], best["val_auc"])


def test_undefined_auc_fitness_is_a_failure_not_a_nan():
    result = train_candidate(None, synthetic(val_label=0), FAST, fitness="val_auc", model_fn=tiny_fn())
    assert result.status == "failed" and "undefined" in result.error and result.fitness is None


def test_bce_loss_for_binary_tasks_only():
    result = train_candidate(None, synthetic(), replace(FAST, loss="bce"), model_fn=tiny_fn())
    assert result.status == "ok" and math.isfinite(result.history[-1]["val_loss"])
    with pytest.raises(ValueError, match="binary"):
        train_candidate(None, synthetic(classes=3), replace(FAST, loss="bce"), model_fn=tiny_fn())


def test_multiclass_and_default_layout():
    result = train_candidate(None, synthetic(classes=5, n_train=10, n_val=10), replace(FAST, channels_last=False), model_fn=tiny_fn())
    assert result.status == "ok" and 0 <= result.fitness <= 1


def test_unknown_fitness_is_refused():
    with pytest.raises(ValueError, match="fitness"):
        train_candidate(None, synthetic(), FAST, fitness="acc", model_fn=tiny_fn())


# -- OOM and failures -----------------------------------------------------------------------


def _raise(exc):
    def hook(module, inputs, output):
        raise exc

    return hook


@pytest.mark.parametrize(
    "exc",
    [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
    ],
)
def test_out_of_memory_is_recorded_and_memory_released(exc):
    assert is_out_of_memory(exc)
    made: list[Tiny] = []
    result = train_candidate(None, synthetic(), FAST, model_fn=tiny_fn(made, hook=_raise(exc)))
    assert isinstance(result, CandidateResult)
    assert result.status == "oom" and result.fitness is None and result.val_acc is None
    assert "out of memory" in result.error and "\n" not in result.error
    ref = weakref.ref(made.pop())
    gc.collect()
    assert ref() is None  # model (and optimizer) released, no traceback keeps them alive
    # the next candidate trains normally
    after = train_candidate(None, synthetic(), FAST, model_fn=tiny_fn())
    assert after.status == "ok" and after.epochs == 2


def test_other_errors_are_failed_with_one_line_message():
    result = train_candidate(None, synthetic(), FAST, model_fn=tiny_fn(hook=_raise(ValueError("boom\nsecond line"))))
    assert result.status == "failed" and result.fitness is None
    assert result.error == "ValueError: boom second line"
    assert not is_out_of_memory(ValueError("boom"))

    def broken(genotype, **kwargs):
        raise TypeError("cannot build")

    assert train_candidate(None, synthetic(), FAST, model_fn=broken).error == "TypeError: cannot build"


def test_errors_in_the_callback_propagate():
    def on_epoch(record):
        raise KeyError("sink broke")

    with pytest.raises(KeyError, match="sink broke"):
        train_candidate(None, synthetic(), FAST, model_fn=tiny_fn(), on_epoch=on_epoch)


# -- pause and stop -----------------------------------------------------------------------------


def test_stop_from_on_epoch_raises_at_the_next_batch_boundary():
    control = Control()
    made: list[Tiny] = []
    calls_at_stop = []

    def on_epoch(record):
        control.stop()
        calls_at_stop.append(made[0].calls)

    with pytest.raises(StopRequested):
        train_candidate(None, synthetic(), replace(FAST, epochs=5, batch_size=2), control=control,
                        on_epoch=on_epoch, model_fn=tiny_fn(made))
    assert calls_at_stop and made[0].calls == calls_at_stop[0]  # not one more forward pass


def test_stop_from_another_thread_is_prompt():
    control = Control()
    stopped_at = []

    def stopper():
        time.sleep(0.3)
        stopped_at.append(time.perf_counter())
        control.stop()

    thread = threading.Thread(target=stopper)
    thread.start()
    with pytest.raises(StopRequested):
        train_candidate(None, synthetic(), replace(FAST, epochs=1000, batch_size=1), control=control,
                        model_fn=tiny_fn(delay=0.02))
    raised_at = time.perf_counter()
    thread.join()
    assert raised_at - stopped_at[0] < 0.5


@pytest.mark.e2e
def test_pause_blocks_at_a_batch_boundary_and_resume_continues():
    control = Control()
    made: list[Tiny] = []
    seen = {}

    def driver():
        time.sleep(0.2)
        control.pause()
        time.sleep(0.1)  # let the batch in flight finish
        seen["paused"] = made[0].calls
        time.sleep(0.4)
        seen["still"] = made[0].calls
        control.resume()

    thread = threading.Thread(target=driver)
    thread.start()
    start = time.perf_counter()
    result = train_candidate(None, synthetic(n_train=8), replace(FAST, epochs=12, batch_size=1), control=control,
                             model_fn=tiny_fn(made, delay=0.01))
    thread.join()
    assert result.status == "ok" and result.epochs == 12
    assert seen["paused"] == seen["still"] > 0
    assert time.perf_counter() - start >= 0.6


# -- other sizes and the final phase ------------------------------------------------------------


@pytest.mark.e2e
def test_64_cube_run_from_a_synthetic_file(genotype, tmp_path: Path):
    write_npz(tmp_path / "adrenalmnist3d_64.npz", size=64, n=(4, 2, 2))
    data = load_dataset("adrenalmnist3d", size=64, root=tmp_path)
    result = train_candidate(genotype, data, TrainingConfig(epochs=1, batch_size=4))
    assert result.status == "ok", result.error
    assert result.epochs == 1


@pytest.mark.e2e
def test_final_train_returns_weights_that_reproduce_the_test_metrics(genotype, small):
    epochs: list[dict] = []
    outcome = final_train(genotype, small, TrainingConfig(epochs=2, batch_size=16), seed=11, on_epoch=epochs.append)
    assert outcome.epochs == 2 and len(epochs) == 2 and outcome.seed == 11
    assert outcome.val_acc == max(e["val_acc"] for e in epochs)
    net = build_network(genotype, in_channels=1, num_classes=2)
    net.load_state_dict(outcome.state_dict)
    auc, acc = score(net, small.test, small.task)
    assert auc == pytest.approx(outcome.test_auc, abs=1e-9)
    assert acc == pytest.approx(outcome.test_acc, abs=1e-9)


@pytest.mark.e2e
def test_final_train_keeps_the_best_validation_checkpoint():
    # With a crafted val curve the best-ACC epoch is the 2nd: the returned weights are from then.
    made: list[Tiny] = []
    snapshots = []

    def on_epoch(record):
        snapshots.append({k: v.clone() for k, v in made[0].state_dict().items()})

    data = synthetic(n_train=16, n_val=8)
    outcome = final_train(None, data, replace(FAST, epochs=4, patience=0, batch_size=2), seed=0,
                          model_fn=tiny_fn(made), on_epoch=on_epoch)
    h = outcome.history
    # equal validation ACC is decided by validation AUC, then lower validation loss (the search's tie-break)
    best = max(range(4), key=lambda i: (h[i]["val_acc"], h[i]["val_auc"], -h[i]["val_loss"], -i))
    assert outcome.best_epoch == best + 1
    for key, value in outcome.state_dict.items():
        assert torch.equal(value, snapshots[best][key])


@pytest.mark.e2e
def test_final_train_without_tie_break_keeps_the_first_best_acc_epoch():
    # tie_break="none" is the paper's plain rule: the first epoch with the best validation ACC.
    made: list[Tiny] = []
    data = synthetic(n_train=16, n_val=8)
    outcome = final_train(None, data, replace(FAST, epochs=4, patience=0, batch_size=2), seed=0,
                          model_fn=tiny_fn(made), tie_break="none")
    best = max(range(4), key=lambda i: (outcome.history[i]["val_acc"], -i))
    assert outcome.best_epoch == best + 1


@pytest.mark.e2e
def test_final_train_stopped_raises_and_keeps_no_result(genotype, small):
    control = Control()
    control.stop()
    with pytest.raises(StopRequested):
        final_train(genotype, small, FAST, seed=0, control=control)


# -- per-epoch checkpoints ----------------------------------------------------------------------


def _stop_after(control: Control, epoch: int):
    def on_epoch(record):
        if record["epoch"] == epoch:
            control.stop()  # raised at the next batch boundary, after the epoch's checkpoint

    return on_epoch


@pytest.mark.e2e
def test_a_final_training_stopped_after_epoch_k_resumes_to_the_identical_result(light, small, tmp_path):
    genotype = light[0]
    config = TrainingConfig(epochs=4, patience=0, batch_size=16)
    whole = final_train(genotype, small, config, seed=3)
    ckpt = tmp_path / "training.ckpt"
    control = Control()
    with pytest.raises(StopRequested):
        final_train(genotype, small, config, seed=3, control=control, on_epoch=_stop_after(control, 2), epoch_checkpoint=ckpt)
    assert ckpt.exists()
    resumed_at, seen = [], []
    again = final_train(genotype, small, config, seed=3, epoch_checkpoint=ckpt, on_resume=resumed_at.append,
                        on_epoch=seen.append)
    assert resumed_at == [2] and again.resumed_from == 2 and [r["epoch"] for r in seen] == [3, 4]
    assert not ckpt.exists(), "the checkpoint is removed once the training finished"
    assert (again.test_auc, again.test_acc, again.val_acc, again.best_epoch) == (
        whole.test_auc, whole.test_acc, whole.val_acc, whole.best_epoch)
    for key, value in whole.state_dict.items():  # bitwise, on the CPU
        assert torch.equal(value, again.state_dict[key]), key
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in whole.history]


@pytest.mark.e2e
def test_a_search_candidate_checkpoints_only_once_it_has_run_long_enough(light, small, tmp_path):
    genotype = light[0]
    config = TrainingConfig(epochs=3, patience=0, batch_size=16)
    ckpt = tmp_path / "c.ckpt"
    control = Control()
    slow = replace(config, checkpoint_after_seconds=3600.0)
    with pytest.raises(StopRequested):
        train_candidate(genotype, small, slow, seed=1, control=control, on_epoch=_stop_after(control, 1), epoch_checkpoint=ckpt)
    assert not ckpt.exists(), "a short candidate writes no checkpoint"
    eager = replace(config, checkpoint_after_seconds=0.0)
    control = Control()
    with pytest.raises(StopRequested):
        train_candidate(genotype, small, eager, seed=1, control=control, on_epoch=_stop_after(control, 1), epoch_checkpoint=ckpt)
    assert ckpt.exists()
    resumed = train_candidate(genotype, small, eager, seed=1, epoch_checkpoint=ckpt)
    whole = train_candidate(genotype, small, eager, seed=1)
    assert resumed.resumed_from == 1 and resumed.fitness == whole.fitness
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in whole.history]


@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["garbage", "truncated", "other seed", "other architecture"])
def test_a_corrupt_or_foreign_checkpoint_restarts_the_training_with_one_line(light, small, tmp_path, damage):
    genotype = light[0]
    config = TrainingConfig(epochs=3, patience=0, batch_size=16)
    ckpt = tmp_path / "training.ckpt"
    control = Control()
    with pytest.raises(StopRequested):
        final_train(genotype, small, config, seed=3, control=control, on_epoch=_stop_after(control, 1), epoch_checkpoint=ckpt)
    seed, g = 3, genotype
    if damage == "garbage":
        ckpt.write_bytes(b"not a checkpoint at all")
    elif damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:200])
    elif damage == "other seed":
        seed = 4
    else:
        g = light[1]
    notices, resumed_at = [], []
    outcome = final_train(g, small, config, seed=seed, epoch_checkpoint=ckpt, on_notice=notices.append,
                          on_resume=resumed_at.append)
    assert resumed_at == [] and outcome.resumed_from == 0 and outcome.epochs == 3
    assert len(notices) == 1 and "\n" not in notices[0]
    assert str(ckpt) in notices[0] and "restarting this training from epoch 0" in notices[0]
    fresh = final_train(g, small, config, seed=seed)
    assert outcome.test_auc == fresh.test_auc and outcome.val_acc == fresh.val_acc


@pytest.mark.e2e
def test_published_weights_score_as_published(genotype, adrenal, reference_dir, reference):
    # data loading + evaluation + metrics reproduce the paper's test numbers
    from engine.model import load_reference_weights

    state = torch.load(reference_dir / reference["weights_file"], map_location="cpu", weights_only=True)
    net = load_reference_weights(build_network(genotype, in_channels=1, num_classes=2), state)
    auc, acc = score(net, adrenal.test, adrenal.task)
    assert auc == pytest.approx(reference["test_metrics_with_weights"]["auc"], abs=1e-4)
    assert acc == pytest.approx(reference["test_metrics_with_weights"]["acc"], abs=1e-4)


# -- GPU -------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_training_reports_peak_memory(genotype, amp):
    data = load_dataset("adrenalmnist3d", device="cuda").search_subset(0.1, seed=0)
    result = train_candidate(genotype, data, TrainingConfig(epochs=2, amp=amp), device="cuda")
    assert result.status == "ok", result.error
    assert result.peak_memory_mb is not None and result.peak_memory_mb > 0


@pytest.mark.e2e
def test_score_test_scores_the_epoch_that_gave_the_fitness_and_changes_nothing_else(light, small):
    # An exhaustive run's candidates score their best epoch on the test split (the table's test AUC/ACC).
    made: list[nn.Module] = []
    snapshots: list[dict[str, torch.Tensor]] = []

    def model_fn(g, *, in_channels, num_classes):
        made.append(build_network(g, in_channels=in_channels, num_classes=num_classes))
        return made[-1]

    def on_epoch(record):  # the weights after each epoch, as the trainer has them then
        snapshots.append({k: v.detach().clone() for k, v in made[-1].state_dict().items()})

    config = TrainingConfig(epochs=3, patience=5, batch_size=16)
    plain = train_candidate(light[0], small, config, seed=5, fitness="val_auc")
    scored = train_candidate(light[0], small, config, seed=5, fitness="val_auc", model_fn=model_fn,
                             on_epoch=on_epoch, score_test=True)
    assert plain.test_auc is None and plain.test_acc is None
    def curve(result):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in result.history]

    assert (scored.status, scored.fitness, curve(scored)) == (plain.status, plain.fitness, curve(plain))
    best = next(i for i, h in enumerate(scored.history) if h["val_auc"] == scored.fitness)  # the first best epoch
    net = build_network(light[0], in_channels=1, num_classes=2)
    net.load_state_dict(snapshots[best])
    auc, acc = score(net, small.test, small.task)
    assert scored.test_auc == pytest.approx(auc, abs=1e-9)
    assert scored.test_acc == pytest.approx(acc, abs=1e-9)
