"""Who may use the console: an access token on every request, a CSRF token
on every mutation.

The token is random per console start (printed with the URL, as Jupyter
does) unless the operator gives one. A request shows it as ``?token=`` (the
console then sets an ``HttpOnly``, ``SameSite=Strict`` cookie and redirects
to the same URL without it), as that cookie, or as ``Authorization: Bearer``
(scripts). A mutation (any method but GET/HEAD) also needs the CSRF token,
derived from the access token, in ``X-CSRF-Token`` or a ``csrf`` form field,
and an ``Origin``, when the browser sends one, naming this console.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

COOKIE = "aura_console"
SAFE_METHODS = ("GET", "HEAD")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"aura-console-csrf", hashlib.sha256).hexdigest()[:40]


class TokenGate:
    """ASGI middleware: refuse what carries no valid token (401) and any
    mutation without the CSRF token (403), before the app sees it."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if len(token) < 16:
            raise ValueError("a console token must be at least 16 characters")
        self.app = app
        self.token = token
        self.csrf = csrf_token(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        api = scope["path"].startswith("/api/")
        if given is not None:
            if not self._valid(given):
                await _refuse(send, 401, "the access token in the URL is wrong", api)
                return
            if scope["method"] in SAFE_METHODS and not api:
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                await _redirect_with_cookie(
                    send, scope["path"] + (f"?{rest}" if rest else ""), given
                )
                return
        elif not self._valid(_cookie(headers.get("cookie", "")) or _bearer(headers)):
            await _refuse(
                send, 401, "this console needs its access token: open the URL it printed", api
            )
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin")
            host = headers.get("host", "")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                await _refuse(send, 403, f"cross-origin request from {origin!r} refused", api)
                return
            if not hmac.compare_digest(headers.get("x-csrf-token", ""), self.csrf):
                replayed = await self._form_csrf(scope, receive, send, api)
                if replayed is None:
                    return
                receive = replayed
        await self.app(scope, receive, send)

    def _valid(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(str(candidate), self.token)

    async def _form_csrf(
        self, scope: Scope, receive: Receive, send: Send, api: bool
    ) -> Receive | None:
        """Read a form body for its ``csrf`` field; hand the body on to the app."""
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
            if len(body) > 1 << 20:
                await _refuse(send, 413, "request body too large", api)
                return None
        fields = dict(parse_qsl(body.decode("utf-8", "replace")))
        if not hmac.compare_digest(fields.get("csrf", ""), self.csrf):
            await _refuse(send, 403, "a change needs the console's CSRF token", api)
            return None
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _bearer(headers: dict[str, str]) -> str | None:
    kind, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else None


async def _redirect_with_cookie(send: Send, location: str, token: str) -> None:
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _refuse(send: Send, status: int, message: str, api: bool) -> None:
    if api:
        body = msgspec.json.encode({"error": message, "status": status})
        kind = b"application/json"
    else:
        text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (
            "<!doctype html><meta charset=utf-8><title>aura console</title>"
            f"<h1>{status}</h1><p class=error>{text}</p>"
        ).encode()
        kind = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
