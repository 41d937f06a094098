"""Staff sessions and CSRF tokens, shared by the node and the hub.

Sessions are kept server-side (:mod:`onestop.session_store`): the cookie carries only a random
id, and logging out, :meth:`Staff.revoke_user` (or :func:`onestop.session_store.revoke_user`
from another process), a changed password or a disabled account end a session at once.
Logins are throttled per account and client address (:mod:`onestop.throttle`); the JSON
login takes only ``Content-Type: application/json`` (415 otherwise), so a cross-site form
cannot log a browser in.  Every unsafe request made with a session must carry the session's
CSRF token, as the ``X-CSRF-Token`` header (page scripts and API clients) or the
``csrf_token`` form field (plain forms).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlite_utils
from aiohttp import web
from aiohttp_session import get_session, new_session
from aiohttp_session import setup as setup_session

from onestop import requests
from onestop.errors import ApiError, Forbidden, Unauthorized, error_response
from onestop.models import LoginRequest
from onestop.openapi import ERROR_REF, describe
from onestop.passwords import verify_off_loop
from onestop.session_store import ServerStorage, SessionStore, path_in
from onestop.throttle import LoginThrottle, TooManyAttempts

SAFE = ("GET", "HEAD", "OPTIONS")

STORE = web.AppKey("session_store", SessionStore)
THROTTLE = web.AppKey("login_throttle", LoginThrottle)


def setup(app: web.Application, data_dir: Path, *, cookie_name: str, max_age: int) -> None:
    """Server-side sessions (``sessions.db`` in ``data_dir``) and the login throttle for
    ``app``; ``app[THROTTLE]`` may be replaced (a test's clock) before the app starts."""
    store = SessionStore(path_in(data_dir))
    app[STORE] = store
    app[THROTTLE] = LoginThrottle()
    setup_session(app, ServerStorage(store, cookie_name=cookie_name, max_age=max_age))

    async def close(app: web.Application) -> AsyncIterator[None]:
        yield
        store.close()

    app.cleanup_ctx.append(close)


def fingerprint(password_hash: str | None) -> str:
    """A short digest of the stored password hash: a session records the one it began with,
    and ends once the password changes."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


async def start(request: web.Request, username: str, max_age: int, password_hash: str = "") -> str:
    """A fresh session for ``username`` (a new id: the visitor's old session is dropped);
    returns its CSRF token."""
    session = await new_session(request)
    session["user"] = username
    session["csrf"] = secrets.token_urlsafe(24)
    session["pw"] = fingerprint(password_hash)
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
    """What a posted login form gave: the user once logged in, else why not (and, when
    locked out, the seconds to wait and the message saying so)."""

    username: str
    next: str | None
    user: dict[str, Any] | None = None
    reason: str = ""
    status: int = 200
    retry_after: int = 0
    locked: ApiError | None = None


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _handler(method: Handler) -> Handler:
    """A plain function calling ``method`` (a handler the OpenAPI description can mark)."""

    async def handle(request: web.Request) -> web.Response:
        return await method(request)

    return handle


_LOGIN_ERRORS = {
    "415": {"description": "The body is not `Content-Type: application/json`",
            "content": {"application/json": {"schema": ERROR_REF}}},
    "429": {"description": "Too many wrong passwords for this account or address: wait the "
                           "`Retry-After` seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"},
                                        "description": "Seconds until a login is tried again"}},
            "content": {"application/json": {"schema": ERROR_REF}}},
}  # fmt: skip


def locked_response(exc: TooManyAttempts, request: web.Request) -> web.Response:
    """The one error shape of a 429, with its ``Retry-After``."""
    response = error_response(exc, request)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


class Staff:
    """Staff accounts of one service (node or hub): login, logout, the current user, roles,
    and the ``/api/v1/login|logout|me`` handlers, over that service's ``users`` table.

    ``db(app)`` gives the service's database, ``lookup(db, name)`` a user (or None) and
    ``max_age(app)`` the session lifetime in seconds; the app has :func:`setup` sessions.
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
            tag="staff", public=True, body=LoginRequest, errors=(401, 422),
            responses=_LOGIN_ERRORS)  # fmt: skip
        self.api_logout = describe(_handler(self._api_logout), "Log out", tag="staff")
        self.api_me = describe(_handler(self._api_me), "The logged-in user and CSRF token",
                               tag="staff")  # fmt: skip

    def _account(self, app: web.Application, name: str) -> tuple[str, bool] | None:
        """The stored password hash of ``name`` and whether the account is disabled."""
        row = (
            self._db(app)
            .execute("SELECT password_hash, disabled FROM users WHERE username = ?", [name])
            .fetchone()
        )
        return (str(row[0] or ""), bool(row[1])) if row else None

    async def login(self, request: web.Request, name: str,
                    password: str) -> tuple[dict[str, Any], str]:  # fmt: skip
        """Check a password against the ``users`` table (scrypt off the event loop) and start
        a session; returns the user and the session's CSRF token.  Raises
        :class:`~onestop.throttle.TooManyAttempts` while this account or address is locked."""
        throttle, client = request.app[THROTTLE], request.remote or ""
        with throttle.attempt(name, client):
            account = self._account(request.app, name)
            stored = account[0] if account and not account[1] else None
            user = self._lookup(self._db(request.app), name)
            if not await verify_off_loop(password, stored) or not user:
                throttle.failed(name, client)
                raise Unauthorized("wrong username or password", field="password")
            throttle.succeeded(name, client)
        csrf = await start(request, user["username"], self._max_age(request.app), stored or "")
        return user, csrf

    async def logout(self, request: web.Request) -> None:
        await end(request)

    @staticmethod
    def revoke_user(app: web.Application, name: str) -> int:
        """End every session of ``name`` (password changed, account disabled); returns how
        many there were."""
        return app[STORE].revoke_user(name)

    async def current_user(self, request: web.Request) -> dict[str, Any] | None:
        """The session's user while the account exists, is enabled and keeps the password
        the session began with; otherwise the session is ended."""
        session = await get_session(request)
        name = session.get("user")
        if not name:
            return None
        account = self._account(request.app, str(name))
        user = self._lookup(self._db(request.app), str(name)) if account else None
        began_with = str(session.get("pw", ""))
        if (
            user is None
            or account is None
            or account[1]
            or not hmac.compare_digest(began_with, fingerprint(account[0]))
        ):
            # Deleted now: the 401 that follows is raised past the session middleware.
            if session.identity:
                request.app[STORE].delete(str(session.identity))
            session.invalidate()
            return None
        return user

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
        if request.content_type != "application/json":
            # A cross-site form can post text/plain or urlencoded bodies, never JSON.
            raise ApiError(
                "login takes a JSON body: send Content-Type: application/json",
                field="Content-Type", status=415, code="unsupported_media_type",
            )  # fmt: skip
        data = await requests.body(request, LoginRequest)
        try:
            user, csrf = await self.login(request, data.username, data.password)
        except TooManyAttempts as exc:
            return locked_response(exc, request)
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
        ``required``, ``wrong`` or ``locked`` for the page to show (``locked`` with
        ``retry_after`` and its message in ``locked``)."""
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
        except TooManyAttempts as exc:
            return dataclasses.replace(out, reason="locked", status=429,
                                       retry_after=exc.retry_after, locked=exc)  # fmt: skip
        except Unauthorized:
            return dataclasses.replace(out, reason="wrong", status=401)
        return dataclasses.replace(out, user=user)
