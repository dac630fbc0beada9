"""NIfTI volumes: the recipe that makes a raw volume a training volume, and the folder import.

This module owns how users' own NIfTI volumes (``.nii`` / ``.nii.gz``) become a
dataset file in MedMNIST's npz layout (``engine.datafile``):

* ``VolumeRecipe`` -- one raw volume to one ``(C, D, H, W)`` training volume:
  reorient to the closest canonical (RAS+) orientation, resample every
  channel to ``D x H x W`` (trilinear, ``scipy.ndimage.zoom`` order 1, voxel
  spacing ignored), then scale intensities per volume and channel. The recipe
  is written into the file's ``meta.source`` and read back by ``predict``, so
  a raw volume given to a trained model goes through exactly the same steps.
* ``read_labels_csv`` -- the ``file,label[,split]`` table.
* ``stratified_split`` -- a seeded per-class train/val/test split.
* ``import_nifti_folder`` -- all of it, writing the ``.npz``.

Intensity methods (``INTENSITY_METHODS``): ``percentile`` (default: clip to
the 0.5 / 99.5 percentiles, min-max to [0, 1], stored as uint8 0-255, so the
training scaling is divide-255), ``minmax`` (the same without clipping), and
``none`` (raw values as float32, scaling none).

3-D volumes are one channel; 4-D volumes ``(X, Y, Z, C)`` are C channels (and
``(X, Y, Z, 1, C)``, NIfTI's vector layout, too). Every problem a user can
cause is a ``NiftiError`` (a ``UserError``) with a one-line message.

It must not import torch, print, or know about models, training or the search;
progress is reported through a callback.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .atomic import check_regular_file
from .datafile import SPLITS, read_datafile, write_datafile
from .errors import UserError, one_line, os_error_message

__all__ = [
    "SOURCE_FORMAT",
    "INTENSITY_METHODS",
    "DEFAULT_PERCENTILES",
    "NIFTI_SUFFIXES",
    "NiftiError",
    "VolumeRecipe",
    "LabelRow",
    "LabelTable",
    "ImportSummary",
    "is_nifti",
    "read_nifti",
    "read_labels_csv",
    "stratified_split",
    "import_nifti_folder",
]

SOURCE_FORMAT = "nas3d-tui/nifti-import/1"
INTENSITY_METHODS = ("percentile", "minmax", "none")
DEFAULT_PERCENTILES = (0.5, 99.5)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
CSV_COLUMNS = ("file", "label", "split")


class NiftiError(UserError):
    """A NIfTI volume, a labels CSV or an import setting cannot be used (one line)."""


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like a NIfTI volume (``.nii`` or ``.nii.gz``)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _sides(size: Any) -> tuple[int, int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size),) * 3
    if not (isinstance(size, (tuple, list)) and len(size) == 3
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)):
        raise NiftiError(f"size = {size!r}: expected a positive integer N (N x N x N) or three of them (D, H, W)")
    return tuple(int(s) for s in size)  # type: ignore[return-value]


# -- one volume ------------------------------------------------------------------------


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
        img = nib.as_closest_canonical(nib.load(str(p)))
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


@dataclass(frozen=True)
class VolumeRecipe:
    """How a raw volume becomes a training volume; recorded in ``meta.source``.

    Attributes:
        size: ``(D, H, W)`` after resampling.
        channels: C every volume must have.
        intensity: one of ``INTENSITY_METHODS``.
        percentiles: ``(low, high)`` clipping percentiles of ``percentile``.
    """

    size: tuple[int, int, int]
    channels: int = 1
    intensity: str = "percentile"
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _sides(self.size))
        if self.intensity not in INTENSITY_METHODS:
            raise NiftiError(f"intensity = {self.intensity!r}: use one of {', '.join(INTENSITY_METHODS)}")
        low, high = (float(p) for p in self.percentiles)
        if not 0.0 <= low < high <= 100.0:
            raise NiftiError(f"percentiles = {self.percentiles!r}: expected 0 <= low < high <= 100")
        object.__setattr__(self, "percentiles", (low, high))
        if not (isinstance(self.channels, int) and self.channels > 0):
            raise NiftiError(f"channels = {self.channels!r}: expected a positive integer")

    @property
    def scaling(self) -> str:
        """The dataset file's scaling: ``divide-255`` (stored uint8) or ``none`` (stored float32)."""
        return "none" if self.intensity == "none" else "divide-255"

    def to_source(self) -> dict[str, Any]:
        """The JSON-safe ``meta.source`` entries that ``from_source`` reads back (plus descriptions)."""
        intensity: dict[str, Any] = {"method": self.intensity, "per": "volume and channel"}
        if self.intensity == "percentile":
            intensity.update(
                low=self.percentiles[0],
                high=self.percentiles[1],
                output="uint8 round(255 * (clip(x, p_low, p_high) - p_low) / (p_high - p_low))",
            )
        elif self.intensity == "minmax":
            intensity.update(output="uint8 round(255 * (x - min) / (max - min))")
        else:
            intensity.update(output="float32 as resampled")
        return {
            "format": SOURCE_FORMAT,
            "tool": "nas3d-tui data import",
            "size": list(self.size),
            "channels": self.channels,
            "channel_axis": "3-D volumes: 1 channel; 4-D (X, Y, Z, C): the 4th axis",
            "orientation": "closest canonical RAS+ (nibabel.as_closest_canonical)",
            "resample": {
                "method": "scipy.ndimage.zoom",
                "order": 1,
                "mode": "nearest",
                "grid_mode": False,
                "spacing": "ignored: each axis is resized to its target length",
            },
            "intensity": intensity,
        }

    @classmethod
    def from_source(cls, source: Mapping[str, Any], where: str = "source") -> "VolumeRecipe":
        """The recipe recorded by ``to_source`` (e.g. a bundle's ``preprocessing.source``).

        Raises:
            NiftiError: ``source`` was not written by the NIfTI import, or is malformed.
        """
        if not isinstance(source, Mapping) or source.get("format") != SOURCE_FORMAT:
            made = source.get("format") if isinstance(source, Mapping) else None
            raise NiftiError(
                f"{where} holds no NIfTI import recipe (format {made!r}, expected {SOURCE_FORMAT!r}): "
                "the training data were not made by nas3d-tui data import"
            )
        intensity = source.get("intensity")
        if not isinstance(intensity, Mapping):
            raise NiftiError(f"{where}.intensity: expected an object")
        try:
            return cls(
                size=tuple(source.get("size", ())),  # type: ignore[arg-type]
                channels=source.get("channels", 1),
                intensity=intensity.get("method"),
                percentiles=(intensity.get("low", DEFAULT_PERCENTILES[0]), intensity.get("high", DEFAULT_PERCENTILES[1])),
            )
        except NiftiError as exc:
            raise NiftiError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise NiftiError(f"{where}: malformed NIfTI import recipe ({one_line(exc, 120)})") from None

    def resample(self, volume: np.ndarray) -> np.ndarray:
        """``(C, X, Y, Z)`` float32 to ``(C, D, H, W)`` float32, trilinear, corners aligned."""
        from scipy import ndimage

        out = np.empty((volume.shape[0], *self.size), dtype=np.float32)
        factors = [t / s for t, s in zip(self.size, volume.shape[1:])]
        for c in range(volume.shape[0]):
            zoomed = ndimage.zoom(volume[c], factors, output=np.float32, order=1, mode="nearest", grid_mode=False)
            if zoomed.shape != self.size:  # pragma: no cover - zoom rounds shape * factor, which is the target
                raise NiftiError(f"resampling {volume.shape[1:]} gave {zoomed.shape}, expected {self.size}")
            out[c] = zoomed
        return out

    def scale(self, volume: np.ndarray) -> np.ndarray:
        """Intensity scaling of a resampled ``(C, D, H, W)`` float32 volume, per channel.

        Returns uint8 (``percentile``, ``minmax``) or float32 (``none``).
        """
        if self.intensity == "none":
            return volume.astype(np.float32, copy=False)
        out = np.zeros(volume.shape, dtype=np.uint8)
        for c in range(volume.shape[0]):
            v = volume[c]
            if self.intensity == "percentile":
                low, high = np.percentile(v, self.percentiles)
            else:
                low, high = v.min(), v.max()
            low, high = float(low), float(high)
            if high > low:  # a constant channel stays 0
                x = (np.clip(v, low, high).astype(np.float64) - low) / (high - low)
                out[c] = np.rint(x * 255.0).astype(np.uint8)
        return out

    def apply(self, volume: np.ndarray, where: str = "volume") -> np.ndarray:
        """Resample and scale a raw ``(C, X, Y, Z)`` volume; returns ``(C, D, H, W)``.

        Raises:
            NiftiError: the volume does not have ``channels`` channels.
        """
        if volume.ndim != 4:
            raise NiftiError(f"{where}: has shape {volume.shape}; expected (C, X, Y, Z)")
        if volume.shape[0] != self.channels:
            raise NiftiError(f"{where}: has {volume.shape[0]} channel(s), expected {self.channels}")
        return self.scale(self.resample(volume))

    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """``read_nifti`` then ``apply``: a raw NIfTI file as a training volume ``(C, D, H, W)``.

        Raises:
            NiftiError: as ``read_nifti`` and ``apply``.
        """
        return self.apply(read_nifti(path), str(path))


# -- the labels table ------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    """One CSV row: ``path`` (resolved), ``file`` (as written), ``label`` (text), ``split`` or None, ``line``."""

    path: Path
    file: str
    label: str
    split: str | None
    line: int


@dataclass(frozen=True)
class LabelTable:
    """The labels CSV, checked.

    Attributes:
        rows: in file order.
        labels: class index of every row (int64).
        class_names: names by class index when the CSV used names (sorted), else empty.
        has_splits: whether the CSV assigns every row a split.
    """

    rows: tuple[LabelRow, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    has_splits: bool

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else int(self.labels.max()) + 1

    def class_label(self, k: int) -> str:
        return self.class_names[k] if self.class_names else str(k)


def read_labels_csv(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> LabelTable:
    """Read and check the ``file,label[,split]`` CSV (a header row is required).

    ``file`` is relative to ``folder`` (or absolute) and must name an existing
    ``.nii`` / ``.nii.gz``. ``label`` is a class index (every label an integer
    >= 0) or a class name (names are mapped to indices in sorted order).
    ``split`` (optional column) is ``train``, ``val`` or ``test`` on every row.
    Other columns are ignored.

    Raises:
        NiftiError: missing or unreadable file, no header, wrong field counts,
            empty or repeated entries, a file that does not exist or is not
            NIfTI, an unknown split, a negative index, a class with no volumes.
    """
    p = Path(path)
    where = str(p)
    try:
        check_regular_file(p)
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NiftiError(f"{where}: labels CSV not found") from None
    except IsADirectoryError:
        raise NiftiError(f"{where}: is a directory, expected a CSV file") from None
    except UnicodeDecodeError:
        raise NiftiError(f"{where}: not UTF-8 text (expected a CSV: file,label[,split])") from None
    except OSError as exc:
        raise NiftiError(os_error_message(exc, p)) from None
    control = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        raise NiftiError(f"{where}: line {line} holds a control character {control.group()!r}; not a text CSV")
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        records = [(n, r) for n, r in enumerate(reader, start=1) if any(f.strip() for f in r)]
    except csv.Error as exc:
        raise NiftiError(f"{where}: not a readable CSV ({one_line(exc, 120)})") from None
    if not records:
        raise NiftiError(f"{where}: empty; expected a header row 'file,label[,split]' and one row per volume")
    header_line, header = records[0]
    columns = [h.strip().lower() for h in header]
    if "file" not in columns or "label" not in columns:
        shown = ",".join(header)[:80]
        raise NiftiError(f"{where}: line {header_line} is {shown!r}; expected a header row with columns file,label[,split]")
    dup = sorted({c for c in columns if columns.count(c) > 1 and c in CSV_COLUMNS})
    if dup:
        raise NiftiError(f"{where}: column {dup[0]!r} appears twice in the header")
    at = {c: columns.index(c) for c in CSV_COLUMNS if c in columns}
    if len(records) == 1:
        raise NiftiError(f"{where}: has a header but no rows")
    base = Path(folder)
    rows: list[LabelRow] = []
    seen: dict[Path, int] = {}
    for n, record in records[1:]:
        if len(record) != len(header):
            raise NiftiError(f"{where}: line {n} has {len(record)} field(s), the header has {len(header)}")
        file = record[at["file"]].strip()
        label = record[at["label"]].strip()
        split = record[at["split"]].strip().lower() if "split" in at else None
        if not file:
            raise NiftiError(f"{where}: line {n} has an empty file name")
        if not label:
            raise NiftiError(f"{where}: line {n} ({file}) has an empty label")
        if split is not None and split not in SPLITS:
            raise NiftiError(f"{where}: line {n} ({file}) has split {record[at['split']].strip()!r}; use train, val or test")
        target = Path(file) if Path(file).is_absolute() else base / file
        if not is_nifti(target):
            raise NiftiError(f"{where}: line {n}: {file} is not a NIfTI file name (.nii or .nii.gz)")
        if not target.is_file():
            raise NiftiError(f"{where}: line {n}: {target} does not exist")
        key = target.resolve()
        if key in seen:
            raise NiftiError(f"{where}: line {n}: {file} is listed twice (first on line {seen[key]})")
        seen[key] = n
        rows.append(LabelRow(target, file, label, split, n))
    texts = [r.label for r in rows]
    if all(re.fullmatch(r"[+-]?\d+", t) for t in texts):
        ints = [int(t) for t in texts]
        if min(ints) < 0:
            row = rows[ints.index(min(ints))]
            raise NiftiError(f"{where}: line {row.line} ({row.file}) has label {row.label}; class indices must be >= 0")
        present = set(ints)
        absent = next((k for k in range(max(ints)) if k not in present), None)  # at most len(rows) steps
        if absent is not None:
            raise NiftiError(
                f"{where}: no volume has class {absent} although labels go up to {max(ints)}; "
                "use indices 0..K-1 without gaps (or class names)"
            )
        labels = np.array(ints, dtype=np.int64)
        names: tuple[str, ...] = ()
    else:
        names = tuple(sorted(set(texts)))
        index = {name: k for k, name in enumerate(names)}
        labels = np.array([index[t] for t in texts], dtype=np.int64)
    table = LabelTable(tuple(rows), labels, names, "split" in at)
    if table.num_classes < 2:
        raise NiftiError(f"{where}: every row has label {texts[0]!r}; a classifier needs at least two classes")
    return table


# -- splitting ---------------------------------------------------------------------------


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


# -- the import ---------------------------------------------------------------------------


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
    source: dict = field(default_factory=dict)


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
    sides = _sides(size)
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
