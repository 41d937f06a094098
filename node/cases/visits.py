"""Visits to the window (最多跑一次): the ticket being served, who it belongs to, and each
visit a case needed (intake, supplement, pickup).

Only an applicant in person at the window is a visit: a supplement or a result by ``post``,
``online`` or ``courier`` is none.  A ``case_visits`` row counts when its ``channel`` is
``window``; rows of supplements registered without a ticket before channels existed keep
``channel`` NULL and count as no visit (:data:`COUNTED`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlite_utils

from node import db as dbm
from node import events, numbers
from onestop.errors import Conflict, Forbidden, Invalid
from sync import figures

#: The rows of ``case_visits`` (alias ``v``) that are visits (:func:`sync.figures.is_visit`).
COUNTED = f"v.channel = '{figures.VISIT_CHANNEL}'"


def ticket_at_window(
    db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any]
) -> dict[str, Any]:
    """The ticket being served now: called at a window or suspended there."""
    t = dbm.one(db, "SELECT * FROM tickets WHERE id = ?", [ticket_id])
    if t is None:
        raise Invalid(f"no ticket with id {ticket_id}", field="ticket_id")
    if t["state"] not in ("called", "suspended"):
        raise Conflict(
            f"ticket {t['ticket_no']} is {t['state']}: only a ticket called at a window or "
            "suspended there can be linked to a case",
            field="ticket_id",
        )
    if (
        user["role"] == "window"
        and user.get("window_id") is not None
        and t["window_id"] != user["window_id"]
    ):
        raise Forbidden(f"ticket {t['ticket_no']} is served at another window", field="ticket_id")
    return t


def same_person(case: dict[str, Any], ticket: dict[str, Any]) -> None:
    if ticket["id_hash"] != case["id_hash"]:
        raise Conflict(
            f"ticket {ticket['ticket_no']} belongs to someone else ({ticket['id_masked']}); "
            f"case {case['case_no']} is for {case['id_masked']}",
            field="ticket_id",
        )


def link_visit(
    conn: sqlite3.Connection,
    db: sqlite_utils.Database,
    case: dict[str, Any],
    ticket: dict[str, Any] | None,
    purpose: str,
    by: str,
    at: str,
) -> bool:
    """Record a visit at the window (a ``case.visit`` event); the same ticket linked twice is
    one visit.  True if new."""
    if (
        ticket is not None
        and conn.execute(
            "SELECT 1 FROM case_visits WHERE case_id = ? AND ticket_id = ?",
            [case["id"], ticket["id"]],
        ).fetchone()
    ):
        return False
    events.append(
        conn,
        "case.visit",
        "case",
        case["case_no"],
        {
            "case_no": case["case_no"],
            "visit_id": numbers.next_id(conn, "case_visits"),
            "ticket_id": ticket["id"] if ticket else None,
            "ticket_no": ticket["ticket_no"] if ticket else None,
            "purpose": purpose,
            "visits": visit_count(db, case["id"]) + 1,  # this one is at the window
            "by": by,
            "channel": figures.VISIT_CHANNEL,
        },
        at=at,
    )
    return True


def visits(db: sqlite_utils.Database, case_id: int) -> list[dict[str, Any]]:
    return dbm.rows(
        db,
        f"""SELECT v.id, v.purpose, v.at, v.by, t.ticket_no, t.service_date
          FROM case_visits v LEFT JOIN tickets t ON t.id = v.ticket_id
         WHERE v.case_id = ? AND {COUNTED} ORDER BY v.id""",
        [case_id],
    )


def visit_count(db: sqlite_utils.Database, case_id: int) -> int:
    return int(
        db.execute(
            f"SELECT COUNT(*) FROM case_visits v WHERE v.case_id = ? AND {COUNTED}", [case_id]
        ).fetchone()[0]
    )
