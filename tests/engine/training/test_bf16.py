"""bf16 autocast on the CPU (issue 30): detecting native bf16, when the trainer uses it, and what it keeps.

The trainings use a tiny real cell on a few real volumes. Where the CPU has
no native bf16 the bf16 path still runs (oneDNN emulates it, slower), so the
tests that need bf16 force the detection on instead of skipping.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.control import Control, StopRequested
from engine.data import Dataset, load_dataset
from engine.model import build_network
from engine.profile import TrainingConfig
from engine.profile import sections
from engine.space import Genotype, SearchSpace
from engine.training import Fitter, PeakMemory, final_train, train_candidate
from engine.training import device as device_module
from engine.training import loop as loop_module
from engine.training.device import cpuinfo_has_native_bf16

X86_HEAD = "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
X86_FLAGS = "fpu vme de pse tsc msr pae mce cx8 apic sep avx avx2 avx512f avx512dq avx512bw avx512vl"


def x86(*flag_lines: str) -> str:
    return "\n".join(f"{X86_HEAD.format(n=n)}flags\t\t: {flags}\nbogomips\t: 4400.00\n" for n, flags in enumerate(flag_lines))


# -- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (x86(f"{X86_FLAGS} avx512_bf16 amx_bf16 amx_tile amx_int8"), True),  # Sapphire Rapids
        (x86(f"{X86_FLAGS} avx512_bf16", f"{X86_FLAGS} avx512_bf16"), True),  # Cooper Lake / Zen 4, two cores
        (x86(f"{X86_FLAGS} amx_bf16 amx_tile"), True),
        (x86(X86_FLAGS), False),  # AVX-512 without BF16 (Skylake-SP)
        (x86("fpu vme avx avx2 fma"), False),  # a laptop
        (x86(f"{X86_FLAGS} avx512_bf16", X86_FLAGS), False),  # not every processor has it
        (x86(f"{X86_FLAGS} avx512_bf16_extra xavx512_bf16"), False),  # whole flags only
        ("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes bf16 i8mm\nCPU implementer\t: 0x41\n", False),
        ("", False),
    ],
    ids=["amx", "avx512_bf16", "amx-only", "avx512-no-bf16", "avx2", "mixed", "substrings", "arm", "empty"],
)
def test_cpuinfo_parser_finds_native_bf16_flags(text, expected):
    assert cpuinfo_has_native_bf16(text) is expected


def test_cpu_detection_is_false_off_linux_and_reads_proc_cpuinfo_on_linux(monkeypatch):
    device_module.cpu_has_native_bf16.cache_clear()
    try:
        monkeypatch.setattr(device_module.sys, "platform", "darwin")
        assert device_module.cpu_has_native_bf16() is False
        device_module.cpu_has_native_bf16.cache_clear()
        monkeypatch.setattr(device_module.sys, "platform", "linux")
        found = device_module.cpu_has_native_bf16()
        try:
            text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
        except OSError:
            text = ""
        assert found is (cpuinfo_has_native_bf16(text) and torch.backends.mkldnn.is_available())
    finally:
        device_module.cpu_has_native_bf16.cache_clear()


# -- when the trainer uses bf16 ----------------------------------------------------------------


@pytest.mark.parametrize("final", [False, True])
def test_uses_amp_on_the_cpu_only_when_asked_and_native(final):
    on, off, auto = TrainingConfig(amp=True), TrainingConfig(amp=False), TrainingConfig(amp="auto")
    assert on.uses_amp(final, "cpu", cpu_bf16=True) is True
    assert on.uses_amp(final, "cpu", cpu_bf16=False) is False  # emulated bf16 is slower: fp32
    assert on.uses_amp(final, "cpu") is False  # without the caller's detection: fp32
    assert off.uses_amp(final, "cpu", cpu_bf16=True) is False
    assert TrainingConfig().uses_amp(final, "cpu", cpu_bf16=True) is False  # today's default stays fp32
    assert auto.uses_amp(final, "cpu", cpu_bf16=True) is (sections.CPU_AUTO_BF16 and not final)
    assert auto.uses_amp(final, "cpu", cpu_bf16=False) is False
    assert on.uses_amp(final, "mps", cpu_bf16=True) is False
    # CUDA as before
    assert on.uses_amp(final, "cuda") is True and off.uses_amp(final, "cuda") is False
    assert auto.uses_amp(final, "cuda") is (not final)


# -- training in bf16 on the CPU ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cell() -> Genotype:
    """A small real cell (conv3 operations, 1 stack, 8 filters)."""
    space = SearchSpace(ops=(0, 3, 9, 12), stacks=(1,), modules=(1,), filters=(8,))
    rng = np.random.default_rng(11)
    while True:
        g = space.decode(rng.random(space.dim))
        if g.feasible:
            return g


@pytest.fixture(scope="module")
def small() -> Dataset:
    """32 train / 16 val / 32 test real volumes."""
    d = load_dataset("adrenalmnist3d")
    take = lambda split, n: split.subset(torch.arange(n))  # noqa: E731
    return replace(d, train=take(d.train, 32), val=take(d.val, 16), test=take(d.test, 32))


@pytest.fixture
def native_bf16(monkeypatch):
    """The trainer sees a CPU with native bf16 (emulated by oneDNN where it has none)."""
    monkeypatch.setattr(loop_module, "cpu_has_native_bf16", lambda: True)


def _curve(result):
    return [(h["train_loss"], h["val_loss"], h["val_acc"], h["val_auc"]) for h in result.history]


@pytest.mark.e2e
def test_a_bf16_epoch_on_the_cpu_runs_in_bf16_and_scores_in_fp32(cell, small):
    config = TrainingConfig(epochs=1, batch_size=16)
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    fitter = Fitter(build_network(cell, in_channels=1, num_classes=2), small, config, cpu, seed=0, amp=True)
    assert fitter.autocast
    assert fitter._forward(small.train.x[:2]).dtype == torch.bfloat16  # autocast is on for the model
    record = fitter.run_epoch(1, Control(), PeakMemory(cpu))
    assert all(math.isfinite(record[k]) for k in ("train_loss", "val_loss", "val_acc", "val_auc"))
    loss, acc, auc, scores = fitter.evaluate(small.test)
    assert scores.dtype == np.float32 and scores.shape == (32, 2)
    assert np.allclose(scores.sum(1), 1.0, atol=1e-5)
    assert all(math.isfinite(v) for v in (loss, acc, auc))


@pytest.mark.e2e
def test_train_candidate_uses_bf16_on_the_cpu_only_with_native_bf16(cell, small, monkeypatch):
    bf16 = TrainingConfig(epochs=2, batch_size=16, amp=True)
    fp32 = train_candidate(cell, small, replace(bf16, amp=False), seed=5)
    monkeypatch.setattr(loop_module, "cpu_has_native_bf16", lambda: False)
    without = train_candidate(cell, small, bf16, seed=5)
    assert _curve(without) == _curve(fp32), "no native bf16: the CPU trains fp32"
    monkeypatch.setattr(loop_module, "cpu_has_native_bf16", lambda: True)
    with_bf16 = train_candidate(cell, small, bf16, seed=5)
    assert with_bf16.status == "ok" and with_bf16.fitness is not None and math.isfinite(with_bf16.fitness)
    assert all(math.isfinite(v) for row in _curve(with_bf16) for v in row)
    assert _curve(with_bf16) != _curve(fp32), "native bf16 and amp = true: the CPU trains bf16"


@pytest.mark.e2e
def test_bf16_on_the_cpu_is_deterministic_for_a_seed(cell, small, native_bf16):
    config = TrainingConfig(epochs=2, batch_size=16, amp=True)
    a = train_candidate(cell, small, config, seed=5, fitness="val_auc")
    b = train_candidate(cell, small, config, seed=5, fitness="val_auc")
    assert a.status == b.status == "ok"
    assert a.fitness == b.fitness and _curve(a) == _curve(b)


@pytest.mark.e2e
def test_a_bf16_final_training_stopped_after_an_epoch_resumes_to_the_identical_result(cell, small, native_bf16, tmp_path):
    config = TrainingConfig(epochs=3, patience=0, batch_size=16, amp=True)
    whole = final_train(cell, small, config, seed=3)
    ckpt = tmp_path / "training.ckpt"
    control = Control()

    def stop_after_epoch_1(record):
        if record["epoch"] == 1:
            control.stop()

    with pytest.raises(StopRequested):
        final_train(cell, small, config, seed=3, control=control, on_epoch=stop_after_epoch_1, epoch_checkpoint=ckpt)
    again = final_train(cell, small, config, seed=3, epoch_checkpoint=ckpt)
    assert again.resumed_from == 1
    assert (again.test_auc, again.test_acc, again.val_acc, again.best_epoch) == (
        whole.test_auc, whole.test_acc, whole.val_acc, whole.best_epoch)
    for key, value in whole.state_dict.items():  # bitwise, on the CPU, in bf16 too
        assert torch.equal(value, again.state_dict[key]), key
