"""Staff of the node (admin, window, reviewer): login, roles and CSRF (:class:`onestop.sessions.Staff`
over the node's ``users`` table); sessions live in ``DATA/sessions.db``, outside the projected
``node.db`` (:mod:`onestop.session_store`)."""

from __future__ import annotations

from node import users
from node.config import NodeConfig
from node.keys import CONFIG, DB
from onestop import session_store
from onestop.sessions import Staff

STAFF = Staff(db=lambda app: app[DB], lookup=users.get,
              max_age=lambda app: app[CONFIG].session_max_age)  # fmt: skip

login = STAFF.login
logout = STAFF.logout
current_user = STAFF.current_user
require = STAFF.require
csrf_token = STAFF.csrf_token


def revoke_user(config: NodeConfig, username: str) -> int:
    """End every session of ``username`` (a changed password, a disabled account), from any
    process; returns how many there were."""
    return session_store.revoke_user(config.data_dir, username)
