"""Decoding one input file into ``(C, D, H, W)`` volumes in the dtype the training file stored.

A NIfTI volume goes through the bundle's recorded recipe; ``.npy`` / ``.npz``
arrays are checked against the bundle's shape, channels and scaling.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bundle import Preprocessing
from ..datafile import npz_members, read_npy, read_npz
from ..nifti.recipe import VolumeRecipe
from ..nifti.volume import is_nifti
from . import PredictError
from .inputs import INPUT_SUFFIXES

__all__ = ["load_input", "dims"]


def dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def _volumes(array: np.ndarray, name: str, pre: Preprocessing) -> list[tuple[str, np.ndarray]]:
    """Split an array into ``(name, (C, D, H, W) volume)`` pairs and check them against ``pre``."""
    c = pre.channels
    if array.ndim == 3:
        batch = array[None, None]
    elif array.ndim == 4:
        batch = array[:, None] if c == 1 else array[None]
    elif array.ndim == 5:
        batch = array
    else:
        raise PredictError(
            f"{name}: array of shape {array.shape}; expected one volume (D, H, W) / (C, D, H, W) "
            "or a batch (N, D, H, W) / (N, C, D, H, W)"
        )
    if batch.shape[1] != c:
        raise PredictError(f"{name}: volumes have {batch.shape[1]} channel(s) {array.shape}, the model takes {c}")
    if tuple(batch.shape[2:]) != tuple(pre.shape):
        raise PredictError(
            f"{name}: volumes are {dims(batch.shape[2:])}, the model takes {dims(pre.shape)} "
            "(resample them, or give the raw NIfTI volumes)"
        )
    if batch.shape[0] == 0:
        raise PredictError(f"{name}: holds no volumes (shape {array.shape})")
    batch = _stored_dtype(batch, name, pre.scaling)
    if batch.shape[0] == 1:
        return [(name, batch[0])]
    return [(f"{name}[{i}]", batch[i]) for i in range(batch.shape[0])]


def _stored_dtype(batch: np.ndarray, name: str, scaling: str) -> np.ndarray:
    """The dtype the training file held: uint8 for ``divide-255``, float32 for ``none``."""
    kind = batch.dtype.kind
    if scaling == "divide-255":
        if batch.dtype == np.uint8:
            return np.ascontiguousarray(batch)
        if kind in "iu":
            if batch.min() < 0 or batch.max() > 255:
                raise PredictError(
                    f"{name}: values {batch.min()}..{batch.max()}; the model was trained on uint8 0-255 volumes"
                )
            return np.ascontiguousarray(batch, dtype=np.uint8)
        raise PredictError(
            f"{name}: dtype {batch.dtype}; the model was trained on uint8 0-255 volumes (divided by 255), "
            "save them as uint8 or give the raw NIfTI volumes"
        )
    if kind not in "iuf":
        raise PredictError(f"{name}: dtype {batch.dtype}; expected numbers")
    out = np.ascontiguousarray(batch, dtype=np.float32)
    if kind == "f" and not np.isfinite(out).all():
        raise PredictError(f"{name}: holds NaN or infinite values")
    return out


def load_input(path: str | os.PathLike[str], pre: Preprocessing) -> list[tuple[str, np.ndarray]]:
    """The volumes of one input file as ``(name, (C, D, H, W))`` pairs, in the dtype training stored.

    Args:
        path: an ``.npy``, ``.npz``, ``.nii`` or ``.nii.gz`` file.
        pre: the bundle's preprocessing.

    Returns:
        One pair per volume: ``name`` is the file, or ``file[i]`` / ``file:key[i]``
        for batches; the array is uint8 (``divide-255``) or float32 (``none``).

    Raises:
        UserError: the file is unreadable, has the wrong shape, channels or dtype,
            or is a NIfTI volume for a bundle without a NIfTI import recipe.
    """
    p = Path(path)
    name = str(p)
    if is_nifti(p):
        recipe = VolumeRecipe.from_source(pre.source, where=f"{name}: the bundle's preprocessing.source")
        if recipe.size != tuple(pre.shape) or recipe.channels != pre.channels or recipe.scaling != pre.scaling:
            raise PredictError(
                f"{name}: the bundle's NIfTI recipe ({dims(recipe.size)}, {recipe.channels} channel(s), "
                f"{recipe.scaling}) disagrees with its preprocessing ({dims(pre.shape)}, {pre.channels}, {pre.scaling})"
            )
        return [(name, recipe.load(p))]
    if p.name.lower().endswith(".npy"):
        return _volumes(read_npy(p), name, pre)
    if p.name.lower().endswith(".npz"):
        members = npz_members(p)
        keys = ["test_images"] if "test_images" in members else list(members)
        if not keys:
            raise PredictError(f"{name}: the archive holds no arrays")
        arrays = read_npz(p, keys)
        out: list[tuple[str, np.ndarray]] = []
        for key in keys:
            out.extend(_volumes(arrays[key], f"{name}:{key}", pre))
        return out
    raise PredictError(f"{name}: not a volume file (expected {', '.join(INPUT_SUFFIXES)})")
