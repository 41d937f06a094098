"""Projectors of the appointment and pre-application events (see :mod:`node.projection`).

``appointment.booked`` and ``preapplication.submitted`` carry the whole new row but the clear
ID and phone numbers: the reference given to the citizen, the masks, the keyed hash, the
language, and the numbers sealed to the node's recovery key (``id_recovery``,
``phone_recovery``).  The later events name the row by id; their times are the events' own.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from node.projectors.common import Context, changed_one
from node.projectors.tickets import Projector, person_columns


def _booked(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        """INSERT INTO appointments (id, ref, queue, date, slot, id_enc, id_hash, id_masked,
             phone_enc, phone_masked, state, lang, created_at)
           VALUES (?,?,?,?,?,?,?,?,?,?, 'booked', ?, ?)""",
        [
            int(ev["entity_id"]),
            b["ref"],
            b["queue"],
            b["date"],
            b["slot"],
            *person_columns(ctx, b),
            b.get("lang") or "zh",
            ev["at"],
        ],
    )


def _cancelled(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    cur = conn.execute(
        "UPDATE appointments SET state = 'cancelled', cancelled_at = ? WHERE id = ?",
        [ev["at"], int(ev["entity_id"])],
    )
    changed_one(cur, f"appointment {ev['entity_id']}")


def _checked_in(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    cur = conn.execute(
        "UPDATE appointments SET state = 'checked_in', ticket_id = ?, checked_in_at = ? "
        "WHERE id = ?",
        [int(ev["body"]["ticket_id"]), ev["at"], int(ev["entity_id"])],
    )
    changed_one(cur, f"appointment {ev['entity_id']}")


def _submitted(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        """INSERT INTO preapplications (id, ref, items, materials, id_enc, id_hash, id_masked,
             phone_enc, phone_masked, state, lang, created_at)
           VALUES (?,?,?,?,?,?,?,?,?, 'submitted', ?, ?)""",
        [
            int(ev["entity_id"]),
            b["ref"],
            json.dumps(b["items"]),
            json.dumps(b["materials"]),
            *person_columns(ctx, b),
            b.get("lang") or "zh",
            ev["at"],
        ],
    )


def _used(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    cur = conn.execute(
        "UPDATE preapplications SET state = 'used', case_no = ?, used_at = ? WHERE id = ?",
        [ev["body"]["case_no"], ev["at"], int(ev["entity_id"])],
    )
    changed_one(cur, f"pre-application {ev['entity_id']}")


PROJECTORS: dict[str, Projector] = {
    "appointment.booked": _booked,
    "appointment.cancelled": _cancelled,
    "appointment.checked_in": _checked_in,
    "preapplication.submitted": _submitted,
    "preapplication.used": _used,
}
