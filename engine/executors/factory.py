"""Which executor a profile asks for, and whether it can run here.

``executor.kind = "table"``: each training is looked up in a tabular
benchmark (``executor.table``) instead of run. ``executor.kind = "ray"``:
Ray tasks. ``executor.kind = "local"``: one
candidate at a time in the session's thread when ``workers = 1`` and
``per_gpu = 1`` (or ``per_gpu > 1`` on the CPU, where it means nothing);
otherwise several at once -- in threads of this process (one CUDA stream
each) or in worker processes, as ``executor.concurrency`` says (``auto``:
threads on CUDA, processes on the CPU).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Evaluator, TrainSpec
from .plan import plan_workers

if TYPE_CHECKING:
    from ..control import SessionGate
    from ..data import Dataset
    from ..profile import Profile
    from ..profile.sections import ExecutorConfig
    from ..training.loop import ModelFactory

__all__ = ["make_evaluator", "check_executor", "concurrency_of"]


def check_executor(executor: ExecutorConfig, profile: Profile | None = None) -> None:
    """Fail early, with one line, when the ``[executor]`` section cannot run here.

    Raises:
        engine.errors.SessionError: ``kind = "ray"`` and Ray is not installed.
        engine.bench_table.TableError: ``kind = "table"`` and no table, a bad table, or a
            table built with another protocol than ``profile``'s.
    """
    if getattr(executor, "kind", "local") == "table":
        from ..bench_table import TableError, check_protocol, read_table

        if not executor.table:
            raise TableError('executor.kind = "table" needs executor.table = "TABLE.json" (from `nas3d-tui bench table`)')
        table = read_table(executor.table)
        if profile is not None:
            check_protocol(table, profile.to_dict(), executor.table)
    if getattr(executor, "kind", "local") == "ray":
        from .ray import import_ray

        import_ray()


def concurrency_of(executor: ExecutorConfig, device: str) -> str:
    """``sequential``, ``threads``, ``processes`` or ``ray``: how the executor trains candidates."""
    if executor.kind in ("ray", "table"):
        return str(executor.kind)
    cuda = device.startswith("cuda")
    several = executor.workers > 1 or (cuda and executor.per_gpu > 1)
    if not several:
        return "sequential"
    if executor.concurrency == "auto":
        return "threads" if cuda else "processes"
    return str(executor.concurrency)


def make_evaluator(
    executor: ExecutorConfig,
    run_device: str,
    data: Dataset,
    spec: TrainSpec,
    device: str,
    control: SessionGate | None = None,
    *,
    model_factory: ModelFactory | None = None,
) -> Evaluator:
    """The evaluator for the profile's ``[executor]`` section.

    Args:
        executor: ``profile.executor``.
        run_device: ``profile.run.device`` (``auto``, ``cuda``, ``cuda:N``, ``cpu``).
        data: the search subset resident on ``device``.
        spec: training settings and fitness.
        device: the session's resolved device.
        control: the session's gate (pause / stop flags; ``Control``).
        model_factory: builds each network (None: ``engine.model.build_network``);
            it must pickle for processes and Ray. Tests inject failures with it.

    Raises:
        engine.errors.SessionError: Ray was asked for and is not installed.
    """
    how = concurrency_of(executor, device)
    if how == "table":
        from ..bench_table import read_table
        from .table import TableEvaluator

        return TableEvaluator(read_table(executor.table), spec, control, where=executor.table)
    if how == "ray":
        from .ray import RayEvaluator

        return RayEvaluator(
            data,
            spec,
            control,
            address=executor.address,
            workers=executor.workers,
            per_gpu=executor.per_gpu,
            use_gpus=run_device != "cpu",
            model_factory=model_factory,
        )
    if how == "sequential":
        from .sequential import SequentialEvaluator

        return SequentialEvaluator(data, spec, device, control, model_factory)
    cuda = 0
    if device.startswith("cuda"):
        import torch

        cuda = torch.cuda.device_count()
    slots = plan_workers(device, executor.workers, executor.per_gpu, run_device, cuda_devices=cuda)
    if how == "threads":
        from .threads import ThreadEvaluator

        return ThreadEvaluator(data, spec, control, slots, model_factory=model_factory)
    from .pool import LocalPoolEvaluator

    return LocalPoolEvaluator(data, spec, control, slots, model_factory=model_factory)
