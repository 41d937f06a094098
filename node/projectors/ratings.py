"""Projectors of the ratings events: a rating given, a follow-up opened and closed."""

from __future__ import annotations

import sqlite3
from typing import Any

from node.projectors.common import Context, changed_one


def _given(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        "INSERT INTO ratings (id, case_id, ticket_id, level, comment, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [int(ev["entity_id"]), b["case_id"], b["ticket_id"], b["level"], b["comment"], ev["at"]],
    )


def _opened(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        "INSERT INTO followups (id, rating_id, case_id, ticket_id, level, state, due_date,"
        " created_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?)",
        [
            int(ev["entity_id"]),
            b["rating_id"],
            b["case_id"],
            b["ticket_id"],
            b["level"],
            b["due_date"],
            ev["at"],
        ],
    )


def _closed(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE followups SET state = 'closed', note = ?, closed_by = ?, closed_at = ? "
        "WHERE id = ? AND state = 'open'",
        [b["note"], b["by"], ev["at"], int(ev["entity_id"])],
    )
    changed_one(cur, f"open follow-up {ev['entity_id']}")


PROJECTORS: dict[str, Any] = {
    "rating.given": _given,
    "followup.opened": _opened,
    "followup.closed": _closed,
}
