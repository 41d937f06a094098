"""Staff login, roles and CSRF protection.

Sessions are encrypted cookies (aiohttp-session).  Every unsafe request made with a staff
session must carry the session's CSRF token, as the ``X-CSRF-Token`` header (pages' scripts
and API clients) or the ``csrf_token`` form field (plain forms).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import users
from node.keys import CONFIG, DB
from onestop import sessions


async def login(request: web.Request, username: str, password: str) -> tuple[dict[str, Any], str]:
    db = request.app[DB]
    return await sessions.login(request, db, lambda name: users.get(db, name), username,
                                password, request.app[CONFIG].session_max_age)


async def logout(request: web.Request) -> None:
    await sessions.end(request)


async def current_user(request: web.Request) -> dict[str, Any] | None:
    db = request.app[DB]
    return await sessions.current_user(request, lambda name: users.get(db, name))


csrf_token = sessions.csrf_token


async def require(request: web.Request, *roles: str) -> dict[str, Any]:
    """The logged-in user, if they hold one of ``roles`` (any role when none given)."""
    db = request.app[DB]
    return await sessions.require(request, lambda name: users.get(db, name), roles)
