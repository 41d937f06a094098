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
from onestop.errors import Forbidden
from onestop.sessions import Staff

COOKIE = "onestop_hub_session"


def session_key(link_key: bytes) -> bytes:
    return hmac.new(link_key, b"onestop-hub-session-v1", hashlib.sha256).digest()


STAFF = Staff(db=lambda app: app[DB], lookup=users.get,
              max_age=lambda app: app[CONFIG].session_max_age)  # fmt: skip

login = STAFF.login
logout = STAFF.logout
current_user = STAFF.current_user
csrf_token = STAFF.csrf_token


async def require(request: web.Request, *roles: str, code: str | None = None) -> dict[str, Any]:
    """The logged-in user, if they hold one of ``roles`` (any when none given) and, when
    ``code`` is given, that division is in their scope."""
    user = await STAFF.require(request, *roles)
    if code is not None:
        check_scope(user, code)
    return user


def check_scope(user: dict[str, Any], code: str) -> None:
    if not treem.get().in_scope(user["scope"], code):
        raise Forbidden(
            f"division {code} is outside your scope ({user['scope']})", field="code",
            code="out_of_scope",
        )  # fmt: skip
