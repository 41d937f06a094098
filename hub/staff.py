"""Hub staff sessions, CSRF and scope (the same scheme as the node's :mod:`node.auth`).

Sessions are kept server-side in ``DATA/sessions.db`` (:mod:`onestop.session_store`: the
cookie carries only a random id; logout and :func:`revoke_user` end them).  Every unsafe
request made with a session must carry its CSRF token (``X-CSRF-Token`` header or the
``csrf_token`` form field).  Every division a request names must lie in the user's scope:
API answers 401 (no login) or 403 (other scope) in the one error shape; pages redirect to
the login page or answer 403.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import tree as treem
from hub import users
from hub.config import HubConfig
from hub.keys import CONFIG, DB
from onestop import session_store
from onestop.errors import Forbidden
from onestop.sessions import Staff

COOKIE = "onestop_hub_session"

STAFF = Staff(db=lambda app: app[DB], lookup=users.get,
              max_age=lambda app: app[CONFIG].session_max_age)  # fmt: skip

login = STAFF.login
logout = STAFF.logout
current_user = STAFF.current_user
csrf_token = STAFF.csrf_token


def revoke_user(config: HubConfig, username: str) -> int:
    """End every session of ``username`` (a changed password, a disabled account), from any
    process; returns how many there were."""
    return session_store.revoke_user(config.data_dir, username)


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
