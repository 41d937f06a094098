"""Projectors of the ticket events (see :mod:`node.projection`).

``ticket.issued`` carries everything of the new row but the clear ID and phone numbers: the
masks, the keyed hash, the status token, the ticket's sequence and language, and the numbers
sealed to the node's recovery key (``id_recovery``, ``phone_recovery``), which a replay opens
when it has that key.  The later events name the ticket by id (``entity_id``) and windows by
number; their times are the events' own.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from node.projectors.common import Context, ProjectionError, changed_one, window_id

Projector = Callable[[sqlite3.Connection, dict[str, Any], Context], None]


def personal_enc(ctx: Context, body: Mapping[str, Any], name: str) -> str:
    """``name`` encrypted for a ``*_enc`` column; when the clear value is unknown (a replay
    without the recovery key, a record from before the event carried it) the empty value,
    encrypted, so every reader that decrypts the column gets '' rather than an error."""
    enc = ctx.encrypted(body, name)
    if enc or ctx.pii is None:
        return enc
    return ctx.pii.encrypt("")


def person_columns(ctx: Context, body: Mapping[str, Any]) -> list[str]:
    """``id_enc, id_hash, id_masked, phone_enc, phone_masked`` of a citizen's row (tickets,
    appointments, pre-applications) from the event and the context."""
    return [
        personal_enc(ctx, body, "id"),
        body.get("id_hash") or "",
        body.get("id_masked") or "",
        personal_enc(ctx, body, "phone"),
        body.get("phone_masked") or "",
    ]


def _seq(conn: sqlite3.Connection, body: Mapping[str, Any]) -> int:
    """The ticket's daily sequence: carried by the event, else (records written before it
    was) the ticket number after its queue's prefix."""
    if body.get("seq"):
        return int(body["seq"])
    queue = conn.execute("SELECT prefix FROM queues WHERE code = ?", [body["queue"]]).fetchone()
    if queue is None:
        raise ProjectionError(f"queue {body['queue']} is not in this node's catalog")
    prefix, number = str(queue[0]), str(body["ticket_no"])
    seq = int(number[len(prefix) :]) if number.startswith(prefix) else 0
    if seq <= 0:
        raise ProjectionError(f"ticket number {number} does not start with prefix {prefix}")
    return seq


def _issued(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    item = b.get("item")
    if item and not conn.execute("SELECT 1 FROM items WHERE code = ?", [item]).fetchone():
        item = None  # an item since removed from the catalog
    conn.execute(
        """INSERT INTO tickets (id, token, service_date, queue, issued_queue, seq, ticket_no,
             item_code, id_enc, id_hash, id_masked, phone_enc, phone_masked, priority,
             priority_reason, state, order_at, created_at, lang)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, 'waiting', ?, ?, ?)""",
        [
            int(ev["entity_id"]),
            b.get("token") or secrets.token_urlsafe(12),  # records from before it was carried
            b["service_date"],
            b["queue"],
            b["queue"],
            _seq(conn, b),
            b["ticket_no"],
            item,
            *person_columns(ctx, b),
            int(b.get("priority") or 0),
            b.get("priority_reason"),
            ev["at"],  # order_at: its place in line
            ev["at"],
            b.get("lang") or "zh",
        ],
    )


def _update(sql: str, *params: Callable[[sqlite3.Connection, dict[str, Any]], Any]) -> Projector:
    """``sql`` (ending ``WHERE id = ?``) on the event's ticket, with ``params`` read from
    the event."""

    def apply(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
        values = [p(conn, ev) for p in params]
        cur = conn.execute(sql, [*values, int(ev["entity_id"])])
        changed_one(cur, f"ticket {ev['entity_id']}")

    return apply


def _at(conn: sqlite3.Connection, ev: dict[str, Any]) -> Any:
    return ev["at"]


def _body(key: str) -> Callable[[sqlite3.Connection, dict[str, Any]], Any]:
    return lambda conn, ev: ev["body"][key]


def _window(key: str) -> Callable[[sqlite3.Connection, dict[str, Any]], int]:
    def read(conn: sqlite3.Connection, ev: dict[str, Any]) -> int:
        number = ev["body"].get(key)
        wid = window_id(conn, number)
        if wid is None:
            raise ProjectionError(f"window {number} is not in the tables")
        return wid

    return read


def _transferred(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b, tid = ev["body"], int(ev["entity_id"])
    if b.get("to_queue"):
        cur = conn.execute(
            "UPDATE tickets SET state = 'waiting', queue = ?, window_id = NULL, "
            "target_window = NULL, called_at = NULL WHERE id = ?",
            [b["to_queue"], tid],
        )
    else:
        cur = conn.execute(
            "UPDATE tickets SET state = 'waiting', window_id = NULL, "
            "target_window = ?, called_at = NULL WHERE id = ?",
            [_window("to_window")(conn, ev), tid],
        )
    changed_one(cur, f"ticket {tid}")


def _priority_reason(conn: sqlite3.Connection, ev: dict[str, Any]) -> str | None:
    return "staff" if ev["body"]["priority"] else None


PROJECTORS: dict[str, Projector] = {
    "ticket.issued": _issued,
    "ticket.called": _update(
        "UPDATE tickets SET state = 'called', window_id = ?, target_window = NULL, "
        "called_at = ?, recalls = 0 WHERE id = ?",
        _window("window"),
        _at,
    ),
    "ticket.recalled": _update("UPDATE tickets SET recalls = ? WHERE id = ?", _body("recalls")),
    "ticket.finished": _update(
        "UPDATE tickets SET state = 'done', finished_at = ? WHERE id = ?", _at
    ),
    "ticket.no_show": _update(
        "UPDATE tickets SET state = 'no_show', finished_at = ? WHERE id = ?", _at
    ),
    "ticket.suspended": _update("UPDATE tickets SET state = 'suspended' WHERE id = ?"),
    "ticket.resumed": _update("UPDATE tickets SET state = 'called' WHERE id = ?"),
    "ticket.transferred": _transferred,
    "ticket.priority_set": _update(
        "UPDATE tickets SET priority = ?, priority_reason = ? WHERE id = ?",
        _body("priority"),
        _priority_reason,
    ),
    "ticket.expired": _update(
        "UPDATE tickets SET state = 'expired', finished_at = ? WHERE id = ?", _at
    ),
}
