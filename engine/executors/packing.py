"""Moving the search subset to other processes, and the test-only out-of-memory model.

``pack_dataset`` turns the resident search subset into plain CPU tensors and
metadata that a worker process (a spawned pool worker, a Ray task) can load
once and make resident on its own device with ``unpack_dataset``.

``simulated_oom_model`` is a ``model_fn`` for tests only: it raises the error a
CUDA allocation failure raises, so the retry-alone rule can be exercised on a
machine without a GPU.
"""
from __future__ import annotations

from typing import Any

__all__ = ["pack_dataset", "unpack_dataset", "simulated_oom_model"]


def pack_dataset(data: Any) -> dict[str, Any]:
    """The search subset as plain CPU tensors (train and val only) plus its metadata."""
    import dataclasses

    meta = {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in ("train", "val", "test")}
    out: dict[str, Any] = {"meta": meta}
    for name in ("train", "val"):
        split = getattr(data, name)
        out[f"{name}_x"] = split.x.detach().to("cpu").contiguous()
        out[f"{name}_y"] = split.y.detach().to("cpu").contiguous()
    return out


def unpack_dataset(packed: dict[str, Any], device: str) -> Any:
    """A ``Dataset`` resident on ``device`` from ``pack_dataset``'s dict (test = val: never used in search)."""
    import torch

    from ..data import Dataset, Split

    def split(name: str) -> Split:
        x, y = packed[f"{name}_x"], packed[f"{name}_y"]
        if not isinstance(x, torch.Tensor):  # numpy arrays from Ray's object store (read-only)
            x, y = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
        return Split(x.to(device), y.to(device))

    val = split("val")
    return Dataset(**packed["meta"], train=split("train"), val=val, test=val)


def simulated_oom_model(genotype: Any, **_: Any) -> Any:
    """TEST ONLY ``model_fn``: raises the error a CUDA allocation failure raises."""
    import torch

    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated for a test: device shared)")
