"""Staff accounts: admin, window, reviewer.

An account is made by its ``user.created`` event (projected by :mod:`node.projectors.users`),
which carries the password's scrypt hash, never the password, so a node rebuilt from its log
lets the same staff log in.
"""

from __future__ import annotations

import re
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events
from onestop.errors import Conflict, Invalid
from onestop.passwords import check_strength, hash_password

# A run of digits long enough to read as a phone or ID number: a salt or digest in base64
# may hold one by chance, and no event may carry it.
_DIGIT_RUN = re.compile(r"[0-9]{11}")

ROLES = ("admin", "window", "reviewer")
MAX_USERNAME = 64


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
    if len(username) > MAX_USERNAME:
        raise Invalid(f"username is longer than {MAX_USERNAME} characters", field="username")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    weak = check_strength(password)
    if weak:
        raise Invalid(weak, field="password")
    if (
        window_number is not None
        and dbm.one(db, "SELECT id FROM windows WHERE number = ?", [window_number]) is None
    ):
        raise Invalid(f"no window number {window_number}", field="window")
    if (
        department is not None
        and dbm.one(db, "SELECT 1 AS x FROM departments WHERE code = ?", [department]) is None
    ):
        raise Invalid(f"no department with code {department!r}", field="department")
    hashed = password_hash(password)  # scrypt: before the write lock is taken
    with dbm.tx(db) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise Conflict(f"user {username!r} already exists", field="username")
        events.append(
            conn,
            "user.created",
            "user",
            username,
            {
                "username": username,
                "role": role,
                "window": window_number,
                "department": department,
                "password_hash": hashed,
            },
        )
    return get(db, username) or {}


def password_hash(password: str) -> str:
    """The password's scrypt hash, drawn again (a fresh salt) in the rare case it holds a
    digit run that the event log would refuse as personal data."""
    while True:
        hashed = hash_password(password)
        if not _DIGIT_RUN.search(hashed):
            return hashed


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
