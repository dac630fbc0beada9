"""The run directory's layout: the one module that names the files of a run.

Layout of ``RUN_DIR``::

    profile.toml            the resolved profile (every key, defaults filled in)
    events.jsonl            the journal (append-only; replays the dashboard)
    events.jsonl.torn-<n>   a torn last line a resume cut off the journal (a crash or a full disk), kept
    checkpoint.json         the search state (``SearchState``), written atomically before every batch
    candidates/NNNNNN.json  one record per finished candidate
    candidates/NNNNNN.ckpt  the epoch checkpoint of a long candidate in training
    final/<id>-seed<k>/     a finalist's model bundle (weights.safetensors + genotype.json),
                            result.json, and training.ckpt (its epoch checkpoint) while it trains
    final/seed<k>/          the same for seed k of a ``train`` run
    train.json              what a ``train`` run retrains
    leaderboard.{csv,json,md}  exports
    control.json            commands from an attached dashboard
    .lock                   held (flock) by the process driving the run (``engine.runlock``)
    driver.json             who drives the run: host, PID, start, heartbeat (``engine.runlock.DriverFile``);
                            rewritten every few seconds while the run is driven, removed on a clean release
    error.log, serve.log, report/   a failure's traceback, a served search's output, the report

Every file the run resumes from is checked when it is read: the search
state (``engine.search_state``), the candidate records (``CandidateRecord``),
the final results, the journal -- each through the one checked reader
(``engine.jsonfile.read_json``). A file that fails its check is reported as
``CorruptFileError`` with one line naming the file, the field and what is
wrong -- never replaced by a default -- and nothing is written because of it.
Every file is written through ``engine.atomic``.

Nothing here imports torch at module level or any UI code.
"""
from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from .atomic import atomic_write_json
from .bundle_files import GENOTYPE_FILE, LEGACY_WEIGHTS_FILE, WEIGHTS_FILE
from .errors import CorruptFileError, RunDirError, os_error_reason
from .journal import cut_torn_tail
from .jsonfile import read_json
from .leaderboard import EXPORT_FORMATS
from .records import CandidateRecord
from .runlock import DriverFile, DriverInfo, RunLock
from .search_state import SearchState

__all__ = ["RunDir", "refuse_run_file", "run_dir_name"]

# The names of a run's files: spelled here only.
_PROFILE = "profile.toml"
_JOURNAL = "events.jsonl"
_TORN_JOURNAL = _JOURNAL + ".torn-{n}"  # a torn last line set aside by a resume
_SEARCH_STATE = "checkpoint.json"  # the on-disk name predates "search state"; kept so old runs resume
_TRAIN_PLAN = "train.json"
_CONTROL = "control.json"
_LOCK = ".lock"
_DRIVER = "driver.json"
_CANDIDATES = "candidates"
_FINAL = "final"
_RESULT = "result.json"
_EPOCH_CHECKPOINT = "training.ckpt"
_ERROR_LOG = "error.log"
_SERVE_LOG = "serve.log"
_REPORT = "report"

# The files a run or a model bundle trusts: an export must never write over them.
_RUN_FILES = frozenset({_PROFILE, _SEARCH_STATE, _JOURNAL, _TRAIN_PLAN, _LOCK, _CONTROL, _DRIVER})
_BUNDLE_FILES = frozenset({WEIGHTS_FILE, LEGACY_WEIGHTS_FILE, GENOTYPE_FILE, _RESULT, _EPOCH_CHECKPOINT})


def run_dir_name(output_dir: str | os.PathLike[str], name: str) -> Path:
    """A fresh run directory path ``<output_dir>/<name>-YYYYmmdd-HHMMSS`` (suffixed when taken)."""
    base = Path(output_dir).expanduser()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / f"{name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{name}-{stamp}-{n}"
    return path


def refuse_run_file(target: str | os.PathLike[str]) -> None:
    """Raise when ``target`` is one of the files of a run directory or of a model bundle.

    ``export -o``, ``predict -o`` and ``export-model -o`` call it before writing:
    a slip of the shell's completion must not replace a search state or a bundle's
    genotype with a table.

    Raises:
        RunDirError: names the target and whose file it is.
    """
    p = Path(target).expanduser().absolute()
    try:
        parent = p.parent
        in_run = (parent / _PROFILE).is_file()
        in_bundle = (parent / GENOTYPE_FILE).is_file() or (parent / _RESULT).is_file()
        candidate = parent.name == _CANDIDATES and (parent.parent / _PROFILE).is_file()
    except OSError:
        return  # an unreadable place: the write itself will say why
    if (p.name in _RUN_FILES and in_run) or candidate:
        raise RunDirError(f"{p}: a file of the run in {parent if in_run else parent.parent}; write the output elsewhere")
    if p.name in _BUNDLE_FILES and in_bundle:
        raise RunDirError(f"{p}: a file of the model bundle in {parent}; write the output elsewhere")


def result_path_in(bundle_dir: Path) -> Path:
    """The ``FinalResult`` of the retraining whose bundle folder is ``bundle_dir``."""
    return bundle_dir / _RESULT


def epoch_checkpoint_in(bundle_dir: Path) -> Path:
    """The epoch checkpoint of the retraining whose bundle folder is ``bundle_dir``, while it trains."""
    return bundle_dir / _EPOCH_CHECKPOINT


class RunDir:
    """One run's directory. ``acquire()`` takes the lock; use as a context manager.

    Args:
        path: the folder.
        resolve: make ``path`` absolute, with ``~`` and links resolved (the
            default); ``False`` keeps it as given, for a reader that names the
            paths as the user wrote them.
    """

    def __init__(self, path: str | os.PathLike[str], resolve: bool = True) -> None:
        try:
            self.path = Path(path).expanduser().resolve() if resolve else Path(path)
        except (OSError, RuntimeError) as exc:
            raise RunDirError(f"cannot use run directory {path}: {getattr(exc, 'strerror', None) or exc}") from None
        self._lock = RunLock(self.lock_path, self.path)
        self._driver = DriverFile(self.driver_path, self.path)
        self.created_here = False  # this object's create() made the directory (no other process did)

    # -- paths ----------------------------------------------------------------------
    @property
    def profile_path(self) -> Path:
        return self.path / _PROFILE

    @property
    def journal_path(self) -> Path:
        return self.path / _JOURNAL

    def torn_journal_path(self, n: int) -> Path:
        """Where the ``n``-th torn last line a resume cut off the journal was set aside."""
        return self.path / _TORN_JOURNAL.format(n=n)

    @property
    def search_state_path(self) -> Path:
        """The search state (``SearchState``)."""
        return self.path / _SEARCH_STATE

    @property
    def candidates_dir(self) -> Path:
        return self.path / _CANDIDATES

    @property
    def final_dir(self) -> Path:
        return self.path / _FINAL

    @property
    def control_path(self) -> Path:
        """Commands (pause / resume / stop) for the process driving the run."""
        return self.path / _CONTROL

    @property
    def lock_path(self) -> Path:
        """The single-driver lock (``engine.runlock``)."""
        return self.path / _LOCK

    @property
    def driver_path(self) -> Path:
        """Who drives the run -- host, PID, start, heartbeat (``engine.runlock.DriverFile``)."""
        return self.path / _DRIVER

    @property
    def train_plan_path(self) -> Path:
        """What a ``nas3d-tui train`` run retrains (its architecture and seeds)."""
        return self.path / _TRAIN_PLAN

    @property
    def error_log_path(self) -> Path:
        """The traceback of a run that failed."""
        return self.path / _ERROR_LOG

    @property
    def serve_log_path(self) -> Path:
        """The output of a search started by ``nas3d-tui serve``."""
        return self.path / _SERVE_LOG

    @property
    def report_dir(self) -> Path:
        """Where ``nas3d-tui report`` writes without ``-o``."""
        return self.path / _REPORT

    def export_path(self, fmt: str) -> Path:
        """The leaderboard exported as ``fmt`` (one of ``EXPORT_FORMATS``)."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}: use {', '.join(EXPORT_FORMATS)}")
        return self.path / f"leaderboard.{fmt}"

    def candidate_path(self, candidate_id: int) -> Path:
        return self.candidates_dir / f"{candidate_id:06d}.json"

    def epoch_checkpoint_path(self, candidate_id: int) -> Path:
        """Where a search candidate's epoch checkpoint lives while it trains."""
        return self.candidates_dir / f"{candidate_id:06d}.ckpt"

    def finalist_dir(self, candidate_id: int, seed: int) -> Path:
        """The bundle folder of one retraining of a finalist."""
        return self.final_dir / f"{candidate_id:06d}-seed{seed}"

    def finalist_result_path(self, candidate_id: int, seed: int) -> Path:
        return result_path_in(self.finalist_dir(candidate_id, seed))

    def finalist_epoch_checkpoint(self, candidate_id: int, seed: int) -> Path:
        return epoch_checkpoint_in(self.finalist_dir(candidate_id, seed))

    def retrain_seed_dir(self, seed: int) -> Path:
        """The bundle folder of seed ``seed`` of a ``train`` run."""
        return self.final_dir / f"seed{seed}"

    def retrain_result_path(self, seed: int) -> Path:
        return result_path_in(self.retrain_seed_dir(seed))

    def watched_files(self) -> tuple[Path, ...]:
        """The files ``engine.runs`` reads to describe the run (a change in one changes its entry)."""
        return self.profile_path, self.journal_path, self.search_state_path, self.train_plan_path

    # -- state of the folder ------------------------------------------------------------
    def looks_like_run(self) -> bool:
        """Whether the folder holds (or held) a run: a profile, a journal or a search state."""
        try:
            return self.path.is_dir() and any(
                os.path.lexists(p) for p in (self.profile_path, self.journal_path, self.search_state_path)
            )
        except OSError:
            return False

    def holds_run(self) -> bool:
        """Whether a run has started here (a journal with content, or a search state)."""
        try:
            journal = self.journal_path.stat().st_size > 0 if self.journal_path.exists() else False
            return journal or self.search_state_path.exists()
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
                raise RunDirError(f"{self.path} is not a nas3d-tui run directory (no {_PROFILE})")
        except OSError as exc:
            raise RunDirError(f"cannot use run directory {self.path}: {exc.strerror or exc}") from None

    def check_epoch_checkpoints(self) -> None:
        """Every epoch checkpoint present must be a plain file.

        A damaged checkpoint *file* is reported when its training starts and that
        training restarts; a directory (or a link loop) in its place could not be
        replaced by the next checkpoint, so it stops a resume before anything runs.

        Raises:
            CorruptFileError: names the first such path.
        """
        patterns = (self.candidates_dir, "*.ckpt"), (self.final_dir, f"*/{_EPOCH_CHECKPOINT}")
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
            raise RunDirError(f"cannot write run directory {self.path}: {os_error_reason(exc)}") from None
        return self

    @property
    def lock_refused(self) -> bool:
        """``acquire()`` found another live process holding the run."""
        return self._lock.refused

    def acquire(self, announce: bool = True) -> "RunDir":
        """Take the exclusive lock (released by the OS if the process dies).

        First refused when the driver file names another host whose heartbeat
        is fresh (that host's kernel lock is invisible here); a stale one from
        another host does not refuse (that driver is presumed dead).

        Args:
            announce: write this process's PID into the lock file and start the
                driver file's heartbeat now (else call ``announce()`` later:
                nothing is written before a resume's checks pass).

        Raises:
            RunDirError: another live process drives this run (its PID, and its host when another, are named).
        """
        self._driver.refuse_if_driven_elsewhere()
        self._lock.acquire(announce)
        if announce:
            self._driver.start()
        return self

    def announce(self) -> None:
        """Write this process's PID into the held lock file and start the heartbeat (``attach``, ``runs`` and the refusal name it)."""
        self._lock.announce()
        self._driver.start()

    def release(self) -> None:
        """Stop the heartbeat (removing the driver file if it still names this process), then unlock."""
        self._driver.stop()
        self._lock.release()

    @property
    def driver_file(self) -> DriverFile:
        """This process's driver file (its heartbeat; ``on_superseded`` says what a driver taken over does)."""
        return self._driver

    def read_driver(self) -> DriverInfo | None:
        """Who the driver file says drives (or last drove) the run; None without one (runs made before it)."""
        return self._driver.read()

    def __enter__(self) -> "RunDir":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def locked_by_other(self) -> int | None:
        """PID of another process holding the lock, or None (used by ``attach``)."""
        return self._lock.held_by_other()

    def discard(self) -> None:
        """Remove a run directory in which no candidate has finished (a run that failed to start)."""
        if self.candidates_dir.exists() and any(self.candidates_dir.glob("*.json")):
            return  # finished work is never removed
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- the journal ------------------------------------------------------------------------
    def cut_torn_journal(self) -> Path | None:
        """Before a resume appends to the journal: set a torn last line aside (``journal.cut_torn_tail``)
        into the first free ``events.jsonl.torn-<n>``; returns that file, or None when the journal was whole.

        Raises:
            OSError: the journal cannot be read or cut, or the torn line cannot be set aside.
        """

        def free() -> Path:
            n = 1
            while os.path.lexists(self.torn_journal_path(n)):
                n += 1
            return self.torn_journal_path(n)

        return cut_torn_tail(self.journal_path, free)

    # -- the search state -------------------------------------------------------------------
    def write_search_state(self, state: SearchState) -> Path:
        atomic_write_json(self.search_state_path, state.to_dict())
        return self.search_state_path

    def read_search_state(self) -> SearchState | None:
        """The last search state, None when there is none.

        Raises:
            CorruptFileError: it exists but fails its check.
            RunDirError: it cannot be read.
        """
        path = self.search_state_path
        try:
            if not os.path.lexists(path):
                return None
        except OSError as exc:
            raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
        return SearchState.from_dict(read_json(path), where=str(path))

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
            if p != self.candidate_path(record.candidate_id):
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

    def final_results(self) -> Iterator[tuple[Path, Any]]:
        """``(path, JSON)`` of every ``final/*/result.json`` (checked as events by the caller)."""
        try:
            folders = sorted(p for p in self.final_dir.iterdir() if p.is_dir()) if self.final_dir.exists() else []
        except OSError as exc:
            raise RunDirError(f"cannot read {self.final_dir}: {exc.strerror or exc}") from None
        for folder in folders:
            path = result_path_in(folder)
            if os.path.lexists(path):
                yield path, read_json(path)
