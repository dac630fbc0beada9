"""Classifying new volumes with a model bundle, preprocessed exactly as in training.

This module owns what ``nas3d-tui predict`` does between a bundle and a table
of probabilities: finding the inputs, turning each file into volumes the
network accepts, batching them on a device, and writing the results.

Inputs (``INPUT_SUFFIXES``):

* ``.nii`` / ``.nii.gz`` -- one raw volume, put through the NIfTI import's
  recipe recorded in the bundle's ``preprocessing.source``
  (``engine.nifti.recipe.VolumeRecipe``): reorientation, resampling, intensity scaling.
* ``.npy`` -- volumes already preprocessed like the training file: ``(D, H, W)``
  is one volume; ``(N, C, D, H, W)`` is a batch; a 4-D array is a batch
  ``(N, D, H, W)`` when the model takes one channel, and one volume
  ``(C, D, H, W)`` otherwise.
* ``.npz`` -- its ``test_images`` when present (the dataset layout), otherwise
  every array in it, each read like an ``.npy``.
* a folder -- its files with those suffixes, sorted; sub-folders only with
  ``recursive=True``.

Volumes must have the bundle's shape and channels; uint8 volumes are divided
by 255 for ``divide-255`` bundles (other integer dtypes are accepted when every
value is 0-255; floats are refused), float volumes are used as float32 for
``none`` bundles. Probabilities are the softmax of the logits. An input that
cannot be used becomes an ``InputFailure`` (one line) and the others are still
classified.

One module per step: ``inputs`` (finding the files), ``decode`` (a file to
checked volumes), ``inference`` (volumes to probabilities, ``predict``),
``output`` (the CSV / JSON file), ``report`` (what ``predict`` returns).

It must not print or import the UI; the command renders the report.
"""
from __future__ import annotations

from ..errors import UserError

__all__ = ["PredictError"]


class PredictError(UserError):
    """An input, a device or an output file cannot be used for prediction (one line)."""
