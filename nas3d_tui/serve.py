"""The dashboard in a browser: one background search, and textual-serve for every connection.

textual-serve starts a new app process for each browser connection, so a
search must never be started by that process. This module owns the pieces
that make ``nas3d-tui serve`` safe:

- ``BackgroundSearch``: a headless ``nas3d-tui run`` / ``resume`` started
  once, in its own session (a dropped SSH connection or a Ctrl-C in the
  serving terminal does not reach it), logging to ``RUN_DIR/serve.log``; it
  is "started" when its ``RunStarted`` appears in ``events.jsonl``, and it is
  stopped through ``RUN_DIR/control.json`` so that it saves its search state;
- ``attach_command``: what each browser connection runs (``nas3d-tui attach``);
- ``serve_app``: the textual-serve server, with a one-line warning when it
  listens beyond the loopback interface.

Problems a user can cause raise ``engine.errors.UserError``. No torch, no
Textual (textual-serve starts Textual in the per-connection processes).
"""
from __future__ import annotations

import ipaddress
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from engine import control
from engine.errors import UserError
from engine.rundir import RunDir

__all__ = [
    "BackgroundSearch",
    "attach_command",
    "check_port",
    "is_loopback",
    "exposure_warning",
    "fresh_run_dir",
    "serve_app",
]



def nas3d_argv(*args: str) -> list[str]:
    """``nas3d-tui ARGS`` run by this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "nas3d_tui", *args]


def attach_command(run_dir: Path) -> str:
    """The shell command textual-serve runs for each browser connection."""
    return shlex.join(nas3d_argv("attach", str(run_dir)))


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The one-line warning for a non-loopback ``host``, else None."""
    if is_loopback(host):
        return None
    return (
        f"nas3d-tui: warning: serving on {host}:{port}: anyone who can reach this port can pause, "
        f"stop and steer the run (prefer --host 127.0.0.1 and an SSH tunnel)"
    )


def check_port(host: str, port: int) -> None:
    """Fail early when ``host:port`` cannot be listened on.

    Raises:
        UserError: the address is in use or not available here.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def fresh_run_dir(output_dir: str | os.PathLike[str], name: str) -> Path:
    """``<output_dir>/<name>-YYYYmmdd-HHMMSS`` (suffixed if taken), as ``nas3d-tui run`` names runs."""
    from engine.rundir import run_dir_name

    return run_dir_name(output_dir, name)


class BackgroundSearch:
    """A headless search process that outlives browser connections.

    Args:
        argv: the command (``nas3d_argv("run", ..., "--headless", ...)``).
        run_dir: the run directory it drives (created; its ``serve.log`` gets the output).
    """

    def __init__(self, argv: Sequence[str], run_dir: Path) -> None:
        self.argv = list(argv)
        self.run_dir = Path(run_dir)
        layout = RunDir(self.run_dir, resolve=False)
        self.log_path = layout.serve_log_path
        self._journal = layout.journal_path
        self._control = layout.control_path
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, timeout: float = 300.0) -> "BackgroundSearch":
        """Launch the process and wait until its ``RunStarted`` is in the journal.

        Raises:
            UserError: the run directory cannot be written, or the process
                ended (its last output line is the message) or did not start
                within ``timeout`` seconds.
        """
        journal = self._journal
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
        except OSError as exc:
            raise UserError(f"cannot write {self.log_path}: {exc.strerror or exc}") from None
        self._offset = journal.stat().st_size if journal.is_file() else 0
        with log:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self._started(journal):
            code = self.process.poll()
            if code is not None:
                raise UserError(f"the search did not start (exit {code}): {self._last_line()} (log: {self.log_path})")
            if time.monotonic() > deadline:
                self.process.terminate()
                raise UserError(f"the search did not start within {timeout:.0f}s (log: {self.log_path})")
            time.sleep(0.2)
        return self

    def _started(self, journal: Path) -> bool:
        """A ``run_started`` line from this process was appended after launch."""
        try:
            with open(journal, "rb") as fh:
                fh.seek(self._offset)
                lines = fh.read().split(b"\n")[:-1]  # complete lines only
        except OSError:
            return False
        if self.process is None:
            return False
        for line in lines:
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(event, dict) and event.get("kind") == "run_started" and event.get("pid") == self.process.pid:
                return True
        return False

    def _last_line(self) -> str:
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no output"
        return lines[-1] if lines else "no output"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> int:
        """Ask for a stop that saves the search state and wait for the process; returns its exit code.

        Each Ctrl-C while waiting is passed on as SIGINT (the second one makes
        the search leave at once, keeping every finished candidate).
        """
        assert self.process is not None
        if self.process.poll() is None:
            control.write_command(self._control, "stop")
        while True:
            try:
                return self.process.wait()
            except KeyboardInterrupt:
                if self.process.poll() is None:
                    self.process.send_signal(signal.SIGINT)


def serve_app(command: str, host: str, port: int, title: str, public_url: str | None = None) -> None:
    """Serve ``command`` (one process per browser connection) until Ctrl-C or SIGTERM.

    Raises:
        UserError: textual-serve is not installed, or the port cannot be listened on.
    """
    try:
        from textual_serve.server import Server
    except ImportError:
        raise UserError("nas3d-tui serve needs textual-serve: pip install textual-serve") from None
    if public_url is None and host in ("0.0.0.0", "::"):
        public_url = f"http://{socket.getfqdn()}:{port}"  # what a remote browser can reach
    server = Server(command, host=host, port=port, title=title, public_url=public_url)
    try:
        server.serve()
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
