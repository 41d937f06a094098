"""The node's append-only, signed event log: the one way state changes.

:func:`append` runs inside a :func:`node.db.tx` transaction: it writes the signed record and
then applies the event's projector (:mod:`node.projection`) to the tables, so the log and the
tables never disagree and nothing writes a table directly.  Each event becomes a signed record
of :mod:`sync.chain` (``seq``, ``prev``, ``hash``, ``sig``, ``key_id``), signed with the node's
key (:mod:`node.signer`) before the row is inserted, in the same transaction.  A node database
without a signing key refuses to write events.  Event bodies never hold a full ID number or
phone number: only masked values, keyed hashes and numbers sealed to the hub.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from node import projection
from node import signer as signerm
from node.projection import Personal
from onestop.clock import utcnow
from onestop.identity import is_id_number

# Hooks run inside the same transaction after an event is written (e.g. the push client's
# "new events" nudge).
_after_append: list[Callable[[sqlite3.Connection, int, dict[str, Any]], None]] = []


# A full ID number (any accepted type) or mainland mobile number standing alone in a string.
_ID_RUN = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_MOBILE_RUN = re.compile(r"(?<![0-9A-Za-z+])1[3-9][0-9]{9}(?![0-9A-Za-z])")


def personal_data_in(value: Any, path: str = "body") -> str | None:
    """Where ``value`` holds a full ID or mobile number (events must carry masks), or None."""
    if isinstance(value, str):
        for m in _ID_RUN.finditer(value):
            if is_id_number(m.group()):
                return path
        if _MOBILE_RUN.search(value):
            return path
    elif isinstance(value, dict):
        for k, v in value.items():
            found = personal_data_in(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = personal_data_in(v, f"{path}[{i}]")
            if found:
                return found
    return None


def append(
    conn: sqlite3.Connection,
    kind: str,
    entity: str,
    entity_id: str | int,
    body: dict[str, Any],
    at: str | None = None,
    personal: Personal | None = None,
) -> int:
    """Append an event and apply it to the tables; its sequence number.

    ``personal``: the clear ID/phone numbers the event carries only sealed (its projector
    stores them encrypted).
    """
    if not conn.in_transaction:
        raise RuntimeError("events.append must run inside node.db.tx")
    leak = personal_data_in(body)
    if leak:
        raise ValueError(
            f"{kind} event: {leak} holds a full ID or phone number; events carry "
            "masks, keyed hashes or values sealed for the hub"
        )
    event: dict[str, Any] = {
        "at": at or utcnow(),
        "kind": kind,
        "entity": entity,
        "entity_id": str(entity_id),
        "body": body,
    }
    signer = signerm.current_signer(conn)
    if signer is None:  # a bare database of no node (unit tests of other modules)
        cur = conn.execute(
            "INSERT INTO events (at, kind, entity, entity_id, body) VALUES (?, ?, ?, ?, ?)",
            [event["at"], kind, entity, event["entity_id"], signerm.body_text(body)],
        )
        seq = int(cur.lastrowid or 0)
    else:
        record = signerm.sign_next(conn, signer, event)
        seq = record["seq"]
        ev = record["event"]
        conn.execute(
            "INSERT INTO events (seq, at, kind, entity, entity_id, body, prev, hash, sig, key_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                seq,
                ev["at"],
                ev["kind"],
                ev["entity"],
                ev["entity_id"],
                signerm.body_text(ev["body"]),
                record["prev"],
                record["hash"],
                record["sig"],
                record["key_id"],
            ],
        )
        event = {**ev}
    event["seq"] = seq
    projection.apply(conn, event, projection.Context.live(personal))
    for hook in _after_append:
        hook(conn, seq, event)
    return seq


def on_append(hook: Callable[[sqlite3.Connection, int, dict[str, Any]], None]) -> None:
    if hook not in _after_append:
        _after_append.append(hook)


def off_append(hook: Callable[[sqlite3.Connection, int, dict[str, Any]], None]) -> None:
    if hook in _after_append:
        _after_append.remove(hook)
