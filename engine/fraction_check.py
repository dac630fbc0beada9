"""Is ``data.search_fraction`` enough to search on? Refused before the run starts, naming the smallest that is.

The search trains on a seeded fraction of the train split and ranks by the
same fraction of the val split (``engine.search_subset.subset_rows``). A fraction that
leaves either with a single class makes every candidate's validation AUC
undefined; one that leaves fewer than two training samples cannot train a
network with batch normalisation (a batch of one has no variance). Such a
run would "fail" every candidate; it is refused in one line instead, with the
smallest fraction that gives both splits every class they need.
"""
from __future__ import annotations

import math

import numpy as np

from .data import Dataset
from .data_source import DataError
from .search_subset import subset_rows

__all__ = ["check_search_fraction", "smallest_search_fraction", "MIN_TRAIN_SAMPLES"]

MIN_TRAIN_SAMPLES = 2  # batch normalisation needs two samples in a training batch
_SPLIT_NAMES = {"train": "training", "val": "validation"}


def _labels(data: Dataset) -> dict[str, np.ndarray]:
    return {name: data.split(name).y.detach().cpu().numpy() for name in ("train", "val")}


def _problem(labels: dict[str, np.ndarray], fraction: float, seed: int) -> str | None:
    """What the subset drawn with ``fraction`` lacks, or None when it can be searched on."""
    rows = subset_rows({name: len(y) for name, y in labels.items()}, fraction, seed) if fraction < 1.0 else {
        name: np.arange(len(y)) for name, y in labels.items()}
    for name in ("train", "val"):
        kept = labels[name][rows[name]]
        classes = len(np.unique(kept))
        if classes < 2:
            return f"a {_SPLIT_NAMES[name]} subset of {len(kept)} sample{'s' * (len(kept) != 1)} with {classes} class"
    if len(rows["train"]) < MIN_TRAIN_SAMPLES:
        return f"{len(rows['train'])} training sample (a training batch needs {MIN_TRAIN_SAMPLES})"
    return None


def _shown(fraction: float) -> float:
    """``fraction`` rounded *up* to three significant digits (so it keeps at least as many rows)."""
    if fraction >= 1.0:
        return 1.0
    digits = 2 - int(math.floor(math.log10(fraction)))
    scale = 10.0**digits
    return min(1.0, math.ceil(fraction * scale - 1e-9) / scale)


def smallest_search_fraction(data: Dataset, seed: int) -> float | None:
    """The smallest fraction (three significant digits) whose subset can be searched on; None when not even 1 can."""
    labels = _labels(data)
    if _problem(labels, 1.0, seed) is not None:
        return None
    sizes = sorted({len(y) for y in labels.values()})
    steps = sorted({k / n for n in sizes for k in range(1, n + 1)})
    for step in steps:
        shown = _shown(step)
        if _problem(labels, shown, seed) is None:
            return shown
    return 1.0


def check_search_fraction(data: Dataset, fraction: float, seed: int) -> None:
    """Refuse a ``data.search_fraction`` whose subset cannot be searched on.

    Raises:
        engine.data_source.DataError: one line naming the key, what the subset lacks and the smallest fraction that works.
    """
    labels = _labels(data)
    problem = _problem(labels, fraction, seed)
    if problem is None:
        return
    smallest = smallest_search_fraction(data, seed)
    if smallest is None:
        whole = _problem(labels, 1.0, seed)
        raise DataError(f"data.search_fraction = {fraction:g} cannot help: the whole dataset leaves {whole}; "
                        "every split needs at least two classes")
    raise DataError(f"data.search_fraction = {fraction:g} leaves {problem} (run.seed = {seed}); "
                    f"the smallest fraction that works is {smallest:g}")
