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
- ``resolve_token`` / ``served_url``: the secret every connection must show
  (a random one per launch, ``NAS3D_TUI_TOKEN`` or ``--token-file``) and the
  URL that carries it;
- ``serve_app``: the textual-serve server behind that token
  (``nas3d_tui.serve_auth``), with a one-line warning when it listens beyond
  the loopback interface.

The token never reaches a command line, a child's environment or a log: the
attach processes and the background search do not need it.

Problems a user can cause raise ``engine.errors.UserError``. No torch, no
Textual (textual-serve starts Textual in the per-connection processes).
"""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shlex
import stat
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import MutableMapping, Sequence
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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
    "new_token",
    "no_token_warning",
    "public_base",
    "read_token_file",
    "resolve_token",
    "served_url",
    "serve_app",
    "TOKEN_ENV",
]

TOKEN_ENV = "NAS3D_TUI_TOKEN"
MIN_TOKEN_LENGTH = 16  # characters of a token the user gives; a generated one has 43 (256 bits)


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
        f"nas3d-tui: warning: serving on {host}:{port}: plain HTTP, so anyone who can see the traffic to this port "
        f"learns the token and can pause, stop and steer the run (prefer --host 127.0.0.1 and an SSH tunnel)"
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


def new_token() -> str:
    """A random per-launch token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _checked(token: str, source: str) -> str:
    token = token.strip()
    if not token:
        raise UserError(f"{source} is empty: put a token of at least {MIN_TOKEN_LENGTH} characters in it")
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise UserError(f"the token in {source} is too weak or malformed: use at least {MIN_TOKEN_LENGTH} printable "
                        f"characters without spaces (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return token


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in ``path`` (surrounding whitespace dropped).

    The file must be readable by its owner only (like an SSH key): one that
    the group or others may read, or write, is refused rather than warned
    about, since the token would already be known to them.

    Raises:
        UserError: the file is missing, unreadable, not a plain file,
            readable or writable by others, empty, or holds a weak token.
    """
    shown = Path(path)
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UserError(f"--token-file {shown}: not a plain file")
            if info.st_mode & 0o077:
                raise UserError(f"--token-file {shown} can be read or written by others "
                                f"(mode {stat.S_IMODE(info.st_mode):03o}): chmod 600 {shlex.quote(str(shown))}")
            data = fh.read(4096)
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"--token-file {shown}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"--token-file {shown}: not a plain file") from None
    except OSError as exc:
        raise UserError(f"--token-file {shown}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--token-file {shown} is not UTF-8 text") from None
    return _checked(text, f"--token-file {shown}")


def resolve_token(token_file: str | None, no_token: bool, host: str,
                  environ: MutableMapping[str, str] | None = None) -> str | None:
    """The token every connection must show, or None with ``--no-token``.

    ``--token-file`` wins over ``NAS3D_TUI_TOKEN``; without either a random
    token is made. ``NAS3D_TUI_TOKEN`` is removed from ``environ`` (default
    ``os.environ``) so that no child process (the background search, each
    connection's ``nas3d-tui attach``) inherits it.

    Raises:
        UserError: ``--no-token`` with a token given, or with a host beyond the
            loopback interface; a token file or variable that cannot be used.
    """
    environ = os.environ if environ is None else environ
    from_env = environ.pop(TOKEN_ENV, None)
    if no_token:
        if not is_loopback(host):
            raise UserError(f"--no-token with --host {host}: anyone who can reach the port could steer the run; "
                            f"serve on 127.0.0.1 or keep the token")
        if token_file is not None or from_env is not None:
            given = "--token-file" if token_file is not None else TOKEN_ENV
            raise UserError(f"--no-token and {given} contradict each other: choose one")
        return None
    if token_file is not None:
        return read_token_file(Path(token_file).expanduser())
    if from_env is not None:
        return _checked(from_env, TOKEN_ENV)
    return new_token()


def no_token_warning() -> str:
    """The one-line warning of ``--no-token``."""
    return "nas3d-tui: warning: --no-token: anyone with an account on this machine can open the dashboard and steer the run"


def public_base(host: str, port: int, public_url: str | None = None) -> str:
    """The address browsers use: ``public_url``, else ``http://HOST:PORT`` (this machine's name for 0.0.0.0 / ::)."""
    if public_url:
        return public_url.rstrip("/") if urlsplit(public_url).path in ("", "/") else public_url
    if host in ("0.0.0.0", "::"):
        host = socket.getfqdn()  # what a remote browser can reach
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}"


def served_url(base: str, token: str | None) -> str:
    """``base`` with ``?token=TOKEN`` appended (its path defaults to ``/``; its own query is kept)."""
    parts = urlsplit(base)
    path = parts.path or "/"
    if token is None:
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query, quote_via=quote), parts.fragment))


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


def serve_app(command: str, host: str, port: int, title: str, public_url: str, token: str | None) -> None:
    """Serve ``command`` (one process per browser connection) until Ctrl-C or SIGTERM.

    Args:
        public_url: the address browsers use (``public_base``); the page's
            websocket and static URLs are built from it.
        token: what every request must show (``?token=`` once, then the
            cookie it sets); None serves without one (``--no-token``).

    Raises:
        UserError: textual-serve is not installed, or the port cannot be listened on.
    """
    try:
        from nas3d_tui.serve_auth import GuardedServer
    except ImportError:
        raise UserError("nas3d-tui serve needs textual-serve: pip install textual-serve") from None
    server = GuardedServer(command, host=host, port=port, title=title, public_url=public_url, token=token)
    try:
        server.serve()
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
