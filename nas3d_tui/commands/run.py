"""``nas3d-tui run PROFILE``: start a search, in the dashboard or headless (and the code ``resume`` shares)."""
from __future__ import annotations

import argparse
import signal
import sys

from .. import hints

NAME = "run"
HELP = "start a search from a profile (dashboard, or --headless)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", nargs="?", default=None, help="shipped profile name or path to a TOML file (default: quick)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a profile key; VALUE is parsed as TOML (repeatable)")
    p.add_argument("--headless", action="store_true", help="no dashboard: rich progress output for batch jobs")
    p.add_argument("--run-dir", default=None, help="run directory (default: <output_dir>/<name>-<timestamp>)")


def main(args: argparse.Namespace) -> int:
    from engine.profile import load_profile
    from engine.session import Session

    profile = load_profile(args.profile, args.overrides)
    return drive(Session.create(profile, run_dir=args.run_dir), args.headless)


def stopped_hint(run_dir) -> None:
    print(f"checkpoint written; continue with: {hints.command('resume', run_dir)}", file=sys.stderr)


def drive(session, headless: bool) -> int:
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


def run_headless(session, sink=None) -> int:
    """Run with rich progress on the console (stdout, or ``sink``'s console); Ctrl-C / TERM stop with a checkpoint."""
    from ..console import ConsoleSink

    sink = sink or ConsoleSink()
    session.bus.subscribe(sink)
    interrupted = {"n": 0}

    def on_signal(signum, frame):  # first Ctrl-C / TERM: stop with a checkpoint; second: leave now
        interrupted["n"] += 1
        if interrupted["n"] > 1:
            raise KeyboardInterrupt
        session.control.stop()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        outcome = session.run()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        sink.close()
    if outcome.state == "stopped":
        stopped_hint(outcome.run_dir)
    elif outcome.state == "failed":
        print(f"nas3d-tui: error: the run failed: {outcome.error}; details in {outcome.run_dir / 'error.log'}; "
              f"finished candidates are kept ({hints.command('resume', outcome.run_dir)})", file=sys.stderr)
    return outcome.exit_code
