"""Staff sessions and CSRF tokens, shared by the node and the hub.

Sessions are encrypted cookies (aiohttp-session).  Every unsafe request made with a session
must carry the session's CSRF token, as the ``X-CSRF-Token`` header (page scripts and API
clients) or the ``csrf_token`` form field (plain forms).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

import sqlite_utils
from aiohttp import web
from aiohttp_session import get_session, new_session

from onestop.errors import Forbidden, Unauthorized
from onestop.passwords import verify_off_loop

UserLookup = Callable[[str], dict[str, Any] | None]

SAFE = ("GET", "HEAD", "OPTIONS")


async def login(
    request: web.Request, db: sqlite_utils.Database, lookup: UserLookup, name: str,
    password: str, max_age: int,
) -> tuple[dict[str, Any], str]:
    """Check a password against the ``users`` table (scrypt off the event loop) and start a
    session; returns the user and the session's CSRF token."""
    row = db.execute(
        "SELECT password_hash FROM users WHERE username = ? AND disabled = 0", [name]
    ).fetchone()
    user = lookup(name)
    if not await verify_off_loop(password, row[0] if row else None) or not user:
        raise Unauthorized("wrong username or password", field="password")
    return user, await start(request, user["username"], max_age)


async def current_user(request: web.Request, lookup: UserLookup) -> dict[str, Any] | None:
    name = await username(request)
    user = lookup(name) if name else None
    return None if user is None or user.get("disabled") else user


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


async def require(
    request: web.Request,
    lookup: UserLookup,
    roles: tuple[str, ...],
) -> dict[str, Any]:
    """The logged-in, enabled user holding one of ``roles`` (any when empty); checks CSRF.

    API paths answer 401/403 in the one error shape; pages redirect to ``/login``.
    """
    user = await current_user(request, lookup)
    if user is None:
        if request.path.startswith("/api/"):
            raise Unauthorized("login required: POST /api/v1/login", field="session")
        raise web.HTTPFound(f"/login?next={request.path_qs}")
    if roles and user["role"] not in roles:
        raise Forbidden(f"role {user['role']} may not do this (needs {' or '.join(roles)})")
    await check_csrf(request)
    return user
