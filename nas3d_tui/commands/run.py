"""``nas3d-tui run PROFILE``: start a search, in the dashboard or headless (and the code ``resume`` shares)."""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.control import Control
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


def main(args: argparse.Namespace) -> int:
    from engine.profile import load_profile
    from engine.session import Session

    profile = load_profile(args.profile, args.overrides)
    return drive(Session.create(profile, run_dir=args.run_dir), args.headless)


def stopped_hint(run_dir: Path) -> None:
    print(f"search state saved; continue with: {hints.command('resume', run_dir)}", file=sys.stderr)


@contextlib.contextmanager
def stop_on_signals(control: Control) -> Iterator[None]:
    """While inside: the first Ctrl-C / TERM asks ``control`` to stop (saving the search state); a second one leaves now.

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

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def drive(session: RunLifecycle, headless: bool) -> int:
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


def run_headless(session: RunLifecycle, sink: ConsoleSink | None = None) -> int:
    """Run with rich progress on the console (stdout, or ``sink``'s console); Ctrl-C / TERM stop, saving the search state."""
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
