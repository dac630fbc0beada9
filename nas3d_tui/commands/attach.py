"""``nas3d-tui attach RUN_DIR``: watch and steer a run another process drives (``q`` detaches)."""
from __future__ import annotations

import argparse

from .. import hints

NAME = "attach"
HELP = "watch and steer a run started elsewhere (q detaches)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the run directory")


def main(args: argparse.Namespace) -> int:
    """Attach; ``R`` in the dashboard shows the runs of the same folder, and Enter there attaches to another."""
    from pathlib import Path

    run_dir = str(args.run_dir)
    while True:
        code, wants_runs = _attach(run_dir)
        if not wants_runs:
            return code
        from tui.screens.runs import pick_run

        chosen = pick_run(str(Path(run_dir).parent))
        if chosen is None:
            return code
        run_dir = chosen


def _attach(run_dir: str) -> tuple[int, bool]:
    import itertools
    from pathlib import Path

    from engine import events as ev
    from engine.journal import open_history
    from engine.rundir import RunDir
    from tui.app import run_attached
    from tui.attach import AttachError, AttachHandle
    from tui.replay import ReplayHandle

    handle = AttachHandle(run_dir)  # checks the directory and its journal
    resume = hints.command("resume", handle.run_dir)
    folder = str(Path(run_dir).parent)
    try:
        path = RunDir(handle.run_dir, resolve=False).journal_path
        history = open_history(path)  # read once: the handle follows on from here
    except OSError as exc:
        raise AttachError(f"cannot attach: reading {path}: {exc.strerror or exc}") from None
    ended = isinstance(history.last, (ev.RunFinished, ev.RunFailed))
    if not ended and RunDir(handle.run_dir).locked_by_other() is None:
        # Nobody drives this run and it never ended: it crashed or was killed.
        gone = ev.RunFailed(error=f"no process is driving this run (crashed or killed); continue it with `{resume}`")
        replay = ReplayHandle(itertools.chain(history.events, [gone]), run_dir=handle.run_dir, echo_commands=False)
        return run_attached(replay, folder, resume_command=resume)
    return run_attached(AttachHandle(handle.run_dir, history=(history.events, history.offset)), folder,
                        resume_command=resume)
