"""Staff sessions and CSRF tokens, shared by the node and the hub.

Sessions are encrypted cookies (aiohttp-session).  Every unsafe request made with a session
must carry the session's CSRF token, as the ``X-CSRF-Token`` header (page scripts and API
clients) or the ``csrf_token`` form field (plain forms).
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import sqlite_utils
from aiohttp import web
from aiohttp_session import get_session, new_session

from onestop import requests
from onestop.errors import Forbidden, Unauthorized
from onestop.models import LoginRequest
from onestop.openapi import describe
from onestop.passwords import verify_off_loop

SAFE = ("GET", "HEAD", "OPTIONS")


async def start(request: web.Request, username: str, max_age: int) -> str:
    """A fresh session for ``username``; returns its CSRF token."""
    session = await new_session(request)
    session["user"] = username
    session["csrf"] = secrets.token_urlsafe(24)
    session.max_age = max_age
    return str(session["csrf"])


async def end(request: web.Request) -> None:
    (await get_session(request)).invalidate()


async def username(request: web.Request) -> str | None:
    name = (await get_session(request)).get("user")
    return str(name) if name else None


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return str(token)


async def check_csrf(request: web.Request) -> None:
    if request.method in SAFE:
        return
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded", "multipart/form-data"
    ):  # fmt: skip
        sent = str((await request.post()).get("csrf_token", ""))
    want = str((await get_session(request)).get("csrf", ""))
    if not want or not hmac.compare_digest(sent, want):
        raise Forbidden(
            "missing or wrong CSRF token: send the token from login as the X-CSRF-Token header",
            field="csrf_token",
        )


def safe_next(value: str | None) -> str | None:
    """Only same-site paths: ``/window/1`` yes, ``//evil``, ``http://…`` no.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash (WHATWG URL),
    so ``/%09/evil.example/`` (a tab once the form is decoded) would become
    ``//evil.example/``: any control character, space or backslash is refused, and what is
    left must parse with no scheme and no host.  Node and hub logins both use it.
    """
    if not value or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


@dataclasses.dataclass(frozen=True)
class FormLogin:
    """What a posted login form gave: the user once logged in, else why not."""

    username: str
    next: str | None
    user: dict[str, Any] | None = None
    reason: str = ""
    status: int = 200


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _handler(method: Handler) -> Handler:
    """A plain function calling ``method`` (a handler the OpenAPI description can mark)."""

    async def handle(request: web.Request) -> web.Response:
        return await method(request)

    return handle


class Staff:
    """Staff accounts of one service (node or hub): login, logout, the current user, roles,
    and the ``/api/v1/login|logout|me`` handlers, over that service's ``users`` table.

    ``db(app)`` gives the service's database, ``lookup(db, name)`` a user (or None) and
    ``max_age(app)`` the session lifetime in seconds.
    """

    def __init__(
        self,
        db: Callable[[web.Application], sqlite_utils.Database],
        lookup: Callable[[sqlite_utils.Database, str], dict[str, Any] | None],
        max_age: Callable[[web.Application], int],
    ) -> None:
        self._db, self._lookup, self._max_age = db, lookup, max_age
        # The JSON API handlers, described for the OpenAPI document (onestop.openapi).
        self.api_login = describe(
            _handler(self._api_login), "Log in; sets the session cookie and returns the CSRF token",
            tag="staff", public=True, body=LoginRequest, errors=(401, 422))  # fmt: skip
        self.api_logout = describe(_handler(self._api_logout), "Log out", tag="staff")
        self.api_me = describe(_handler(self._api_me), "The logged-in user and CSRF token",
                               tag="staff")  # fmt: skip

    async def login(self, request: web.Request, name: str,
                    password: str) -> tuple[dict[str, Any], str]:  # fmt: skip
        """Check a password against the ``users`` table (scrypt off the event loop) and start
        a session; returns the user and the session's CSRF token."""
        db = self._db(request.app)
        row = db.execute(
            "SELECT password_hash FROM users WHERE username = ? AND disabled = 0", [name]
        ).fetchone()
        user = self._lookup(db, name)
        if not await verify_off_loop(password, row[0] if row else None) or not user:
            raise Unauthorized("wrong username or password", field="password")
        return user, await start(request, user["username"], self._max_age(request.app))

    async def logout(self, request: web.Request) -> None:
        await end(request)

    async def current_user(self, request: web.Request) -> dict[str, Any] | None:
        name = await username(request)
        user = self._lookup(self._db(request.app), name) if name else None
        return None if user is None or user.get("disabled") else user

    async def require(self, request: web.Request, *roles: str) -> dict[str, Any]:
        """The logged-in, enabled user holding one of ``roles`` (any when none given); checks
        CSRF.  API paths answer 401/403 in the one error shape; pages redirect to ``/login``."""
        user = await self.current_user(request)
        if user is None:
            if request.path.startswith("/api/"):
                raise Unauthorized("login required: POST /api/v1/login", field="session")
            raise web.HTTPFound(f"/login?next={request.path_qs}")
        if roles and user["role"] not in roles:
            raise Forbidden(f"role {user['role']} may not do this (needs {' or '.join(roles)})")
        await check_csrf(request)
        return user

    csrf_token = staticmethod(csrf_token)

    # -- the JSON API ------------------------------------------------------------------------

    async def _api_login(self, request: web.Request) -> web.Response:
        data = await requests.body(request, LoginRequest)
        user, csrf = await self.login(request, data.username, data.password)
        return web.json_response({"user": user, "csrf_token": csrf})

    async def _api_logout(self, request: web.Request) -> web.Response:
        await self.require(request)
        await self.logout(request)
        return web.json_response({"ok": True})

    async def _api_me(self, request: web.Request) -> web.Response:
        user = await self.require(request)
        return web.json_response({"user": user, "csrf_token": await csrf_token(request)})

    # -- the login form ----------------------------------------------------------------------

    async def form_login(self, request: web.Request) -> FormLogin:
        """Check the posted login form and log in; on failure ``reason`` is ``csrf``,
        ``required`` or ``wrong`` for the page to show (``ui.login.<reason>``)."""
        form = await request.post()
        session = await get_session(request)
        sent, want = str(form.get("csrf_token", "")), str(session.get("csrf", ""))
        username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        out = FormLogin(username=username, next=safe_next(str(form.get("next", ""))))
        if not sent or not want or not hmac.compare_digest(sent, want):
            return dataclasses.replace(out, reason="csrf", status=403)
        if not username or not password:
            return dataclasses.replace(out, reason="required", status=422)
        try:
            user, _csrf = await self.login(request, username, password)
        except Unauthorized:
            return dataclasses.replace(out, reason="wrong", status=401)
        return dataclasses.replace(out, user=user)
