"""The search subset: which rows of train and val a ``data.search_fraction`` keeps, seeded.

Pure (numpy, no torch), so the fraction's check (``engine.fraction_check``)
and the resident dataset (``engine.data.Dataset.search_subset``) draw the same rows.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["subset_rows"]


def subset_rows(sizes: dict[str, int], fraction: float, seed: int) -> dict[str, np.ndarray]:
    """The sorted row indices ``Dataset.search_subset`` keeps of each split (``sizes``: split -> rows, in order).

    Raises:
        ValueError: fraction outside (0, 1].
    """
    if not (0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"search fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    rows: dict[str, np.ndarray] = {}
    for name, n in sizes.items():
        k = min(n, max(1, int(round(fraction * n))))
        rows[name] = np.sort(rng.choice(n, size=k, replace=False))
    return rows
