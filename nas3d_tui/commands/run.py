"""``nas3d-tui run PROFILE``: start a search, in the dashboard or headless (and the code ``resume`` shares).

``run PROFILE --run-dir DIR --resume`` is the start a batch job repeats after
every requeue: it starts the run when DIR holds none, continues it (with the
checks ``resume`` makes) when DIR holds a run of the same profile, says so and
exits 0 when that run has finished, and refuses in one line when DIR holds
another run.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.control import Control
    from engine.profile import Profile
    from engine.session import Session
    from engine.session.lifecycle import RunLifecycle

    from ..console import ConsoleSink

from .. import hints

NAME = "run"
HELP = "start a search from a profile (dashboard, or --headless)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", nargs="?", default=None, help="shipped profile name or path to a TOML file (default: quick)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override profile keys; VALUE is parsed as TOML (one or more after one --set, or repeat --set)")
    p.add_argument("--headless", action="store_true", help="no dashboard: rich progress output for batch jobs")
    p.add_argument("--run-dir", default=None, help="run directory (default: <output_dir>/<name>-<timestamp>)")
    p.add_argument("--resume", action="store_true",
                   help="with --run-dir: continue the run there if it holds this profile's run, else start it "
                        "(safe to repeat, e.g. in a requeued batch job)")


def main(args: argparse.Namespace) -> int:
    from engine.errors import UserError
    from engine.profile import load_profile
    from engine.session import Session

    if args.resume and args.run_dir is None:
        raise UserError("--resume needs --run-dir DIR: the run directory to start, or to continue")
    profile = load_profile(args.profile, args.overrides)
    if not args.resume:
        return drive(Session.create(profile, run_dir=args.run_dir), args.headless)
    session = start_or_resume(profile, args.run_dir)
    if session is None:
        print(f"the run in {hints.shown_path(args.run_dir)} has already finished; nothing to do "
              f"(export it with: {hints.command('export', Path(args.run_dir))})", file=sys.stderr)
        return 0
    return drive(session, args.headless)


def start_or_resume(profile: Profile, run_dir: str | Path) -> Session | None:
    """The session ``run --resume`` drives in ``run_dir``: a new run, the same run continued, or None (finished).

    A directory holds a run once it has a ``profile.toml``, a journal with content
    or a search state. That run is continued only when its saved profile is
    ``profile`` (every key, the seed included); the checks ``resume`` makes
    follow when it runs (``Session.run``), before anything is written.

    Raises:
        engine.errors.UserError: ``run_dir`` holds another run (the first key
            that differs is named), a ``train`` run, or a damaged one.
    """
    from engine.errors import RunDirError, SessionError
    from engine.profile import load_profile
    from engine.rundir import RunDir
    from engine.session import Session
    from engine.session.retrain import is_train_run

    rd = RunDir(run_dir)
    if os.path.lexists(rd.path) and not rd.path.is_dir():
        raise RunDirError(f"{rd.path} is a file, not a run directory")
    if not rd.path.exists() or not (rd.holds_run() or rd.profile_path.exists()):
        return Session.create(profile, run_dir=rd.path)
    if is_train_run(rd.path):
        raise SessionError(f"{rd.path} holds a `nas3d-tui train` run, not a search; continue it with "
                           f"`nas3d-tui resume {rd.path}` or give another --run-dir")
    rd.check_is_run()  # a journal or a search state without its profile: damaged
    saved = load_profile(rd.profile_path)
    differs = _first_difference(saved, profile)
    if differs is not None:
        key, there, here = differs
        raise SessionError(f"{rd.path} holds another run: {key} = {there} there, {here} here; "
                           "give another --run-dir, or the same profile and --set values")
    state = rd.read_search_state()  # a damaged search state is refused here, in one line
    if state is not None and state.state == "finished":
        return None
    return Session.resume_from(rd.path)


def _first_difference(saved: Profile, wanted: Profile) -> tuple[str, str, str] | None:
    """The first ``section.key`` whose value differs, with both values as written in TOML, or None."""
    from engine.profile.resolve import fmt

    a, b = saved.to_dict(), wanted.to_dict()
    for section, values in b.items():
        for key, value in values.items():
            old = a.get(section, {}).get(key)
            if old != value:
                return f"{section}.{key}", fmt(old), fmt(value)
    return None


# The signals that stop a run with its search state saved (exit 130): Ctrl-C, kill / a scheduler's TERM,
# and USR1, a batch scheduler's warning ahead of a time limit.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


def stopped_hint(run_dir: Path) -> None:
    print(f"search state saved; continue with: {hints.command('resume', run_dir)}", file=sys.stderr)


@contextlib.contextmanager
def stop_on_signals(control: Control) -> Iterator[None]:
    """While inside: the first Ctrl-C / TERM / USR1 asks ``control`` to stop (saving the search state); a second one leaves now.

    SIGUSR1 is what a batch scheduler is often told to send ahead of a time
    limit (SLURM's ``--signal=B:USR1@SECONDS``, examples/slurm/search.sbatch).

    A Python signal handler runs on the main thread between two bytecodes of
    whatever it was doing -- possibly inside the journal's or the console's
    lock, while it writes an event. Asking to stop publishes an event, which
    needs those locks: done in the handler, that deadlocks (seen as a run that
    never ends after Ctrl-C). So the handler only counts and hands the request
    to a short-lived thread, which takes the locks once the main thread lets go.
    """
    interrupted = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted += 1
        if interrupted > 1:
            raise KeyboardInterrupt
        threading.Thread(target=control.stop, name="stop-request", daemon=True).start()

    old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def drive(session: RunLifecycle[Any], headless: bool) -> int:
    """Run a session headless or in the dashboard; returns the exit code."""
    if headless:
        return run_headless(session)
    from ..handle import SessionHandle
    from tui.app import run_dashboard

    handle = SessionHandle(session)
    code = run_dashboard(handle, resume_command=hints.command("resume", session.run_dir.path))
    if handle.error is not None:
        raise handle.error  # a problem found before the run started: the CLI boundary prints it
    if handle.outcome is not None:
        if handle.outcome.state == "stopped":
            stopped_hint(handle.outcome.run_dir)
        return handle.outcome.exit_code
    return code


def run_headless(session: RunLifecycle[Any], sink: ConsoleSink | None = None) -> int:
    """Run with rich progress on the console (stdout, or ``sink``'s console); Ctrl-C / TERM / USR1 stop, saving the search state."""
    from ..console import ConsoleSink

    sink = sink or ConsoleSink()
    session.bus.subscribe(sink)
    try:
        with stop_on_signals(session.control):
            outcome = session.run()
    finally:
        sink.close()
    if outcome.state == "stopped":
        stopped_hint(outcome.run_dir)
    elif outcome.state == "failed" and outcome.reason == "all-failed":  # the one line says why and what to change
        from ..cli import fail

        fail(outcome.error or outcome.reason)
    elif outcome.state == "failed" and outcome.reason == "disk-full":  # names the file; finished work is whole
        from ..cli import fail

        fail(f"{outcome.error}; finished work is kept: free some space, then `{hints.command('resume', outcome.run_dir)}`",
             outcome.exit_code)
    elif outcome.state == "failed":
        from engine.rundir import RunDir

        print(f"nas3d-tui: error: the run failed: {outcome.error}; details in {RunDir(outcome.run_dir, resolve=False).error_log_path}; "
              f"finished candidates are kept ({hints.command('resume', outcome.run_dir)})", file=sys.stderr)
    return outcome.exit_code
