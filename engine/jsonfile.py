"""The one checked JSON reader for every file a run (or a model bundle) trusts.

A file that is not UTF-8, not JSON, or truncated is a ``CorruptFileError``
naming it; one that cannot be read at all (missing, a directory, a pipe, no
permission) is a ``RunDirError``. Callers that must be lenient (a control
file written by hand) catch these errors; none parses JSON of a run file on
its own. Pure Python; no torch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .atomic import check_regular_file
from .errors import CorruptFileError, RunDirError

__all__ = ["read_json"]


def read_json(path: str | os.PathLike[str]) -> Any:
    """JSON of a file the run trusts (any JSON value: the caller checks its shape).

    Raises:
        CorruptFileError: not UTF-8, not JSON, or truncated.
        RunDirError: it cannot be read (missing, a directory, no permission, ...).
    """
    path = Path(path)
    try:
        check_regular_file(path)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path} is corrupt: not UTF-8 text; cannot resume") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to be ours
        raise CorruptFileError(f"{path} is corrupt: {exc}; cannot resume") from None
