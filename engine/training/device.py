"""Devices for training: setting one up, warming it up, freeing it, and telling OOM apart.

This module owns the per-device decisions every training shares: cuDNN
autotuning (off by default: a search trains each architecture for a few
epochs, and autotuning costs seconds per new architecture, measured ~35 s on
an H200, so it never pays back), the one-time warm-up that moves the CUDA
context and library loading out of the first candidate's time, releasing
memory after a candidate, recognising an out-of-memory error, and whether the
CPU computes bf16 natively (what decides bf16 autocast on the CPU).

It must not publish events or know about the search.
"""
from __future__ import annotations

import functools
import gc
import sys
import time

import torch

__all__ = [
    "resolve_device",
    "prepare_device",
    "warm_up",
    "release",
    "is_out_of_memory",
    "cpu_has_native_bf16",
    "cpuinfo_has_native_bf16",
    "BF16_CPU_FLAGS",
]

# x86 flags of instructions that compute on bf16 (AVX-512 BF16 dot products, AMX tiles);
# without one, oneDNN emulates bf16 and autocast on the CPU is slower than fp32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_device(device: str, what: str = "run.device") -> str:
    """Map ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` to a torch device string that exists here.

    Args:
        device: the name the user gave.
        what: how the user gave it (``run.device``, ``--device``), for the message.

    Raises:
        engine.errors.SessionError: an unknown name, CUDA where there is none, or no such GPU.
    """
    import re

    from ..errors import SessionError

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if m is None:
        raise SessionError(f"{what} = {device!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise SessionError(f"{what} = {device!r} but CUDA is not available here; use 'auto' or 'cpu'")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise SessionError(f"{what} = {device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return f"cuda:{index}"


def prepare_device(device: str | torch.device, cudnn_benchmark: bool = False) -> torch.device:
    """The torch device for ``device``; on CUDA, sets cuDNN autotuning as asked (process-wide)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
        if dev.index is not None:
            torch.cuda.set_device(dev)
    return dev


def warm_up(device: str | torch.device, channels: int = 1, size: int = 8) -> float:
    """Create the CUDA context and load the conv / norm / optimizer kernels once; returns the seconds taken.

    A no-op (0.0) on the CPU. Runs one forward and backward pass of a tiny 3D
    convolution with instance norm, Mish and Adam, so the first candidate of a
    search does not pay for lazy module loading.
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        return 0.0
    t0 = time.perf_counter()
    net = torch.nn.Sequential(
        torch.nn.Conv3d(channels, 4, 3, padding=1),
        torch.nn.InstanceNorm3d(4, affine=True),
        torch.nn.Mish(),
        torch.nn.BatchNorm3d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    ).to(dev)
    optimizer = torch.optim.Adam(net.parameters())
    x = torch.rand(2, channels, size, size, size, device=dev)
    y = torch.zeros(2, dtype=torch.long, device=dev)
    for autocast in (False, True):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize(dev)
    del net, optimizer, x, y, loss
    release(dev)
    return time.perf_counter() - t0


def release(device: torch.device) -> None:
    """Free what the last training left behind (collect garbage; empty the CUDA cache)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA (or other accelerator) out-of-memory error."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None) or getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def cpuinfo_has_native_bf16(cpuinfo: str) -> bool:
    """Whether a ``/proc/cpuinfo`` text says every processor has a bf16 instruction set.

    Looks at the x86 ``flags`` lines for one of ``BF16_CPU_FLAGS``; a text
    without any ``flags`` line (another architecture, an empty file) is False.
    """
    found = False
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if not sep or name.strip() != "flags":
            continue
        if BF16_CPU_FLAGS.isdisjoint(value.split()):
            return False
        found = True
    return found


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU computes bf16 natively (Linux x86 with AVX-512 BF16 or AMX, and oneDNN).

    Read once per process from ``/proc/cpuinfo``; False on other systems, when
    the file cannot be read, or when torch was built without oneDNN.
    """
    if not sys.platform.startswith("linux") or not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    return cpuinfo_has_native_bf16(text)
