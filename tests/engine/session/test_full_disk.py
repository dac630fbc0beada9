"""A full disk or quota loses nothing: hit it at every write of a tiny real run, free space, resume.

A small tmpfs (mounted here as root; the tests skip, saying why, where that
is not permitted) is filled at a precise point of a tiny real search with a
final phase:

* in a journal line: a log line first puts a page boundary a few bytes into
  the line about to be written, then the disk is filled, so that line is torn
  mid-write (as the issue reported: the record written, its
  ``candidate_finished`` cut off);
* in a candidate record, the search state, a final's bundle: the file system's
  inodes are used up at the event before the write, so exactly that write
  (an atomic write makes a new file) is refused while the journal goes on.

Each time the run must end failed with one line naming the file, then --
space freed -- resume; the last resume ends with the uninterrupted run's
leaderboard and final metrics (the uninterrupted run is made once per module,
in a normal temporary folder). The command line is checked the same way on the
issue's own case (a 2 MB tmpfs with 40 KB left), and a ``train`` run too.
Unit tests cover the torn-line cut and the announcing again of records and
results the journal lacks.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from engine import events as ev
from engine.atomic import atomic_write
from engine.control import Control
from engine.errors import DISK_FULL, os_error_message
from engine.journal import JournalSink, cut_torn_tail, read_history, read_journal
from engine.leaderboard import Leaderboard
from engine.profile import load_profile
from engine.records import CandidateRecord
from engine.rundir import RunDir
from engine.session import Session
from engine.session.context import RunContext
from engine.session.final import FinalPhase
from engine.session.retrain import Retrain
from engine.session.search import Search
from engine.space import Genotype
from nas3d_tui.cli import main
from tiny_search import TINY, small_dataset

REPO = Path(__file__).resolve().parents[3]
FINAL = ["final.top_k=1", "final.epochs=2", "final.seeds=[0]"]  # two epochs: the final writes an epoch checkpoint
PAGE = 4096  # tmpfs counts space in pages
LIGHT = "S1M1F8 0,3 01 12 23"  # a cheap real network for the train run

pytestmark = pytest.mark.timeout(600)


# ------------------------------------------------------------------ a small file system to fill


class Disk:
    """A mounted tmpfs that can be filled (its space, or its inodes) and freed again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fillers: list[Path] = []

    def fill(self) -> None:
        """Use up every free page."""
        filler = self.path / f".filler-{len(self._fillers)}"
        self._fillers.append(filler)
        with open(filler, "wb", buffering=0) as fh:
            st = os.statvfs(self.path)
            chunk = b"\0" * max(PAGE, st.f_bavail * st.f_frsize)
            while True:
                try:
                    fh.write(chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    if len(chunk) == PAGE:
                        break
                    chunk = b"\0" * PAGE
        assert os.statvfs(self.path).f_bavail == 0

    def fill_inodes(self) -> None:
        """Use up every free inode: the next new file (every atomic write makes one) is refused."""
        folder = self.path / f".inodes-{len(self._fillers)}"
        folder.mkdir()
        self._fillers.append(folder)
        n = 0
        while True:
            try:
                (folder / str(n)).touch()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
            n += 1

    def free(self) -> None:
        for filler in self._fillers:
            if filler.is_dir():
                shutil.rmtree(filler)
            else:
                filler.unlink()
        self._fillers.clear()


def _mount(path: Path, options: str) -> Disk:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("filling a real file system needs a small tmpfs, and mounting one needs root")
    path.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    except OSError as exc:
        pytest.skip(f"cannot mount a small tmpfs to fill: {exc}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {r.stderr.strip() or 'mount failed'}")
    return Disk(path)


@pytest.fixture
def disk(tmp_path):
    d = _mount(tmp_path / "disk", "size=4m,nr_inodes=256")
    yield d
    subprocess.run(["umount", "-l", str(d.path)], check=False)


# ------------------------------------------------------------------ the uninterrupted run


@pytest.fixture(scope="module")
def overrides(tmp_path_factory) -> list[str]:
    """The tiny search on a small own dataset (16³ volumes, 96 to train on): the final phase costs little too."""
    path = small_dataset(tmp_path_factory.mktemp("data") / "small.npz")
    return TINY + [f"data.path='{path}'", "data.search_fraction=0.5", "training.batch_size=16"] + FINAL


def board(run_dir: Path) -> list[tuple]:
    rows = Leaderboard.from_events(read_journal(run_dir / "events.jsonl", strict=True)).rows()
    return [(r.rank, r.candidate_id, r.key, r.fitness, r.status, r.test_auc, r.test_acc) for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, overrides) -> Path:
    """The uninterrupted run (search and final phase), in a normal temporary folder."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    assert Session(load_profile("quick", overrides), run_dir).run().state == "finished"
    return run_dir


def weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return {f.parent.name: load_file(str(f)) for f in sorted(run_dir.glob("final/*/weights.safetensors"))}


def same_weights(a: dict, b: dict) -> bool:
    return bool(a) and a.keys() == b.keys() and all(
        x.keys() == y.keys() and all(x[k].equal(y[k]) for k in x) for x, y in ((a[n], b[n]) for n in a)
    )


# ------------------------------------------------------------------ hitting a point


def line_of(event: ev.Event) -> int:
    """The length of ``event``'s journal line (as ``JournalSink`` writes it)."""
    return len(json.dumps(event.to_dict(), separators=(",", ":"), allow_nan=True).encode()) + 1


def tear(session, disk: Disk, event: ev.Event, after: int = 100) -> None:
    """Fill ``disk`` so that ``event``'s journal line, written next, is cut ``after`` bytes in.

    Called from a subscriber that runs before the journal: a log line first
    ends ``after`` bytes before a page boundary, then every free page is used.
    """
    assert line_of(event) > after
    size = session.run_dir.journal_path.stat().st_size
    log = ev.Log(message="", level="info")
    pad = (-(size + after) - line_of(log)) % PAGE
    session.bus.publish(dataclasses.replace(log, message="." * pad))
    assert (session.run_dir.journal_path.stat().st_size + after) % PAGE == 0
    disk.fill()


def run_until(session, hit: Callable[[ev.Event], bool], action: Callable[[ev.Event], None]):
    """Run ``session``, calling ``action(event)`` (before the journal writes it) for the first event ``hit`` picks."""
    done: list[ev.Event] = []

    def watch(event: ev.Event) -> None:
        if not done and hit(event):
            done.append(event)
            action(event)

    session.bus.subscribe(watch)  # (subscribed before run(): it sees each event before the journal)
    outcome = session.run()
    assert done, "the run never reached the point to hit"
    return outcome


def assert_disk_full(outcome, path: Path) -> None:
    """The run ended failed, on the full disk, in one line naming ``path``."""
    assert outcome.state == "failed" and outcome.reason == "disk-full" and outcome.exit_code != 0, outcome
    assert outcome.error == f"{path}: {DISK_FULL}", outcome.error


def assert_whole(run_dir: Path) -> None:
    """The journal ends on a complete line and every line reads; no temporary file is left."""
    data = (run_dir / "events.jsonl").read_bytes()
    assert data.endswith(b"\n")
    events, end = read_history(run_dir / "events.jsonl")
    assert end == len(data) and len(read_journal(run_dir / "events.jsonl", strict=True)) == len(events)
    assert not [p for p in run_dir.rglob(".*.tmp")]


def assert_announced_once(run_dir: Path) -> None:
    """Every record and every final result is announced in the journal exactly once."""
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    finished = [e.candidate_id for e in journal if isinstance(e, ev.CandidateFinished)]
    assert sorted(finished) == sorted(RunDir(run_dir).read_records()), finished
    finals = [(e.candidate_id, e.seed) for e in journal if isinstance(e, ev.FinalResult)]
    assert len(finals) == len(set(finals)) == len(list(run_dir.glob("final/*/result.json"))), finals


def last_end(journal: list[ev.Event]) -> ev.Event:
    """The last ``run_finished`` / ``run_failed`` (resource samples may follow it)."""
    return [e for e in journal if isinstance(e, (ev.RunFinished, ev.RunFailed))][-1]


def resume(run_dir: Path):
    return Session.resume_from(run_dir)


# ------------------------------------------------------------------ the search: journal line, record, search state


@pytest.mark.e2e
def test_a_full_disk_in_a_journal_line_a_record_and_the_search_state_loses_nothing(reference, disk, overrides):
    run_dir = disk.path / "run"

    # 1. the journal line of a finished candidate, torn mid-write (its record is on disk)
    session = Session(load_profile("quick", overrides), run_dir)
    outcome = run_until(
        session, lambda e: isinstance(e, ev.CandidateFinished) and e.candidate_id == 1, lambda e: tear(session, disk, e)
    )
    assert_disk_full(outcome, run_dir / "events.jsonl")
    assert RunDir(run_dir).candidate_path(1).exists()
    tail = (run_dir / "events.jsonl").read_bytes().rsplit(b"\n", 1)[1]
    assert len(tail) == 100 and tail.startswith(b'{"candidate_id":1,'), tail  # torn mid-write: the issue's case
    disk.free()

    # 2. a candidate record (the journal still writes)
    session = resume(run_dir)
    outcome = run_until(session, lambda e: isinstance(e, ev.CandidateStarted) and e.candidate_id == 4,
                        lambda e: disk.fill_inodes())
    assert_disk_full(outcome, RunDir(run_dir).candidate_path(4))
    assert not RunDir(run_dir).candidate_path(4).exists()
    torn = run_dir / "events.jsonl.torn-1"
    assert torn.read_bytes() == tail  # set aside, not destroyed
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    assert [e.candidate_id for e in journal if isinstance(e, ev.CandidateFinished)].count(1) == 1  # announced again
    assert isinstance(last_end(journal), ev.RunFailed)
    disk.free()

    # 3. the search state, after a generation
    session = resume(run_dir)
    outcome = run_until(session, lambda e: isinstance(e, ev.GenerationFinished), lambda e: disk.fill_inodes())
    assert_disk_full(outcome, run_dir / "checkpoint.json")
    disk.free()

    assert resume(run_dir).run().state == "finished"
    assert_whole(run_dir)
    assert_announced_once(run_dir)
    assert board(run_dir) == board(reference)
    assert same_weights(weights(run_dir), weights(reference))


# ------------------------------------------------------------------ the final phase: epoch checkpoint, bundle, result line


@pytest.mark.e2e
def test_a_full_disk_in_a_finals_bundle_and_its_result_line_loses_nothing(reference, disk, overrides):
    run_dir = disk.path / "run"
    rd = RunDir(run_dir)

    def final_epoch(n: int) -> Callable[[ev.Event], bool]:
        return lambda e: isinstance(e, ev.EpochFinished) and e.phase == "final" and e.epoch == n

    # 1. the final's weights, after its last epoch (its epoch checkpoint must survive)
    session = Session(load_profile("quick", overrides), run_dir)
    outcome = run_until(session, final_epoch(2), lambda e: disk.fill_inodes())
    bundle = rd.finalist_dir(_finalist(reference), 0)
    assert_disk_full(outcome, bundle / "weights.safetensors")
    assert (bundle / "training.ckpt").exists() and not (bundle / "result.json").exists()
    disk.free()

    # 2. the final's result line, torn (its result.json is on disk)
    session = resume(run_dir)
    outcome = run_until(session, lambda e: isinstance(e, ev.FinalResult), lambda e: tear(session, disk, e))
    assert_disk_full(outcome, run_dir / "events.jsonl")
    assert (bundle / "result.json").exists() and not (bundle / "training.ckpt").exists()
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    resumed = [e for e in journal if isinstance(e, ev.TrainingResumed) and e.phase == "final"]
    assert [e.epoch for e in resumed] == [1]  # the checkpoint kept through the full disk: one epoch redone
    disk.free()

    # 3. the epoch checkpoint itself: refused, said, and the training goes on (then the bundle is refused too)
    (bundle / "result.json").rename(disk.path / "result.json")  # (as if the retraining had not finished)
    session = resume(run_dir)
    notices: list[str] = []
    session.bus.subscribe(lambda e: notices.append(e.message) if isinstance(e, ev.Log) and "checkpoint" in e.message else None)
    outcome = run_until(session, final_epoch(1), lambda e: disk.fill_inodes())
    assert_disk_full(outcome, bundle / "weights.safetensors")
    assert any(f"{bundle / 'training.ckpt'}: {DISK_FULL}" in n for n in notices), notices
    disk.free()
    (disk.path / "result.json").rename(bundle / "result.json")  # back: done, its event already announced

    assert resume(run_dir).run().state == "finished"
    assert_whole(run_dir)
    assert_announced_once(run_dir)
    assert board(run_dir) == board(reference)
    assert same_weights(weights(run_dir), weights(reference))


def _finalist(run_dir: Path) -> int:
    (result,) = [e for e in read_journal(run_dir / "events.jsonl", strict=True) if isinstance(e, ev.FinalResult)]
    return result.candidate_id


# ------------------------------------------------------------------ the command line, the issue's case


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas3d_tui", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def _exported(run_dir: Path, out: Path) -> list[dict]:
    assert main(["export", str(run_dir), "--format", "json", "-o", str(out)]) == 0
    rows = json.loads(out.read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    timing = {"seconds", "worker", "run_dir", "path", "weights", "weights_path", "genotype_path"}
    return [{k: v for k, v in row.items() if k not in timing} for row in rows]


@pytest.mark.e2e
def test_the_issues_case_one_line_then_resume_exports_the_uninterrupted_leaderboard(reference, tmp_path, overrides):
    disk = _mount(tmp_path / "small", "size=2m")
    try:
        filler = disk.path / "filler"
        st = os.statvfs(disk.path)
        filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 40 * 1024))  # 40 KB left
        run_dir = disk.path / "run"
        args = ["run", "quick", "--headless", "--run-dir", str(run_dir)]
        for s in overrides:
            args += ["--set", s]
        r = _cli(*args)
        assert r.returncode not in (0, 2) and "Traceback" not in r.stderr, r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith(f"nas3d-tui: error: {run_dir}/") and DISK_FULL in line and "resume" in line, line
        filler.unlink()
        r = _cli("resume", str(run_dir), "--headless")
        assert r.returncode == 0, r.stderr
        assert _exported(run_dir, tmp_path / "a.json") == _exported(reference, tmp_path / "b.json")
    finally:
        subprocess.run(["umount", "-l", str(disk.path)], check=False)


# ------------------------------------------------------------------ a train run


@pytest.mark.e2e
def test_a_train_run_whose_results_line_is_torn_announces_it_on_resume_and_a_result_without_record_retrains(
    disk, overrides
):
    run_dir = disk.path / "train"
    profile = load_profile("quick", overrides)
    job = Retrain(profile, Genotype.from_compact(LIGHT), run_dir)
    outcome = run_until(job, lambda e: isinstance(e, ev.CandidateFinished), lambda e: tear(job, disk, e))
    assert_disk_full(outcome, run_dir / "events.jsonl")
    assert RunDir(run_dir).candidate_path(0).exists() and RunDir(run_dir).retrain_result_path(0).exists()
    disk.free()
    again = Retrain.resume_from(run_dir)  # every seed done, but the journal lacks them: not "already finished"
    assert again.run().state == "finished"
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    assert [e.candidate_id for e in journal if isinstance(e, ev.CandidateFinished)] == [0]
    assert [e.seed for e in journal if isinstance(e, ev.FinalResult)] == [0]
    assert sum(isinstance(e, ev.CandidateStarted) for e in journal) == 1  # not trained again
    assert isinstance(last_end(journal), ev.RunFinished) and len(Leaderboard.from_events(journal).rows()) == 1
    assert_whole(run_dir)

    # An older version wrote a seed's record after its result.json: a result without its record is retrained.
    want = json.loads(RunDir(run_dir).retrain_result_path(0).read_text())
    RunDir(run_dir).candidate_path(0).unlink()
    assert Retrain.resume_from(run_dir).run().state == "finished"
    journal = read_journal(run_dir / "events.jsonl", strict=True)
    assert sum(isinstance(e, ev.CandidateStarted) for e in journal) == 2 and RunDir(run_dir).candidate_path(0).exists()
    got = json.loads(RunDir(run_dir).retrain_result_path(0).read_text())
    assert (got["test_auc"], got["test_acc"], got["val_acc"]) == (want["test_auc"], want["test_acc"], want["val_acc"])
    assert len(Leaderboard.from_events(journal).rows()) == 1


# ------------------------------------------------------------------ unit: the torn-line cut


def _journal(path: Path, *events: ev.Event) -> bytes:
    data = b"".join(json.dumps(e.to_dict(), separators=(",", ":")).encode() + b"\n" for e in events)
    path.write_bytes(data)
    return data


def _aside(folder: Path) -> Callable[[], Path]:
    names = iter(folder / f"aside-{n}" for n in range(1, 10))
    return lambda: next(names)


@pytest.mark.parametrize("tail", [b'{"kind":"candidate_fini', b'{"ts":1.5,"kind":"log","mess\xe2\x82', b"\0\0\0\0", b" "])
def test_a_torn_last_line_is_set_aside_and_the_journal_is_whole(tmp_path, tail):
    path = tmp_path / "events.jsonl"
    whole = _journal(path, ev.Log(message="a"), ev.Log(message="b"))
    path.write_bytes(whole + tail)
    before = [e.to_dict() for e in read_journal(path)]
    aside = cut_torn_tail(path, _aside(tmp_path))
    assert aside == tmp_path / "aside-1" and aside.read_bytes() == tail
    assert path.read_bytes() == whole
    assert [e.to_dict() for e in read_journal(path, strict=True)] == before


def test_a_torn_line_an_older_version_closed_with_a_newline_goes_too(tmp_path):
    path = tmp_path / "events.jsonl"
    whole = _journal(path, ev.Log(message="a"))
    path.write_bytes(whole + b'{"kind":"candidate_fini\n')
    aside = cut_torn_tail(path, _aside(tmp_path))
    assert aside is not None and aside.read_bytes() == b'{"kind":"candidate_fini\n'
    assert path.read_bytes() == whole


def test_a_whole_journal_is_left_alone_and_a_whole_last_event_only_gets_its_newline(tmp_path):
    path = tmp_path / "events.jsonl"
    whole = _journal(path, ev.Log(message="a"), ev.Log(message="b"))
    assert cut_torn_tail(path, _aside(tmp_path)) is None and path.read_bytes() == whole
    path.write_bytes(whole[:-1])
    assert cut_torn_tail(path, _aside(tmp_path)) is None and path.read_bytes() == whole
    assert cut_torn_tail(tmp_path / "none.jsonl", _aside(tmp_path)) is None
    assert not list(tmp_path.glob("aside-*"))


def test_the_run_directory_names_each_set_aside_line(tmp_path):
    rd = RunDir(tmp_path / "run").create()
    whole = _journal(rd.journal_path, ev.Log(message="a"))
    for n in (1, 2):
        rd.journal_path.write_bytes(whole + b'{"kind":"lo')
        assert rd.cut_torn_journal() == rd.path / f"events.jsonl.torn-{n}"
    assert rd.journal_path.read_bytes() == whole


def test_a_journal_that_lost_a_line_writes_no_later_one(tmp_path):
    sink = JournalSink("/dev/full")
    with pytest.raises(OSError) as first:
        sink(ev.Log(message="a"))
    with pytest.raises(OSError) as again:
        sink(ev.Log(message="b"))
    assert again.value is first.value and first.value.filename == "/dev/full"
    with pytest.raises(OSError):
        sink.check()


# ------------------------------------------------------------------ unit: announcing again


class _Data:
    shape, channels, num_classes = (8, 8, 8), 1, 2


def _ctx(tmp_path: Path, published: list, *extra: str) -> RunContext:
    return RunContext(load_profile("quick", TINY + list(extra)), RunDir(tmp_path / "run").create(), published.append,
                      Control(), "cpu")


def _ok(cid: int) -> CandidateRecord:
    return CandidateRecord(candidate_id=cid, generation=0, phase="init", status="ok", key=f"k{cid}", fitness=0.5,
                           trained=cid + 1, history=[{"epoch": 1}])


def test_a_record_the_journal_lacks_is_announced_once_and_one_it_holds_is_not(tmp_path):
    published: list[ev.Event] = []
    ctx = _ctx(tmp_path, published)
    search = Search(ctx, None, {c: _ok(c) for c in (0, 1, 2)}, _Data())  # type: ignore[arg-type]
    assert search.announce_missing({0, 1, 2}) == [] and published == []
    assert search.announce_missing({0, 2}) == [1]
    (event,) = published
    assert isinstance(event, ev.CandidateFinished) and event.candidate_id == 1 and event.record.history == []
    assert event.budget == ctx.profile.search.budget and event.trained == 2


def test_a_final_result_the_journal_lacks_is_announced_once_and_one_it_holds_is_not(tmp_path):
    published: list[ev.Event] = []
    ctx = _ctx(tmp_path, published, "final.top_k=1", "final.seeds=[0]")
    result = ev.FinalResult(candidate_id=1, key="k1", seed=0, test_auc=0.7, test_acc=0.6, val_acc=0.5, params=1,
                            flops=2, epochs=3, seconds=4.0)
    path = ctx.run_dir.finalist_result_path(1, 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(result.to_dict()))
    records = {c: _ok(c) for c in (0, 1)}
    FinalPhase(ctx, records, None, {(1, 0)}, {(1, 0)})._announce_missing([records[1]])  # type: ignore[arg-type]
    assert published == []
    FinalPhase(ctx, records, None, {(1, 0)}, set())._announce_missing([records[1]])  # type: ignore[arg-type]
    assert [e.to_dict() for e in published] == [result.to_dict()]


def test_a_quota_reads_as_a_full_disk(tmp_path):
    full = os_error_message(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/r/events.jsonl"))
    quota = os_error_message(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/r/events.jsonl"))
    assert full == quota == f"/r/events.jsonl: {DISK_FULL}"


def test_a_writer_that_wraps_the_disks_error_still_names_the_file(disk):
    import torch

    disk.fill()
    with pytest.raises(OSError) as info:  # torch.save reports ENOSPC as its own RuntimeError
        atomic_write(disk.path / "x.ckpt", lambda fh: torch.save({"w": torch.zeros(100_000)}, fh))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(disk.path / "x.ckpt")
    assert not [p for p in disk.path.iterdir() if p.name.startswith(".x.ckpt")]
