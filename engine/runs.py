"""The runs under a folder: what each is, how far it got, and whether a process drives it.

This module owns ``nas3d-tui runs``' facts (``RunInfo``): for every run
directory under a folder, its kind (search or train), its state, its
progress, its best fitness and finalist test AUC, and its first and last
event. It reads with the run directory's checked readers -- the journal
(strict), the search state, the profile and a train run's
plan (``RunDir.watched_files``) -- so a damaged file makes its run one ``damaged`` entry naming
the file, and the other runs are still listed.

It writes nothing, not even a lock file: whether a live process holds a
run's lock is read from ``/proc/locks`` (the kernel's table of file locks),
which does not take the lock, so a ``resume`` starting at that moment is
never refused because of it. Where there is no ``/proc/locks`` (not Linux)
the run directory's own probe (``RunDir.locked_by_other``) answers.

A run driven on another host (a compute node, with the run directory on a
shared file system) holds a lock this kernel cannot see; its driver file
(``engine.runlock.DriverFile``) says who drives it. ``who_drives`` combines
the two: a driver file naming another host with a fresh heartbeat is a live
driver there (``running`` with ``host``), whatever the local lock table
says; one whose heartbeat is older than ``STALE_AFTER_SECONDS`` is
``stale`` (presumed dead: resume it); otherwise -- no driver file (runs made
before it), or one naming this host -- the kernel lock decides, as it always did.

No torch, no UI.
"""
from __future__ import annotations

import math
import os
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import events as ev
from .errors import RunDirError, UserError, os_error_message
from .journal import read_journal
from .records import TRAINED_STATUSES, finite_or_none, rank_key
from .jsonfile import read_json
from .rundir import RunDir
from .runlock import STALE_AFTER_SECONDS, DriverInfo
from .search_state import SearchState
from .vocab import TieBreak, as_tie_break

__all__ = [
    "STATES", "RunInfo", "inspect_run", "list_runs", "is_run_dir", "driver_pid", "RunCache",
    "Driver", "who_drives", "STALE_AFTER_SECONDS",
]

# running: a live process holds the lock (here), or its heartbeat is fresh (``host``: on another host);
# stopped: ended with a search state (resumable); crashed: never ended and nobody drives it;
# stale: never ended, last driven on another host whose heartbeat stopped more than
# STALE_AFTER_SECONDS ago (presumed dead: resume it); finished / failed: its last segment says so;
# damaged: a file it trusts fails its check (``error`` names it).
STATES = ("running", "stopped", "crashed", "finished", "failed", "damaged", "stale")
PROC_LOCKS = Path("/proc/locks")


@dataclass(frozen=True)
class RunInfo:
    """One run directory as ``nas3d-tui runs`` shows it (None: not known)."""

    path: str
    name: str
    kind: str  # search | train | "" (damaged before the kind was read)
    state: str  # one of STATES
    pid: int | None = None  # the live process holding the run's lock (on ``host`` when one is named)
    trained: int | None = None
    budget: int | None = None
    generation: int | None = None
    final_done: int | None = None  # finished final retrainings (finalist × seed)
    final_total: int | None = None
    fitness_metric: str = ""
    best_fitness: float | None = None
    best_candidate_id: int | None = None
    test_auc: float | None = None  # the first finalist's mean over its seeds (a train run: over its seeds)
    test_auc_std: float | None = None
    test_auc_seeds: int = 0
    started: float | None = None  # wall-clock time of the first RunStarted
    last_event: float | None = None  # wall-clock time of the last event
    error: str = ""  # damaged: what is wrong; failed: the run's error
    host: str = ""  # running / stale: the other host that drives (drove) it; "" when driven here or by nobody
    seen: float | None = None  # with ``host``: wall-clock time of that driver's last heartbeat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a folder that holds (or held) a run: a profile, a journal or a search state."""
    try:
        return RunDir(path, resolve=False).looks_like_run()
    except RunDirError:
        return False


def _lock_table() -> list[tuple[int, int, int, int]] | None:
    """``(pid, major, minor, inode)`` of every held flock lock, or None without ``/proc/locks``."""
    try:
        text = PROC_LOCKS.read_text()
    except OSError:
        return None
    held = []
    for line in text.splitlines():
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 3506 fe:00:2146736 0 EOF"; a waiter has "->" after the number
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            major, minor, inode = parts[5].split(":")
            held.append((int(parts[4]), int(major, 16), int(minor, 16), int(inode)))
        except ValueError:
            continue
    return held


def driver_pid(run_dir: str | os.PathLike[str]) -> int | None:
    """PID of the live process holding ``run_dir``'s lock, None when nobody does (-1: held, PID unknown).

    Reads ``/proc/locks`` and never takes the lock. Only when the table
    lists a lock on the same inode number of another device (a file system
    whose ``stat`` reports other device numbers than the kernel's table)
    does the run directory's own probe settle it.
    """
    lock = RunDir(run_dir, resolve=False).lock_path
    try:
        st = os.stat(lock)
    except OSError:
        return None  # no lock file: no process ever drove it (or it was removed)
    table = _lock_table()
    rd = RunDir(run_dir)
    if table is None:
        return rd.locked_by_other()
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    for pid, major, minor, inode in table:
        if inode == st.st_ino and (major, minor) == dev:
            return pid
    if any(inode == st.st_ino for _, _, _, inode in table):
        return rd.locked_by_other()
    return None


@dataclass(frozen=True)
class Driver:
    """Who drives a run, as this host can tell (``who_drives``).

    ``state``: ``here`` (a live process holds the lock in this kernel),
    ``elsewhere`` (the driver file names another host, heartbeat fresh),
    ``stale`` (it names another host, heartbeat older than
    ``STALE_AFTER_SECONDS``, and no lock here), or ``none``.
    """

    state: str
    pid: int | None = None  # here: from the lock (-1: held, PID unknown); elsewhere / stale: the driver file's
    host: str = ""  # elsewhere / stale: the driver file's host
    seen: float | None = None  # elsewhere / stale: its last heartbeat (wall clock)

    @property
    def alive(self) -> bool:
        return self.state in ("here", "elsewhere")

    def key(self) -> tuple[str, int | None, str]:
        """What a run's entry depends on (the heartbeat's time only changes how long ago it was seen)."""
        return self.state, self.pid, self.host


def who_drives(
    run_dir: str | os.PathLike[str],
    now: float | None = None,
    local_pid: Callable[[str | os.PathLike[str]], int | None] | None = None,
) -> Driver:
    """Who drives ``run_dir``: the driver file for another host, the kernel lock for this one. Writes nothing.

    Args:
        run_dir: the run directory.
        now: the wall-clock time to judge the heartbeat by (default: now).
        local_pid: how to find the local lock's holder (default ``driver_pid``,
            which reads ``/proc/locks``; ``attach`` passes ``RunDir.locked_by_other``).
    """
    info: DriverInfo | None = RunDir(run_dir, resolve=False).read_driver()
    if info is not None and info.elsewhere() and info.fresh(now):
        # Trusted before the local lock table: in one kernel shared by two UTS namespaces (or
        # containers) that table lists the other "host"'s lock under its PID, which is the same answer.
        return Driver("elsewhere", info.pid, info.host, info.beat)
    probe = driver_pid if local_pid is None else local_pid
    pid = probe(run_dir)
    if pid is not None:
        return Driver("here", pid)
    if info is not None and info.elsewhere():
        return Driver("stale", info.pid, info.host, info.beat)
    return Driver("none")


def _last_segment(events: Sequence[ev.Event]) -> Sequence[ev.Event]:
    starts = [i for i, e in enumerate(events) if isinstance(e, ev.RunStarted)]
    return events[starts[-1]:] if starts else events


def _ending(events: Sequence[ev.Event]) -> tuple[str, str]:
    """State and error of a run nobody drives, from how its last segment ends."""
    for e in reversed(_last_segment(events)):
        if isinstance(e, ev.RunFinished):
            return ("stopped" if e.reason == "stopped" else "finished"), ""
        if isinstance(e, ev.RunFailed):
            return "failed", " ".join(str(e.error).split())
    return "crashed", ""


def _tie_break(profile: Mapping[str, object]) -> TieBreak:
    search = profile.get("search") if isinstance(profile, dict) else None
    value = search.get("tie_break", "val_auc") if isinstance(search, dict) else "val_auc"
    return as_tie_break(value) or "val_auc"


def _progress(events: Sequence[ev.Event], search_state: SearchState | None) -> dict[str, Any]:
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    last_start = starts[-1] if starts else None
    out: dict[str, Any] = {
        "kind": str(getattr(last_start, "run_kind", "") or "search"),
        "budget": getattr(last_start, "budget", None),
        "fitness_metric": str(getattr(last_start, "fitness", "") or ""),
        "started": finite_or_none(starts[0].ts) if starts else None,
    }
    stamps = [t for t in (finite_or_none(getattr(e, "ts", None)) for e in events) if t is not None]
    out["last_event"] = max(stamps) if stamps else None

    trained = [search_state.trained] if search_state is not None else []
    generation = search_state.generation if search_state is not None else None
    latest: dict[int, ev.CandidateFinished] = {}
    for e in events:
        if isinstance(e, (ev.CandidateFinished, ev.GenerationFinished, ev.StateSaved, ev.RunFinished)):
            trained.append(int(e.trained))
        if isinstance(e, ev.CandidateFinished):
            latest[e.candidate_id] = e
        if search_state is None and isinstance(e, (ev.StateSaved, ev.CandidateStarted)):
            generation = int(e.generation)
    if not trained:
        trained = [sum(1 for e in latest.values() if e.status in TRAINED_STATUSES)]
    out["trained"] = max(trained)
    out["generation"] = generation if out["kind"] == "search" else None

    tie = _tie_break(getattr(last_start, "profile", {}))
    ok = [e.record for e in latest.values() if e.status == "ok" and finite_or_none(e.fitness) is not None]
    if ok:
        best = min(ok, key=lambda r: rank_key(r, tie))
        out["best_fitness"], out["best_candidate_id"] = float(best.fitness or 0.0), best.candidate_id

    final_started = [e for e in events if isinstance(e, ev.FinalStarted)]
    if final_started:
        fs = final_started[-1]
        done: dict[tuple[int, int], ev.FinalResult] = {}
        for e in events[events.index(fs):]:
            if isinstance(e, ev.FinalResult):
                done[(e.candidate_id, e.seed)] = e
        train = out["kind"] == "train"
        out["final_total"] = len(fs.seeds) if train else len(fs.candidate_ids) * len(fs.seeds)
        out["final_done"] = len(done)
        first = None if train or not fs.candidate_ids else fs.candidate_ids[0]
        aucs = [float(r.test_auc) for (cid, _), r in sorted(done.items()) if train or cid == first]
        aucs = [a for a in aucs if math.isfinite(a)]
        if aucs:
            out["test_auc"] = statistics.fmean(aucs)
            out["test_auc_std"] = statistics.stdev(aucs) if len(aucs) > 1 else None
            out["test_auc_seeds"] = len(aucs)
    return out


def _check_train_plan(rd: RunDir) -> None:
    """``train.json`` must be JSON holding an architecture (``resume`` checks the rest)."""
    data = read_json(rd.train_plan_path)
    if not isinstance(data, dict) or not isinstance(data.get("genotype"), dict):
        raise RunDirError(f"{rd.train_plan_path} is corrupt: no genotype object")


def inspect_run(path: str | os.PathLike[str], driver: Driver | None = None) -> RunInfo:
    """What the run directory at ``path`` holds; a damaged file gives a ``damaged`` entry, never an error.

    Reads the journal (strictly), the search state, the profile and a
    train run's plan, each with its checked reader; writes nothing.
    ``driver``: who drives it, when the caller already asked ``who_drives``.
    """
    p = Path(path)
    name = p.name
    pid: int | None = None
    where = str(p.absolute())
    try:
        rd = RunDir(p)
        where = str(rd.path)
        if driver is None:
            driver = who_drives(rd.path)
        pid = driver.pid if driver.alive else None
        rd.check_is_run()
        from .profile import load_profile

        load_profile(rd.profile_path)  # the profile a resume would use: checked
        train = os.path.lexists(rd.train_plan_path)
        if train:
            _check_train_plan(rd)
        search_state = rd.read_search_state()
        events = read_journal(rd.journal_path, strict=True)
    except UserError as exc:  # already one line naming the file
        return RunInfo(path=where, name=name, kind="", state="damaged", pid=pid, error=" ".join(str(exc).split()))
    except OSError as exc:
        return RunInfo(path=where, name=name, kind="", state="damaged", pid=pid, error=os_error_message(exc))
    facts = _progress(events, search_state)
    if train:
        facts["kind"] = "train"
    host, seen = (driver.host, driver.seen) if driver.state in ("elsewhere", "stale") else ("", None)
    if driver.alive:
        state, error = "running", ""
    elif not events:
        state, error = "crashed", f"no event in {rd.journal_path.name}: the run never started"
    else:
        state, error = _ending(events)
    if state == "crashed" and driver.state == "stale":
        state, pid = "stale", driver.pid  # never ended, last driven on another host: presumed dead
    if state not in ("running", "stale"):
        host, seen = "", None
    return RunInfo(path=str(rd.path), name=name, state=state, pid=pid, error=error, host=host, seen=seen, **facts)


def _signature(path: Path, driver: Driver) -> tuple[Any, ...]:
    """What ``inspect_run`` depends on: the files it reads (size, time, inode) and who drives the run."""
    sig: list[Any] = [driver.key()]
    for file in RunDir(path, resolve=False).watched_files():
        try:
            st = os.stat(file)
            sig.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            sig.append(None)
    return tuple(sig)


class RunCache:
    """Remembers each run's ``RunInfo`` with the signature of its files, for a list that refreshes.

    A run whose journal, search state, profile, plan and driver did not
    change is not read again, so refreshing a folder of long runs costs a few
    ``stat`` calls per run (and a read of its driver file, when it has one:
    a heartbeat that is only newer updates ``seen`` alone).
    """

    def __init__(self) -> None:
        self._known: dict[Path, tuple[tuple[Any, ...], RunInfo]] = {}

    def inspect(self, path: Path) -> RunInfo:
        driver = who_drives(path)
        sig = _signature(path, driver)
        known = self._known.get(path)
        if known is not None and known[0] == sig:
            info = known[1]
            if info.host and info.seen != driver.seen:
                info = replace(info, seen=driver.seen)
                self._known[path] = (sig, info)
            return info
        info = inspect_run(path, driver)
        self._known[path] = (sig, info)
        return info


def list_runs(folder: str | os.PathLike[str], cache: RunCache | None = None) -> list[RunInfo]:
    """Every run directory directly under ``folder`` (or ``folder`` itself when it is one), oldest first.

    Folders that hold no run (no profile, journal or search state) are left
    out; a run whose files are damaged is listed as ``damaged``. With
    ``cache``, runs whose files did not change since the last call are not
    read again.

    Raises:
        RunDirError: ``folder`` does not exist, is not a directory, or cannot be listed.
    """
    root = Path(folder).expanduser()
    try:
        if not root.exists():
            raise RunDirError(f"no folder at {root}")
        if not root.is_dir():
            raise RunDirError(f"{root} is not a folder of runs (not a directory)")
        if is_run_dir(root):
            children = [root]
        else:
            children = sorted(c for c in root.iterdir() if not c.name.startswith(".") and is_run_dir(c))
    except OSError as exc:
        raise RunDirError(f"cannot list {root}: {exc.strerror or exc}") from None
    runs = [cache.inspect(c) if cache is not None else inspect_run(c) for c in children]
    return sorted(runs, key=lambda r: (r.started is None, r.started or 0.0, r.name))
