"""The profile's sections: every key, its default and its check, in one place.

Each section is a frozen dataclass; each field carries its checker in its
metadata, so the schema the validator enforces and the values the engine
reads are one definition. Defaults are the published protocol (the paper's).
``TrainingConfig`` is also what the trainer takes: there is no second copy of
the training settings.

Pure Python: no torch, no I/O.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TypeVar

from ..catalog import DATASETS, SIZES
from ..pruning import PRUNING_RULES
from ..space import MAX_FILTERS, MAX_MODULES, MAX_STACKS
from ..vocab import FITNESSES, STRATEGIES as _STRATEGIES, TIE_BREAKS, Fitness, PruningRule, Strategy, TieBreak
from . import checks as c

__all__ = [
    "RunConfig",
    "DataConfig",
    "SpaceConfig",
    "SearchConfig",
    "TrainingConfig",
    "FinalConfig",
    "ExecutorConfig",
    "SECTIONS",
    "checker",
    "keys",
    "AMP_MODES",
    "CPU_AUTO_BF16",
    "STRATEGIES",
    "CONCURRENCY",
]

AMP_MODES = ("auto",)  # besides true / false
# Whether training.amp = "auto" trains search candidates in bf16 on a CPU with native bf16
# (it always does on CUDA). Off until benchmarks/amp_ranking.py --device cpu shows that bf16
# keeps the search's ranking and decisions (issue 30); "true" uses bf16 on such CPUs already.
CPU_AUTO_BF16 = False
STRATEGIES = _STRATEGIES  # ("ode", "random", "exhaustive"): engine.vocab
CONCURRENCY = ("auto", "threads", "processes")


_T = TypeVar("_T")


def key(default: _T, check: c.Checker) -> _T:
    """A profile key: its default and its checker."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults (sections are frozen)")
    return field(default=default, metadata={"check": check})


def checker(section: type, name: str) -> c.Checker:
    """The checker of ``section.name``."""
    check: c.Checker = next(f.metadata["check"] for f in dataclasses.fields(section) if f.name == name)
    return check


def keys(section: type) -> list[str]:
    """The key names of a section, in order."""
    return [f.name for f in dataclasses.fields(section)]


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: identity and placement of a run."""

    name: str = key("quick", c.string(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "a name of 1-100 letters, digits, '.', '_', '-'"))
    seed: int = key(42, c.integer(0, 2**63 - 1, "an integer >= 0"))
    output_dir: str = key("runs", c.string(allowed="a non-empty path", nonempty=True))
    device: str = key("auto", c.string(r"auto|cpu|cuda|cuda:\d+", 'one of "auto", "cpu", "cuda", "cuda:N"'))
    description: str = key("", c.string())


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which dataset, and how much of it the search sees."""

    dataset: str = key("adrenalmnist3d", c.choice(tuple(DATASETS)))
    size: int = key(28, c.one_of_ints(SIZES, "28 or 64"))
    # empty: the bundled file (Adrenal 28³) or medmnist's default root
    root: str = key("", c.string(allowed="a path (empty: the bundled file or medmnist's default root)"))
    download: bool = key(False, c.boolean())
    search_fraction: float = key(0.25, c.number(0.0, 1.0, lo_open=True, what="a number > 0 and <= 1"))
    # an own dataset file (MedMNIST npz layout); replaces dataset / size / root
    path: str = key("", c.string(allowed="a path to an .npz file in MedMNIST's layout (empty: use data.dataset)"))


@dataclass(frozen=True)
class SpaceConfig:
    """``[space]``: the search space (the paper's by default)."""

    ops: tuple[int, ...] = key(tuple(range(c.NUM_OPS)), c.operations())
    stacks: tuple[int, ...] = key((1, 2), c.int_list(1, MAX_STACKS, what=f"integers 1..{MAX_STACKS}", example="[1, 2]"))
    modules: tuple[int, ...] = key((1, 2), c.int_list(1, MAX_MODULES, what=f"integers 1..{MAX_MODULES}", example="[1, 2]"))
    filters: tuple[int, ...] = key((8, 16, 32), c.int_list(1, MAX_FILTERS, what=f"integers 1..{MAX_FILTERS}", example="[8, 16, 32]"))
    max_edges: int = key(9, c.integer(1, 21))


@dataclass(frozen=True)
class SearchConfig:
    """``[search]``: the strategy's settings and the stopping rules."""

    population: int = key(20, c.integer(4, what="an integer >= 4"))
    mutation_factor: float = key(0.5, c.number(0.0, 2.0, lo_open=True))
    crossover_rate: float = key(0.5, c.number(0.0, 1.0))
    jumping_rate: float = key(0.3, c.number(0.0, 1.0))
    budget: int = key(200, c.integer(1))
    time_budget_minutes: float = key(0.0, c.number(0.0, what="a number >= 0 (0: no time limit)"))
    fitness: Fitness = key("val_acc", c.choice(FITNESSES))
    tie_break: TieBreak = key("val_auc", c.choice(TIE_BREAKS))
    strategy: Strategy = key("ode", c.choice(STRATEGIES))
    # Stop trainings that can no longer win (engine.pruning): "parent" judges a DE
    # trial against its target parent's learning curve (and batches without a
    # parent against the median of earlier candidates); "median" judges every
    # candidate against the median. "none" is the published protocol.
    pruning: PruningRule = key("none", c.choice(PRUNING_RULES))
    pruning_warmup: int = key(2, c.integer(1, what="an integer >= 1 (epochs before any pruning decision)"))
    pruning_margin: float = key(0.0, c.number(0.0, 1.0, what="a number in [0, 1] (fitness units below the bar)"))


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: how one candidate is trained (also the trainer's settings).

    ``amp``: bf16 autocast; ``"auto"`` uses it for search candidates and not
    for final training. On the CPU only where it computes bf16 natively, and
    only when asked for explicitly (``true``) while ``CPU_AUTO_BF16`` is off
    (see ``uses_amp``). ``cudnn_benchmark``: cuDNN
    autotuning, which costs seconds per new architecture. Search candidates
    that run longer than ``checkpoint_after_seconds`` write a checkpoint after
    every epoch (final training always does).
    """

    epochs: int = key(50, c.integer(1))
    patience: int = key(5, c.integer(1))
    batch_size: int = key(128, c.integer(1))
    lr: float = key(1e-3, c.number(0.0, lo_open=True))
    loss: str = key("cross_entropy", c.choice(("cross_entropy", "bce")))
    amp: bool | str = key(False, c.bool_or_choice(AMP_MODES))
    channels_last: bool = key(True, c.boolean())
    cudnn_benchmark: bool = key(False, c.boolean())
    max_batches_per_epoch: int = key(0, c.integer(0, what="an integer >= 0 (0: all batches)"))
    checkpoint_after_seconds: float = key(
        120.0, c.number(0.0, what="a number >= 0 (seconds; 0: every epoch of every candidate)")
    )

    def uses_amp(self, final: bool, device_type: str, cpu_bf16: bool = False) -> bool:
        """Whether bf16 autocast is on for this training.

        Args:
            final: a final retraining (``"auto"`` keeps those fp32).
            device_type: ``"cuda"``, ``"cpu"``, ...
            cpu_bf16: the CPU computes bf16 natively
                (``engine.training.device.cpu_has_native_bf16()``); without it
                the CPU always trains fp32 (emulated bf16 is slower).
        """
        auto = not final and (device_type == "cuda" or CPU_AUTO_BF16)
        if device_type == "cuda" or (device_type == "cpu" and cpu_bf16):
            return auto if self.amp == "auto" else bool(self.amp)
        return False


@dataclass(frozen=True)
class FinalConfig:
    """``[final]``: retraining of the top-k on the full training set."""

    top_k: int = key(3, c.integer(0, what="an integer >= 0 (0 skips the final phase)"))
    epochs: int = key(50, c.integer(1))
    seeds: tuple[int, ...] = key((0, 1, 2), c.int_list(0, 2**63 - 1, what="integers >= 0", example="[0, 1, 2]"))
    # Retrainings at once on the CPU, each in its own thread with an equal share of torch's threads
    # (engine.session.final.side_by_side); 0 = auto (2 where torch has at least 2 threads). CUDA: one at a time.
    parallel: int = key(0, c.integer(0, what="an integer >= 0 (0: auto)"))


@dataclass(frozen=True)
class ExecutorConfig:
    """``[executor]``: where and how many candidates are trained at once."""

    kind: str = key("local", c.choice(("local", "ray", "table")))
    workers: int = key(1, c.integer(1))
    per_gpu: int = key(1, c.integer(1))
    address: str = key("", c.string(allowed='a Ray address such as "auto" or "ray://host:10001" (empty: start locally)'))
    # how several candidates share a device: threads in this process (one CUDA
    # stream each) or worker processes; auto = threads on CUDA, processes on CPU
    concurrency: str = key("auto", c.choice(CONCURRENCY))
    # kind = "table": the tabular benchmark (`nas3d-tui bench table`) each training is looked up in
    table: str = key("", c.string(allowed="the path of a table file written by `nas3d-tui bench table`"))


SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "data": DataConfig,
    "space": SpaceConfig,
    "search": SearchConfig,
    "training": TrainingConfig,
    "final": FinalConfig,
    "executor": ExecutorConfig,
}
