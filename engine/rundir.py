"""The run directory: its layout, the single-driver lock, and every file the run trusts.

Layout of ``RUN_DIR``::

    profile.toml            the resolved profile (every key, defaults filled in)
    events.jsonl            the journal (append-only; replays the dashboard)
    checkpoint.json         the search state, written atomically before every batch
    candidates/NNNNNN.json  one record per finished candidate
    candidates/NNNNNN.ckpt  per-epoch checkpoint of a long candidate in training
    final/<id>-seed<k>/     a model bundle (weights.safetensors + genotype.json),
                            result.json, and training.ckpt while it trains
    leaderboard.{csv,json,md}  exports
    control.json            commands from an attached dashboard
    .lock                   held (flock) by the process driving the run

Every file the run resumes from is checked when it is read: the checkpoint
(``SearchCheckpoint``), the candidate records (``CandidateRecord``), the final
results, the journal. A file that fails its check is reported as
``CorruptFileError`` with one line naming the file, the field and what is
wrong -- never replaced by a default -- and nothing is written because of it.

Nothing here imports torch at module level or any UI code.
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .atomic import atomic_write, atomic_write_json, atomic_write_text, check_regular_file
from .errors import CorruptFileError, RunDirError
from .records import TRAINED_STATUSES, CandidateRecord

__all__ = [
    "RunDirError",
    "read_json",
    "refuse_run_file",
    "CorruptFileError",
    "RunDir",
    "SearchCheckpoint",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_STATES",
    "atomic_write",
    "atomic_write_text",
    "atomic_write_json",
    "run_dir_name",
]

CHECKPOINT_FORMAT = "nas3d-tui/checkpoint/1"
CHECKPOINT_STATES = ("search", "final", "finished")


@dataclass(frozen=True)
class SearchCheckpoint:
    """The search state saved before every batch (``checkpoint.json``).

    Attributes:
        state: ``search`` (the search goes on), ``final`` (the search ended,
            the final phase runs) or ``finished``.
        reason: why the search ended (``budget`` / ``time``), once it has.
        strategy: the strategy's ``state_dict()`` (ODE or random search).
        trained: candidates trained when it was written.
        elapsed: seconds of run time before it was written (all segments).
        generation: the strategy's generation.
        written: wall-clock time it was written.
    """

    state: str
    strategy: dict
    trained: int
    elapsed: float
    generation: int
    written: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "state": self.state,
            "reason": self.reason,
            "ode": self.strategy,  # the key predates random search; kept so old runs resume
            "trained": self.trained,
            "elapsed": self.elapsed,
            "generation": self.generation,
            "written": self.written,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "SearchCheckpoint":
        """Check every field.

        Raises:
            CorruptFileError: a field is missing, of the wrong type, or an unknown value.
        """

        def bad(field: str, problem: str) -> CorruptFileError:
            return CorruptFileError(f"{where} is corrupt: {field} {problem}; cannot resume")

        if not isinstance(data, dict):
            raise CorruptFileError(f"{where} is corrupt: not a JSON object; cannot resume")
        if data.get("format") != CHECKPOINT_FORMAT:
            raise bad("format", f"= {data.get('format')!r} (expected {CHECKPOINT_FORMAT!r})")
        for name in ("state", "ode", "trained", "elapsed"):
            if name not in data:
                raise bad(name, "is missing")
        state = data["state"]
        if state not in CHECKPOINT_STATES:
            raise bad("state", f"= {state!r} (expected one of {', '.join(CHECKPOINT_STATES)})")
        if not isinstance(data["ode"], dict):
            raise bad("ode", "is not an object")
        values: dict[str, Any] = {}
        for name, default in (("trained", None), ("generation", 0)):
            v = data.get(name, default)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, f"= {v!r} (expected an integer >= 0)")
            values[name] = v
        for name, default in (("elapsed", None), ("written", 0.0)):
            v = data.get(name, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise bad(name, f"= {v!r} (expected a number >= 0)")
            values[name] = float(v)
        reason = data.get("reason", "")
        if not isinstance(reason, str):
            raise bad("reason", f"= {reason!r} (expected a string)")
        return cls(state=state, strategy=data["ode"], reason=reason, **values)


def run_dir_name(output_dir: str | os.PathLike[str], name: str) -> Path:
    """A fresh run directory path ``<output_dir>/<name>-YYYYmmdd-HHMMSS`` (suffixed when taken)."""
    from datetime import datetime

    base = Path(output_dir).expanduser()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / f"{name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{name}-{stamp}-{n}"
    return path


def read_json(path: Path) -> Any:
    """JSON of a file the run trusts.

    Raises:
        CorruptFileError: not UTF-8, not JSON, or truncated.
        RunDirError: it cannot be read (a directory, no permission, ...).
    """
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


# The files a run or a model bundle trusts: an export must never write over them.
_RUN_FILES = frozenset({"profile.toml", "checkpoint.json", "events.jsonl", "train.json", ".lock", "control.json"})
_BUNDLE_FILES = frozenset({"weights.safetensors", "weights.pt", "genotype.json", "result.json", "training.ckpt"})


def refuse_run_file(target: str | os.PathLike[str]) -> None:
    """Raise when ``target`` is one of the files of a run directory or of a model bundle.

    ``export -o``, ``predict -o`` and ``export-model -o`` call it before writing:
    a slip of the shell's completion must not replace a checkpoint or a bundle's
    genotype with a table.

    Raises:
        RunDirError: names the target and whose file it is.
    """
    p = Path(target).expanduser().absolute()
    try:
        parent = p.parent
        in_run = (parent / "profile.toml").is_file()
        in_bundle = (parent / "genotype.json").is_file() or (parent / "result.json").is_file()
        candidate = parent.name == "candidates" and (parent.parent / "profile.toml").is_file()
    except OSError:
        return  # an unreadable place: the write itself will say why
    if (p.name in _RUN_FILES and in_run) or candidate:
        raise RunDirError(f"{p}: a file of the run in {parent if in_run else parent.parent}; write the output elsewhere")
    if p.name in _BUNDLE_FILES and in_bundle:
        raise RunDirError(f"{p}: a file of the model bundle in {parent}; write the output elsewhere")


class RunDir:
    """One run's directory. ``acquire()`` takes the lock; use as a context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.path = Path(path).expanduser().resolve()
        except (OSError, RuntimeError) as exc:
            raise RunDirError(f"cannot use run directory {path}: {getattr(exc, 'strerror', None) or exc}") from None
        self._lock_fd: int | None = None
        self.created_here = False  # this object's create() made the directory (no other process did)
        self.lock_refused = False  # acquire() found another live process holding the run

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

    def candidate_checkpoint_path(self, candidate_id: int) -> Path:
        """Where a search candidate's per-epoch checkpoint lives while it trains."""
        return self.candidates_dir / f"{candidate_id:06d}.ckpt"

    def finalist_dir(self, candidate_id: int, seed: int) -> Path:
        """The bundle folder of one retraining of a finalist."""
        return self.final_dir / f"{candidate_id:06d}-seed{seed}"

    @property
    def train_plan_path(self) -> Path:
        """What a ``nas3d-tui train`` run retrains (its architecture and seeds)."""
        return self.path / "train.json"

    # -- state of the folder ------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether a run has started here (a journal with content, or a checkpoint)."""
        try:
            journal = self.journal_path.stat().st_size > 0 if self.journal_path.exists() else False
            return journal or self.checkpoint_path.exists()
        except OSError as exc:
            raise RunDirError(f"cannot read run directory {self.path}: {exc.strerror or exc}") from None

    def check_is_run(self) -> None:
        """Raise unless this is a run directory that can be resumed or exported.

        Raises:
            RunDirError: no such directory, not a directory, or no profile.toml.
        """
        try:
            if not self.path.exists():
                raise RunDirError(f"no run directory at {self.path}")
            if not self.path.is_dir():
                raise RunDirError(f"{self.path} is not a directory")
            if not self.profile_path.is_file():
                raise RunDirError(f"{self.path} is not a nas3d-tui run directory (no profile.toml)")
        except OSError as exc:
            raise RunDirError(f"cannot use run directory {self.path}: {exc.strerror or exc}") from None

    def check_training_checkpoints(self) -> None:
        """Every per-epoch training checkpoint present must be a plain file.

        A damaged checkpoint *file* is reported when its training starts and that
        training restarts; a directory (or a link loop) in its place could not be
        replaced by the next checkpoint, so it stops a resume before anything runs.

        Raises:
            CorruptFileError: names the first such path.
        """
        patterns = (self.candidates_dir, "*.ckpt"), (self.final_dir, "*/training.ckpt")
        try:
            for folder, pattern in patterns:
                if not folder.is_dir():
                    continue
                for path in sorted(folder.glob(pattern)):
                    if not path.is_file():
                        raise CorruptFileError(
                            f"{path} is not a plain file, but a training checkpoint belongs there; "
                            "remove it to resume (that training restarts)"
                        )
        except OSError as exc:
            raise RunDirError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    # -- creation and lock --------------------------------------------------------------
    def create(self) -> "RunDir":
        """Create the directory tree.

        Raises:
            RunDirError: the directory cannot be created or written.
        """
        try:
            try:
                self.path.mkdir(parents=True)  # exactly one of two racing processes makes it
                self.created_here = True
            except FileExistsError:
                if not self.path.is_dir():
                    raise
            self.candidates_dir.mkdir(exist_ok=True)
            self.final_dir.mkdir(exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise RunDirError(f"cannot write run directory {self.path}: {exc.strerror or exc}") from None
        return self

    def acquire(self, announce: bool = True) -> "RunDir":
        """Take the exclusive lock (released by the OS if the process dies).

        Args:
            announce: write this process's PID into the lock file now (else
                call ``announce()`` later: nothing is written before a resume's checks pass).

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
                self.lock_refused = True
                raise RunDirError(
                    f"run directory {self.path} is in use by process {holder}; "
                    f"watch it with `nas3d-tui attach {self.path}`"
                ) from None
            raise RunDirError(f"cannot lock run directory {self.path}: {exc.strerror or exc}") from None
        self._lock_fd = fd
        if announce:
            self.announce()
        return self

    def announce(self) -> None:
        """Write this process's PID into the held lock file (``attach`` and the refusal name it)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.lseek(self._lock_fd, 0, os.SEEK_SET)
            os.write(self._lock_fd, str(os.getpid()).encode())
            os.fsync(self._lock_fd)

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
        try:
            fd = os.open(lock_path, os.O_RDONLY)
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

    def discard(self) -> None:
        """Remove a run directory in which no candidate has finished (a run that failed to start)."""
        if self.candidates_dir.exists() and any(self.candidates_dir.glob("*.json")):
            return  # finished work is never removed
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- the search checkpoint ------------------------------------------------------------
    def write_checkpoint(self, checkpoint: SearchCheckpoint) -> Path:
        atomic_write_json(self.checkpoint_path, checkpoint.to_dict())
        return self.checkpoint_path

    def read_checkpoint(self) -> SearchCheckpoint | None:
        """The last checkpoint, None when there is none.

        Raises:
            CorruptFileError: it exists but fails its check.
            RunDirError: it cannot be read.
        """
        try:
            if not os.path.lexists(self.checkpoint_path):
                return None
        except OSError as exc:
            raise RunDirError(f"cannot read {self.checkpoint_path}: {exc.strerror or exc}") from None
        return SearchCheckpoint.from_dict(read_json(self.checkpoint_path), where=str(self.checkpoint_path))

    # -- candidate records ----------------------------------------------------------------
    def write_record(self, record: CandidateRecord) -> None:
        atomic_write_json(self.candidate_path(record.candidate_id), record.to_dict())

    def read_records(self) -> dict[int, CandidateRecord]:
        """Finished candidate records by id, each checked.

        Raises:
            CorruptFileError: a record is not valid JSON, fails its check, or
                its file name and id disagree.
            RunDirError: the folder or a record cannot be read.
        """
        records: dict[int, CandidateRecord] = {}
        try:
            if not self.candidates_dir.exists():
                return records
            paths = sorted(self.candidates_dir.glob("*.json"))
        except OSError as exc:
            raise RunDirError(f"cannot read {self.candidates_dir}: {exc.strerror or exc}") from None
        for p in paths:
            if p.name.startswith("."):
                continue  # a temporary file of an interrupted atomic write
            record = CandidateRecord.from_dict(read_json(p), where=str(p))
            if p.name != f"{record.candidate_id:06d}.json":
                raise CorruptFileError(f"{p} is corrupt: it holds candidate {record.candidate_id}; cannot resume")
            records[record.candidate_id] = record
        return records

    # -- finalists -------------------------------------------------------------------------
    def has_final_outputs(self) -> bool:
        """Whether ``final/`` holds anything (a search's final phase or a train run has begun)."""
        try:
            return self.final_dir.is_dir() and any(self.final_dir.iterdir())
        except OSError as exc:
            raise RunDirError(f"cannot read {self.final_dir}: {exc.strerror or exc}") from None

    def final_results(self) -> Iterator[tuple[Path, dict]]:
        """``(path, data)`` of every ``final/*/result.json`` (checked as events by the caller)."""
        try:
            folders = sorted(p for p in self.final_dir.iterdir() if p.is_dir()) if self.final_dir.exists() else []
        except OSError as exc:
            raise RunDirError(f"cannot read {self.final_dir}: {exc.strerror or exc}") from None
        for folder in folders:
            path = folder / "result.json"
            if os.path.lexists(path):
                yield path, read_json(path)


def count_trained(records: dict[int, CandidateRecord]) -> int:
    """Candidates that spent budget."""
    return sum(1 for r in records.values() if r.status in TRAINED_STATUSES)
