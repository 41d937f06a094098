"""Staff login, roles and CSRF protection.

Sessions are encrypted cookies (aiohttp-session).  Every unsafe request made with a staff
session must carry the session's CSRF token, as the ``X-CSRF-Token`` header (pages' scripts
and API clients) or the ``csrf_token`` form field (plain forms).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import db as dbm
from node import users
from node.keys import CONFIG, DB
from onestop import sessions
from onestop.errors import Unauthorized
from onestop.passwords import verify_off_loop


async def login(request: web.Request, username: str, password: str) -> tuple[dict[str, Any], str]:
    db = request.app[DB]
    row = dbm.one(db, "SELECT password_hash FROM users WHERE username = ? AND disabled = 0",
                  [username])
    user = users.get(db, username)
    if not await verify_off_loop(password, row["password_hash"] if row else None) or not user:
        raise Unauthorized("wrong username or password", field="password")
    csrf = await sessions.start(request, user["username"], request.app[CONFIG].session_max_age)
    return user, csrf


async def logout(request: web.Request) -> None:
    await sessions.end(request)


async def current_user(request: web.Request) -> dict[str, Any] | None:
    name = await sessions.username(request)
    user = users.get(request.app[DB], name) if name else None
    return None if user is None or user["disabled"] else user


csrf_token = sessions.csrf_token


async def require(request: web.Request, *roles: str) -> dict[str, Any]:
    """The logged-in user, if they hold one of ``roles`` (any role when none given)."""
    db = request.app[DB]
    return await sessions.require(request, lambda name: users.get(db, name), roles)
