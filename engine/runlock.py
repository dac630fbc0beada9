"""The single-driver lock of a run directory: at most one process drives a run.

An exclusive ``flock`` on the run's lock file (released by the OS when the
process dies), with the holder's PID written into it so a refusal and
``attach`` can name it. Which file is the lock is ``engine.rundir.RunDir``'s
business: ``RunDir`` hands its lock path here. Pure Python; no torch.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import RunDirError

__all__ = ["RunLock"]


class RunLock:
    """The lock file ``lock_path`` of the run in ``run_path`` (named in messages)."""

    def __init__(self, lock_path: Path, run_path: Path) -> None:
        self.lock_path = lock_path
        self.run_path = run_path
        self._fd: int | None = None
        self.refused = False  # acquire() found another live process holding the run

    def acquire(self, announce: bool = True) -> None:
        """Take the exclusive lock.

        Args:
            announce: write this process's PID into the lock file now (else
                call ``announce()`` later: nothing is written before a resume's checks pass).

        Raises:
            RunDirError: another live process drives this run (its PID is named).
        """
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot lock run directory {self.run_path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                self.refused = True
                raise RunDirError(
                    f"run directory {self.run_path} is in use by process {holder}; "
                    f"watch it with `nas3d-tui attach {self.run_path}`"
                ) from None
            raise RunDirError(f"cannot lock run directory {self.run_path}: {exc.strerror or exc}") from None
        self._fd = fd
        if announce:
            self.announce()

    def announce(self) -> None:
        """Write this process's PID into the held lock file (``attach`` and the refusal name it)."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                os.lseek(self._fd, 0, os.SEEK_SET)
                os.write(self._fd, str(os.getpid()).encode())
                os.fsync(self._fd)
            except OSError as exc:  # a full disk: name the file
                raise OSError(exc.errno, exc.strerror, str(self.lock_path)) from None

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def held_by_other(self) -> int | None:
        """PID of another process holding the lock (-1: held, PID unknown), or None."""
        import fcntl

        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = os.read(fd, 64).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
