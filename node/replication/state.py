"""What the node keeps about its replication: where the hub stands (``sync_state``), the hub's
signed receipts (checked with ``DIR/hub.pub``) and the records the hub refused."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils

from node import db as dbm
from onestop.clock import utcnow
from sync.receipts import ReceiptError, verify_receipt


def state(db: sqlite_utils.Database) -> dict[str, Any]:
    row = dbm.one(db, "SELECT * FROM sync_state WHERE id = 1")
    return row or {}


def set_state(conn: sqlite3.Connection, **values: Any) -> None:
    cols = ", ".join(f"{k} = ?" for k in values)
    conn.execute(f"UPDATE sync_state SET {cols} WHERE id = 1", list(values.values()))


def record_rejection(
    conn: sqlite3.Connection, node: str, seq: int | None, reason: str, message: str
) -> None:
    now = utcnow()
    conn.execute(
        "INSERT INTO sync_rejections (node, seq, reason, message, first_at, last_at) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (node, ifnull(seq, -1), reason) DO UPDATE SET "
        "message = excluded.message, last_at = excluded.last_at, count = count + 1, "
        "resolved = 0",
        [node, seq, reason, message, now, now],
    )


def store_receipt(
    conn: sqlite3.Connection, receipt: Any, hub_pub: Any, local_hash: str | None
) -> str | None:
    """Check a hub receipt and keep it; returns a problem description or None."""
    if not isinstance(receipt, dict):
        return None
    if hub_pub is None:
        return "no hub public key (DIR/hub.pub): receipts cannot be checked"
    try:
        verify_receipt(receipt, hub_pub)
    except ReceiptError as exc:
        return f"hub receipt refused: {exc}"
    if local_hash is not None and receipt["hash"] != local_hash:
        return (
            f"the hub's receipt for seq {receipt['seq']} names hash {receipt['hash'][:12]}…, "
            f"the log here has {local_hash[:12]}… (fork)"
        )
    conn.execute(
        "INSERT OR IGNORE INTO receipts (node, seq, hash, hub, at, sig, receipt, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            receipt["node"],
            receipt["seq"],
            receipt["hash"],
            receipt["hub"],
            receipt["at"],
            receipt["sig"],
            json.dumps(receipt, ensure_ascii=False),
            utcnow(),
        ],
    )
    return None
