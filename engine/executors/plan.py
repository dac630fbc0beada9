"""Worker plans: which concurrent trainings a local executor runs, on which device, with how many CPU threads.

Pure planning: no processes, no threads, no torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["WorkerSlot", "plan_workers", "available_cores"]


def available_cores() -> int:
    """CPU cores this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkerSlot:
    """One concurrent training: its name (the ``worker`` of the callbacks), device and CPU threads."""

    name: str
    device: str
    threads: int


def plan_workers(
    device: str,
    workers: int,
    per_gpu: int = 1,
    run_device: str = "auto",
    cuda_devices: int = 0,
    cores: int | None = None,
) -> list[WorkerSlot]:
    """The slots a local executor runs.

    CPU (``device == "cpu"``): ``workers`` slots named ``w1:cpu`` ..., each
    with ``max(1, cores // workers)`` threads; ``per_gpu`` is ignored.

    CUDA: ``workers`` groups, group g on GPU ``gpus[g % len(gpus)]`` where
    ``gpus`` is every visible GPU (``run_device`` ``auto`` / ``cuda``) or the
    one named (``cuda:N``); each group is ``per_gpu`` slots, named
    ``w{g}:cuda:{i}`` (or ``w{g}.{m}:cuda:{i}`` when ``per_gpu > 1``).

    >>> [s.name for s in plan_workers("cuda:0", 2, 2, "auto", cuda_devices=2, cores=8)]
    ['w1.1:cuda:0', 'w1.2:cuda:0', 'w2.1:cuda:1', 'w2.2:cuda:1']
    >>> plan_workers("cpu", 2, 4, cores=2)
    [WorkerSlot(name='w1:cpu', device='cpu', threads=1), WorkerSlot(name='w2:cpu', device='cpu', threads=1)]
    """
    cores = cores or available_cores()
    workers = max(1, int(workers))
    per_gpu = max(1, int(per_gpu))
    if not device.startswith("cuda"):
        threads = max(1, cores // workers)
        return [WorkerSlot(f"w{i + 1}:cpu", "cpu", threads) for i in range(workers)]
    if run_device.startswith("cuda:"):
        gpus = [int(run_device.split(":", 1)[1])]
    else:
        gpus = list(range(max(1, cuda_devices))) if cuda_devices else [int(device.split(":", 1)[1]) if ":" in device else 0]
    total = workers * per_gpu
    threads = max(1, cores // total)
    slots = []
    for g in range(workers):
        gpu = gpus[g % len(gpus)]
        for m in range(per_gpu):
            name = f"w{g + 1}.{m + 1}" if per_gpu > 1 else f"w{g + 1}"
            slots.append(WorkerSlot(f"{name}:cuda:{gpu}", f"cuda:{gpu}", threads))
    return slots
