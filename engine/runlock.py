"""The single-driver lock of a run directory: at most one process drives a run.

An exclusive ``flock`` on the run's lock file (released by the OS when the
process dies), with the holder's PID written into it so a refusal and
``attach`` can name it. Which file is the lock is ``engine.rundir.RunDir``'s
business: ``RunDir`` hands its lock path here. Pure Python; no torch.

A kernel lock is only seen by the kernel that holds it. With the run
directory on a cluster's shared file system, the run is driven on a compute
node while ``nas3d-tui runs`` or ``attach`` is typed on the login node, whose
kernel knows nothing of the lock (and, on a file system whose ``flock`` is
node-local, neither does its ``flock``). So the driver also keeps a *driver
file* (``DriverFile``; ``RunDir.driver_path`` names it): its host name, PID,
start time and a heartbeat, rewritten atomically every ``BEAT_SECONDS`` by a
daemon thread while it holds the run, and removed when it lets the run go.
Readers on another host trust the heartbeat: fresh (younger than
``STALE_AFTER_SECONDS``) means a live driver there; older means it is
presumed dead (``stale``). On the driver's own host the kernel lock stays the
authority. Times are wall-clock seconds (``time.time()``): the hosts'
clocks are assumed to agree to well under ``STALE_AFTER_SECONDS`` (NTP
keeps them within milliseconds).

A driver whose heartbeat was stale (its file system hung for a minute, or the
job was suspended) may find, when it beats again, that the file names another
driver that took the run over in the meantime. It then stops at once, without
writing anything more to the run directory (``DriverFile.on_superseded``,
by default: one line on stderr and exit status ``SUPERSEDED_EXIT``), since
a second writer would corrupt the run the new driver continues.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .atomic import atomic_write_json, check_regular_file
from .errors import RunDirError

__all__ = [
    "RunLock", "DriverFile", "DriverInfo", "read_driver", "this_host",
    "BEAT_SECONDS", "STALE_AFTER_SECONDS", "SUPERSEDED_EXIT", "DRIVER_FORMAT",
]

BEAT_SECONDS = 5.0  # how often a driver rewrites its heartbeat
STALE_AFTER_SECONDS = 60.0  # a heartbeat older than this, from another host: that driver is presumed dead
SUPERSEDED_EXIT = 75  # the exit status of a driver that found another driver had taken its run over
DRIVER_FORMAT = "nas3d-tui/driver/1"


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


def this_host() -> str:
    """This machine's host name, as a driver records it (``socket.gethostname()``)."""
    return socket.gethostname()


@dataclass(frozen=True)
class DriverInfo:
    """Who drives (or drove) a run, as its driver file says: host, PID, start and last heartbeat (wall clock)."""

    host: str
    pid: int
    started: float
    beat: float

    @property
    def identity(self) -> tuple[str, int, float]:
        return self.host, self.pid, self.started

    def age(self, now: float | None = None) -> float:
        """Seconds since the last heartbeat (never negative: a clock a little ahead reads as just now)."""
        return max(0.0, (time.time() if now is None else now) - self.beat)

    def fresh(self, now: float | None = None) -> bool:
        """The heartbeat is younger than ``STALE_AFTER_SECONDS``: its driver is presumed alive."""
        return self.age(now) <= STALE_AFTER_SECONDS

    def elsewhere(self) -> bool:
        """It names another host than this one."""
        return self.host != this_host()

    def to_dict(self) -> dict[str, Any]:
        return {"format": DRIVER_FORMAT, "host": self.host, "pid": self.pid, "started": self.started, "beat": self.beat}


def read_driver(path: Path) -> DriverInfo | None:
    """The driver file at ``path``, or None: none, unreadable, or not one (read leniently, like a control file).

    A driver file that cannot be trusted is as good as none: the run is then
    judged as runs without one always were (by the kernel lock).
    """
    try:
        check_regular_file(path)  # a pipe would block the reader forever
        with open(path, "rb") as fh:
            data = json.loads(fh.read(4096).decode("utf-8"))
        host, pid, started, beat = data["host"], data["pid"], data["started"], data["beat"]
        if data.get("format") != DRIVER_FORMAT or not isinstance(host, str) or not host:
            return None
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (started, beat)):
            return None
        info = DriverInfo(host=host, pid=pid, started=float(started), beat=float(beat))
        if not all(0 <= t < 1e11 for t in (info.started, info.beat)):  # NaN and absurd years included
            return None
        return info
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _fence(mine: DriverInfo, other: DriverInfo) -> None:
    """The default ``on_superseded``: say so and exit at once, writing nothing more to the run."""
    try:
        sys.stderr.write(
            f"nas3d-tui: this run was taken over by process {other.pid} on {other.host} while this driver "
            f"(process {mine.pid} on {mine.host}) was not heard from; stopping without writing anything more\n"
        )
        sys.stderr.flush()
    finally:
        os._exit(SUPERSEDED_EXIT)


class DriverFile:
    """The driver file at ``path`` of the run in ``run_path``: the cross-host half of the single-driver rule.

    ``refuse_if_driven_elsewhere()`` before the lock is taken; ``start()``
    once the driver announces itself (writes the file, starts the
    heartbeat thread); ``stop()`` when it lets the run go (stops the thread,
    removes the file if it still names this driver).

    Args:
        path: the driver file.
        run_path: the run directory (named in messages).
        beat_seconds: seconds between heartbeats.
    """

    def __init__(self, path: Path, run_path: Path, beat_seconds: float = BEAT_SECONDS) -> None:
        self.path = path
        self.run_path = run_path
        self.beat_seconds = beat_seconds
        self.mine: DriverInfo | None = None  # what this process wrote, while it drives
        self.superseded: DriverInfo | None = None  # the driver that took the run over, if one did
        self.on_superseded: Callable[[DriverInfo, DriverInfo], None] = _fence
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read(self) -> DriverInfo | None:
        return read_driver(self.path)

    def refuse_if_driven_elsewhere(self) -> None:
        """Raise when the file names another host whose heartbeat is fresh (the kernel lock cannot see it).

        A stale heartbeat does not refuse: that driver is presumed dead (see
        the module docstring for what happens if it is not).

        Raises:
            RunDirError: one line naming the host and the PID.
        """
        other = self.read()
        if other is None or not other.elsewhere() or not other.fresh():
            return
        raise RunDirError(
            f"run directory {self.run_path} is driven by process {other.pid} on host {other.host} "
            f"(heartbeat {other.age():.0f}s ago); watch it with `nas3d-tui attach {self.run_path}`"
        )

    def start(self) -> None:
        """Write this process's driver file and keep its heartbeat in a daemon thread (no-op when started)."""
        if self._thread is not None:
            return
        now = time.time()
        self.mine = DriverInfo(host=this_host(), pid=os.getpid(), started=now, beat=now)
        self.superseded = None
        self._write(self.mine)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="nas3d-heartbeat", daemon=True)
        self._thread.start()

    def _write(self, info: DriverInfo) -> None:
        try:
            atomic_write_json(self.path, info.to_dict())
        except OSError:
            pass  # a file system hiccup: the next beat tries again (readers see an older beat meanwhile)

    def beat(self) -> bool:
        """One heartbeat: rewrite the file, unless another driver took the run over (then False).

        A missing or unreadable file is written again; one naming another driver is left alone.
        """
        mine = self.mine
        if mine is None:
            return False
        found = self.read()
        if found is not None and found.identity != mine.identity:
            self.superseded = found
            return False
        self.mine = DriverInfo(mine.host, mine.pid, mine.started, time.time())
        self._write(self.mine)
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_seconds):
            if not self.beat():
                mine, other = self.mine, self.superseded
                if mine is not None and other is not None and not self._stop.is_set():
                    self.on_superseded(mine, other)
                return

    def stop(self) -> None:
        """Stop the heartbeat; remove the file when it still names this driver (a clean release)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.beat_seconds + 5)
        mine, self.mine = self.mine, None
        if mine is None:
            return
        found = self.read()
        if found is not None and found.identity == mine.identity:
            try:
                os.unlink(self.path)
            except OSError:
                pass
