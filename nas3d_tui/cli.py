"""The ``nas3d-tui`` command line: the composition root wiring the engine to its watchers.

Exit codes: 0 done, 2 bad input (one-line message, no traceback), 130
interrupted or stopped (a checkpoint was written; ``nas3d-tui resume RUN_DIR``
continues), 1 the run failed (finished work is kept).
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line, as argparse does, plus a hint
        self.exit(EXIT_BAD_INPUT, f"nas3d-tui: error: {message} (see nas3d-tui --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nas3d-tui", description="Neural architecture search for 3D MedMNIST, with a terminal dashboard.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="start a search from a profile (dashboard, or --headless)")
    run.add_argument("profile", nargs="?", default=None, help="shipped profile name or path to a TOML file (default: quick)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a profile key; VALUE is parsed as TOML (repeatable)")
    run.add_argument("--headless", action="store_true", help="no dashboard: rich progress output for batch jobs")
    run.add_argument("--run-dir", default=None, help="run directory (default: <output_dir>/<name>-<timestamp>)")

    res = sub.add_parser("resume", help="continue a stopped or crashed run")
    res.add_argument("run_dir")
    res.add_argument("--headless", action="store_true")

    att = sub.add_parser("attach", help="watch and steer a run started elsewhere (q detaches)")
    att.add_argument("run_dir")

    exp = sub.add_parser("export", help="export a run's leaderboard")
    exp.add_argument("run_dir")
    exp.add_argument("--format", choices=("csv", "json", "md"), default="csv")
    exp.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")
    exp.add_argument("--all", action="store_true", help="include duplicate and infeasible candidates")

    sub.add_parser("profiles", help="list the shipped profiles")
    return p


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"nas3d-tui: error: {message}", file=sys.stderr)
    return code


def _user_errors() -> tuple[type[BaseException], ...]:
    from engine.data import DataError
    from engine.profile import ProfileError
    from engine.rundir import RunDirError
    from engine.session import SessionError
    from tui.handle import HandleError

    return (ProfileError, DataError, RunDirError, SessionError, HandleError, FileNotFoundError, PermissionError)


def _cmd_profiles() -> int:
    from engine.profile import list_profiles

    for name, description in list_profiles():
        print(f"{name:<18} {description}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from engine.events import read_journal
    from engine.leaderboard import Leaderboard, export

    journal = Path(args.run_dir) / "events.jsonl"
    if not journal.exists():
        return _fail(f"no run journal at {journal}")
    board = Leaderboard.from_events(read_journal(journal))
    rows = board.rows(include_duplicates=args.all, include_infeasible=args.all)
    text = export(rows, args.format, args.output)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return EXIT_OK


def _headless(session) -> int:
    from .console import ConsoleSink

    sink = ConsoleSink()
    session.bus.subscribe(sink)
    interrupted = {"n": 0}

    def on_signal(signum, frame):  # first Ctrl-C: stop with checkpoint; second: leave now
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
        print(f"checkpoint written; continue with: nas3d-tui resume {outcome.run_dir}", file=sys.stderr)
    return outcome.exit_code


def _dashboard(handle) -> int:
    from tui.app import run_dashboard

    return run_dashboard(handle)


def _cmd_run(args: argparse.Namespace, resume: bool = False) -> int:
    from engine.session import Session

    if resume:
        session = Session.resume_from(args.run_dir)
    else:
        from engine.profile import load_profile

        profile = load_profile(args.profile, args.overrides)
        session = Session.create(profile, run_dir=args.run_dir)
    if args.headless:
        return _headless(session)
    from .handle import SessionHandle

    handle = SessionHandle(session)
    code = _dashboard(handle)
    if handle.error is not None:
        if isinstance(handle.error, _user_errors()):
            return _fail(str(handle.error))
        return _fail(str(handle.error), EXIT_FAILED)
    if handle.outcome is not None:
        if handle.outcome.state == "stopped":
            print(f"checkpoint written; continue with: nas3d-tui resume {handle.outcome.run_dir}", file=sys.stderr)
        return handle.outcome.exit_code
    return code


def _cmd_attach(args: argparse.Namespace) -> int:
    from engine import events as ev
    from engine.rundir import RunDir
    from tui.attach import AttachHandle
    from tui.replay import ReplayHandle

    handle = AttachHandle(args.run_dir)  # checks the directory and its journal
    journal = ev.read_journal(handle.run_dir / "events.jsonl")
    ended = bool(journal) and isinstance(journal[-1], (ev.RunFinished, ev.RunFailed))
    if not ended and RunDir(handle.run_dir).locked_by_other() is None:
        # Nobody drives this run and it never ended: it crashed or was killed.
        gone = ev.RunFailed(
            error=f"no process is driving this run (crashed or killed); continue it with "
            f"`nas3d-tui resume {handle.run_dir}`"
        )
        return _dashboard(ReplayHandle(journal + [gone], run_dir=handle.run_dir, echo_commands=False))
    return _dashboard(handle)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command is None:
            args = argparse.Namespace(profile=None, overrides=[], headless=False, run_dir=None)
            return _cmd_run(args)
        if args.command == "profiles":
            return _cmd_profiles()
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "resume":
            return _cmd_run(args, resume=True)
        if args.command == "attach":
            return _cmd_attach(args)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    return EXIT_BAD_INPUT
