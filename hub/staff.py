"""Hub staff sessions, CSRF and scope (the same scheme as the node's :mod:`node.auth`).

Sessions are encrypted cookies (aiohttp-session, key derived from the hub's link key).  Every
unsafe request made with a session must carry its CSRF token (``X-CSRF-Token`` header or the
``csrf_token`` form field).  Every division a request names must lie in the user's scope:
API answers 401 (no login) or 403 (other scope) in the one error shape; pages redirect to
the login page or answer 403.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from aiohttp import web

from hub import tree as treem
from hub import users
from hub.keys import CONFIG, DB
from onestop import sessions
from onestop.errors import Forbidden

COOKIE = "onestop_hub_session"


def session_key(link_key: bytes) -> bytes:
    return hmac.new(link_key, b"onestop-hub-session-v1", hashlib.sha256).digest()


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


async def require(request: web.Request, *roles: str, code: str | None = None) -> dict[str, Any]:
    """The logged-in user, if they hold one of ``roles`` (any when none given) and, when
    ``code`` is given, that division is in their scope."""
    db = request.app[DB]
    user = await sessions.require(request, lambda name: users.get(db, name), roles)
    if code is not None:
        check_scope(user, code)
    return user


def check_scope(user: dict[str, Any], code: str) -> None:
    if not treem.get().in_scope(user["scope"], code):
        raise Forbidden(
            f"division {code} is outside your scope ({user['scope']})", field="code",
            code="out_of_scope",
        )  # fmt: skip
