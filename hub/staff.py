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
import secrets
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from hub import tree as treem
from hub import users
from hub.keys import CONFIG, DB
from onestop.errors import Forbidden, Unauthorized

SAFE = ("GET", "HEAD", "OPTIONS")
COOKIE = "onestop_hub_session"


def session_key(link_key: bytes) -> bytes:
    return hmac.new(link_key, b"onestop-hub-session-v1", hashlib.sha256).digest()


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
    (await get_session(request)).invalidate()


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
    ):  # fmt: skip
        sent = str((await request.post()).get("csrf_token", ""))
    want = str(session.get("csrf", ""))
    if not want or not hmac.compare_digest(sent, want):
        raise Forbidden(
            "missing or wrong CSRF token: send the token from login as the X-CSRF-Token header",
            field="csrf_token",
        )


async def require(request: web.Request, *roles: str, code: str | None = None) -> dict[str, Any]:
    """The logged-in user, if they hold one of ``roles`` (any when none given) and, when
    ``code`` is given, that division is in their scope."""
    user = await current_user(request)
    if user is None:
        if request.path.startswith("/api/"):
            raise Unauthorized("login required: POST /api/v1/login", field="session")
        raise web.HTTPFound(f"/login?next={request.path_qs}")
    if roles and user["role"] not in roles:
        raise Forbidden(f"role {user['role']} may not do this (needs {' or '.join(roles)})")
    if code is not None:
        check_scope(user, code)
    await _check_csrf(request, await get_session(request))
    return user


def check_scope(user: dict[str, Any], code: str) -> None:
    if not treem.get().in_scope(user["scope"], code):
        raise Forbidden(
            f"division {code} is outside your scope ({user['scope']})", field="code",
            code="out_of_scope",
        )  # fmt: skip
