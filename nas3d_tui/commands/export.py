"""``nas3d-tui export RUN_DIR``: the leaderboard of a run as CSV, JSON or Markdown."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "export"
HELP = "export a run's leaderboard"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--format", choices=("csv", "json", "md"), default="csv")
    p.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")
    p.add_argument("--all", action="store_true", help="include duplicate and infeasible candidates")


def main(args: argparse.Namespace) -> int:
    from engine.errors import RunDirError
    from engine.journal import read_journal
    from engine.leaderboard import Leaderboard, export
    from engine.rundir import RunDir

    journal = RunDir(Path(args.run_dir), resolve=False).journal_path
    if not journal.exists():
        raise RunDirError(f"no run journal at {journal}")
    if args.output is not None:
        _check_target(Path(args.output))
    board = Leaderboard.from_events(read_journal(journal, strict=True))
    rows = board.rows(include_duplicates=args.all, include_infeasible=args.all)
    text = export(rows, args.format, args.output)
    if args.output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0


def _check_target(path: Path) -> None:
    """Refuse an impossible ``-o`` before reading anything (one line naming the target)."""
    from engine.errors import UserError

    from engine.rundir import refuse_run_file

    if path.is_dir():
        raise UserError(f"{path}: is a directory; give a file name for -o")
    refuse_run_file(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{path}: {parent} is a file, not a directory")
            break
