"""Projectors of the SMS outbox events: queued, an attempt failed (retried), sent, given up.

The number is in the event only masked and sealed to the node's recovery key
(``to_recovery``); the outbox keeps it encrypted with the node's secret (``to_enc``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from node.projectors.common import Context, changed_one


def _queued(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    case_id = b.get("case_id")
    if (
        case_id is not None
        and not conn.execute("SELECT 1 FROM cases WHERE id = ?", [case_id]).fetchone()
    ):
        case_id = None  # its case is in the log only (a restore): the message still goes out
    conn.execute(
        "INSERT INTO sms_outbox (id, to_masked, to_enc, template, text, case_id, state,"
        " attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?)",
        [
            int(ev["entity_id"]),
            b["to_masked"],
            ctx.encrypted(b, "to"),
            b["template"],
            b["text"],
            case_id,
            ev["at"],
        ],
    )


def _retry(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE sms_outbox SET attempts = ?, last_error = ? WHERE id = ? AND state = 'queued'",
        [b["attempts"], b["error"], int(ev["entity_id"])],
    )
    changed_one(cur, f"queued SMS {ev['entity_id']}")


def _sent(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE sms_outbox SET state = 'sent', attempts = ?, sent_at = ?, last_error = NULL "
        "WHERE id = ? AND state = 'queued'",
        [b["attempts"], ev["at"], int(ev["entity_id"])],
    )
    changed_one(cur, f"queued SMS {ev['entity_id']}")


def _failed(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    cur = conn.execute(
        "UPDATE sms_outbox SET state = 'failed', attempts = ?, last_error = ? "
        "WHERE id = ? AND state = 'queued'",
        [b["attempts"], b["error"], int(ev["entity_id"])],
    )
    changed_one(cur, f"queued SMS {ev['entity_id']}")


PROJECTORS: dict[str, Any] = {
    "sms.queued": _queued,
    "sms.retry": _retry,
    "sms.sent": _sent,
    "sms.failed": _failed,
}
