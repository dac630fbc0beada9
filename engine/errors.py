"""The engine's error vocabulary: user-facing errors, the stop signal, and one-line messages.

Every problem a user can cause (a bad profile, a missing or malformed file,
a run directory that cannot be used, a device that does not exist) is a
``UserError`` whose message is one line meant for a terminal; the command
line turns it into exit code 2. ``StopRequested`` is not an error: it is how a
stop asked for by the user travels from a batch boundary up to the session.

This module sits at the bottom of the engine: it imports nothing from it, so
any layer may raise these without importing the layer that drives it.
"""
from __future__ import annotations

import errno
import os

__all__ = [
    "UserError",
    "SessionError",
    "RunDirError",
    "CorruptFileError",
    "StopRequested",
    "one_line",
    "os_error_message",
    "is_disk_full",
    "os_error_reason",
    "DISK_FULL",
]

# A full file system and an exhausted disk quota: the same to a user (free space, then resume).
DISK_FULL = "no space left on the device (the disk is full or the disk quota is exceeded)"
_DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


class UserError(Exception):
    """A problem the user can fix; ``str()`` is one line naming what is wrong."""

    def __init__(self, message: str = "") -> None:
        super().__init__(" ".join(str(message).split()))


class SessionError(UserError):
    """A run cannot start or continue (a device, an executor, a run directory's state)."""


class RunDirError(UserError):
    """A run directory cannot be used (not writable, locked by another process, ...)."""


class CorruptFileError(RunDirError):
    """A file the run trusts failed its check; nothing was written because of it."""


class StopRequested(Exception):
    """Raised at a batch boundary when a stop was asked for; nothing half-written remains."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``"TypeName: message"`` of an exception, whitespace folded, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for want of space: ``ENOSPC`` or ``EDQUOT``."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS


def os_error_reason(exc: OSError) -> str:
    """Why an ``OSError`` happened, in words; a full disk and an exceeded quota read the same (``DISK_FULL``)."""
    return DISK_FULL if is_disk_full(exc) else (exc.strerror or one_line(exc))


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """One line for an ``OSError`` that names the user's path, not a temporary file.

    A full disk and an exceeded quota (``ENOSPC``, ``EDQUOT``) read the same: ``DISK_FULL``.
    """
    where = os.fspath(path) if path is not None else (exc.filename or "")
    reason = os_error_reason(exc)
    return f"{where}: {reason}" if where else str(reason)
