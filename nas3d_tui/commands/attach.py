"""``nas3d-tui attach RUN_DIR``: watch and steer a run another process drives (``q`` detaches)."""
from __future__ import annotations

import argparse

from .. import hints

NAME = "attach"
HELP = "watch and steer a run started elsewhere (q detaches)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the run directory")


def main(args: argparse.Namespace) -> int:
    import itertools

    from engine import events as ev
    from engine.journal import open_history
    from engine.rundir import RunDir
    from tui.app import run_dashboard
    from tui.attach import AttachError, AttachHandle
    from tui.replay import ReplayHandle

    handle = AttachHandle(args.run_dir)  # checks the directory and its journal
    resume = hints.command("resume", handle.run_dir)
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
        return run_dashboard(replay, resume_command=resume)
    return run_dashboard(AttachHandle(handle.run_dir, history=(history.events, history.offset)), resume_command=resume)
