"""Projectors of the staff account events."""

from __future__ import annotations

import sqlite3
from typing import Any

from node.projectors.common import Context, ProjectionError, window_id


def _created(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    wid = window_id(conn, b["window"])
    if b["window"] is not None and wid is None:
        raise ProjectionError(f"window {b['window']} is not in the tables")
    conn.execute(
        "INSERT INTO users (username, password_hash, role, window_id, department, created_at,"
        " disabled) VALUES (?, ?, ?, ?, ?, ?, 0)",
        [ev["entity_id"], b["password_hash"], b["role"], wid, b["department"], ev["at"]],
    )


PROJECTORS: dict[str, Any] = {"user.created": _created}
