"""Moving the search subset to other processes.

``pack_dataset`` turns the resident search subset into plain CPU tensors and
metadata that a worker process (a spawned pool worker, a Ray task) can load
once and make resident on its own device with ``unpack_dataset``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..data import Dataset

__all__ = ["pack_dataset", "unpack_dataset"]


def pack_dataset(data: Dataset) -> dict[str, Any]:
    """The search subset as plain CPU tensors (train and val only) plus its metadata."""
    import dataclasses

    meta = {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in ("train", "val", "test")}
    out: dict[str, Any] = {"meta": meta}
    for name in ("train", "val"):
        split = getattr(data, name)
        out[f"{name}_x"] = split.x.detach().to("cpu").contiguous()
        out[f"{name}_y"] = split.y.detach().to("cpu").contiguous()
    return out


def unpack_dataset(packed: dict[str, Any], device: str) -> Dataset:
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

