"""Headless Chromium for the browser tests: screenshots, and a small DevTools-protocol driver.

``screenshot`` is Chromium's own ``--screenshot``. ``Browser`` starts Chromium
with ``--remote-debugging-port=0`` and talks to one page over the DevTools
websocket (aiohttp, which textual-serve already needs): navigate, run
JavaScript, press keys, capture the page. ``TERMINAL_PROBE`` is injected
before any page script runs; it keeps a reference to the page's xterm.js
terminal so a test can read the rows the browser actually shows.

Nothing here downloads anything; without /usr/bin/chromium the tests skip.
"""
from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# xterm.js is bundled privately by textual-serve; the object that owns it sets `this.terminal = new Terminal()`.
TERMINAL_PROBE = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && value.buffer && value.buffer.active) { window.__nasTerminal = value; }
  },
});
window.__nasScreen = () => {
  const t = window.__nasTerminal;
  if (!t) return null;
  const rows = [];
  for (let y = 0; y < t.rows; y++) {
    const line = t.buffer.active.getLine(t.buffer.active.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
};
"""


def _profile_dir() -> tempfile.TemporaryDirectory:
    # Chromium's helper processes can still write to the profile for a moment after it exits.
    return tempfile.TemporaryDirectory(prefix="nas3d-chromium-", ignore_cleanup_errors=True)


def require_chromium() -> str:
    """The Chromium binary, or skip the test with the reason."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    return CHROMIUM


def screenshot(url: str, png: Path, size: tuple[int, int] = (1280, 2000), timeout: float = 60) -> None:
    """Chromium's own full-window screenshot of ``url`` into ``png``."""
    with _profile_dir() as profile:
        cmd = [require_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
               f"--window-size={size[0]},{size[1]}", url]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert png.exists(), f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-1500:]}"


class Browser:
    """One headless Chromium page driven through the DevTools protocol (use ``async with``)."""

    def __init__(self, size: tuple[int, int] = (1280, 800)) -> None:
        self.size = size
        self._profile = _profile_dir()
        self._proc: subprocess.Popen | None = None
        self._session = None
        self._ws = None
        self._next_id = 0

    async def __aenter__(self) -> "Browser":
        try:
            await self._open()
        except BaseException:
            await self.__aexit__(None, None, None)  # no Chromium left behind
            raise
        return self

    async def _open(self) -> None:
        import aiohttp

        self._proc = subprocess.Popen(
            [require_chromium(), *FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-port=0",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):  # port, then browser path
            assert self._proc.poll() is None, f"chromium exited with {self._proc.returncode}"
            assert time.monotonic() < deadline, "chromium opened no DevTools port within 30s"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = []
        while not pages:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
            except OSError:
                pass
            assert pages or time.monotonic() < deadline, "chromium's DevTools listed no page within 30s"
            if not pages:
                await asyncio.sleep(0.1)
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=TERMINAL_PROBE)

    async def __aexit__(self, *exc) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._profile.cleanup()

    async def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events in between are dropped)."""
        self._next_id += 1
        ident = self._next_id
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self._ws.receive_json(), timeout=30)
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def navigate(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def terminal_text(self) -> str:
        """The rows the page's terminal shows now ('' before it exists)."""
        return await self.evaluate("window.__nasScreen && window.__nasScreen()") or ""

    async def wait_for_text(self, *needles: str, timeout: float = 60) -> str:
        """Poll the terminal until every needle is on screen; returns the screen."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = await self.terminal_text()
            if all(n in screen for n in needles):
                return screen
            await asyncio.sleep(0.25)
        missing = [n for n in needles if n not in screen]
        raise AssertionError(f"not on screen after {timeout:.0f}s: {missing}\n--- screen ---\n{screen}")

    async def press(self, key: str) -> None:
        """Type one printable key into the focused terminal."""
        await self.evaluate("window.__nasTerminal && window.__nasTerminal.focus()")
        code = f"Key{key.upper()}" if key.isalpha() else ""
        common = dict(key=key, code=code, windowsVirtualKeyCode=ord(key.upper()), nativeVirtualKeyCode=ord(key.upper()))
        await self.call("Input.dispatchKeyEvent", type="keyDown", text=key, unmodifiedText=key, **common)
        await self.call("Input.dispatchKeyEvent", type="keyUp", **common)

    async def capture(self, png: Path) -> None:
        """A screenshot of the page."""
        data = await self.call("Page.captureScreenshot", format="png")
        png.write_bytes(base64.b64decode(data["data"]))
