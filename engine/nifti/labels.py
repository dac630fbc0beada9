"""The labels CSV of a NIfTI import: ``file,label[,split]``, checked, one line per mistake."""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import check_regular_file
from ..datafile import SPLITS
from ..errors import one_line, os_error_message
from . import NiftiError
from .volume import is_nifti

__all__ = ["CSV_COLUMNS", "LabelRow", "LabelTable", "read_labels_csv"]

CSV_COLUMNS = ("file", "label", "split")


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
