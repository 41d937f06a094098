"""The numbers a node hands out, taken from the log as well as the tables.

The signed log is the truth; the current tables are its projection.  After a restore
(:mod:`node.restore`) the tables may lack what the log holds: the hub sends back records the
stale replica missed, and cases and ratings among them stay in the log only.  So every number
given to a citizen or named by an event (ticket numbers, ticket ids, case numbers, rating ids)
is the next one beyond both the table and the log, and no restore can issue one twice.  Each
look-up reads a partial index of the log (migration ``031_log_numbers`` of :mod:`node.db`):
a few rows of one day and queue, or one row for the highest id.

A ticket's status token (the key of its public status page and of the QR code printed on the
ticket) travels in its ``ticket.issued`` event, so a restored ticket keeps it.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from node import events

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_TICKET_SEQ_LOG = f"""
SELECT MAX(CAST(ltrim(json_extract(body, '$.ticket_no'), '{_LETTERS}') AS INTEGER))
  FROM events
 WHERE kind = 'ticket.issued'
   AND json_extract(body, '$.queue') = ? AND json_extract(body, '$.service_date') = ?
"""


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def next_ticket_seq(conn: sqlite3.Connection, issued_queue: str, service_date: str) -> int:
    """The next ticket sequence of a queue on a local day, beyond any ticket number of it in
    the tickets table or in the log."""
    table = conn.execute(
        "SELECT MAX(seq) FROM tickets WHERE issued_queue = ? AND service_date = ?",
        [issued_queue, service_date],
    ).fetchone()[0]
    log = conn.execute(_TICKET_SEQ_LOG, [issued_queue, service_date]).fetchone()[0]
    return max(_int(table), _int(log)) + 1


def next_ticket_id(conn: sqlite3.Connection) -> int:
    """The next ticket id, beyond every ticket the table or the log has seen."""
    table = conn.execute("SELECT MAX(id) FROM tickets").fetchone()[0]
    log = conn.execute(
        "SELECT MAX(CAST(entity_id AS INTEGER)) FROM events WHERE kind = 'ticket.issued'"
    ).fetchone()[0]
    return max(_int(table), _int(log)) + 1


def next_case_seq(conn: sqlite3.Connection, node_code: str, day: str) -> int:
    """The next daily sequence of the case numbers ``{node}-{YYYYMMDD}-{seq}`` of a local day
    (``day`` ISO), beyond the cases table and every ``case.opened`` of that day in the log."""
    table = conn.execute(
        "SELECT MAX(seq) FROM cases WHERE node_code = ? AND service_date = ?", [node_code, day]
    ).fetchone()[0]
    prefix = f"{node_code}-{day.replace('-', '')}-"
    # Every number of the day is the prefix and digits: the index range [prefix0, prefix:).
    log = conn.execute(
        "SELECT MAX(CAST(substr(entity_id, ?) AS INTEGER)) FROM events "
        "WHERE kind = 'case.opened' AND entity_id >= ? AND entity_id < ?",
        [len(prefix) + 1, prefix + "0", prefix + ":"],
    ).fetchone()[0]
    return max(_int(table), _int(log)) + 1


def next_rating_id(conn: sqlite3.Connection) -> int:
    """The next rating id, beyond the ratings table and every ``rating.given`` in the log."""
    table = conn.execute("SELECT MAX(id) FROM ratings").fetchone()[0]
    log = conn.execute(
        "SELECT MAX(CAST(entity_id AS INTEGER)) FROM events WHERE kind = 'rating.given'"
    ).fetchone()[0]
    return max(_int(table), _int(log)) + 1


def next_id(conn: sqlite3.Connection, table: str) -> int:
    """The next id of a projected table (windows, users' rows, cases, ...): every event that
    made a row is in the table too (:mod:`node.projection`), so its highest id is the log's."""
    if not table.replace("_", "").isalpha():
        raise ValueError(f"not a table name: {table!r}")
    row = conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()  # noqa: S608 - checked name
    return _int(row[0]) + 1


def new_token() -> str:
    """A fresh status token: random, public, and never mistaken for personal data (the
    event that carries it refuses anything that reads as a mobile number)."""
    while True:
        token = secrets.token_urlsafe(12)
        if events.personal_data_in(token) is None:
            return token
