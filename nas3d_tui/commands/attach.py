"""``nas3d-tui attach RUN_DIR``: watch and steer a run another process drives (``q`` detaches).

The process may run on another host, with the run directory on a shared
file system: its driver file's fresh heartbeat says it is alive
(``engine.runs.who_drives``), and the dashboard follows its journal and steers
it through ``control.json`` as on one machine. A run that never ended and
that nobody drives shows as crashed; one last driven on another host whose
heartbeat stopped (``stale``) says when and where it was last seen; both
offer the resume command.
"""
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
    import time
    from pathlib import Path

    from engine import events as ev
    from engine.journal import open_history
    from engine.rundir import RunDir
    from engine.runs import STALE_AFTER_SECONDS, who_drives
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
    driver = None if ended else who_drives(handle.run_dir, local_pid=lambda p: RunDir(p).locked_by_other())
    if driver is not None and not driver.alive:
        if driver.state == "stale":
            # Last driven on another host, whose heartbeat stopped: presumed dead.
            from tui.runlist import age

            seen = age(None if driver.seen is None else time.time() - driver.seen)
            why = (f"stale — last seen on {driver.host} {seen} (process {driver.pid}; no heartbeat for over "
                   f"{STALE_AFTER_SECONDS:.0f}s); if it is gone, continue it with `{resume}`")
        else:
            # Nobody drives this run and it never ended: it crashed or was killed.
            why = f"no process is driving this run (crashed or killed); continue it with `{resume}`"
        gone = ev.RunFailed(error=why)
        replay = ReplayHandle(itertools.chain(history.events, [gone]), run_dir=handle.run_dir, echo_commands=False)
        return run_attached(replay, folder, resume_command=resume)
    return run_attached(AttachHandle(handle.run_dir, history=(history.events, history.offset)), folder,
                        resume_command=resume)
