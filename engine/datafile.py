"""Dataset files in MedMNIST's npz layout: reading, checking and writing them.

This module owns the file format that MedMNIST3D files and users' own data
share, and every check that a file must pass before training sees it:

* arrays ``train_images``, ``train_labels``, ``val_images``, ``val_labels``,
  ``test_images``, ``test_labels`` (other arrays are ignored);
* images ``(N, D, H, W)`` or ``(N, C, D, H, W)``, uint8 (used as ``x / 255``)
  or float16/32/64 (used as stored, as float32);
* labels ``(N,)`` or ``(N, 1)``, integer class indices in ``[0, K)``
  (floats that are whole numbers are accepted and cast);
* an optional 0-d text array ``meta`` holding a JSON object: ``class_names``
  (a list of strings, by class index) and ``source`` (how the file was made,
  e.g. by ``nas3d-tui data import``; ``predict`` replays it on raw volumes).

Every problem is a ``DataFileError`` whose message is one line naming the
file, the array and the shape, dtype or value that is wrong. Arrays are read
with ``allow_pickle=False``; uint8 volumes are never copied to float here (the
conversion happens later, on the training device).

It must not import torch (the profile validator uses it) or know about models,
training or the search.
"""
from __future__ import annotations

import json
import os
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from numpy.lib.npyio import NpzFile

from .errors import UserError, one_line, os_error_message
from .atomic import atomic_write, check_regular_file

__all__ = [
    "SPLITS",
    "META_KEY",
    "DataFileError",
    "SplitArrays",
    "DataFile",
    "read_datafile",
    "write_datafile",
    "read_npy",
    "npz_members",
    "read_npz",
    "min_size_for_stacks",
]

SPLITS = ("train", "val", "test")
META_KEY = "meta"
FLOAT_DTYPES = (np.float16, np.float32, np.float64)

# Everything numpy, zipfile and zlib raise while opening an archive or reading a
# member of a damaged one (a bad CRC, a broken deflate stream, a .npy header
# that does not parse, a truncated member, a header claiming an absurd size).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    SyntaxError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
    tokenize.TokenError,
    struct.error,
    MemoryError,
)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_CHUNK_BYTES = 64 << 20  # scan float images for NaN/inf in pieces of this size


class DataFileError(UserError, ValueError):
    """A dataset file cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True, eq=False)
class SplitArrays:
    """One split as checked arrays.

    Attributes:
        images: ``(N, C, D, H, W)``, uint8 or float32, C-contiguous.
        labels: ``(N,)`` int64 class indices.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class DataFile:
    """A checked dataset file.

    Attributes:
        path: the file it was read from.
        splits: ``train``, ``val`` and ``test``.
        num_classes: K.
        channels: C.
        shape: ``(D, H, W)`` of every volume.
        task: ``binary-class`` when K == 2, else ``multi-class``.
        scaling: ``divide-255`` for uint8 images, ``none`` for float ones.
        class_names: names by class index from ``meta`` (empty when the file has none).
        source: ``meta["source"]``: how the file was made (empty when unknown).
    """

    path: str
    splits: dict[str, SplitArrays]
    num_classes: int
    channels: int
    shape: tuple[int, int, int]
    task: str
    scaling: str
    class_names: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)


def min_size_for_stacks(n_stacks: int) -> int:
    """Smallest volume side a network of ``n_stacks`` stacks accepts: ``2 ** (n_stacks - 1)``.

    A 2x2x2 max-pool (stride 2) sits between consecutive stacks, so each side
    is halved ``n_stacks - 1`` times and must stay at least 1.
    """
    return int(2 ** max(0, int(n_stacks) - 1))


# -- reading ---------------------------------------------------------------------------


def _fail(where: str, message: str) -> DataFileError:
    return DataFileError(f"{where}: {message}")


def _head(path: Path, where: str, expected: str) -> bytes:
    try:
        if not path.exists():
            raise _fail(where, "no such file")
        if path.is_dir():
            raise _fail(where, f"is a directory, expected {expected}")
        check_regular_file(path)
        with open(path, "rb") as fh:
            return fh.read(6)
    except OSError as exc:
        raise DataFileError(os_error_message(exc, path)) from None


def _check_is_npz(path: Path, where: str) -> None:
    head = _head(path, where, "an .npz file")
    if head.startswith(_NPY_MAGIC):
        raise _fail(
            where,
            "holds a single .npy array, not an npz archive "
            "(save train/val/test images and labels with numpy.savez_compressed)",
        )
    if not head.startswith(_ZIP_MAGIC):
        raise _fail(where, "not an npz archive (expected a zip of .npy arrays, as numpy.savez_compressed writes)")


def _read_member(npz: NpzFile, where: str, key: str) -> np.ndarray:
    try:
        value = npz[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _fail(
                where,
                f"{key} is an object array; object arrays are not allowed "
                "(store numbers: uint8 or float images, integer labels)",
            ) from None
        raise _fail(where, f"cannot read {key}: damaged array ({one_line(exc, 160)})") from None
    except MemoryError:
        raise _fail(where, f"cannot read {key}: not enough memory (or a damaged header claiming a huge shape)") from None
    except _READ_ERRORS as exc:
        raise _fail(where, f"cannot read {key}: the archive is damaged ({one_line(exc, 160)})") from None
    if not isinstance(value, np.ndarray):
        raise _fail(where, f"{key} is not a .npy array inside the archive")
    return value


def _open_npz(path: Path, where: str) -> NpzFile:
    _check_is_npz(path, where)
    try:
        npz = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise _fail(where, f"not a readable npz archive ({one_line(exc, 160)})") from None
    if not hasattr(npz, "files"):
        raise _fail(where, "not an npz archive")
    archive: NpzFile = npz
    return archive


def read_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """The array in an ``.npy`` file, read without pickle.

    Raises:
        DataFileError: missing file, not an ``.npy``, damaged header or data, object array.
    """
    p = Path(path).expanduser()
    where = str(p)
    if not _head(p, where, "an .npy file").startswith(_NPY_MAGIC):
        raise _fail(where, "not an .npy file (expected an array written by numpy.save)")
    try:
        value: np.ndarray = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _fail(where, "holds an object array; object arrays are not allowed (store numbers)") from None
        raise _fail(where, f"damaged .npy file ({one_line(exc, 160)})") from None
    except MemoryError:
        raise _fail(where, "not enough memory to read it (or a damaged header claiming a huge shape)") from None
    except _READ_ERRORS as exc:
        raise _fail(where, f"damaged .npy file ({one_line(exc, 160)})") from None
    return value


def npz_members(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Names of the arrays in an ``.npz`` archive, in stored order (nothing is read but the index).

    Raises:
        DataFileError: missing file, not an npz archive.
    """
    p = Path(path).expanduser()
    with _open_npz(p, str(p)) as npz:
        return tuple(npz.files)


def read_npz(path: str | os.PathLike[str], keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` archive (those named in ``keys``, or all), read without pickle.

    Raises:
        DataFileError: missing file, not an npz archive, a key not in it, a damaged
            member, an object array.
    """
    p = Path(path).expanduser()
    where = str(p)
    with _open_npz(p, where) as npz:
        wanted = list(npz.files) if keys is None else list(keys)
        absent = [k for k in wanted if k not in npz.files]
        if absent:
            raise _fail(where, f"has no array {', '.join(absent)} (found {', '.join(npz.files[:8]) or 'nothing'})")
        return {k: _read_member(npz, where, k) for k in wanted}


def _parse_meta(value: np.ndarray, where: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    hint = "expected a 0-d text array holding a JSON object, e.g. np.array(json.dumps({'class_names': [...]}))"
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise _fail(where, f"{META_KEY} has shape {value.shape} and dtype {value.dtype}; {hint}")
    text = value.item()
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(where, f"{META_KEY} is not UTF-8 text; {hint}") from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _fail(where, f"{META_KEY} is not valid JSON ({one_line(exc, 120)})") from None
    if not isinstance(obj, dict):
        raise _fail(where, f"{META_KEY} holds a JSON {type(obj).__name__}; {hint}")
    names = obj.get("class_names", [])
    if not (isinstance(names, list) and all(isinstance(n, str) and n.strip() for n in names)):
        raise _fail(where, f"{META_KEY}.class_names = {str(names)[:80]}: expected a list of non-empty strings")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise _fail(where, f"{META_KEY}.class_names repeats {', '.join(map(repr, dup[:3]))}")
    source = obj.get("source", {})
    if not isinstance(source, dict):
        raise _fail(where, f"{META_KEY}.source holds a JSON {type(source).__name__}; expected an object")
    return tuple(names), source


def _check_finite(images: np.ndarray, where: str, key: str) -> None:
    rows = max(1, _CHUNK_BYTES // max(1, images[0].nbytes)) if len(images) else 1
    for start in range(0, len(images), rows):
        chunk = images[start : start + rows]
        finite = np.isfinite(chunk)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            row = start + int(bad[0])
            value = chunk[tuple(bad)]
            raise _fail(where, f"{key}[{row}] holds {value} (NaN and inf are not allowed in images)")


def _images(raw: np.ndarray, where: str, key: str) -> np.ndarray:
    """``(N, C, D, H, W)`` uint8 or float32, C-contiguous; uint8 stays uint8 (no copy when possible)."""
    if raw.ndim not in (4, 5):
        raise _fail(where, f"{key} has shape {raw.shape}; expected (N, D, H, W) or (N, C, D, H, W)")
    if raw.dtype == np.uint8:
        images = raw
    elif raw.dtype.type in FLOAT_DTYPES:
        with np.errstate(over="ignore"):
            images = raw.astype(np.float32, copy=False)
    else:
        raise _fail(where, f"{key} has dtype {raw.dtype}; expected uint8 (0-255) or float16/32/64")
    if images.ndim == 4:
        images = images.reshape(images.shape[0], 1, *images.shape[1:])
    images = np.ascontiguousarray(images)
    if images.shape[0] == 0:
        raise _fail(where, f"{key} is empty (shape {raw.shape}): every split needs at least one volume")
    if images.dtype == np.float32:
        _check_finite(images, where, key)
    return images


def _labels(raw: np.ndarray, n: int, where: str, key: str) -> np.ndarray:
    labels = raw
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise _fail(where, f"{key} has shape {raw.shape}; expected ({n},) or ({n}, 1): one class index per volume")
    if labels.shape[0] != n:
        raise _fail(where, f"{key} has {labels.shape[0]} labels but the images hold {n} volumes")
    if labels.dtype.kind in "iu":
        if labels.dtype.kind == "u" and labels.size and labels.max() > np.iinfo(np.int64).max:
            raise _fail(where, f"{key} holds {labels.max()}, far beyond any class index")
        return labels.astype(np.int64)
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.floor(labels))
        if not whole.all():
            row = int(np.argmin(whole))
            raise _fail(where, f"{key}[{row}] = {labels[row]}: labels must be whole-number class indices")
        return labels.astype(np.int64)
    raise _fail(where, f"{key} has dtype {labels.dtype}; expected integer class indices")


def _num_classes(
    splits: dict[str, SplitArrays], names: tuple[str, ...], num_classes: int | None, where: str
) -> int:
    for s in SPLITS:
        labels = splits[s].labels
        if labels.min() < 0:
            row = int(np.argmin(labels))
            raise _fail(where, f"{s}_labels[{row}] = {labels[row]}: class indices must be >= 0")
    top = max(int(splits[s].labels.max()) for s in SPLITS)
    if num_classes is not None:
        if top >= num_classes:
            s = next(s for s in SPLITS if int(splits[s].labels.max()) == top)
            row = int(np.argmax(splits[s].labels))
            raise _fail(where, f"{s}_labels[{row}] = {top}: this dataset has {num_classes} classes (0-{num_classes - 1})")
        return int(num_classes)
    k = top + 1
    if names:
        if k > len(names):
            raise _fail(where, f"labels go up to {top} but {META_KEY}.class_names names only {len(names)} classes")
        k = len(names)
    if k < 2:
        raise _fail(where, f"every label is {top}: a classifier needs at least two classes")
    n_train = len(splits["train"].labels)
    if k > n_train:  # every class needs a training volume: also keeps bincount's array small
        raise _fail(where, f"labels go up to {top} but train_labels has only {n_train} volumes; "
                           f"class indices must be 0..K-1 with every class in train_labels")
    counts = np.bincount(splits["train"].labels, minlength=k)
    absent = [i for i in range(k) if counts[i] == 0]
    if absent:
        which = ", ".join(f"{i}" + (f" ({names[i]})" if names else "") for i in absent[:5])
        raise _fail(
            where, f"class {which} never appears in train_labels; every class index below {k} needs training volumes"
        )
    return k


def read_datafile(
    path: str | os.PathLike[str],
    *,
    expect_shape: tuple[int, int, int] | None = None,
    expect_channels: int | None = None,
    num_classes: int | None = None,
    min_size: int = 1,
) -> DataFile:
    """Read and check a dataset file in MedMNIST's npz layout.

    Args:
        path: the ``.npz`` file.
        expect_shape: ``(D, H, W)`` the volumes must have (e.g. 28^3 for a MedMNIST flag).
        expect_channels: C the volumes must have.
        num_classes: K when known (a MedMNIST flag): labels must lie in ``[0, K)``.
            When None, K = max label + 1 (or the number of ``meta.class_names``),
            K must be >= 2 and every class must appear in ``train``.
        min_size: every side of a volume must be at least this (``min_size_for_stacks``
            of the deepest network the search may build).

    Returns:
        The checked ``DataFile``; images are ``(N, C, D, H, W)`` uint8 (not
        copied) or float32, labels int64.

    Raises:
        DataFileError: missing or unreadable file, damaged archive, object arrays,
            missing arrays, wrong ndim or dtype, mismatched sizes between images
            and labels or between splits, empty split, NaN/inf images, labels
            that are negative, fractional, out of range or cover one class only,
            a class absent from train, volumes smaller than ``min_size`` or not
            ``expect_shape`` / ``expect_channels``, a malformed ``meta``.
    """
    p = Path(path).expanduser()
    where = str(p)
    with _open_npz(p, where) as npz:
        keys = set(npz.files)
        need = [f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels")]
        missing = [k for k in need if k not in keys]
        if missing:
            found = ", ".join(sorted(keys)[:8]) or "nothing"
            raise _fail(where, f"missing {', '.join(missing)} (found {found}); expected MedMNIST's npz layout")
        names, source = _parse_meta(_read_member(npz, where, META_KEY), where) if META_KEY in keys else ((), {})
        splits: dict[str, SplitArrays] = {}
        for s in SPLITS:
            images = _images(_read_member(npz, where, f"{s}_images"), where, f"{s}_images")
            labels = _labels(_read_member(npz, where, f"{s}_labels"), images.shape[0], where, f"{s}_labels")
            splits[s] = SplitArrays(images, labels)

    first = splits["train"].images
    for s in SPLITS[1:]:
        images = splits[s].images
        if images.dtype != first.dtype:
            raise _fail(
                where, f"train_images is {first.dtype} but {s}_images is {images.dtype}; use one dtype for all splits"
            )
        if images.shape[1] != first.shape[1]:
            raise _fail(where, f"train_images has {first.shape[1]} channel(s) but {s}_images has {images.shape[1]}")
        if images.shape[2:] != first.shape[2:]:
            raise _fail(
                where,
                f"train_images volumes are {_dims(first.shape[2:])} but {s}_images volumes are "
                f"{_dims(images.shape[2:])}; every split needs the same size",
            )
    channels = int(first.shape[1])
    shape = (int(first.shape[2]), int(first.shape[3]), int(first.shape[4]))
    if expect_channels is not None and channels != expect_channels:
        raise _fail(where, f"volumes have {channels} channel(s), expected {expect_channels}")
    if expect_shape is not None and shape != tuple(expect_shape):
        raise _fail(where, f"volumes are {_dims(shape)}, expected {_dims(expect_shape)}")
    if min(shape) < min_size:
        halvings = max(0, (int(min_size) - 1).bit_length())
        raise _fail(
            where,
            f"volumes are {_dims(shape)} but every side must be at least {min_size}: the deepest network "
            f"in the search space halves each side {halvings} time(s) with 2x2x2 max-pools between stacks",
        )
    if names and num_classes is not None and len(names) != num_classes:
        raise _fail(where, f"{META_KEY}.class_names names {len(names)} classes but the dataset has {num_classes}")
    k = _num_classes(splits, names, num_classes, where)
    return DataFile(
        path=where,
        splits=splits,
        num_classes=k,
        channels=channels,
        shape=shape,
        task="binary-class" if k == 2 else "multi-class",
        scaling="divide-255" if first.dtype == np.uint8 else "none",
        class_names=names,
        source=source,
    )


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


# -- writing ---------------------------------------------------------------------------


def write_datafile(
    path: str | os.PathLike[str],
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    class_names: tuple[str, ...] | list[str] = (),
    source: Mapping[str, Any] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
) -> None:
    """Write a dataset file that ``read_datafile`` accepts, atomically (compressed npz).

    Single-channel images are stored ``(N, D, H, W)`` and labels ``(N, 1)``, as
    MedMNIST stores them; multi-channel images ``(N, C, D, H, W)``.

    Args:
        path: the ``.npz`` to write (its folder must exist).
        splits: ``{"train": (images, labels), "val": ..., "test": ...}``;
            images ``(N, C, D, H, W)`` or ``(N, D, H, W)``, labels ``(N,)``.
        class_names: names by class index (recorded in ``meta``).
        source: how the file was made (recorded as ``meta["source"]``).
        extra_meta: more JSON-safe keys for ``meta`` (e.g. the file of every row).

    Raises:
        ValueError: a split is missing or its arrays do not fit together.
        OSError: the file cannot be written.
    """
    arrays: dict[str, np.ndarray] = {}
    for s in SPLITS:
        if s not in splits:
            raise ValueError(f"split {s!r} missing")
        images, labels = splits[s]
        images = np.asarray(images)
        labels = np.asarray(labels).reshape(-1)
        if images.ndim == 5 and images.shape[1] == 1:
            images = images[:, 0]
        if images.ndim not in (4, 5) or images.shape[0] != labels.shape[0]:
            raise ValueError(f"{s}: images {images.shape} and labels {labels.shape} do not fit")
        arrays[f"{s}_images"] = images
        arrays[f"{s}_labels"] = labels.astype(np.int64).reshape(-1, 1)
    meta = dict(extra_meta or {})
    meta["class_names"] = list(class_names)
    meta["source"] = dict(source or {})
    arrays[META_KEY] = np.array(json.dumps(meta))
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
