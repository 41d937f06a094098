"""Projectors of the window events: created, and its status (open, paused, closed)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from node.projectors.common import Context, changed_one


def _created(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
    b = ev["body"]
    conn.execute(
        "INSERT INTO windows (id, number, name, queues, status) VALUES (?, ?, ?, ?, 'open')",
        [int(ev["entity_id"]), b["number"], b["name"], json.dumps(b["queues"], ensure_ascii=False)],
    )


def _status(status: str) -> Any:
    def apply(conn: sqlite3.Connection, ev: dict[str, Any], ctx: Context) -> None:
        cur = conn.execute(
            "UPDATE windows SET status = ? WHERE id = ?", [status, int(ev["entity_id"])]
        )
        changed_one(cur, f"window {ev['entity_id']}")

    return apply


PROJECTORS: dict[str, Any] = {
    "window.created": _created,
    "window.open": _status("open"),
    "window.paused": _status("paused"),
    "window.closed": _status("closed"),
}
