"""Crash-safe file writes: a file holds either its old or its new content, never a torn one.

Write to a temporary file beside the target, flush and fsync it, rename it
over the target, fsync the folder. Every file the engine writes goes through
here. Pure Python; no other engine import.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, cast

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "check_regular_file"]


def check_regular_file(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a regular file (following links): reading a FIFO would block forever.

    Raises:
        OSError: missing (``FileNotFoundError``), a directory, a pipe, socket or device, or unreadable.
    """
    import stat

    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", os.fspath(path))
    if not stat.S_ISREG(mode):
        raise OSError(22, "not a regular file (a pipe, socket or device)", os.fspath(path))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Writes:
    """A file handle that keeps the ``OSError`` of a refused write: a writer such as ``torch.save``
    reports a full disk as its own ``RuntimeError``, and the cause must still be told."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line)

    # The rest of a binary file's interface, passed on, one method each (zipfile seeks and tells, PIL may
    # ask for fileno, numpy for read).
    @property
    def name(self) -> Any:
        return self._fh.name

    @property
    def mode(self) -> str:
        return self._fh.mode

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def fileno(self) -> int:
        return self._fh.fileno()

    def flush(self) -> None:
        self._fh.flush()

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def seekable(self) -> bool:
        return self._fh.seekable()

    def writable(self) -> bool:
        return self._fh.writable()

    def readable(self) -> bool:
        return self._fh.readable()

    def read(self, size: int = -1) -> bytes:  # (numpy's savez asks whether there is one: a file, not a path)
        return self._fh.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._fh.readline(size)

    def isatty(self) -> bool:
        return self._fh.isatty()

    def truncate(self, size: int | None = None) -> int:
        return self._fh.truncate(size)

    def close(self) -> None:
        self._fh.close()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync, rename over ``path``, fsync the folder.

    ``path`` then holds either the old or the new content, never a torn file,
    whenever the process or the machine dies.

    Raises:
        OSError: the file cannot be written; its ``filename`` is ``path`` (the
            user's target), never the temporary file.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _about(exc, path) from None
    writes: _Writes | None = None
    try:
        with os.fdopen(fd, "wb") as fh:
            writes = _Writes(fh)
            write(cast(BinaryIO, writes))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _about(exc, path) from None
        if writes is not None and writes.error is not None:  # a library's own error about a write the disk refused
            raise _about(writes.error, path) from None
        raise
    _fsync_dir(path.parent)


def _about(exc: OSError, path: Path) -> OSError:
    """The same error, naming ``path`` (``IsADirectoryError`` when ``path`` is a folder)."""
    if exc.errno is None:
        return exc
    try:
        is_dir = path.is_dir()
    except OSError:  # e.g. a name too long to look up
        is_dir = False
    if is_dir:
        import errno

        return IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    return OSError(exc.errno, exc.strerror, str(path))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """``atomic_write`` of UTF-8 text (newlines written as given).

    File names that are not UTF-8 reach Python as lone surrogates
    (``os.fsdecode``); they are written back as the bytes they came from.
    """
    data = text.encode("utf-8", errors="surrogateescape")
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | os.PathLike[str], obj: object) -> None:
    """``atomic_write`` of ``obj`` as indented JSON."""
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=True))
