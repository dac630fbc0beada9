"""The ``nas3d-tui`` command line: the composition root, and its one error boundary.

Each subcommand lives in ``nas3d_tui.commands``; this module builds the
parser from them and runs the chosen one inside the error boundary every
command shares:

* exit 0: done; 130: stopped or interrupted (the search state was saved);
* exit 2, one line on stderr: bad input -- any ``engine.errors.UserError``
  (a profile, a data file, a run directory, a device) and any ``OSError``
  about a user's path (too long, not a directory, permission, read-only,
  no space), named by that path;
* exit 1: the run failed, or an internal error -- one line on stderr, the
  traceback in a log file the line names.

Library warnings and library log lines never reach the terminal
(``NAS3D_WARNINGS=1`` shows them).
"""
from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_early(signum: int, frame: FrameType | None) -> None:  # pragma: no cover - runs in the real process only
    """Ctrl-C before the command's error boundary is entered: nothing was written; one line, exit 130."""
    try:
        os.write(2, b"nas3d-tui: error: interrupted\n")
    finally:
        os._exit(130)


# Started as the program (the ``nas3d-tui`` script or ``python -m nas3d_tui``), a Ctrl-C while the
# imports and the parser are still being built would print a KeyboardInterrupt traceback: until
# ``main`` enters its error boundary, it is one line and exit 130 instead. (An importer, such as a
# test, keeps its own handler.)
if os.path.basename(sys.argv[0] if sys.argv else "") in ("nas3d-tui", "__main__.py"):
    signal.signal(signal.SIGINT, _interrupted_early)

import argparse
import contextlib
import logging
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from collections.abc import Iterator
from typing import NoReturn, Sequence

from .commands import COMMANDS, load

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with one line, as argparse does, plus a hint
        from . import hints

        self.exit(EXIT_BAD_INPUT, f"nas3d-tui: error: {message} (see {hints.program()} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nas3d-tui", description="Neural architecture search for 3D medical images, with a terminal dashboard.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    for name in COMMANDS:
        module = load(name)
        module.add_arguments(sub.add_parser(module.NAME, help=module.HELP, description=module.HELP))
    return p


def fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print ``nas3d-tui: error: <message>`` (one line) to stderr and return ``code``.

    A command quoted in the message (the engine writes `` `nas3d-tui resume RUN` ``) names the
    program as it was started (``nas3d_tui.hints.program``).
    """
    from . import hints

    text = " ".join(str(message).split())
    program = hints.program()
    if program != "nas3d-tui":
        text = text.replace("`nas3d-tui ", f"`{program} ")
    print(f"nas3d-tui: error: {text}", file=sys.stderr)
    return code




def _internal_error(exc: BaseException) -> int:
    """Keep the traceback in a file; say where in one line."""
    from engine.errors import one_line

    name = f"nas3d-tui-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    log = Path(tempfile.gettempdir()) / name
    try:
        log.write_text(traceback.format_exc())
        where = f"; details in {log}"
    except OSError:
        where = ""
    return fail(f"internal error: {one_line(exc)}{where}", EXIT_FAILED)


def _usable_streams() -> None:
    """Text that a terminal's encoding cannot show is escaped, not fatal; a closed stream writes nowhere.

    (``PYTHONIOENCODING=ascii`` met the "28³" of a dataset's size; ``>&-``
    left ``sys.stdout`` as None.)
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
            continue
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring)."""
    _usable_streams()
    quiet = not os.environ.get("NAS3D_WARNINGS")
    with warnings.catch_warnings(), _quiet_library_logs(quiet):
        if quiet:
            warnings.simplefilter("ignore")  # library warnings never reach the terminal
        return _main(argv)


# Libraries that log to stderr on their own: nibabel's header checks print
# "sizeof_hdr should be 348; ..." through a handler it adds to "nibabel.global"
# (a logger's own ``disabled`` flag counts, not its parent's; getting it before
# nibabel is imported gives nibabel the same, disabled, object).
_CHATTY_LOGGERS = ("nibabel", "nibabel.global", "matplotlib")


@contextlib.contextmanager
def _quiet_library_logs(quiet: bool) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS] if quiet else []
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before):
            lg.disabled = was


# Arguments that name a path, in every command: a quoted ``~`` (``-o '~/x.csv'``, ``--set`` aside) is
# expanded here once, as the shell would have, so that no command writes ``./~/x.csv``.
PATH_ARGUMENTS = ("run_dir", "output", "out", "root", "path", "folder", "labels", "file", "bundle", "inputs",
                  "profile", "arch")


def expand_user_paths(args: argparse.Namespace) -> argparse.Namespace:
    """``~`` and ``~user`` at the start of every path argument expanded (see ``PATH_ARGUMENTS``)."""
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, os.path.expanduser(value))
        elif isinstance(value, list):
            setattr(args, name, [os.path.expanduser(v) if isinstance(v, str) else v for v in value])
    return args


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:  # plain `nas3d-tui`: the default profile in the dashboard
        args = build_parser().parse_args(["run"])
    if getattr(args, "profile", "") is None and getattr(args, "overrides", None) and "=" not in args.overrides[-1]:
        args.profile = args.overrides.pop()  # `run --set a=1 quick`: the profile after the --set values
    expand_user_paths(args)
    from engine.errors import UserError, os_error_message

    try:
        if signal.getsignal(signal.SIGINT) is _interrupted_early:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on the boundary below answers
        status: int = load(args.command).main(args)  # (every command module's ``main(args) -> int``)
        return status
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # `nas3d-tui export RUN | head`: the reader has what it wanted
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        except (OSError, ValueError, AttributeError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away
    except UserError as exc:
        return fail(str(exc) or type(exc).__name__)
    except OSError as exc:
        return fail(os_error_message(exc))
    except Exception as exc:  # noqa: BLE001 - the boundary: no traceback on the terminal
        return _internal_error(exc)
