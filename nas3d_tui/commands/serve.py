"""``nas3d-tui serve [--host H] [--port P] run|resume|attach ...``: the dashboard in a web browser.

``serve run PROFILE`` and ``serve resume RUN_DIR`` start the search once, as
a headless background process (``RUN_DIR/serve.log``); every browser
connection then gets its own ``nas3d-tui attach RUN_DIR``, so p / s / e / q
work as in a terminal and a new tab never starts a second search. Ctrl-C
stops serving and asks the search to stop, saving its search state (``serve
attach`` leaves the run alone). Binds to 127.0.0.1 unless told otherwise.

Every connection needs a token: a random one per launch, or the one in
``NAS3D_TUI_TOKEN`` / ``--token-file`` (never on the command line, where
``ps`` shows it). The printed URL carries it; ``--no-token`` serves without
one, on the loopback interface only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas3d_tui.serve import BackgroundSearch

from .. import hints

NAME = "serve"
HELP = "the dashboard in a web browser (textual-serve); the search runs once, in the background"

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Every connection needs a token: a random one per launch, or NAS3D_TUI_TOKEN / --token-file; the "
        "printed URL (http://127.0.0.1:8000/?token=...) carries it, and the browser keeps it in a cookie. "
        "From your laptop, through SSH: ssh -L 8000:127.0.0.1:8000 GPU-BOX, then open the printed URL "
        "(keep the same port on both ends, or pass --public-url)."
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; anything else sends the token over the network "
                             "unencrypted)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="the address browsers use, when it differs from http://HOST:PORT (a proxy, a tunnel "
                             "to another local port)")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help="read the token from FILE (mode 600; default: $NAS3D_TUI_TOKEN, else a random token "
                             "per launch, printed in the URL)")
    parser.add_argument("--no-token", action="store_true",
                        help="serve without a token (a single-user machine; refused with a --host beyond 127.0.0.1)")
    sub = parser.add_subparsers(dest="serve_mode", metavar="run|resume|attach", parser_class=type(parser))
    sub.required = True
    run = sub.add_parser("run", help="start a search in the background and serve its dashboard")
    run.add_argument("profile", nargs="?", default=None, help="shipped profile name or TOML file (default: quick)")
    run.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                     help="override profile keys; VALUE is parsed as TOML (one or more after one --set, or repeat --set)")
    run.add_argument("--run-dir", default=None, help="run directory (default: <output_dir>/<name>-<timestamp>)")
    res = sub.add_parser("resume", help="continue a stopped or crashed run in the background and serve it")
    res.add_argument("run_dir")
    att = sub.add_parser("attach", help="serve the dashboard of a run driven elsewhere (stopping serve leaves it)")
    att.add_argument("run_dir")


def _run_dir(path: str, need_journal: bool) -> Path:
    from engine.errors import UserError

    from engine.rundir import RunDir

    run_dir = Path(path).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"no run directory at {run_dir}")
    journal = RunDir(run_dir, resolve=False).journal_path
    if need_journal and not journal.is_file():
        raise UserError(f"{run_dir} has no {journal.name}: not a run directory, or its run has not started")
    return run_dir.resolve()


def _background(args: argparse.Namespace) -> tuple[Path, BackgroundSearch]:
    """The run directory and the search to start for ``serve run`` / ``serve resume``."""
    from engine.errors import UserError

    from engine.rundir import RunDir

    from nas3d_tui.serve import BackgroundSearch, fresh_run_dir, nas3d_argv

    if args.serve_mode == "resume":
        from engine.session import Session
        from engine.session.retrain import Retrain, is_train_run

        run_dir = _run_dir(args.run_dir, need_journal=False)
        job = Retrain.resume_from(run_dir) if is_train_run(run_dir) else Session.resume_from(run_dir)
        job.check()  # a run that cannot continue is one line here, before serve.log is written into it
        return run_dir, BackgroundSearch(nas3d_argv("resume", str(run_dir), "--headless"), run_dir)
    from engine.profile import load_profile

    profile = load_profile(args.profile, args.overrides)  # a bad profile stops here, before anything starts
    if args.run_dir:
        run_dir = Path(args.run_dir).expanduser()
    else:
        run_dir = fresh_run_dir(profile.run.output_dir, profile.run.name)
    if RunDir(run_dir, resolve=False).journal_path.exists():
        raise UserError(f"{run_dir} already holds a run: continue it with `{hints.command('serve', 'resume', run_dir)}`")
    from engine.session import Session

    Session.create(profile, run_dir).check()  # device, data, the folder: one line here, before serve.log exists
    run_dir = run_dir.resolve()
    sets = [a for o in args.overrides for a in ("--set", o)]
    profile_arg = [args.profile] if args.profile else []
    argv = nas3d_argv("run", *profile_arg, "--headless", "--run-dir", str(run_dir), *sets)
    return run_dir, BackgroundSearch(argv, run_dir)


def main(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    from nas3d_tui.serve import (attach_command, check_port, exposure_warning, no_token_warning, public_base,
                                 resolve_token, serve_app, served_url)

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: use a port between 1 and 65535")
    token = resolve_token(args.token_file, args.no_token, args.host)  # and NAS3D_TUI_TOKEN leaves the environment
    check_port(args.host, args.port)
    if args.serve_mode == "attach":
        run_dir, search = _run_dir(args.run_dir, need_journal=True), None
    else:
        run_dir, search = _background(args)
    warning = exposure_warning(args.host, args.port)  # after every check: an error stays one line
    if warning:
        print(warning, file=sys.stderr)
    if token is None:
        print(no_token_warning(), file=sys.stderr)
    base = public_base(args.host, args.port, args.public_url)
    url = served_url(base, token)  # on the terminal only: never in a log, an argv or a child's environment
    try:
        if search is not None:
            print(f"starting the search in the background (log: {search.log_path})…", file=sys.stderr)
            search.start()
        print(f"serving the dashboard of {run_dir} at {url} (Ctrl-C stops serving)", file=sys.stderr)
        serve_app(attach_command(run_dir), args.host, args.port, title=f"nas3d-tui · {run_dir.name}",
                  public_url=base, token=token)
    except BaseException:
        if search is not None and search.running:
            print("stopping the background search (its search state is saved)…", file=sys.stderr)
            search.stop()
        raise
    if search is None:
        return EXIT_OK
    if search.running:
        print("stopping the search at the next batch boundary (the search state is saved)…", file=sys.stderr)
    code = search.stop()
    if code == EXIT_OK:
        print(f"the search had finished; its report: {hints.command('report', run_dir)}", file=sys.stderr)
        return EXIT_OK
    if code == EXIT_INTERRUPTED:
        print(f"search state saved; continue with: {hints.command('serve', 'resume', run_dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"the search ended with exit {code} (log: {run_dir / 'serve.log'}); "
          f"continue with: {hints.command('serve', 'resume', run_dir)}", file=sys.stderr)
    return EXIT_FAILED
