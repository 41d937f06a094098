"""The node's append-only event log.

:func:`append` must be called inside the :func:`node.db.tx` transaction that makes the state
change, so the log and the current tables never disagree.  Event bodies never hold a full ID
number or phone number: only masked values and keyed hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from typing import Any

# Hooks run inside the same transaction after an event is written (e.g. the signer).
_after_append: list[Callable[[sqlite3.Connection, int, dict[str, Any]], None]] = []


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(
    conn: sqlite3.Connection, kind: str, entity: str, entity_id: str | int, body: dict[str, Any],
    at: str | None = None,
) -> int:
    if not conn.in_transaction:
        raise RuntimeError("events.append must run inside node.db.tx")
    at = at or utcnow()
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    cur = conn.execute(
        "INSERT INTO events (at, kind, entity, entity_id, body) VALUES (?, ?, ?, ?, ?)",
        [at, kind, entity, str(entity_id), text],
    )
    seq = int(cur.lastrowid or 0)
    event = {"seq": seq, "at": at, "kind": kind, "entity": entity, "entity_id": str(entity_id),
             "body": body}
    for hook in _after_append:
        hook(conn, seq, event)
    return seq


def on_append(hook: Callable[[sqlite3.Connection, int, dict[str, Any]], None]) -> None:
    if hook not in _after_append:
        _after_append.append(hook)
