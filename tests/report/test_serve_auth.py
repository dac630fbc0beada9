"""The token in front of ``nas3d-tui serve``: real HTTP and websocket requests to a served dashboard.

A ``serve attach`` of a synthetic run is the served dashboard (no search to
start). Requests go through ``http.client`` (which follows no redirect) and
a raw websocket handshake, so every status line and header is the server's
own: without the token every route answers 401, ``?token=`` answers 303 with
the cookie, the cookie alone opens the page (200) and the websocket (101).
The token is also looked for where it must not be: the server's output
(aiohttp logs every request line, query string included), the command line
and environment of every process the server starts.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import http.cookies
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.errors import UserError
from nas3d_tui.serve import (TOKEN_ENV, new_token, public_base, read_token_file, resolve_token, served_url)
from report_runs import REPO, synthetic_lines, write_journal

pytestmark = pytest.mark.timeout(300)

COMMAND = Path(__file__).with_name("command.py")
PRINTED = re.compile(r"serving the dashboard of .* at (\S+) \(Ctrl-C stops serving\)")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def a_token_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


# -- the pieces --------------------------------------------------------------------------------

class TestPieces:
    def test_a_fresh_token_has_256_random_bits_and_is_url_safe(self) -> None:
        tokens = {new_token() for _ in range(20)}
        assert len(tokens) == 20
        assert all(len(t) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)

    def test_the_printed_url_carries_the_token(self) -> None:
        assert served_url("http://127.0.0.1:8000", "abc") == "http://127.0.0.1:8000/?token=abc"
        assert served_url("http://127.0.0.1:8000", None) == "http://127.0.0.1:8000/"
        # --public-url: its path and query are kept, the token appended (and quoted)
        url = served_url("https://proxy.example.org/nas/?x=1", "a+b/c=")
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", "proxy.example.org", "/nas/")
        assert parse_qs(parts.query) == {"x": ["1"], "token": ["a+b/c="]}
        assert public_base("127.0.0.1", 8123) == "http://127.0.0.1:8123"
        assert public_base("::1", 8123) == "http://[::1]:8123"
        assert public_base("127.0.0.1", 8123, "http://localhost:9000/") == "http://localhost:9000"

    def test_a_token_file_is_read_and_must_be_private(self, tmp_path: Path) -> None:
        token = new_token()
        assert read_token_file(a_token_file(tmp_path / "ok", f"  {token}\n")) == token
        for mode in (0o640, 0o604, 0o620):
            with pytest.raises(UserError, match="chmod 600") as info:
                read_token_file(a_token_file(tmp_path / f"open{mode:o}", token, mode))
            assert f"{mode:03o}" in str(info.value)
        with pytest.raises(UserError, match="empty"):
            read_token_file(a_token_file(tmp_path / "empty", "\n"))
        with pytest.raises(UserError, match="no such file"):
            read_token_file(tmp_path / "missing")
        with pytest.raises(UserError, match="not a plain file"):
            read_token_file(tmp_path)
        with pytest.raises(UserError, match="at least 16"):
            read_token_file(a_token_file(tmp_path / "short", "hunter2"))

    def test_which_token_and_the_variable_leaves_the_environment(self, tmp_path: Path) -> None:
        token, other = new_token(), new_token()
        environ = {TOKEN_ENV: f"{token}\n", "HOME": "/home/x"}
        assert resolve_token(None, False, "127.0.0.1", environ) == token
        assert environ == {"HOME": "/home/x"}  # no child inherits it
        environ = {TOKEN_ENV: token}
        assert resolve_token(str(a_token_file(tmp_path / "t", other)), False, "127.0.0.1", environ) == other
        assert TOKEN_ENV not in environ
        fresh = resolve_token(None, False, "0.0.0.0", {})
        assert fresh and len(fresh) >= 43 and fresh != resolve_token(None, False, "0.0.0.0", {})
        assert resolve_token(None, True, "127.0.0.1", {}) is None
        assert resolve_token(None, True, "localhost", {}) is None

    def test_what_is_refused(self, tmp_path: Path) -> None:
        for host in ("0.0.0.0", "::", "192.168.1.5"):
            with pytest.raises(UserError, match=f"--no-token with --host {re.escape(host)}"):
                resolve_token(None, True, host, {})
        with pytest.raises(UserError, match="--no-token and --token-file"):
            resolve_token(str(a_token_file(tmp_path / "t", new_token())), True, "127.0.0.1", {})
        with pytest.raises(UserError, match=f"--no-token and {TOKEN_ENV}"):
            resolve_token(None, True, "127.0.0.1", {TOKEN_ENV: new_token()})
        with pytest.raises(UserError, match=f"{TOKEN_ENV} is empty"):
            resolve_token(None, False, "127.0.0.1", {TOKEN_ENV: ""})
        with pytest.raises(UserError, match="at least 16"):
            resolve_token(None, False, "127.0.0.1", {TOKEN_ENV: "short"})

    def test_the_log_filter_redacts_the_token_and_any_token_query(self) -> None:
        from nas3d_tui.serve_auth import RedactToken

        token = new_token()
        redact = RedactToken(token)
        record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, '%s "%s" %s',
                                   ("127.0.0.1", f"GET /?fontsize=12&token={token} HTTP/1.1", 303), None)
        assert redact.filter(record)
        assert record.getMessage() == '127.0.0.1 "GET /?fontsize=12&token=[redacted] HTTP/1.1" 303'
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad cookie %s", (token,), None)
        redact.filter(record)
        assert token not in record.getMessage()
        plain = logging.LogRecord("x", logging.INFO, __file__, 1, "GET /static/js/textual.js %s", (200,), None)
        redact.filter(plain)
        assert plain.getMessage() == "GET /static/js/textual.js 200"


@pytest.mark.e2e
class TestRefusedOnTheCommandLine:
    @pytest.mark.parametrize("case", ["no-token-public", "token-file-readable", "token-file-empty",
                                      "token-file-missing", "no-token-and-file"])
    def test_one_line_and_exit_2(self, case: str, tmp_path: Path) -> None:
        run_dir = write_journal(tmp_path / "run", synthetic_lines())
        token_file = tmp_path / "token"
        options = {  # made lazily: each case writes its own token file
            "no-token-public": lambda: ["--host", "0.0.0.0", "--no-token"],
            "token-file-readable": lambda: ["--token-file", str(a_token_file(token_file, new_token(), 0o644))],
            "token-file-empty": lambda: ["--token-file", str(a_token_file(token_file, ""))],
            "token-file-missing": lambda: ["--token-file", str(tmp_path / "missing")],
            "no-token-and-file": lambda: ["--no-token", "--token-file", str(a_token_file(token_file, new_token()))],
        }[case]()
        result = subprocess.run([sys.executable, str(COMMAND), "serve", "--port", str(free_port()), *options,
                                 "attach", str(run_dir)], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        expected = {"no-token-public": "--no-token with --host 0.0.0.0", "token-file-readable": "chmod 600",
                    "token-file-empty": "empty", "token-file-missing": "no such file",
                    "no-token-and-file": "contradict"}[case]
        assert expected in lines[0]


# -- a served dashboard ------------------------------------------------------------------------

@dataclass
class Served:
    proc: subprocess.Popen
    port: int
    url: str  # as printed
    output: Path  # the server's stdout and stderr

    @property
    def token(self) -> str | None:
        values = parse_qs(urlsplit(self.url).query).get("token")
        return values[0] if values else None

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def start_serving(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> Served:
    """``nas3d-tui serve OPTIONS attach RUN`` on a synthetic run, once it answers HTTP."""
    run_dir = write_journal(tmp_path / "run", synthetic_lines())
    port, output = free_port(), tmp_path / "serve.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(COMMAND), "serve", "--port", str(port), *options, "attach",
                                 str(run_dir)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    served = Served(proc, port, "", output)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited with {proc.returncode}: {served.text()[-3000:]}"
        match = PRINTED.search(served.text())
        if match and not served.url:
            served.url = match.group(1)
        if served.url:
            try:
                request(port, "/")
                return served
            except OSError:
                pass
        time.sleep(0.25)
    stop_serving(served)
    raise AssertionError(f"serve did not answer within 180s: {served.text()[-3000:]}")


def stop_serving(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGINT)
        try:
            served.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(port: int, path: str, cookie: str | None = None) -> Answer:
    """One GET, no redirect followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def ws_handshake(port: int, path: str = "/ws?width=100&height=30", cookie: str | None = None
                 ) -> tuple[int, socket.socket]:
    """A raw websocket upgrade request; the status and the open socket (close it)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", f"Origin: http://127.0.0.1:{port}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status_line, *header_lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    if status == 101:  # a real upgrade: the server answered this handshake's key
        headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert headers.get("sec-websocket-accept") == accept, header_lines
    return status, sock


def ws_status(port: int, path: str = "/ws?width=100&height=30", cookie: str | None = None) -> int:
    status, sock = ws_handshake(port, path, cookie)
    sock.close()
    return status


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat_file.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def proc_text(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def login(served: Served) -> str:
    """Show the printed URL's token once; the ``Cookie`` header value the server set."""
    answer = request(served.port, urlsplit(served.url).path + "?" + urlsplit(served.url).query)
    assert answer.status in (302, 303)
    cookie = http.cookies.SimpleCookie(answer.headers["Set-Cookie"])
    (name, morsel), = cookie.items()
    return f"{name}={morsel.value}"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    """A dashboard served with a random token (the default)."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    served = start_serving(tmp_path_factory.mktemp("served"), env=env)
    try:
        yield served
    finally:
        stop_serving(served)



def wait_for_attach(served: "Served") -> None:
    """Wait (up to 120 s) until the server has started a connection's `nas3d-tui attach` process."""
    deadline, attach = time.monotonic() + 120, []
    while not attach and time.monotonic() < deadline:
        attach = [p for p in descendants(served.proc.pid) if " attach " in proc_text(p, "cmdline")]
        time.sleep(0.2)
    assert attach, "no `nas3d-tui attach` process under the server"

@pytest.mark.e2e
class TestARandomToken:
    def test_the_printed_url_carries_a_fresh_token(self, served: Served) -> None:
        assert served.url.startswith(f"http://127.0.0.1:{served.port}/?token=")
        assert served.token and len(served.token) >= 43

    def test_every_route_answers_401_without_the_token(self, served: Served) -> None:
        for path in ("/", "/?fontsize=12", "/static/js/textual.js", "/static/css/xterm.css", "/static/",
                     "/download/somekey", "/ws", "/no-such-page"):
            answer = request(served.port, path)
            assert answer.status == 401, (path, answer.status)
            assert b"textual" not in answer.body.lower() and "Set-Cookie" not in answer.headers
        assert ws_status(served.port) == 401

    def test_a_wrong_token_or_cookie_answers_401(self, served: Served) -> None:
        wrong = new_token()
        assert request(served.port, f"/?token={wrong}").status == 401
        assert request(served.port, f"/?token={served.token[:-1]}").status == 401
        assert request(served.port, "/?token=").status == 401
        assert ws_status(served.port, f"/ws?width=80&height=24&token={wrong}") == 401
        for cookie in (f"nas3d_tui_{served.port}={served.token}", f"nas3d_tui_{served.port}=0",
                       f"nas3d_tui_{served.port + 1}={login(served).split('=', 1)[1]}"):
            assert request(served.port, "/", cookie=cookie).status == 401, cookie
            assert ws_status(served.port, cookie=cookie) == 401, cookie

    def test_the_token_sets_a_strict_httponly_cookie_and_redirects_without_it(self, served: Served) -> None:
        answer = request(served.port, f"/?token={served.token}")
        assert answer.status in (302, 303)
        assert answer.headers["Location"] == "/"
        raw = answer.headers["Set-Cookie"]
        cookie = http.cookies.SimpleCookie(raw)
        (name, morsel), = cookie.items()
        assert name == f"nas3d_tui_{served.port}"  # the port keeps two served runs on one host apart
        assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/", raw
        assert served.token not in raw  # an HMAC of the token, not the token
        # other query parameters survive the redirect
        answer = request(served.port, f"/?fontsize=12&token={served.token}")
        assert answer.status in (302, 303) and answer.headers["Location"] == "/?fontsize=12"

    def test_the_cookie_alone_opens_the_page_the_static_files_and_the_websocket(self, served: Served) -> None:
        cookie = login(served)
        page = request(served.port, "/", cookie=cookie)
        assert page.status == 200 and b"textual-terminal" in page.body
        assert served.token.encode() not in page.body  # the page does not pass the token on
        assert request(served.port, "/static/js/textual.js", cookie=cookie).status == 200
        assert request(served.port, "/download/nothing", cookie=cookie).status == 404  # past the gate
        assert ws_status(served.port, cookie=cookie) == 101

    def test_a_script_may_open_the_websocket_with_the_token_in_the_query(self, served: Served) -> None:
        assert ws_status(served.port, f"/ws?width=80&height=24&token={served.token}") == 101

    def test_no_process_it_starts_sees_the_token_and_the_log_does_not_hold_it(self, served: Served) -> None:
        status, sock = ws_handshake(served.port, cookie=login(served))  # a connection: an attach process
        try:
            assert status == 101
            wait_for_attach(served)
            for pid in [served.proc.pid, *descendants(served.proc.pid)]:
                assert served.token not in proc_text(pid, "cmdline"), proc_text(pid, "cmdline")
            for pid in descendants(served.proc.pid):
                environ = proc_text(pid, "environ")
                assert served.token not in environ and TOKEN_ENV not in environ
        finally:
            sock.close()
        # aiohttp logged each request line (the token's among them): redacted; the printed URL is the one place
        text = served.text()
        without_url = text.replace(served.url, "")
        assert text.count(served.url) == 1
        assert served.token not in re.sub(r"\s", "", without_url)  # rich wraps long log lines
        assert "token=[redacted]" in re.sub(r"\s", "", without_url)


@pytest.mark.e2e
class TestGivenTokens:
    def test_the_variable_is_used_and_not_passed_on(self, tmp_path: Path) -> None:
        token = new_token()
        served = start_serving(tmp_path, env={TOKEN_ENV: token})
        try:
            assert served.token == token
            assert request(served.port, f"/?token={token}").status in (302, 303)
            assert request(served.port, "/").status == 401
            status, sock = ws_handshake(served.port, cookie=login(served))
            try:
                assert status == 101
                wait_for_attach(served)
                for pid in descendants(served.proc.pid):
                    assert TOKEN_ENV not in proc_text(pid, "environ") and token not in proc_text(pid, "cmdline")
            finally:
                sock.close()
        finally:
            stop_serving(served)

    def test_the_token_file_is_used_and_public_url_keeps_the_token(self, tmp_path: Path) -> None:
        token = new_token()
        token_file = a_token_file(tmp_path / "token", token + "\n")
        served = start_serving(tmp_path, "--token-file", str(token_file), "--public-url", "http://localhost:8999",
                               env={TOKEN_ENV: new_token()})  # the file wins over the variable
        try:
            assert served.url == f"http://localhost:8999/?token={token}"
            assert request(served.port, f"/?token={token}").status in (302, 303)
            assert request(served.port, "/").status == 401
        finally:
            stop_serving(served)

    def test_no_token_on_the_loopback_interface_warns_once(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        served = start_serving(tmp_path, "--no-token", env=env)
        try:
            assert served.url == f"http://127.0.0.1:{served.port}/" and served.token is None
            assert request(served.port, "/").status == 200
            warnings = [ln for ln in served.text().splitlines() if "--no-token" in ln]
            assert len(warnings) == 1 and "warning" in warnings[0] and "steer the run" in warnings[0]
        finally:
            stop_serving(served)



@pytest.mark.e2e
def test_a_navigation_from_another_site_without_a_cookie_gets_one_reload_then_401(served: Served) -> None:
    """SameSite=Strict: the page a cross-site navigation gets reloads itself once, a same-origin request."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    try:
        conn.request("GET", "/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 401 and 'http-equiv="refresh"' in body and "Set-Cookie" not in response.headers
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    try:  # the reload itself: same-origin, the plain 401
        conn.request("GET", "/", headers={"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"})
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 401 and "refresh" not in body


def _requests_seen(served: Served) -> int:
    return re.sub(r"\s+", " ", served.text()).count('"GET / HTTP/1.1" 401')


@pytest.mark.e2e
@pytest.mark.browser
def test_a_link_to_the_printed_url_on_another_site_opens_the_dashboard(served: Served) -> None:
    """Clicked in a web page (a chat, a mail): the redirected request lacks the Strict cookie; one reload sends it."""
    import asyncio

    from headless_chromium import Browser, require_chromium

    require_chromium()

    async def follow(link: str) -> tuple[str, str]:
        async with Browser(size=(1280, 800)) as browser:
            await browser.navigate(f"data:text/html,<a id='go' href='{link}'>the dashboard</a>")
            deadline = time.monotonic() + 60
            while not await browser.evaluate("!!document.getElementById('go')"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            await browser.evaluate("document.getElementById('go').click()")
            if "token=" in link:
                screen = await browser.wait_for_text("Leaderboard", "GPU memory", timeout=120)
                return await browser.evaluate("location.href"), screen
            plain_401 = ("!document.querySelector('meta[http-equiv=refresh]') && !!document.body"
                         " && document.body.innerText.includes('401')")  # the reload's answer, text/plain
            deadline = time.monotonic() + 60
            while not await browser.evaluate(plain_401):
                assert time.monotonic() < deadline, "no plain 401 after the reload"
                await asyncio.sleep(0.2)
            before = _requests_seen(served)
            await asyncio.sleep(3)
            assert _requests_seen(served) == before, "the 401 page reloads itself again and again"
            return await browser.evaluate("location.href"), ""

    href, screen = asyncio.run(follow(served.url))
    assert href == f"http://127.0.0.1:{served.port}/" and "Leaderboard" in screen
    href, _ = asyncio.run(follow(served.url.split("?")[0]))  # a new browser: no cookie, no token
    assert href == f"http://127.0.0.1:{served.port}/"
