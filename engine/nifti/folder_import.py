"""The NIfTI folder import: a folder of volumes and a labels CSV to a dataset file (``.npz``)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..datafile import SPLITS, read_datafile, write_datafile
from . import NiftiError
from .labels import read_labels_csv
from .recipe import DEFAULT_PERCENTILES, VolumeRecipe, volume_size
from .splits import stratified_split
from .volume import read_nifti

__all__ = ["ImportSummary", "import_nifti_folder"]


@dataclass(frozen=True)
class ImportSummary:
    """What ``import_nifti_folder`` wrote.

    Attributes:
        path: the ``.npz``.
        shape: ``(D, H, W)``; channels: C; scaling: ``divide-255`` or ``none``.
        class_names: a name for every class index (the indices as text when the CSV used indices).
        counts: volumes per class in each split.
        source: the ``meta.source`` written.
    """

    path: Path
    shape: tuple[int, int, int]
    channels: int
    scaling: str
    class_names: tuple[str, ...]
    counts: dict[str, tuple[int, ...]]
    source: dict[str, Any] = field(default_factory=dict)


def import_nifti_folder(
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    size: int | Sequence[int],
    seed: int = 0,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    intensity: str = "percentile",
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportSummary:
    """Build a dataset file from a folder of NIfTI volumes and a labels CSV.

    Every volume goes through ``VolumeRecipe(size, channels, intensity,
    percentiles)``; rows keep the CSV's order inside each split. Without a
    ``split`` column the split is ``stratified_split`` (default 70/10/20).
    The file is written atomically, then read back with ``read_datafile``.

    Args:
        folder: where the CSV's relative file names point.
        labels_csv: the ``file,label[,split]`` CSV.
        out: the ``.npz`` to write (its folder is created).
        size: N (N x N x N) or ``(D, H, W)``.
        seed: seeds the stratified split.
        val_fraction, test_fraction: of each class (defaults 0.1 and 0.2); not
            allowed when the CSV has a ``split`` column.
        intensity: one of ``INTENSITY_METHODS``.
        percentiles: clipping percentiles of ``percentile``.
        progress: called as ``progress(done, total, file)`` after each volume.

    Returns:
        The ``ImportSummary``.

    Raises:
        NiftiError: a missing folder, a bad CSV (see ``read_labels_csv``), an
            unreadable volume, mixed channel counts, a class too small to
            stratify, a split without volumes, a class absent from train, or
            fractions given together with a split column.
        DataFileError: the written file fails its own check (should not happen).
        OSError: the output cannot be written.
    """
    base = Path(folder)
    if not base.is_dir():
        raise NiftiError(f"{base}: no such folder" if not base.exists() else f"{base}: not a folder")
    target = Path(out)
    if target.suffix.lower() != ".npz":
        raise NiftiError(f"{target}: the output must be an .npz file")
    sides = volume_size(size)
    VolumeRecipe(sides, 1, intensity, percentiles)  # check the settings before any work
    table = read_labels_csv(labels_csv, base)
    where = str(labels_csv)
    if table.has_splits:
        if val_fraction is not None or test_fraction is not None:
            raise NiftiError(f"{where} assigns splits (split column); drop --val-fraction / --test-fraction")
        assigned = np.array([r.split for r in table.rows])
        split_source: dict[str, Any] = {"method": "csv split column"}
    else:
        vf = 0.1 if val_fraction is None else float(val_fraction)
        tf = 0.2 if test_fraction is None else float(test_fraction)
        try:
            assigned = stratified_split(table.labels, vf, tf, seed, table.class_label)
        except NiftiError as exc:
            raise NiftiError(f"{where}: {exc}") from None
        split_source = {"method": "stratified", "seed": int(seed), "val_fraction": vf, "test_fraction": tf}
    for s in SPLITS:
        if not (assigned == s).any():
            raise NiftiError(f"{where}: no row is in the {s} split; every split needs volumes")
    in_train = np.bincount(table.labels[assigned == "train"], minlength=table.num_classes)
    for k in range(table.num_classes):
        if in_train[k] == 0:
            raise NiftiError(f"{where}: class {table.class_label(k)!r} has no volume in the train split")

    total = len(table.rows)
    recipe: VolumeRecipe | None = None
    first_file = ""
    images: dict[str, np.ndarray] = {}
    position = {s: 0 for s in SPLITS}
    for done, (row, split) in enumerate(zip(table.rows, assigned), start=1):
        raw = read_nifti(row.path)
        if recipe is None:
            recipe = VolumeRecipe(sides, int(raw.shape[0]), intensity, percentiles)
            first_file = row.file
            dtype = np.uint8 if recipe.scaling == "divide-255" else np.float32
            for s in SPLITS:
                images[s] = np.empty((int((assigned == s).sum()), recipe.channels, *sides), dtype=dtype)
        elif raw.shape[0] != recipe.channels:
            raise NiftiError(
                f"{row.path}: has {raw.shape[0]} channel(s) but {first_file} has {recipe.channels}; "
                "every volume needs the same channels"
            )
        images[split][position[split]] = recipe.apply(raw, str(row.path))
        position[split] += 1
        if progress is not None:
            progress(done, total, row.file)
    assert recipe is not None  # the table has rows

    source = recipe.to_source()
    source.update(split=split_source, labels_csv=Path(labels_csv).name, volumes=total)
    splits = {s: (images[s], table.labels[assigned == s]) for s in SPLITS}
    files = {s: [r.file for r, a in zip(table.rows, assigned) if a == s] for s in SPLITS}
    target.parent.mkdir(parents=True, exist_ok=True)
    write_datafile(target, splits, class_names=table.class_names, source=source, extra_meta={"files": files})
    del splits, images
    data = read_datafile(target)
    names = data.class_names or tuple(str(k) for k in range(data.num_classes))
    counts = {s: tuple(int(c) for c in np.bincount(data.splits[s].labels, minlength=data.num_classes)) for s in SPLITS}
    return ImportSummary(target, data.shape, data.channels, data.scaling, names, counts, data.source)
