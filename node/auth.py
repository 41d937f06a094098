"""Staff login, roles and CSRF protection.

Sessions are encrypted cookies (aiohttp-session).  Every unsafe request made with a staff
session must carry the session's CSRF token, as the ``X-CSRF-Token`` header (pages' scripts
and API clients) or the ``csrf_token`` form field (plain forms).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from node import users
from node.keys import CONFIG, DB
from onestop.errors import Forbidden, Unauthorized

SAFE = ("GET", "HEAD", "OPTIONS")


async def login(request: web.Request, username: str, password: str) -> tuple[dict[str, Any], str]:
    user = users.authenticate(request.app[DB], username, password)
    if user is None:
        raise Unauthorized("wrong username or password", field="password")
    session = await new_session(request)
    session["user"] = user["username"]
    session["csrf"] = secrets.token_urlsafe(24)
    session.max_age = request.app[CONFIG].session_max_age
    return user, session["csrf"]


async def logout(request: web.Request) -> None:
    session = await get_session(request)
    session.invalidate()


async def current_user(request: web.Request) -> dict[str, Any] | None:
    session = await get_session(request)
    name = session.get("user")
    if not name:
        return None
    user = users.get(request.app[DB], name)
    if user is None or user["disabled"]:
        return None
    return user


async def csrf_token(request: web.Request) -> str:
    session = await get_session(request)
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return str(token)


async def _check_csrf(request: web.Request, session: Session) -> None:
    if request.method in SAFE:
        return
    sent = request.headers.get("X-CSRF-Token", "")
    if not sent and request.content_type in (
        "application/x-www-form-urlencoded", "multipart/form-data"
    ):
        sent = str((await request.post()).get("csrf_token", ""))
    want = str(session.get("csrf", ""))
    if not want or not hmac.compare_digest(sent, want):
        raise Forbidden(
            "missing or wrong CSRF token: send the token from login as the X-CSRF-Token header",
            field="csrf_token")


async def require(request: web.Request, *roles: str) -> dict[str, Any]:
    """The logged-in user, if they hold one of ``roles`` (any role when none given)."""
    user = await current_user(request)
    if user is None:
        if request.path.startswith("/api/"):
            raise Unauthorized("login required: POST /api/v1/login", field="session")
        raise web.HTTPFound(f"/login?next={request.path_qs}")
    if roles and user["role"] not in roles:
        raise Forbidden(f"role {user['role']} may not do this (needs {' or '.join(roles)})")
    await _check_csrf(request, await get_session(request))
    return user
