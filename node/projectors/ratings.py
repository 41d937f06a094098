"""Projectors of the ratings events: a rating given, appealed and rated again (追评); a
follow-up opened, called back (回访) and closed by the fix (整改)."""

from __future__ import annotations

import sqlite3
from typing import Any

from node.projectors.common import Context, changed_one


def _given(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        "INSERT INTO ratings (id, case_id, ticket_id, level, comment, created_at, reason, "
        "channel, clerk, window_no) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            int(ev["entity_id"]),
            b["case_id"],
            b["ticket_id"],
            b["level"],
            b["comment"],
            ev["at"],
            b.get("reason"),
            b.get("channel"),
            b.get("clerk"),
            b.get("window"),
        ],
    )


def _opened(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        "INSERT INTO followups (id, rating_id, case_id, ticket_id, level, state, due_date,"
        " created_at, callback_due) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?)",
        [
            int(ev["entity_id"]),
            b["rating_id"],
            b["case_id"],
            b["ticket_id"],
            b["level"],
            b["due_date"],
            ev["at"],
            b.get("callback_due"),
        ],
    )


def _set(
    ev: dict[str, Any], conn: sqlite3.Connection, sql: str, values: list[Any], what: str
) -> None:
    """``UPDATE ... WHERE id = <the event's entity> AND <its state before>``: exactly one row."""
    cur = conn.execute(sql, [*values, int(ev["entity_id"])])
    changed_one(cur, f"{what} {ev['entity_id']}")


def _called_back(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    _set(ev, conn, "UPDATE followups SET called_back_at = ?, called_back_by = ?, callback_note = ? "
         "WHERE id = ? AND state = 'open' AND called_back_at IS NULL",
         [ev["at"], b["by"], b["note"]], "open follow-up not called back")  # fmt: skip


def _closed(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    _set(ev, conn, "UPDATE followups SET state = 'closed', note = ?, closed_by = ?, closed_at = ? "
         "WHERE id = ? AND state = 'open'", [b["note"], b["by"], ev["at"]], "open follow-up")  # fmt: skip


def _appealed(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    _set(ev, conn, "UPDATE ratings SET appeal_state = 'open', appeal_reason = ?, appeal_by = ?, "
         "appeal_at = ? WHERE id = ? AND appeal_state IS NULL",
         [b["reason"], b["by"], ev["at"]], "rating not appealed")  # fmt: skip


def _appeal_decided(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    _set(ev, conn, "UPDATE ratings SET appeal_state = ?, appeal_note = ?, appeal_decided_by = ?, "
         "appeal_decided_at = ? WHERE id = ? AND appeal_state = 'open'",
         [b["decision"], b["note"], b["by"], ev["at"]], "rating with an open appeal")  # fmt: skip


def _followed_up(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    _set(ev, conn, "UPDATE ratings SET again_level = ?, again_comment = ?, again_at = ? "
         "WHERE id = ? AND again_level IS NULL",
         [b["level"], b["comment"], ev["at"]], "rating not rated again")  # fmt: skip


PROJECTORS: dict[str, Any] = {
    "rating.given": _given,
    "followup.opened": _opened,
    "followup.called_back": _called_back,
    "followup.closed": _closed,
    "rating.appealed": _appealed,
    "rating.appeal_decided": _appeal_decided,
    "rating.followed_up": _followed_up,
}
