"""Hub accounts: ``admin`` (operators) and ``official`` (dashboards), each with a scope.

The scope is a division code: the user reads that division and everything under it (``37``
the whole province, ``3701`` Jinan and its counties and townships).  Both roles read the
dashboards of their scope; only ``admin`` reads the technical node detail and alert
messages (``GET /api/v1/nodes/{code}``, ``GET /api/v1/alerts``).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

import hub.tree as treem
from hub import db as hubdb
from onestop.clock import iso, system_now
from onestop.errors import Conflict, Invalid
from onestop.passwords import check_strength, hash_password

ROLES = ("admin", "official")
PUBLIC = "username, role, scope, disabled, created_at"


def add(db: sqlite_utils.Database, username: str, password: str, role: str,
        scope: str) -> dict[str, Any]:  # fmt: skip
    username = username.strip()
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise Invalid("username must be letters, digits, '.', '-' or '_'", field="username")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    tree = treem.get()
    if scope not in tree.divisions:
        raise Invalid(f"scope {scope!r} is not a division code (e.g. 37 or 3701)", field="scope")
    weak = check_strength(password)
    if weak:
        raise Invalid(weak, field="password")
    now = iso(system_now(), "seconds")
    with hubdb.tx(db):
        if hubdb.one(db, "SELECT 1 AS x FROM users WHERE username = ?", [username]):
            raise Conflict(f"user {username!r} already exists", field="username")
        db.execute(
            "INSERT INTO users (username, password_hash, role, scope, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [username, hash_password(password), role, scope, now],
        )
    return get(db, username) or {}


def get(db: sqlite_utils.Database, username: str) -> dict[str, Any] | None:
    return hubdb.one(db, f"SELECT {PUBLIC} FROM users WHERE username = ?", [username])


def all_users(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return hubdb.rows(db, f"SELECT {PUBLIC} FROM users ORDER BY username")
