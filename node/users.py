"""Staff accounts: admin, window, reviewer."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from node import db as dbm
from onestop.clock import iso, system_now
from onestop.errors import Conflict, Invalid
from onestop.passwords import check_strength, hash_password

ROLES = ("admin", "window", "reviewer")


def add(
    db: sqlite_utils.Database,
    username: str,
    password: str,
    role: str,
    window_number: int | None = None,
    department: str | None = None,
) -> dict[str, Any]:
    username = username.strip()
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise Invalid("username must be letters, digits, '.', '-' or '_'", field="username")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    weak = check_strength(password)
    if weak:
        raise Invalid(weak, field="password")
    window_id = None
    if window_number is not None:
        w = dbm.one(db, "SELECT id FROM windows WHERE number = ?", [window_number])
        if w is None:
            raise Invalid(f"no window number {window_number}", field="window")
        window_id = w["id"]
    if (
        department is not None
        and dbm.one(db, "SELECT 1 AS x FROM departments WHERE code = ?", [department]) is None
    ):
        raise Invalid(f"no department with code {department!r}", field="department")
    with dbm.tx(db) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise Conflict(f"user {username!r} already exists", field="username")
        conn.execute(
            "INSERT INTO users (username, password_hash, role, window_id, department, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [username, hash_password(password), role, window_id, department, iso(system_now())],
        )
    return get(db, username) or {}


def get(db: sqlite_utils.Database, username: str) -> dict[str, Any] | None:
    u = dbm.one(
        db,
        "SELECT username, role, window_id, department, disabled FROM users WHERE username = ?",
        [username],
    )
    return u


def all_users(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return dbm.rows(
        db, "SELECT username, role, window_id, department, disabled FROM users ORDER BY username"
    )
