"""``nas3d-tui runs [DIR]``: the runs under a folder, which are driven, how far each got; ``--pick`` to attach.

Reads each run's journal, search state and profile with their checked readers
and writes nothing (``engine.runs``). A damaged run is one line naming what is
wrong; the others are still listed. ``--format json`` prints the same facts
for scripts; ``--pick`` shows them in a screen where Enter attaches to a run.

A run driven on another host (the run directory on a shared file system) is
``running on HOST (pid N, seen 3s ago)`` while its heartbeat is fresh, and
``stale`` once it is older than ``engine.runs.STALE_AFTER_SECONDS``: then the
line (and the JSON's ``resume_command``) gives the command that continues it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "runs"
HELP = "list the runs under a folder (state, progress, best fitness, test AUC); --pick one to attach to"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", nargs="?", default=None, metavar="DIR",
                   help="folder of run directories (default: the default profile's run.output_dir)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="a table for people (default) or JSON for scripts")
    p.add_argument("--pick", action="store_true", help="choose a run in a screen and attach to it")


def default_folder() -> str:
    """The default profile's ``run.output_dir`` (where ``nas3d-tui run`` puts runs)."""
    from engine.profile import load_profile

    return str(load_profile(None).run.output_dir)


def main(args: argparse.Namespace) -> int:
    from engine.errors import UserError
    from engine.runs import list_runs

    folder = args.folder if args.folder is not None else default_folder()
    if args.folder is None and not os.path.lexists(folder):
        print(f"no runs yet: {folder} does not exist (nas3d-tui run makes it)", file=sys.stderr)
        if args.format == "json":
            print("[]")
        return 0
    if args.pick:
        if args.format != "table":
            raise UserError("--pick shows a screen; leave out --format")
        return _pick(folder)
    runs = list_runs(folder)
    if args.format == "json":
        rows = []
        for r in runs:
            row = r.to_dict()
            if r.state == "stale":
                row["resume_command"] = _resume_command(r.path)
            rows.append(row)
        sys.stdout.write(json.dumps(rows, indent=2, allow_nan=False) + "\n")
        return 0
    if not runs:
        print(f"no runs in {folder}", file=sys.stderr)
        return 0
    from tui.runlist import table

    print(table(runs, resume_command=_resume_command))
    return 0


def _resume_command(path: str) -> str:
    """The command that continues the run at ``path``, spelled to work from here."""
    from pathlib import Path

    from .. import hints

    return hints.command("resume", Path(path))


def _pick(folder: str) -> int:
    from engine.runs import list_runs

    from tui.screens.runs import pick_run

    list_runs(folder)  # a bad folder is one line and exit 2 before any screen opens
    chosen = pick_run(folder)
    if chosen is None:
        return 0
    from . import attach

    return attach.main(argparse.Namespace(run_dir=chosen))
