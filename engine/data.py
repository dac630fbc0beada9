"""Datasets on the device: MedMNIST3D and own files, resident tensors, search subsets, batching.

This module owns where the six MedMNIST3D datasets come from (a root holding
``<flag>.npz`` / ``<flag>_64.npz``, the AdrenalMNIST3D 28^3 file bundled in
``nas3d_tui/data``, or medmnist's own root and downloader), how a checked
dataset file (``engine.datafile``: MedMNIST's or a user's own) becomes
tensors (uint8 / 255 or float as stored, ``N x C x D x H x W``, loaded once onto
the target device), the seeded search subset, and batching by indexing a
permutation on the device -- no per-sample Python work anywhere.

It must not know about models, training or the search, and it does not go
through ``medmnist``'s ``Dataset`` class (that is a per-sample path). Every
problem a user can cause (unknown dataset, missing file, malformed file) is a
``DataError`` with a one-line message; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .catalog import DATASETS, SIZES, DatasetInfo, file_name
from .datafile import DataFile, DataFileError, read_datafile

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DataError",
    "Split",
    "Dataset",
    "SPLITS",
    "SIZES",
    "dataset_path",
    "bundled_path",
    "load_dataset",
    "load_datafile",
    "iterate_batches",
    "subset_rows",
]

SPLITS = ("train", "val", "test")
BUNDLED_FLAG = "adrenalmnist3d"


DataError = DataFileError  # a dataset cannot be used; the message is one line meant for the user




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
    class_names: tuple = ()
    scaling: str = "divide-255"
    source: dict = field(default_factory=dict)

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
        return getattr(self, name)

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
        return replace(self, **parts)


def subset_rows(sizes: dict[str, int], fraction: float, seed: int) -> dict[str, np.ndarray]:
    """The sorted row indices ``Dataset.search_subset`` keeps of each split (``sizes``: split -> rows, in order).

    Raises:
        ValueError: fraction outside (0, 1].
    """
    if not (0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"search fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    rows = {}
    for name, n in sizes.items():
        k = min(n, max(1, int(round(fraction * n))))
        rows[name] = np.sort(rng.choice(n, size=k, replace=False))
    return rows


def bundled_path() -> Path:
    """Path of the bundled AdrenalMNIST3D 28^3 npz (installed package or source tree)."""
    try:
        from importlib.resources import files

        candidate = files("nas3d_tui.data") / f"{BUNDLED_FLAG}.npz"
        path = Path(str(candidate))
        if path.is_file():
            return path
    except (ImportError, ModuleNotFoundError, TypeError, FileNotFoundError):
        pass
    return Path(__file__).resolve().parents[1] / "nas3d_tui" / "data" / f"{BUNDLED_FLAG}.npz"


def _default_root() -> Path:
    """medmnist's default root, ``~/.medmnist``, computed without importing medmnist
    (which creates the folder on import and warns when it cannot)."""
    return Path(os.path.expanduser("~")) / ".medmnist"


def _check_flag_size(flag: str, size: int) -> DatasetInfo:
    info = DATASETS.get(flag)
    if info is None:
        raise DataError(f"unknown dataset {flag!r}: use one of {', '.join(DATASETS)}")
    if size not in SIZES:
        raise DataError(f"unsupported size {size!r} for {flag}: use 28 or 64")
    return info


def dataset_path(flag: str, size: int = 28, root: str | os.PathLike[str] = "") -> Path:
    """Where ``load_dataset`` looks for the npz of ``flag`` at ``size``.

    An empty ``root`` means the bundled file for AdrenalMNIST3D 28^3 and
    medmnist's default root (``~/.medmnist``) otherwise.

    Raises:
        DataError: unknown dataset or size.
    """
    _check_flag_size(flag, size)
    name = file_name(flag, size)
    if str(root):
        return Path(root).expanduser() / name
    if flag == BUNDLED_FLAG and size == 28:
        return bundled_path()
    return _default_root() / name


def _download(info: DatasetInfo, size: int, root: Path) -> None:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # medmnist warns on import when ~ is not writable
            import medmnist

        root.mkdir(parents=True, exist_ok=True)
        cls = getattr(medmnist, info.python_class)
        cls(split="train", download=True, root=str(root), size=size)
    except Exception as exc:  # medmnist raises several kinds, with multi-line text
        first = " ".join(str(exc).split())[:200]
        raise DataError(
            f"download of {info.flag} (size {size}) into {root} failed: {first or type(exc).__name__}"
            f"; put the file from {info.url(size)} there instead"
        ) from None


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
    info = _check_flag_size(flag, size)
    path = dataset_path(flag, size, root)
    if not _is_file(path) and download:
        _download(info, size, path.parent)
    if not _is_file(path):
        where = f"--set data.root=DIR with {path.name} in DIR"
        raise DataError(
            f"dataset file not found: {path}; get it with --set data.download=true (needs network), "
            f"or download {info.url(size)} and use {where}"
        )
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


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError as exc:  # e.g. a name too long for the file system
        raise DataError(f"{path}: {exc.strerror or exc}") from None


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
