"""The engine's own cost per candidate, and what reading a long run costs: attach, export, report.

Drives a real ``Session`` (the ``paper`` profile: ODE with NP 20, the paper's
space, AdrenalMNIST3D 28^3) for ``--candidates N`` trained candidates with the
training taken out: the session's evaluator is replaced, in this script only,
by ``InstantEvaluator``, which answers every job at once with one epoch and a
fitness drawn from the architecture's key. What is left is the engine:
triage, complexity, strategy, checkpoints, candidate records, events, journal.
The final phase is off.

Then, on the finished run directory, it times what a user does with a long run:

- ``attach``: in a fresh Python, as the command runs, the dashboard
  (headless, 120x40) from its start until it shows the finished run (every
  journal event folded in and the panels drawn: ``attach_s``), the same from
  the command's start (Python, imports: ``attach_command_s``), then one full
  redraw of every panel (median of 5); and the memory the dashboard's state
  keeps once the journal is folded in (``dashboard_state_mb``, tracemalloc), and
  the attached dashboard's process size after it (``dashboard_rss_mb``: resident
  now, and its peak; Linux);
- ``export --format json`` and ``report`` in this process (imports warm), and
  ``export`` as a command (a fresh Python, as a user types it).

Prints ``engine_ms_per_candidate: X`` (whole search wall time / N) and
``engine_cpu_ms_per_candidate: X`` (this process's CPU time / N: what a
loaded, shared machine does not distort), the first-tenth / last-tenth
per-candidate times (flat when nothing grows with the run), and one
``<what>_s: X`` line per reading command (wall seconds, CPU seconds in brackets).

Attach and export are timed ``--repeat`` times (default 3) and the fastest is
printed first, every time after it in brackets: on a shared machine the least
disturbed run is the one that says what the code costs.

Usage: python benchmarks/engine_overhead.py [--candidates N] [--keep DIR]
       [--profile paper] [--set SECTION.KEY=VALUE ...] [--no-attach] [--no-report] [--repeat K]

N = 2000 takes a few minutes on two CPU cores.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def stand_in_fitness(key: str) -> float:
    """A deterministic fitness in [0.5, 1) from an architecture key (no training)."""
    return 0.5 + int(hashlib.md5(key.encode()).hexdigest()[:8], 16) / 2**33


class InstantEvaluator:
    """An evaluator that trains nothing: one epoch per job, answered at once (the engine's cost only)."""

    name = "instant"
    worker = "instant:cpu"

    def evaluate(self, jobs: Sequence[Any], callbacks: Any) -> None:
        from engine.records import EpochRecord
        from engine.training.loop import CandidateResult

        for job in jobs:
            callbacks.on_start(job, self.worker)
            fitness = stand_in_fitness(job.genotype.key)
            epoch = EpochRecord(epoch=1, train_loss=1.0 - fitness, val_loss=1.0 - fitness, val_acc=fitness,
                                val_auc=fitness, seconds=0.0)
            callbacks.on_epoch(job, epoch)
            callbacks.on_done(job, CandidateResult("ok", fitness, fitness, fitness, 1, 0.0, None, None, (epoch,)),
                              self.worker)

    def close(self) -> None:
        pass


def instant_session(profile: Any, run_dir: Path) -> Any:
    """A real ``Session`` whose search evaluates with ``InstantEvaluator``."""
    from engine.session import Session

    class InstantSession(Session):
        def _run_search(self, search_data: Any) -> str:
            return self._search.run(self._strategy, InstantEvaluator(), lambda: self._save_search_state("search"),
                                    self._elapsed)

    return InstantSession(profile, run_dir)


def time_attach(run_dir: Path, size: tuple[int, int] = (120, 40), timeout: float = 600,
                shown: Any = None) -> tuple[float, float, float]:
    """Seconds from the dashboard's start until it shows the finished run of ``run_dir`` (wall, then
    this process's CPU), and then the median seconds of a full redraw (every panel's part of the
    state marked changed, drawn). ``shown(wall, cpu)`` is called the moment the run is shown."""
    from tui.app import NasApp
    from tui.attach import AttachHandle

    async def go() -> tuple[float, float, float]:
        app = NasApp(AttachHandle(run_dir))
        start, cpu = time.perf_counter(), time.process_time()
        async with app.run_test(size=size) as pilot:
            while not (app.state.terminal and not app._inbox):
                if time.perf_counter() - start > timeout:
                    raise TimeoutError("the dashboard did not show the finished run")
                await pilot.pause(0.01)
            await pilot.pause()  # the redraw of the last fold
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
            if shown is not None:
                shown(seconds, cpu_seconds)
            redraws = []
            for _ in range(5):
                app.state._touch("run", "status", "fitness", "leaderboard", "candidates", "cell", "epochs", "log")
                begin = time.perf_counter()
                app._sync_panels()
                await pilot.pause()
                redraws.append(time.perf_counter() - begin)
            app.handle.close()
        return seconds, cpu_seconds, sorted(redraws)[len(redraws) // 2]

    return asyncio.run(go())


def process_memory_mb() -> str:
    """``"RSS PEAK"``: this process's resident memory now and at most so far, in MB (Linux's /proc)."""
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return f"{fields['VmRSS']:.1f} {fields['VmHWM']:.1f}"


def time_call(fn: Any) -> str:
    """``"wall (cpu cpu)"`` seconds of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return f"{time.perf_counter() - start:.3f} (cpu {time.process_time() - cpu:.3f})"


def best_of(repeat: int, measure: Any) -> str:
    """The fastest of ``repeat`` measurements (``"seconds ..."`` strings), then all of them in brackets.

    The least disturbed run is the one a shared machine lets through (``timeit``'s rule).
    """
    runs = [measure() for _ in range(max(1, repeat))]
    fastest = min(runs, key=lambda r: float(r.split()[0]))
    return fastest if len(runs) == 1 else f"{fastest}  [all: {'; '.join(runs)}]"


def dashboard_state_bytes(journal: Path) -> tuple[int, int]:
    """Bytes of the objects the dashboard's state keeps once ``attach`` folded the journal
    (``tracemalloc``: what was allocated and is still held, the decoded events it let go not
    counted), and the number of candidates in it."""
    import gc
    import tracemalloc

    from engine.journal import read_history
    from tui.state import DashboardState

    gc.collect()
    tracemalloc.start()
    try:
        events, _ = read_history(journal)
        state = DashboardState.from_events(events)
        del events
        gc.collect()
        return tracemalloc.get_traced_memory()[0], len(state.candidates)
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=200, help="trained candidates (default 200)")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--keep", default=None, help="write the run here and keep it (default: a temporary folder)")
    ap.add_argument("--no-attach", action="store_true", help="skip timing the dashboard")
    ap.add_argument("--no-report", action="store_true", help="skip timing the report")
    ap.add_argument("--repeat", type=int, default=3, help="time attach and export this many times, print the fastest "
                    "(default 3)")
    ap.add_argument("--time-attach", metavar="RUN_DIR", help=argparse.SUPPRESS)  # the child that times attach
    args = ap.parse_args(argv)
    if args.time_attach:
        _, _, redraw = time_attach(Path(args.time_attach), shown=lambda wall, cpu: print(f"shown {wall:.4f} {cpu:.4f}",
                                                                                          flush=True))
        print(f"redraw {redraw:.4f}", flush=True)
        print(f"memory {process_memory_mb()}", flush=True)
        return 0

    from engine import events as ev
    from engine.profile import load_profile
    from engine.rundir import RunDir

    overrides = ["run.device='cpu'", f"search.budget={args.candidates}", "final.top_k=0", "executor.workers=1",
                 *args.overrides]
    profile = load_profile(args.profile, overrides)
    finished_at: list[tuple[float, float]] = []  # (wall, cpu) when each trained candidate finished
    stamps: dict[str, float] = {}

    def watch(e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            stamps["start"], stamps["cpu_start"] = time.perf_counter(), time.process_time()
        elif isinstance(e, ev.CandidateFinished) and e.status == "ok":
            finished_at.append((time.perf_counter(), time.process_time()))
        elif isinstance(e, (ev.RunFinished, ev.RunFailed)):
            stamps["end"], stamps["cpu_end"] = time.perf_counter(), time.process_time()

    with tempfile.TemporaryDirectory(prefix="nas3d-overhead-") as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        session = instant_session(profile, run_dir)
        session.bus.subscribe(watch)
        outcome = session.run()
        if outcome.state != "finished":
            print(f"the run ended {outcome.state}: {outcome.error}")
            return 1
        n = len(finished_at)
        seconds = stamps["end"] - stamps["start"]
        cpu_seconds = stamps["cpu_end"] - stamps["cpu_start"]
        tenth = max(1, n // 10)
        marks = [(stamps["start"], stamps["cpu_start"]), *finished_at]

        def per_candidate(a: int, b: int) -> str:
            """ms per candidate between the a-th and b-th finish, wall (cpu)."""
            return (f"{1000 * (marks[b][0] - marks[a][0]) / (b - a):.2f} "
                    f"(cpu {1000 * (marks[b][1] - marks[a][1]) / (b - a):.2f})")
        journal = RunDir(run_dir, resolve=False).journal_path
        size_mb = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()) / 1e6
        print(f"profile {args.profile}: NP {profile.search.population}, {profile.search.strategy}; "
              f"{n} candidates trained by a stand-in (no training) in {seconds:.2f} s")
        print(f"journal {journal.stat().st_size / 1e6:.1f} MB, run directory {size_mb:.1f} MB")
        if n:
            print(f"ms per candidate, first tenth: {per_candidate(0, tenth)}, last tenth: {per_candidate(n - tenth, n)}")

        from engine.journal import read_journal
        from engine.leaderboard import Leaderboard, export

        def export_json() -> None:
            board = Leaderboard.from_events(read_journal(journal, strict=True))
            export(board.rows(), "json", None)

        print(f"export_json_in_process_s: {best_of(args.repeat, lambda: time_call(export_json))}")
        command = [sys.executable, "-m", "nas3d_tui", "export", str(run_dir), "--format", "json"]

        def export_command() -> str:
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
            return f"{time.perf_counter() - start:.3f}"
        print(f"export_json_command_s: {best_of(args.repeat, export_command)}")
        if not args.no_report:
            from nas3d_tui.report import build_report

            out = Path(tmp) / "report"
            print(f"report_in_process_s: {time_call(lambda: build_report(run_dir, out))}")
        if not args.no_attach:
            kept, candidates = dashboard_state_bytes(journal)
            print(f"dashboard_state_mb: {kept / 1e6:.2f} ({kept / max(candidates, 1):.0f} bytes for each of "
                  f"{candidates} candidates)")
            redraws = []

            commands = []
            memories: list[str] = []

            def attach_once() -> str:
                # In a fresh Python, as `nas3d-tui attach RUN` runs: this process holds a whole search's
                # objects and torch, which a user's attach does not (and its garbage collections cost more).
                start = time.perf_counter()
                child = subprocess.Popen([sys.executable, __file__, "--time-attach", str(run_dir)], cwd=REPO,
                                         stdout=subprocess.PIPE, text=True)
                assert child.stdout is not None
                shown = child.stdout.readline().split()  # "shown WALL CPU" once the finished run is drawn
                commands.append(f"{time.perf_counter() - start:.3f}")
                redraw = child.stdout.readline().split()  # "redraw SECONDS"
                memory = child.stdout.readline().split()  # "memory RSS PEAK"
                if child.wait() != 0 or len(shown) != 3 or len(redraw) != 2 or len(memory) != 3:
                    raise RuntimeError("timing the dashboard failed (see above)")
                redraws.append(float(redraw[1]))
                memories.append(f"{memory[1]} (peak {memory[2]})")
                return f"{float(shown[1]):.3f} (cpu {float(shown[2]):.3f})"
            print(f"attach_s: {best_of(args.repeat, attach_once)}")
            print(f"attach_command_s: {best_of(1, lambda: min(commands, key=float))}  [all: {'; '.join(commands)}]")
            print(f"dashboard_redraw_s: {min(redraws):.3f}")
            print(f"dashboard_rss_mb: {memories[-1]}")
    print(f"engine_cpu_ms_per_candidate: {1000 * cpu_seconds / max(n, 1):.2f}")
    print(f"engine_ms_per_candidate: {1000 * seconds / max(n, 1):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
