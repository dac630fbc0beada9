"""NIfTI volumes: how users' own ``.nii`` / ``.nii.gz`` volumes become a dataset file.

The package turns a folder of NIfTI volumes and a labels CSV into a dataset
file in MedMNIST's npz layout (``engine.datafile``), one concept per module:

* ``engine.nifti.volume`` -- reading one volume (``read_nifti``, ``is_nifti``).
* ``engine.nifti.recipe`` -- ``VolumeRecipe``: one raw volume to one
  ``(C, D, H, W)`` training volume: reorient to the closest canonical (RAS+)
  orientation, resample every channel to ``D x H x W`` (trilinear,
  ``scipy.ndimage.zoom`` order 1, voxel spacing ignored), then scale
  intensities per volume and channel. The recipe is written into the file's
  ``meta.source`` and read back by ``predict``, so a raw volume given to a
  trained model goes through exactly the same steps.
* ``engine.nifti.labels`` -- the ``file,label[,split]`` table (``read_labels_csv``).
* ``engine.nifti.splits`` -- a seeded per-class train/val/test split (``stratified_split``).
* ``engine.nifti.folder_import`` -- all of it, writing the ``.npz`` (``import_nifti_folder``).

Every problem a user can cause is a ``NiftiError`` (a ``UserError``, defined
here because every module of the package raises it) with a one-line message.

The package must not import torch, print, or know about models, training or
the search; progress is reported through a callback.
"""
from __future__ import annotations

from ..errors import UserError

__all__ = ["NiftiError"]


class NiftiError(UserError):
    """A NIfTI volume, a labels CSV or an import setting cannot be used (one line)."""
