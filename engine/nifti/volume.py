"""Reading one NIfTI volume (``.nii`` / ``.nii.gz``) as float32 ``(C, X, Y, Z)``.

3-D volumes are one channel; 4-D volumes ``(X, Y, Z, C)`` are C channels (and
``(X, Y, Z, 1, C)``, NIfTI's vector layout, too).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import one_line
from . import NiftiError

__all__ = ["NIFTI_SUFFIXES", "is_nifti", "read_nifti"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a NIfTI volume (``.nii`` or ``.nii.gz``)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def read_nifti(path: str | os.PathLike[str]) -> np.ndarray:
    """A NIfTI volume as float32 ``(C, X, Y, Z)`` in its closest canonical (RAS+) orientation.

    Scaling slope and intercept from the header are applied (nibabel's ``get_fdata``).

    Raises:
        NiftiError: nibabel is not installed, the file is missing or unreadable
            (garbage under a ``.nii.gz`` name), it has an unsupported number of
            dimensions, or holds NaN / inf voxels.
    """
    try:
        import nibabel as nib
    except ImportError:
        raise NiftiError("reading NIfTI volumes needs nibabel: pip install nibabel") from None
    p = Path(path)
    if not p.is_file():
        raise NiftiError(f"{p}: {'not a regular file (a pipe, socket or device)' if p.exists() else 'no such file'}")
    try:
        img = nib.as_closest_canonical(nib.load(str(p)))  # type: ignore[no-untyped-call,unused-ignore]
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except MemoryError:
        raise NiftiError(f"{p}: not enough memory to read this volume") from None
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip and zlib raise many kinds for a bad file
        raise NiftiError(f"{p}: not a readable NIfTI volume ({one_line(exc, 160)})") from None
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    if data.ndim == 3:
        data = data[None]
    elif data.ndim == 4:
        data = np.moveaxis(data, 3, 0)
    else:
        raise NiftiError(
            f"{p}: has shape {data.shape}; expected a 3-D volume (X, Y, Z) "
            "or a 4-D one (X, Y, Z, C) whose 4th axis is channels"
        )
    if not np.isfinite(data).all():
        raise NiftiError(f"{p}: holds NaN or infinite voxels; replace them (e.g. with the background value) first")
    return np.ascontiguousarray(data, dtype=np.float32)
