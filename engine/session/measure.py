"""Model size of candidates, counted off the device's critical path.

Counting FLOPs with fvcore traces the network (0.02-0.3 s per candidate on
the session's thread, measured on an H200 host), which would leave the GPU
idle between candidates. ``ComplexityCounter`` counts in a background thread
as soon as a batch is triaged, so by the time a candidate starts (or while
the previous one trains) its numbers are ready.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["ComplexityCounter", "count_complexity"]


def count_complexity(genotype: Any, in_channels: int, num_classes: int, input_size: Any) -> tuple[int, int]:
    """``(params, flops)`` of the network of ``genotype`` (fvcore's convention, one 1xCxDxHxW input)."""
    from ..complexity import count_flops, count_params
    from ..model import INIT_LOCK, build_network

    with INIT_LOCK:  # building draws from the global RNG; a trainer may be seeding it right now
        net = build_network(genotype, in_channels=in_channels, num_classes=num_classes)
    return count_params(net), count_flops(net, input_size=input_size)


class ComplexityCounter:
    """Counts ``(params, flops)`` of genotypes in one background thread.

    Args:
        in_channels, num_classes: the network's input channels and classes.
        input_size: the edge S of cubic inputs, or ``(D, H, W)``.
    """

    def __init__(self, in_channels: int, num_classes: int, input_size: Any) -> None:
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.input_size = input_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nas3d-flops")
        self._cache: dict[str, Future] = {}

    def submit(self, genotype: Any) -> Future:
        """Start counting (once per architecture key); the future gives ``(params, flops)``."""
        key = genotype.key
        if key not in self._cache:
            self._cache[key] = self._pool.submit(
                count_complexity, genotype, self.in_channels, self.num_classes, self.input_size
            )
        return self._cache[key]

    def get(self, genotype: Any) -> tuple[int, int]:
        """The counts of ``genotype`` (waits for the background thread if needed)."""
        return self.submit(genotype).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
