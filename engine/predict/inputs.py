"""Finding the files to classify: files and folders named by the user, checked for a volume suffix."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .report import InputFailure

__all__ = ["INPUT_SUFFIXES", "find_inputs"]

INPUT_SUFFIXES = (".npy", ".npz", ".nii", ".nii.gz")


def _has_suffix(path: Path) -> bool:
    return path.name.lower().endswith(INPUT_SUFFIXES)


def find_inputs(
    paths: Iterable[str | os.PathLike[str]], *, recursive: bool = False
) -> tuple[list[Path], list[InputFailure]]:
    """The files to classify, in the order given (a folder's files sorted), and the paths that are not usable.

    Args:
        paths: files and folders.
        recursive: also look into sub-folders of a folder.
    """
    files: list[Path] = []
    failures: list[InputFailure] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in (p.rglob("*") if recursive else p.iterdir()) if f.is_file() and _has_suffix(f))
            if not found:
                hint = "" if recursive else " (sub-folders are searched with --recursive)"
                failures.append(InputFailure(str(p), f"{p}: no {', '.join(INPUT_SUFFIXES)} files in this folder{hint}"))
            files.extend(found)
        elif not p.exists():
            failures.append(InputFailure(str(p), f"{p}: no such file or folder"))
        elif not p.is_file():  # reading a pipe would wait forever
            failures.append(InputFailure(str(p), f"{p}: not a regular file (a pipe, socket or device)"))
        elif not _has_suffix(p):
            failures.append(InputFailure(str(p), f"{p}: not a volume file (expected {', '.join(INPUT_SUFFIXES)})"))
        else:
            files.append(p)
    return files, failures
