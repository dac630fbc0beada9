"""Peak memory of one training: the CUDA allocator's high-water mark, or RSS growth on the CPU.

Owned here so the trainer, the final phase and the benchmarks measure memory
the same way. It must not publish anything.
"""
from __future__ import annotations

import resource
import sys

import torch

__all__ = ["PeakMemory"]


class PeakMemory:
    """CUDA peak allocation on ``device``, or on the CPU the process RSS growth over a run (approximate).

    On CUDA the peak is per device and per process: candidates trained at
    once by threads of one process share it, so it is an upper bound there.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._rss0 = 0
        self._maxrss0 = 0
        self._peak = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        else:
            self._rss0 = self._rss()
            self._peak = self._rss0
            self._maxrss0 = self._maxrss()

    @staticmethod
    def _rss() -> int:
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except Exception:  # psutil missing or unsupported platform
            return 0

    @staticmethod
    def _maxrss() -> int:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) * (1 if sys.platform == "darwin" else 1024)

    def sample(self) -> None:
        """Take a CPU reading now (CUDA keeps its own high-water mark)."""
        if not self.cuda:
            self._peak = max(self._peak, self._rss())

    def megabytes(self) -> float | None:
        """The peak so far, in MB (None when no reading is possible)."""
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self._rss0 == 0:
            return None
        peak = self._peak
        maxrss = self._maxrss()
        if maxrss > self._maxrss0:  # the process high-water mark was reached during this run
            peak = max(peak, maxrss)
        return max(0.0, (peak - self._rss0) / 2**20)
