"""The journal: every event of a run as one JSON line of ``RUN_DIR/events.jsonl``.

This module owns writing the journal (``JournalSink``: append, flush every
event, fsync the ones whose loss would lose finished work) and reading it back
(``read_journal`` for a whole file, ``tail_journal`` for a growing one,
``read_history`` / ``open_history`` for what a growing one holds so far and
where to follow it,
``read_candidate`` for one candidate's events).
A crash or a full disk can tear the last line; torn lines are skipped, and a
line that is JSON but not a valid event is corrupt (an error for strict
readers). Before a resume appends, ``cut_torn_tail`` sets a torn last line
aside (into a file the caller names) so the journal is whole again.

A write the disk refuses makes the sink fail for good (``JournalSink.error``):
no later line is written after a lost one, so the journal stays a prefix of
what happened, and a resume can tell from it what to announce again.

No torch, no UI.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator

from . import fastjson
from .atomic import atomic_write, check_regular_file
from .errors import CorruptFileError, RunDirError
from .events import EVENT_TYPES, Event, event_from_dict

__all__ = [
    "JournalSink", "History", "read_journal", "open_history", "read_history", "read_candidate", "tail_journal",
    "cut_torn_tail", "DURABLE",
]


# Events after which the journal is fsynced: losing them would lose finished work.
DURABLE = frozenset({"candidate_finished", "state_saved", "final_result", "run_finished", "run_failed"})


class JournalSink:
    """Appends every event as one JSON line to ``events.jsonl``; flushes each, fsyncs durable ones.

    The first write that fails (a full disk, an exceeded quota) is kept as
    ``error`` and raised again by every later call and by ``close``: nothing
    is appended after a line that was lost, so the journal never has a gap.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.error: OSError | None = None
        self._fh = open(self.path, "a", encoding="utf-8")
        # A crash mid-write can leave a partial last line (a resume cuts it first): start on a fresh line.
        if self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    try:
                        self._fh.write("\n")
                        self._fh.flush()
                    except OSError as exc:
                        self._fh.close()
                        raise self._about(exc) from None

    def __call__(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), separators=(",", ":"), allow_nan=True)
        with self._lock:
            if self.error is not None:
                raise self.error  # a line was lost: none may follow it
            if self._fh.closed:
                return
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
                if event.kind in DURABLE:
                    os.fsync(self._fh.fileno())
            except OSError as exc:  # a full disk: say which file could not be written
                self.error = self._about(exc)
                raise self.error from None

    def check(self) -> None:
        """Raise the write error that stopped the journal, if any.

        Raises:
            OSError: naming the journal.
        """
        with self._lock:
            if self.error is not None:
                raise self.error

    def close(self) -> None:
        """Flush, fsync and close; raises the error of a line that was lost, if any.

        Raises:
            OSError: naming the journal.
        """
        with self._lock:
            if not self._fh.closed:
                try:
                    self._fh.flush()  # (after a failure: the rest of a torn line, if the disk has room again)
                    os.fsync(self._fh.fileno())
                except OSError as exc:
                    if self.error is None:
                        self.error = self._about(exc)
                finally:
                    try:
                        self._fh.close()
                    except OSError:
                        pass  # the flush above already failed and said why
            if self.error is not None:
                raise self.error

    def _about(self, exc: OSError) -> OSError:
        """``exc`` naming the journal (a write to an open file carries no file name)."""
        return type(exc)(exc.errno, exc.strerror, str(self.path)) if exc.errno else exc


def cut_torn_tail(path: str | os.PathLike[str], aside: Callable[[], Path]) -> Path | None:
    """Make a journal whole before anything is appended to it: set a torn last line aside.

    The tail is what follows the last newline; when it is not one complete
    event (a write cut short by a crash or a full disk, NUL bytes a crashed
    machine left), it is copied to ``aside()`` (atomically, nothing is
    destroyed) and cut off the journal. A last complete line that is the
    start of a torn event (an older version ended a torn line with a newline)
    goes with it. A tail that is a whole event only lacks its newline, which
    is added. Readers that skip torn lines read the journal as before.

    Returns:
        The file the torn bytes went to, or None when the journal was whole.

    Raises:
        OSError: the journal cannot be read or cut, or the torn bytes cannot be set aside.
    """
    p = Path(path)
    if not os.path.lexists(p):
        return None
    check_regular_file(p)
    with open(p, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - _TAIL_WINDOW))
        window = fh.read()
    base = size - len(window)
    end = window.rfind(b"\n") + 1  # the offset (in ``window``) after the last complete line
    if end == 0 and base > 0:  # a last line longer than the window: read it whole
        with open(p, "rb") as fh:
            window = fh.read()
        base, end = 0, window.rfind(b"\n") + 1
    tail = window[end:]
    if tail and _whole_event(tail):
        with open(p, "ab") as out:  # a complete event that lacks only its newline
            out.write(b"\n")
            out.flush()
            os.fsync(out.fileno())
        return None
    cut = end  # the tail goes (when there is one)
    if end > 0:
        start = window.rfind(b"\n", 0, end - 1) + 1  # the last complete line
        if (start > 0 or base == 0) and _torn_line(window[start:end]):
            cut = start  # a torn line an older version closed with a newline
    if cut == len(window):
        return None
    target = aside()
    atomic_write(target, lambda fh: fh.write(window[cut:]))
    os.truncate(p, base + cut)
    return target


_TAIL_WINDOW = 1 << 20  # a journal line is far shorter: the tail and the line before it lie in the last MiB


def _whole_event(data: bytes) -> bool:
    """Whether ``data`` is one whole JSON object (a line that only lacks its newline)."""
    try:
        return isinstance(fastjson.loads(data.decode("utf-8").strip()), dict)
    except (ValueError, RecursionError):
        return False


def _torn_line(data: bytes) -> bool:
    try:
        _parse_line(data.decode("utf-8", errors="replace"))
    except _Torn:
        return True
    except (ValueError, TypeError, CorruptFileError, RecursionError):
        return False
    return False


class _Torn(Exception):
    """A line that starts an event but is not JSON: the partial last write of a process that died."""


def _parse_line(line: str, kinds: Collection[str] | None = None) -> Event | None:
    """The event of one journal line; None for a blank line, an event kind from a newer version,
    or (``kinds`` given) a kind the reader does not want, which is then not type-checked.

    Raises:
        _Torn: the line starts like an event but is not JSON (a torn write).
        ValueError: any other line that is not a valid event (corrupt).
    """
    line = line.strip().strip("\x00")  # a crash of the machine can leave NUL bytes where a write was
    if not line:
        return None
    try:
        data = fastjson.loads(line)
    except ValueError:
        if line.startswith("{"):
            raise _Torn() from None  # the start of one of our lines: a write cut short
        raise ValueError("not an event line (not JSON)") from None
    except RecursionError:
        raise ValueError("a line nested too deeply to be an event") from None
    if isinstance(data, dict) and data.get("kind") not in EVENT_TYPES and isinstance(data.get("kind"), str):
        return None  # written by a newer version: not ours to judge
    if kinds is not None and isinstance(data, dict) and data.get("kind") in EVENT_TYPES and data["kind"] not in kinds:
        return None  # valid JSON of a known kind the reader does not use
    return event_from_dict(data)


def read_journal(
    path: str | os.PathLike[str], strict: bool = False, kinds: Collection[str] | None = None
) -> list[Event]:
    """The events of a journal, in order (only those of ``kinds`` when given).

    A line that starts an event but is cut short -- the torn last write of a
    process that was killed -- is skipped, and so are event kinds from a newer
    version. Any other line (not JSON, or JSON but not a valid event) is
    corrupt: skipped too unless ``strict`` (export, report and resume use
    strict reads). With ``kinds``, every line must still be JSON, but only
    events of those kinds are built and checked: a reader that folds only a
    few kinds (``export``) does not pay for the others.

    Raises:
        CorruptFileError: ``strict`` and a line is a malformed event (names the line).
        RunDirError: the journal cannot be read (a directory, no permission, ...).
    """
    p = Path(path)
    events: list[Event] = []
    try:
        if not os.path.lexists(p):  # (exists() is False for a link loop too: let open() say what is wrong)
            return []
        check_regular_file(p)
        with open(p, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    event = _parse_line(line, kinds)
                except _Torn:
                    continue
                except (ValueError, TypeError, CorruptFileError) as exc:
                    if strict:
                        raise CorruptFileError(f"{p} line {n} is corrupt: {exc}") from None
                    continue
                if event is not None:
                    events.append(event)
    except OSError as exc:
        raise RunDirError(f"cannot read {p}: {exc.strerror or exc}") from None
    return events


def _watch_lines(lines: list[str]) -> list[Event]:
    """The events of complete lines, as a watcher reads them: what cannot be read is skipped."""
    events: list[Event] = []
    for line in lines:
        try:
            event = _parse_line(line)
        except (_Torn, ValueError, TypeError, CorruptFileError):
            continue  # a watcher shows what it can
        if event is not None:
            events.append(event)
    return events


@dataclass
class History:
    """What a growing journal holds now (``open_history``): its events, read one at a time."""

    events: Iterator[Event]  # of every complete line, in order; each line decoded when reached
    offset: int  # the byte offset after the last complete line: where ``tail_journal`` follows on
    last: Event | None  # the last event of those lines (known before ``events`` is read)


def open_history(path: str | os.PathLike[str]) -> History:
    """The events of every complete line a growing journal holds now, without holding them all.

    A long run's journal decodes to several times its size in objects; a
    reader that folds them (``attach``) lets each go once folded. The file is
    read at once (a read error is raised here, not later); its lines are
    decoded as ``events`` is iterated. Lines that cannot be read are skipped
    (a watcher shows what it can); a line still being written is left to
    ``tail_journal(..., start_at=offset)``.

    Raises:
        OSError: the journal cannot be read.
    """
    data, end = _complete_lines(path)
    return History(events=_events_of(data, end), offset=end, last=_last_event(data, end))


def _complete_lines(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """The journal's bytes, and the offset after its last complete line (what follows is being written)."""
    check_regular_file(path)  # a pipe would block forever
    with open(path, "rb") as fh:
        data = fh.read()
    return data, data.rfind(b"\n") + 1


def _events_of(data: bytes, end: int) -> Iterator[Event]:
    # (each line decoded on its own: the file's bytes and its whole text are never both held)
    start = 0
    while start < end:
        stop = data.find(b"\n", start)
        yield from _watch_lines([data[start:stop].decode("utf-8", errors="replace")])
        start = stop + 1


def _last_event(data: bytes, end: int) -> Event | None:
    stop = end - 1  # the newline ending the last complete line
    while stop > 0:
        start = data.rfind(b"\n", 0, stop) + 1
        events = _watch_lines([data[start:stop].decode("utf-8", errors="replace")])
        if events:
            return events[0]
        stop = start - 1
    return None


def read_history(path: str | os.PathLike[str]) -> tuple[list[Event], int]:
    """The events of every complete line a growing journal holds now, and the byte offset after them
    (``open_history``, all in a list).

    Raises:
        OSError: the journal cannot be read.
    """
    data, end = _complete_lines(path)
    return _watch_lines(data[:end].decode("utf-8", errors="replace").split("\n")[:-1]), end


def read_candidate(path: str | os.PathLike[str], candidate_id: int) -> list[Event]:
    """The events about one candidate (its start, epochs, resumptions, result, final results), in order.

    For a view that let a candidate's details go and wants them back (the
    dashboard of a long run): only the lines that name ``candidate_id`` are
    decoded, so it costs a scan of the file, not a parse of every line. Lines
    that cannot be read are skipped, as ``read_history`` does.

    Raises:
        RunDirError: the journal cannot be read.
    """
    try:
        check_regular_file(path)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    name = re.compile(rb'"candidate_id": ?%d[,}\s]' % int(candidate_id))
    lines: list[str] = []
    end = 0
    for match in name.finditer(data):
        if match.start() < end:
            continue  # (a second match on a line already taken)
        start = data.rfind(b"\n", 0, match.start()) + 1
        end = data.find(b"\n", match.end())
        if end < 0:
            break  # a line still being written
        lines.append(data[start:end].decode("utf-8", errors="replace"))
    return [e for e in _watch_lines(lines) if getattr(e, "candidate_id", None) == candidate_id]


def tail_journal(
    path: str | os.PathLike[str],
    stop: threading.Event,
    poll: float = 0.2,
    from_start: bool = True,
    start_at: int = 0,
) -> Iterator[Event]:
    """Yield events of a growing journal until ``stop`` is set (used by ``attach``).

    Only complete lines are parsed, so a line being written is never torn.
    ``start_at``: the byte offset of a line start to begin at (see ``read_history``).
    """
    p = Path(path)
    pos = start_at
    buf = ""
    while not stop.is_set():
        if not p.exists():
            stop.wait(poll)
            continue
        if not from_start and pos == 0:
            pos = p.stat().st_size
            from_start = True
        with open(p, encoding="utf-8", errors="replace") as fh:
            fh.seek(pos)
            chunk = fh.read()
            pos = fh.tell()
        if chunk:
            buf += chunk
            *lines, buf = buf.split("\n")
            yield from _watch_lines(lines)
        else:
            stop.wait(poll)
