"""Staff of the node (admin, window, reviewer): login, roles and CSRF (:class:`onestop.sessions.Staff`
over the node's ``users`` table)."""

from __future__ import annotations

from node import users
from node.keys import CONFIG, DB
from onestop.sessions import Staff

STAFF = Staff(db=lambda app: app[DB], lookup=users.get,
              max_age=lambda app: app[CONFIG].session_max_age)  # fmt: skip

login = STAFF.login
logout = STAFF.logout
current_user = STAFF.current_user
require = STAFF.require
csrf_token = STAFF.csrf_token
