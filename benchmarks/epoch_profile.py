"""Where a training epoch goes on the CPU: torch.profiler over the project's trainer, ops grouped by kind.

Profiles the project's own trainer path (``engine.training.Fitter``: data
resident as tensors, batches by indexing a permutation, ``channels_last_3d``,
Adam, one host sync per epoch) for

- ``published``: the published AdrenalMNIST3D cell (search candidate 90, the
  genotype ``train_throughput.py`` measures) on the full 28^3 training split,
  ``--batch-size`` 128, for ``--batches`` batches (default 10: about one epoch);
- ``quick``: candidate 0 of the default ``quick`` search (its ODE, seed and
  space: a fixed architecture) on quick's search subset with quick's training
  settings (batch 32), for ``--quick-batches`` batches (default 0: one epoch);

each after one unprofiled warm-up batch and, unless ``--no-eval``, followed by
one validation pass (as every epoch of a search ends). Prints, per cell, the
top raw ops by self time (with the group each was counted in, to check the
grouping) and the share of the profiled wall time in each group:

  conv_fwd / conv_bwd   convolution forward / backward (aten::conv3d,
                        aten::mkldnn_convolution, ConvolutionBackward0, ...)
  norm                  instance norm, forward and backward (aten::instance_norm,
                        aten::native_batch_norm, NativeBatchNormBackward0, ...)
  mish                  Mish, forward and backward (aten::mish, MishBackward0)
  relu                  ReLU, forward and backward (aten::relu, ReluBackward0)
  pool                  pooling, forward and backward (max_pool3d, adaptive_avg_pool3d)
  optimizer             Adam's step and zero_grad (torch's Optimizer.* annotations:
                        the foreach ops and the optimizer's Python)
  data                  drawing and indexing batches (aten::randperm, index_select:
                        everything while the batch iterator runs)
  loss                  loss forward / backward, scores, metrics (cross_entropy,
                        log_softmax, nll_loss, their backward, engine.metrics)
  other_ops             every other profiled op (the cells' sums, casts, views, linear,
                        autograd bookkeeping such as AccumulateGrad)
  python                wall time minus the self time of every profiled event: the
                        time the main thread spent outside any op (the training
                        loop's and the modules' Python, the profiler's own cost)

Each event's self time goes to the group of its OUTERMOST enclosing event that
names a group (so the casts autocast does inside aten::conv3d count as
conv_fwd, and everything inside Optimizer.step as optimizer); the script's own
annotations (``epoch_profile.*``) name the data and loss groups and are
otherwise skipped. Shares are of a profiled run: the profiler adds a few
microseconds per op, which inflates short ops and ``python``; samples/s shown
here are not a benchmark (``train_throughput.py`` is). The last line is
``profile <cell>: conv_fwd X% conv_bwd Y% ...`` (one such line per cell).

Usage: python benchmarks/epoch_profile.py [--which published|quick|both] [--amp off|bf16]
       [--threads T] [--batches N] [--quick-batches N] [--batch-size B] [--no-eval]
       [--top K] [--reference PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):  # the engine, and train_throughput's reference finder
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402

from engine.control import Control  # noqa: E402
from engine.model import build_network  # noqa: E402
from engine.profile import TrainingConfig, load_profile  # noqa: E402
from engine.space import Genotype, SearchSpace  # noqa: E402
from train_throughput import REFERENCE, find_reference  # noqa: E402,F401
from engine.training import Fitter, PeakMemory, TrainData, prepare_device  # noqa: E402
from engine.training.device import cpu_has_native_bf16  # noqa: E402

GROUPS = ("conv_fwd", "conv_bwd", "norm", "mish", "relu", "pool", "optimizer", "data", "loss", "other_ops", "python")
MARK = "epoch_profile."  # the script's own annotations

# (group, pattern on the event name), tried in this order on each enclosing event, outermost first.
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (group, re.compile(pattern))
    for group, pattern in (
        ("data", r"^epoch_profile\.batch$"),
        ("loss", r"^epoch_profile\.(metrics|loss)$"),
        ("optimizer", r"^Optimizer\.|_foreach_|^aten::_fused_adam"),
        ("conv_bwd", r"ConvolutionBackward|convolution_backward|conv3d_backward|conv_depthwise3d_backward"),
        ("conv_fwd", r"^aten::(conv3d|convolution|_convolution|mkldnn_convolution|_mkldnn_convolution|"
                     r"slow_conv3d|slow_conv3d_forward|conv_depthwise3d|_nnpack_spatial_convolution)$"),
        ("norm", r"instance_norm|batch_norm|BatchNormBackward|InstanceNorm"),
        ("mish", r"(?i)mish"),
        ("relu", r"^aten::relu_?$|ReluBackward|threshold_backward"),
        ("pool", r"(?i)pool"),
        ("loss", r"cross_entropy|log_softmax|LogSoftmaxBackward|nll_loss|NllLoss|binary_cross_entropy|"
                 r"BinaryCrossEntropy|^aten::_softmax$|^aten::softmax$|^aten::sigmoid$|one_hot"),
    )
)


def group_of(names: list[str]) -> str:
    """The group of an event whose enclosing events (outermost first, itself last) have ``names``."""
    for name in names:
        for group, pattern in RULES:
            if pattern.search(name):
                return group
    return "other_ops"


class Profiled(NamedTuple):
    """One profiled run: wall time, per-group seconds, raw ops, samples."""

    label: str
    wall_s: float
    samples: int
    batches: int
    groups: dict[str, float]
    raw: list[tuple[str, int, float, dict[str, float]]]  # name, calls, self seconds, seconds per group

    def share(self, group: str) -> float:
        return 100.0 * self.groups.get(group, 0.0) / max(self.wall_s, 1e-12)


def classify(events: Any, wall_s: float) -> tuple[dict[str, float], list[tuple[str, int, float, dict[str, float]]]]:
    """Self time of every profiled event by group; ``python`` = wall - total self time of the events."""
    groups: dict[str, float] = defaultdict(float)
    raw_time: dict[str, float] = defaultdict(float)
    raw_calls: dict[str, int] = defaultdict(int)
    raw_groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    total = 0.0
    for e in events:
        chain = []
        node = e
        while node is not None:
            chain.append(node.name)
            node = node.cpu_parent
        chain.reverse()  # outermost first
        if e.name.startswith(MARK) and group_of([e.name]) == "other_ops":
            continue  # the script's root annotations: their self time is Python (counted in ``python``)
        seconds = e.self_cpu_time_total / 1e6
        group = group_of([n for n in chain])
        groups[group] += seconds
        total += seconds
        raw_time[e.name] += seconds
        raw_calls[e.name] += 1
        raw_groups[e.name][group] += seconds
    groups["python"] = max(wall_s - total, 0.0)
    raw = sorted(((n, raw_calls[n], t, dict(raw_groups[n])) for n, t in raw_time.items()), key=lambda r: -r[2])
    return dict(groups), raw


@contextlib.contextmanager
def annotated_batches_and_metrics() -> Iterator[None]:
    """Mark the batch iterator's work as ``data`` and engine.metrics as ``loss`` (the trainer is not changed)."""
    from engine import metrics
    from engine.training import fitter as fitter_module

    original_iterate = fitter_module.iterate_batches
    original = {name: getattr(metrics, name) for name in ("accuracy", "auc")}

    def iterate(*args: Any, **kwargs: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        it = original_iterate(*args, **kwargs)
        while True:
            with record_function(MARK + "batch"):
                try:
                    batch = next(it)
                except StopIteration:
                    return
            yield batch

    def wrap(fn: Callable[..., float]) -> Callable[..., float]:
        def wrapped(*args: Any, **kwargs: Any) -> float:
            with record_function(MARK + "metrics"):
                return fn(*args, **kwargs)
        return wrapped

    fitter_module.iterate_batches = iterate  # type: ignore[assignment]
    for name, fn in original.items():
        setattr(metrics, name, wrap(fn))
    try:
        yield
    finally:
        fitter_module.iterate_batches = original_iterate
        for name, fn in original.items():
            setattr(metrics, name, fn)


def profile_training(label: str, genotype: Genotype, data: TrainData, config: TrainingConfig, seed: int,
                     batches: int, amp: bool, evaluate: bool) -> Profiled:
    """Profile ``batches`` training batches (0: one epoch) of ``genotype`` with the trainer, then one validation pass."""
    device = torch.device("cpu")
    prepare_device(device)
    torch.manual_seed(seed)
    net = build_network(genotype, in_channels=data.train.x.shape[1], num_classes=data.num_classes)
    fitter = Fitter(net, data, config, device, seed, amp=amp)
    memory = PeakMemory(device)
    control = Control()
    per_epoch = -(-len(data.train) // config.batch_size)
    batches = batches or per_epoch
    fitter.config = dataclasses.replace(config, max_batches_per_epoch=1)
    fitter.train_epoch(data.train, control, memory)  # warm-up batch, not profiled
    samples = 0
    with annotated_batches_and_metrics(), profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        with record_function(MARK + "run"):
            left = batches
            while left > 0:
                take = min(left, per_epoch)
                fitter.config = dataclasses.replace(config, max_batches_per_epoch=take)
                with record_function(MARK + "train"):
                    fitter.train_epoch(data.train, control, memory)
                samples += min(take * config.batch_size, len(data.train))
                left -= take
            if evaluate:
                with record_function(MARK + "eval"):
                    fitter.evaluate(data.val, control)
        wall = time.perf_counter() - t0
    groups, raw = classify(prof.events(), wall)
    return Profiled(label, wall, samples, batches, groups, raw)


def report(p: Profiled, top: int) -> str:
    """Print the raw ops and the group table of one profiled run; returns its one-line summary."""
    print(f"\n{p.label}: {p.batches} batches, {p.samples} samples in {p.wall_s:.2f} s under the profiler "
          f"({p.samples / max(p.wall_s, 1e-12):.1f} samples/s, not a benchmark)")
    print(f"  top {top} ops by self time       calls   self ms  % wall  counted as")
    for name, calls, seconds, by_group in p.raw[:top]:
        where = " ".join(f"{g} {100 * s / seconds:.0f}%" for g, s in sorted(by_group.items(), key=lambda x: -x[1])
                         if s > 0) if seconds > 0 else "-"
        if len(by_group) == 1:
            where = next(iter(by_group))
        print(f"  {name[:32]:<32} {calls:6d} {1000 * seconds:9.1f} {100 * seconds / p.wall_s:6.1f}  {where}")
    print(f"  {'group':<12} {'seconds':>8} {'% wall':>7}")
    for g in GROUPS:
        print(f"  {g:<12} {p.groups.get(g, 0.0):8.3f} {p.share(g):6.1f}%")
    return f"profile {p.label}: " + " ".join(f"{g} {p.share(g):.1f}%" for g in GROUPS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", choices=("published", "quick", "both"), default="both")
    parser.add_argument("--amp", choices=("off", "bf16"), default="off",
                        help='bf16 = torch.autocast("cpu", dtype=torch.bfloat16), as the trainer applies it')
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--batches", type=int, default=10, help="profiled batches of the published cell (default 10)")
    parser.add_argument("--quick-batches", type=int, default=0,
                        help="profiled batches of the quick candidate (default 0: one epoch of the search subset)")
    parser.add_argument("--batch-size", type=int, default=128, help="the published cell's batch size (default 128)")
    parser.add_argument("--no-eval", action="store_true", help="profile training batches only (no validation pass)")
    parser.add_argument("--top", type=int, default=15, help="raw ops listed per cell (default 15)")
    parser.add_argument("--reference", default=None, help=f"path of {REFERENCE}")
    parser.add_argument("--seed", type=int, default=0, help="the published cell's seed (default 0)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    amp = args.amp == "bf16"
    native = cpu_has_native_bf16()
    print(f"torch {torch.__version__}  threads {torch.get_num_threads()}  path {'bf16' if amp else 'fp32'}  "
          f"cpu native bf16 {'yes' if native else 'no'}" + ("  (bf16 emulated here)" if amp and not native else ""))
    lines = []
    if args.which in ("published", "both"):
        from engine.data import load_dataset

        reference = json.loads(find_reference(args.reference).read_text())
        genotype = SearchSpace().decode(reference["chromosome"])
        data = load_dataset("adrenalmnist3d", 28, device="cpu")
        config = TrainingConfig(batch_size=args.batch_size, channels_last=True)
        print(f"published: {genotype.compact}, AdrenalMNIST3D 28^3 train split ({len(data.train)}), batch {args.batch_size}")
        lines.append(report(profile_training("published", genotype, data, config, args.seed, args.batches, amp,
                                             not args.no_eval), args.top))
    if args.which in ("quick", "both"):
        from engine.executors import candidate_seed
        from engine.session import load_data, make_strategy, space_of

        quick = load_profile("quick", ["run.device='cpu'"])
        space = space_of(quick)
        batch = make_strategy(quick, space).ask()
        genotype = space.decode(batch.vectors[0])
        data = load_data(quick, "cpu").search_subset(quick.data.search_fraction, quick.run.seed)
        print(f"quick: candidate {batch.first_id} {genotype.compact}, search subset ({len(data.train)} train, "
              f"{len(data.val)} val), batch {quick.training.batch_size}")
        lines.append(report(profile_training("quick", genotype, data, quick.training,
                                             candidate_seed(quick.run.seed, batch.first_id), args.quick_batches, amp,
                                             not args.no_eval), args.top))
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
