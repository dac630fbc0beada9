"""Resource sampling: GPU memory and utilisation, process RSS, at a steady rate.

GPU readings come from NVML (nvidia-ml-py) when it is installed and works,
else from ``torch.cuda``; on a machine without CUDA the sample says so (GPU
fields None, ``note="CPU"``) instead of inventing numbers.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

import psutil  # type: ignore[import-untyped,unused-ignore]

from .events import ResourceSample

__all__ = ["ResourceSampler"]


def _nvml_handles() -> list[object] | None:
    try:
        import pynvml  # type: ignore[import-not-found,unused-ignore]  # provided by nvidia-ml-py

        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:
        return None


class ResourceSampler:
    """Publishes a ``ResourceSample`` every ``interval`` seconds from a daemon thread.

    Args:
        publish: where samples go (usually ``EventBus.publish``).
        device: the torch device string the run uses ("cpu", "cuda:0", …).
        peak_fn: returns the current candidate's peak memory in MB, or None.
    """

    def __init__(
        self,
        publish: Callable[[ResourceSample], None],
        device: str,
        interval: float = 2.0,
        peak_fn: Callable[[], float | None] | None = None,
    ) -> None:
        self.publish = publish
        self.device = device
        self.interval = interval
        self.peak_fn = peak_fn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process(os.getpid())
        self._nvml = _nvml_handles() if device.startswith("cuda") else None

    def sample(self) -> ResourceSample:
        rss = self._process.memory_info().rss / 2**20
        peak = self.peak_fn() if self.peak_fn else None
        if not self.device.startswith("cuda"):
            return ResourceSample(device="cpu", rss_mb=rss, peak_memory_mb=peak, note="CPU")
        devices = []
        if self._nvml:
            import pynvml

            for i, h in enumerate(self._nvml):
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                util = pynvml.nvmlDeviceGetUtilizationRates(h)
                name = pynvml.nvmlDeviceGetName(h)
                devices.append(
                    {
                        "index": i,
                        "name": name.decode() if isinstance(name, bytes) else name,
                        "used_mb": mem.used / 2**20,
                        "total_mb": mem.total / 2**20,
                        "util": float(util.gpu),
                    }
                )
        else:
            import torch

            for i in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(i)
                devices.append(
                    {
                        "index": i,
                        "name": torch.cuda.get_device_name(i),
                        "used_mb": (total - free) / 2**20,
                        "total_mb": total / 2**20,
                        "util": None,
                    }
                )
        idx = int(self.device.split(":")[1]) if ":" in self.device else 0
        main = devices[idx] if idx < len(devices) else (devices[0] if devices else {})
        return ResourceSample(
            device=self.device,
            rss_mb=rss,
            gpu_name=main.get("name"),
            gpu_mem_used_mb=main.get("used_mb"),
            gpu_mem_total_mb=main.get("total_mb"),
            gpu_util=main.get("util"),
            peak_memory_mb=peak,
            note="NVML" if self._nvml else "torch.cuda",
            devices=devices,
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish(self.sample())
            except Exception:
                pass  # a failed reading must never stop the search
            self._stop.wait(self.interval)

    def start(self) -> "ResourceSampler":
        self._thread = threading.Thread(target=self._loop, name="nas3d-resources", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
