"""The run directory: layout, the single-writer lock, and crash-safe writes.

Layout of ``RUN_DIR``::

    profile.toml        the resolved profile (every key, defaults filled in)
    events.jsonl        the journal (append-only; replays the dashboard)
    checkpoint.json     search state, written atomically (tmp, fsync, rename)
    candidates/NNNNNN.json  one record per finished candidate
    final/<id>-seed<k>/ weights.pt + genotype.json of retrained finalists
    leaderboard.{csv,json,md}  exports
    control.json        commands from an attached dashboard
    .lock               held (flock) by the process driving the run

Nothing here imports torch or UI code.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

__all__ = ["RunDirError", "RunDir", "atomic_write", "atomic_write_text", "atomic_write_json"]


class RunDirError(RuntimeError):
    """A run directory problem with a one-line, user-facing message."""


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


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync, rename over ``path``, fsync the folder.

    ``path`` then holds either the old or the new content, never a torn file,
    whenever the process or the machine dies.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """``atomic_write`` of UTF-8 text (newlines written as given)."""
    data = text.encode("utf-8")
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=True))


class RunDir:
    """One run's directory. ``acquire()`` takes the lock; use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        self._lock_fd: int | None = None

    # -- paths ----------------------------------------------------------------------
    @property
    def profile_path(self) -> Path:
        return self.path / "profile.toml"

    @property
    def journal_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.json"

    @property
    def candidates_dir(self) -> Path:
        return self.path / "candidates"

    @property
    def final_dir(self) -> Path:
        return self.path / "final"

    def candidate_path(self, candidate_id: int) -> Path:
        return self.candidates_dir / f"{candidate_id:06d}.json"

    # -- creation and lock --------------------------------------------------------------
    def create(self) -> "RunDir":
        """Create the directory tree.

        Raises:
            RunDirError: the directory cannot be created or written.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.candidates_dir.mkdir(exist_ok=True)
            self.final_dir.mkdir(exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise RunDirError(f"cannot write run directory {self.path}: {exc.strerror or exc}") from None
        return self

    def acquire(self) -> "RunDir":
        """Take the exclusive lock (released by the OS if the process dies).

        Raises:
            RunDirError: another live process drives this run (its PID is named).
        """
        import fcntl

        lock_path = self.path / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot lock run directory {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirError(
                    f"run directory {self.path} is in use by process {holder}; "
                    f"watch it with `nas3d-tui attach {self.path}`"
                ) from None
            raise RunDirError(f"cannot lock run directory {self.path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._lock_fd = fd
        return self

    def release(self) -> None:
        if self._lock_fd is not None:
            import fcntl

            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "RunDir":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def locked_by_other(self) -> int | None:
        """PID of another process holding the lock, or None (used by ``attach``)."""
        import fcntl

        lock_path = self.path / ".lock"
        if not lock_path.exists():
            return None
        fd = os.open(lock_path, os.O_RDONLY)
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

    # -- state ----------------------------------------------------------------------------
    def write_checkpoint(self, state: dict[str, Any]) -> Path:
        atomic_write_json(self.checkpoint_path, state)
        return self.checkpoint_path

    def read_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, None when there is none.

        Raises:
            RunDirError: the checkpoint exists but cannot be parsed.
        """
        if not self.checkpoint_path.exists():
            return None
        try:
            state = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"checkpoint {self.checkpoint_path} is corrupt ({exc}); cannot resume") from None
        if not isinstance(state, dict) or "ode" not in state:
            raise RunDirError(f"checkpoint {self.checkpoint_path} is corrupt (no search state); cannot resume")
        return state

    def write_candidate(self, record: dict[str, Any]) -> None:
        atomic_write_json(self.candidate_path(int(record["candidate_id"])), record)

    def read_candidates(self) -> dict[int, dict[str, Any]]:
        """Finished candidate records by id; an unreadable record is skipped (it is redone)."""
        records: dict[int, dict[str, Any]] = {}
        if not self.candidates_dir.exists():
            return records
        for p in sorted(self.candidates_dir.glob("*.json")):
            try:
                rec = json.loads(p.read_text(encoding="utf-8"))
                records[int(rec["candidate_id"])] = rec
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return records
