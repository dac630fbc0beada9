"""A seeded, stratified (per-class) train/val/test split of a labels table."""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import NiftiError

__all__ = ["stratified_split"]


def stratified_split(
    labels: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    class_label: Callable[[int], str] = str,
) -> np.ndarray:
    """A seeded per-class split: the split name (``train``/``val``/``test``) of every row.

    Each class gives ``max(1, round(n * fraction))`` of its volumes to val and
    to test (drawn with ``numpy.random.default_rng(seed)``, classes in index
    order) and the rest, at least one, to train.

    Raises:
        NiftiError: fractions outside (0, 1) or summing to 1 or more, or a class
            with too few volumes (fewer than 3) to give every split one.
    """
    for name, f in (("val fraction", val_fraction), ("test fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise NiftiError(f"{name} = {f}: expected a number in (0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise NiftiError(f"val fraction {val_fraction} + test fraction {test_fraction} leave nothing to train on")
    rng = np.random.default_rng(seed)
    out = np.full(labels.shape[0], "train", dtype=object)
    for k in range(int(labels.max()) + 1):
        rows = np.flatnonzero(labels == k)
        n = rows.size
        n_val = max(1, int(np.floor(n * val_fraction + 0.5)))
        n_test = max(1, int(np.floor(n * test_fraction + 0.5)))
        if n - n_val - n_test < 1:
            raise NiftiError(
                f"class {class_label(k)!r} has {n} volume(s): a stratified train/val/test split needs at least 3 "
                "per class; add volumes, or give every row a split in the CSV's split column"
            )
        order = rows[rng.permutation(n)]
        out[order[:n_val]] = "val"
        out[order[n_val : n_val + n_test]] = "test"
    return out.astype(str)
