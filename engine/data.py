"""Datasets resident on the device: tensors of MedMNIST3D and own files, search subsets, batching.

This module owns how a checked dataset file (``engine.datafile``: MedMNIST's
or a user's own; where MedMNIST's come from is ``engine.data_source``) becomes
tensors (uint8 / 255 or float as stored, ``N x C x D x H x W``, loaded once onto
the target device), the seeded search subset (rows from
``engine.search_subset``), and batching by indexing a permutation on the
device -- no per-sample Python work anywhere.

It must not know about models, training or the search, and it does not go
through ``medmnist``'s ``Dataset`` class (that is a per-sample path). Every
problem a user can cause (unknown dataset, missing file, malformed file) is a
``DataError`` (``engine.data_source``) with a one-line message; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .datafile import SPLITS, DataFile, read_datafile
from .data_source import find_dataset
from .search_subset import subset_rows

__all__ = [
    "Split",
    "Dataset",
    "load_dataset",
    "load_datafile",
    "iterate_batches",
]


@dataclass(frozen=True, eq=False)
class Split:
    """One split, resident on its device.

    Attributes:
        x: float32 tensor ``N x 1 x S x S x S`` with values in [0, 1] (uint8 / 255).
        y: int64 tensor ``N`` of class indices.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor) -> "Split":
        """The rows ``index`` (a LongTensor) as a new resident split."""
        index = index.to(self.y.device)
        return Split(self.x.index_select(0, index), self.y.index_select(0, index))


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset with its three splits resident on ``device``.

    Attributes:
        flag: medmnist flag (``adrenalmnist3d``, ...) or, for an own file, its name.
        size: the largest edge of the volumes (28 or 64 for MedMNIST3D).
        task: ``binary-class`` or ``multi-class``.
        num_classes: number of classes.
        path: the npz file it was read from.
        train, val, test: the splits.
        class_names: names by class index (empty when unknown).
        scaling: how stored voxels became inputs (``divide-255`` or ``none``).
        source: how an own file was made (e.g. the NIfTI import's settings).
    """

    flag: str
    size: int
    task: str
    num_classes: int
    path: str
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...] = ()
    scaling: str = "divide-255"
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.train.x.device

    @property
    def channels(self) -> int:
        """C of the ``N x C x D x H x W`` inputs."""
        return int(self.train.x.shape[1])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(D, H, W)`` of one volume."""
        return tuple(int(d) for d in self.train.x.shape[2:])  # type: ignore[return-value]

    def split(self, name: str) -> Split:
        """The split called ``name`` (train / val / test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}")
        part: Split = getattr(self, name)
        return part

    def search_subset(self, fraction: float, seed: int) -> "Dataset":
        """A seeded random ``fraction`` of train and of val (test untouched).

        Each subset keeps at least one sample and is sorted by original index,
        so the same ``(fraction, seed)`` always gives the same rows.

        Args:
            fraction: in (0, 1]; 1 returns the dataset itself.
            seed: seeds the draw (independent of any other RNG).

        Raises:
            ValueError: fraction outside (0, 1].
        """
        if fraction == 1.0:
            return self
        rows = subset_rows({name: len(self.split(name)) for name in ("train", "val")}, fraction, seed)
        parts = {name: self.split(name).subset(torch.from_numpy(index.astype(np.int64))) for name, index in rows.items()}
        return replace(self, train=parts["train"], val=parts["val"])






def _resident(df: DataFile, flag: str, device: torch.device, class_names: tuple[str, ...] = ()) -> Dataset:
    """The checked file's splits as tensors on ``device``."""
    splits = {s: _to_split(df.splits[s].images, df.splits[s].labels, device) for s in SPLITS}
    return Dataset(
        flag=flag,
        size=max(df.shape),
        task=df.task,
        num_classes=df.num_classes,
        path=df.path,
        class_names=tuple(df.class_names) or tuple(class_names),
        scaling=df.scaling,
        source=dict(df.source),
        **splits,
    )


def _to_split(images: np.ndarray, labels: np.ndarray, device: torch.device) -> Split:
    # uint8 volumes are copied as uint8 (4x smaller than float32) and converted on the
    # device. float32(x) / 255 equals medmnist's float64 x / 255.0 rounded to float32 for
    # every uint8 value, so inputs are bit-identical to the published pipeline.
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.to(torch.float32).div_(255.0) if images.dtype == np.uint8 else x.to(torch.float32)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    return Split(x=x, y=y)


def load_dataset(
    flag: str,
    size: int = 28,
    root: str | os.PathLike[str] = "",
    download: bool = False,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Load a MedMNIST3D dataset with all three splits resident on ``device``.

    Args:
        flag: one of ``DATASETS`` (e.g. ``"adrenalmnist3d"``).
        size: 28 or 64 (``<flag>.npz`` or ``<flag>_64.npz``).
        root: directory holding the npz; empty uses the bundled AdrenalMNIST3D
            28^3 file, or medmnist's default root for the others.
        download: when the file is missing, fetch it with medmnist's downloader
            (needs network) into ``root`` (or medmnist's default root).
        device: where the tensors live (``"cpu"``, ``"cuda"``, ...).

    Returns:
        The ``Dataset``; ``x`` is float32 ``N x 1 x S x S x S`` in [0, 1], ``y`` int64 ``N``.

    Raises:
        DataError: unknown dataset or size, missing file (the message names the
            path and how to get it), download failure, or a file that is not a
            MedMNIST3D npz of that size (wrong keys, shapes, dtypes or labels).
    """
    info, path = find_dataset(flag, size, root, download)
    df = read_datafile(path, expect_shape=(size, size, size), expect_channels=1, num_classes=info.num_classes)
    return _resident(df, flag, torch.device(device), class_names=info.labels)


def load_datafile(path: str | os.PathLike[str], device: str | torch.device = "cpu", min_size: int = 1) -> Dataset:
    """Load an own dataset file (MedMNIST's npz layout; ``data.path``) resident on ``device``.

    Its classes, channels, volume shape and scaling come from the file
    (``engine.datafile.read_datafile``); its name is the file's stem.

    Raises:
        DataError: the file is missing or fails a check (one line naming the array and the problem).
    """
    p = Path(path).expanduser()
    df = read_datafile(p, min_size=min_size)
    return _resident(df, p.stem, torch.device(device))




def iterate_batches(
    split: Split,
    batch_size: int,
    generator: torch.Generator | None = None,
    perm: torch.Tensor | None = None,
    shuffle: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches of ``split`` by indexing a permutation on its device.

    The permutation is drawn on the CPU (from ``generator`` when given, so runs
    are reproducible on any device), copied to the device once, and sliced
    there; no per-sample work and no host synchronisation. The last batch may
    be smaller.

    Args:
        split: the resident split.
        batch_size: rows per batch (> 0).
        generator: CPU ``torch.Generator`` for the shuffle.
        perm: an explicit order (LongTensor of row indices) instead of a shuffle.
        shuffle: False iterates in order (evaluation) and ignores ``generator``.

    Raises:
        ValueError: ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(split)
    device = split.y.device
    if perm is None and not shuffle:
        for start in range(0, n, batch_size):
            yield split.x[start : start + batch_size], split.y[start : start + batch_size]
        return
    if perm is None:
        perm = torch.randperm(n, generator=generator)
    perm = perm.to(device, non_blocking=True)
    for start in range(0, perm.shape[0], batch_size):
        index = perm[start : start + batch_size]
        yield split.x.index_select(0, index), split.y.index_select(0, index)
