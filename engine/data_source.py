"""Where a dataset file comes from: MedMNIST3D's files on disk, the bundled one, the downloader.

This module owns where the six MedMNIST3D datasets come from: a root holding
``<flag>.npz`` / ``<flag>_64.npz``, the AdrenalMNIST3D 28^3 file bundled in
``nas3d_tui/data``, or medmnist's own root and downloader. What is in a file
is ``engine.datafile``'s; making it tensors is ``engine.data``'s.

It must not import torch. Every problem a user can cause (unknown dataset,
missing file, failed download) is a ``DataError`` with a one-line message.
"""
from __future__ import annotations

import os
from pathlib import Path

from .catalog import DATASETS, SIZES, DatasetInfo, file_name
from .datafile import DataFileError

__all__ = ["DataError", "BUNDLED_FLAG", "bundled_path", "dataset_path", "find_dataset"]

BUNDLED_FLAG = "adrenalmnist3d"

DataError = DataFileError  # a dataset cannot be used; the message is one line meant for the user


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


def check_flag_size(flag: str, size: int) -> DatasetInfo:
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
    check_flag_size(flag, size)
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
            import medmnist  # type: ignore[import-untyped,unused-ignore]

        root.mkdir(parents=True, exist_ok=True)
        cls = getattr(medmnist, info.python_class)
        cls(split="train", download=True, root=str(root), size=size)
    except Exception as exc:  # medmnist raises several kinds, with multi-line text
        first = " ".join(str(exc).split())[:200]
        raise DataError(
            f"download of {info.flag} (size {size}) into {root} failed: {first or type(exc).__name__}"
            f"; put the file from {info.url(size)} there instead"
        ) from None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError as exc:  # e.g. a name too long for the file system
        raise DataError(f"{path}: {exc.strerror or exc}") from None


def find_dataset(flag: str, size: int = 28, root: str | os.PathLike[str] = "", download: bool = False) -> tuple[DatasetInfo, Path]:
    """The catalog entry of ``flag`` and the path of its npz at ``size``, fetched first when asked.

    Args:
        flag: one of ``DATASETS``.
        size: 28 or 64.
        root: directory holding the npz (empty: ``dataset_path``'s default).
        download: when the file is missing, fetch it with medmnist's downloader
            (needs network) into ``root`` (or medmnist's default root).

    Raises:
        DataError: unknown dataset or size, a download failure, or a missing
            file (the message names the path and how to get it).
    """
    info = check_flag_size(flag, size)
    path = dataset_path(flag, size, root)
    if not _is_file(path) and download:
        _download(info, size, path.parent)
    if not _is_file(path):
        where = f"--set data.root=DIR with {path.name} in DIR"
        raise DataError(
            f"dataset file not found: {path}; get it with --set data.download=true (needs network), "
            f"or download {info.url(size)} and use {where}"
        )
    return info, path
