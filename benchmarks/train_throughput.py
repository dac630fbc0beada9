"""Training throughput: the project's trainer path vs. the published code's plain PyTorch loop.

Trains the published AdrenalMNIST3D genotype (search candidate 90) on the real
AdrenalMNIST3D 28^3 training split for the same number of batches with

(a) the project's trainer path (``engine.training.Fitter``'s epoch): data
    resident as tensors, batches by indexing a permutation, ``channels_last_3d``
    model and inputs, the loss accumulated on the device (one host sync per
    epoch), cuDNN autotuning off and bf16 autocast as the default profile
    trains search candidates on this device (``--amp``: on CUDA, and on a CPU
    with native bf16 when the profile asks for it);
(b) a plain PyTorch baseline doing what the published code does:
    ``medmnist.AdrenalMNIST3D(split="train", root=..., transform=...)``, a
    ``DataLoader`` (batch 128, shuffle), the default memory layout and a
    ``loss.item()`` every batch,

with the same network (same seed), Adam and cross-entropy, in one process,
alternating the two several times to reduce noise. Prints training samples/s
for each, the path the project's loop measured (``path: fp32`` or ``path: bf16``)
and, as the last line, ``speedup: X.XX`` (median over repeats of the ratio
a / b measured back to back). Default runtime on two idle CPU cores: about 1.5 min.

Usage: python benchmarks/train_throughput.py [--batches N] [--repeats R]
       [--device cpu|cuda] [--amp auto|on|off] [--reference PATH] [--root DIR] [--threads T]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from engine.control import Control  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.data_source import bundled_path  # noqa: E402
from engine.model import build_network  # noqa: E402
from engine.profile import TrainingConfig, load_profile  # noqa: E402
from engine.space import SearchSpace  # noqa: E402
from engine.training import Fitter, PeakMemory, prepare_device  # noqa: E402
from engine.training.device import cpu_has_native_bf16  # noqa: E402

REFERENCE = "adrenalmnist3d_model90.json"


def find_reference(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    for base in (REPO.parent / "shared" / "reference", REPO / "tests" / "fixtures" / "reference"):
        if (base / REFERENCE).is_file():
            return base / REFERENCE
    raise SystemExit(f"cannot find {REFERENCE}: pass --reference PATH (../shared/reference or tests/fixtures/reference)")


class ToFloat32:
    """The published 3D pipeline's transform: medmnist's float64 volume -> float32 array."""

    def __call__(self, volume: np.ndarray) -> np.ndarray:
        return volume.astype(np.float32)


def make_net(genotype, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_network(genotype, in_channels=1, num_classes=2)


def run_baseline(genotype, root: Path, batches: int, batch_size: int, device: torch.device, seed: int) -> float:
    """Samples/s of the published-code loop over ``batches`` batches (after one warm-up batch)."""
    import medmnist

    dataset = medmnist.AdrenalMNIST3D(split="train", root=str(root), transform=ToFloat32(), size=28)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    model = make_net(genotype, seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    model.train()
    seen = 0
    done = -1  # the first batch warms up and is not timed
    start = 0.0
    while done < batches:
        for inputs, targets in loader:
            if done == 0:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            inputs = inputs.to(device)
            targets = targets.squeeze(1).long().to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            _ = loss.item()  # the published loop logs the loss of every batch
            if done >= 0:
                seen += int(targets.shape[0])
            done += 1
            if done >= batches:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def run_project(genotype, data, batches: int, batch_size: int, device: torch.device, seed: int, amp: bool) -> float:
    """Samples/s of the trainer's epoch loop over ``batches`` batches (after a warm-up batch)."""
    config = TrainingConfig(batch_size=batch_size, channels_last=True)
    prepare_device(device, config.cudnn_benchmark)
    fitter = Fitter(make_net(genotype, seed), data, config, device, seed, amp=amp)
    memory = PeakMemory(device)
    control = Control()
    per_epoch = -(-len(data.train) // batch_size)
    # warm-up batch (allocator, first-call kernel choice), as for the baseline
    fitter.config = dataclasses.replace(config, max_batches_per_epoch=1)
    fitter.train_epoch(data.train, control, memory)
    seen = 0
    left = batches
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    while left > 0:
        take = min(left, per_epoch)
        fitter.config = dataclasses.replace(config, max_batches_per_epoch=take)
        fitter.train_epoch(data.train, control, memory)  # syncs once at its end
        seen += min(take * batch_size, len(data.train))
        left -= take
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="timed training batches per measurement (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements of each loop (default 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                        help="bf16 autocast for the project's loop: auto = as the default profile trains search "
                             "candidates on this device; on = bf16 on CUDA or the CPU (emulated where the CPU "
                             "has no native bf16)")
    parser.add_argument("--reference", default=None, help=f"path of {REFERENCE} (default: ../shared/reference, then tests/fixtures/reference)")
    parser.add_argument("--root", default=None, help="directory holding adrenalmnist3d.npz (default: the bundled file)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    native = device.type == "cpu" and cpu_has_native_bf16()
    if args.amp == "auto":
        amp = load_profile().training.uses_amp(final=False, device_type=device.type, cpu_bf16=native)
    else:
        amp = args.amp == "on" and device.type in ("cuda", "cpu")
    path = "bf16" if amp else "fp32"
    reference = json.loads(find_reference(args.reference).read_text())
    genotype = SearchSpace().decode(reference["chromosome"])
    root = Path(args.root) if args.root else bundled_path().parent
    data = load_dataset("adrenalmnist3d", 28, root=str(root) if args.root else "", device=device)

    print(f"genotype {genotype.compact}  device {device}  threads {torch.get_num_threads()}  "
          f"batches {args.batches} x {args.batch_size}  repeats {args.repeats}  path {path} (--amp {args.amp})  "
          f"torch {torch.__version__}")
    if device.type == "cpu":
        print(f"cpu native bf16 (avx512_bf16 / amx_bf16): {'yes' if native else 'no'}"
              + ("  (bf16 here is emulated: expect it slower than fp32)" if amp and not native else ""))
    if device.type == "cuda":
        print(f"card {torch.cuda.get_device_name(device)}")
    project: list[float] = []
    baseline: list[float] = []
    for r in range(args.repeats):
        order = ("baseline", "project") if r % 2 == 0 else ("project", "baseline")
        for which in order:
            if which == "baseline":
                rate = run_baseline(genotype, root, args.batches, args.batch_size, device, args.seed)
                baseline.append(rate)
            else:
                rate = run_project(genotype, data, args.batches, args.batch_size, device, args.seed, amp)
                project.append(rate)
            print(f"  repeat {r + 1}: {which:<8} {rate:8.1f} samples/s", flush=True)
    p, b = statistics.median(project), statistics.median(baseline)
    # Each repeat measures the two loops back to back, so their ratio sees the same machine
    # load; the median of those paired ratios is steadier than a ratio of medians on a
    # shared machine.
    ratio = statistics.median(pr / br for pr, br in zip(project, baseline))
    print(f"project  (resident tensors, channels_last_3d, no per-batch sync, {path}): {p:8.1f} samples/s (median)")
    print(f"baseline (medmnist Dataset + DataLoader, default layout, .item()): {b:8.1f} samples/s (median)")
    print(f"paired ratios: {' '.join(f'{pr / br:.2f}' for pr, br in zip(project, baseline))}")
    print(f"path: {path}")
    print(f"speedup: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
