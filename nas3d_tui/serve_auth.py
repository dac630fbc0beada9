"""The token in front of ``nas3d-tui serve``: an aiohttp middleware on textual-serve's app.

``GuardedServer`` is textual-serve's ``Server`` with one middleware added to
the application it builds, so every route it has now or adds later (the
page, ``/static``, the ``/ws`` websocket, ``/download``, a 404) answers 401
unless the request shows the token:

- ``?token=TOKEN`` (the URL ``nas3d-tui serve`` prints): the answer is a 303
  to the same URL without the token, setting a cookie (HttpOnly,
  SameSite=Strict, Path=/, named after the port so that two served runs on
  one host keep theirs apart); a websocket upgrade cannot follow a redirect,
  so a script's ``/ws?token=`` is let through as it is;
- the cookie: its value is an HMAC of the token, never the token itself.

A link to the printed URL clicked in another site's page (a chat, a mail)
gets the cookie but, SameSite=Strict, not on the redirected request: that
401 is a page that reloads itself once, which sends the cookie.

Tokens are compared with ``hmac.compare_digest``. The token is kept out of
the log: aiohttp's access log writes each request line, query string
included, so every record is redacted before it is written, and tracebacks
are written without their local variables.

Imports aiohttp and textual-serve (``nas3d_tui.serve`` imports this module
only when serving).
"""
from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
from typing import Any, Awaitable, Callable

from aiohttp import web
from textual_serve.server import Server

__all__ = ["GuardedServer", "TokenGate", "RedactToken", "cookie_name", "UNAUTHORIZED"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

UNAUTHORIZED = (
    "401: this dashboard needs its token: open the URL that `nas3d-tui serve` printed "
    "(http://HOST:PORT/?token=...)\n"
)
_COOKIE_MESSAGE = b"nas3d-tui serve: the cookie of a browser that showed the token"


def cookie_name(port: int) -> str:
    """The cookie's name: cookies are not kept apart by port, so the port is in the name."""
    return f"nas3d_tui_{port}"


class TokenGate:
    """Checks a request's token or cookie; ``middleware`` is what the aiohttp app runs.

    Args:
        token: the secret.
        port: the port served (names the cookie).
        secure: mark the cookie Secure (the public URL is https).
    """

    def __init__(self, token: str, port: int, secure: bool = False) -> None:
        self._token = token.encode("utf-8")
        self._cookie_value = hmac.new(self._token, _COOKIE_MESSAGE, hashlib.sha256).hexdigest()
        self.cookie_name = cookie_name(port)
        self.secure = secure

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._token)

    def cookie_ok(self, request: web.Request) -> bool:
        given = request.cookies.get(self.cookie_name)
        return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                                         self._cookie_value.encode("ascii"))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if "token" in request.query:
            if not all(self.token_ok(given) for given in request.query.getall("token")):
                return _unauthorized()
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await handler(request)  # a websocket cannot follow a redirect
            rest = [(key, value) for key, value in request.rel_url.query.items() if key != "token"]
            location = str(request.rel_url.with_query(rest))
            response = web.Response(status=303, headers={
                "Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            })
            response.set_cookie(self.cookie_name, self._cookie_value, path="/", httponly=True, samesite="Strict",
                                secure=self.secure or None)
            return response
        if self.cookie_ok(request):
            return await handler(request)
        if request.headers.get("Sec-Fetch-Site") == "cross-site" and request.headers.get("Sec-Fetch-Mode") == "navigate":
            return _reload_once()
        return _unauthorized()


def _unauthorized() -> web.Response:
    return web.Response(status=401, text=UNAUTHORIZED, headers={"Cache-Control": "no-store"})


def _reload_once() -> web.Response:
    """The 401 of a navigation that another site started (a link to the printed URL in a web page).

    The browser kept the cookie from the redirect but, SameSite=Strict, did
    not send it on the redirected request: one reload, which this page starts
    (a same-origin navigation), sends it. Without a cookie the reload gets
    the plain 401, so this never loops.
    """
    body = (f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0">'
            f"<title>nas3d-tui</title><pre>{html.escape(UNAUTHORIZED)}</pre>")
    return web.Response(status=401, text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


class RedactToken(logging.Filter):
    """Rewrites a record whose message holds the token, or any ``token=`` query value, before a handler writes it."""

    _QUERY = re.compile(r"(?i)([?&;]token=)[^&;\s\"']*")

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is written as logging writes it
            return True
        redacted = self._QUERY.sub(r"\1[redacted]", message).replace(self._token, "[redacted]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class GuardedServer(Server):
    """textual-serve's ``Server``, every route behind ``token`` (None: no token, as textual-serve serves)."""

    def __init__(self, command: str, *, token: str | None, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.token = token
        self.gate = None if token is None else TokenGate(token, self.port, secure=self.public_url.startswith("https:"))

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        if self.gate is not None:
            app.middlewares.append(self.gate.middleware)
        return app

    def initialize_logging(self) -> None:
        super().initialize_logging()
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "tracebacks_show_locals"):
                handler.tracebacks_show_locals = False  # a frame's locals may hold the token or a request
            if self.token is not None:
                handler.addFilter(RedactToken(self.token))
