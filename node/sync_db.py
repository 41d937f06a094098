"""Tables of the signed log and of replication to the hub (listed in :data:`node.db.MIGRATIONS`).

- ``events`` gains ``prev``, ``hash``, ``sig``, ``key_id``: each row is a signed record of
  :mod:`sync.chain`, written by :func:`node.events.append` in the state change's transaction.
- ``checkpoints``: node-signed Merkle roots over the first ``tree_size`` record hashes
  (append-only by trigger).
- ``sync_state``: one row: where the hub stands (``hub_ack_seq``/``hub_ack_hash``), the last
  success and the last error, and the catalog last fetched from the hub.
- ``receipts``: hub-signed receipts, kept after their signature was checked with ``hub.pub``.
- ``sync_rejections``: records (or whole batches: fork, rollback) the hub refused, with the
  reason code; shown on the status page until the hub accepts them.
- ``relay_nodes``/``relay_outbox``/``relay_checkpoints``: on a county/city node, the
  townships it relays for, their records exactly as received and their checkpoints.
"""

from __future__ import annotations

import sqlite_utils


def _m020_sync(db: sqlite_utils.Database) -> None:
    for column in ("prev", "hash", "sig", "key_id"):
        db.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT")
    db.executescript(
        """
        CREATE UNIQUE INDEX events_hash ON events (hash) WHERE hash IS NOT NULL;
        CREATE TABLE checkpoints (
            tree_size INTEGER PRIMARY KEY,
            root TEXT NOT NULL,
            at TEXT NOT NULL,
            sig TEXT NOT NULL,
            key_id TEXT NOT NULL);
        CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
            BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
        CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
            BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
        CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            hub_ack_seq INTEGER NOT NULL DEFAULT 0,
            hub_ack_hash TEXT,
            via_relay TEXT,                     -- relay code when the hub_url is a relay
            last_attempt TEXT,
            last_success TEXT,
            last_error TEXT,
            last_error_at TEXT,
            alert TEXT,                         -- fork / rollback seen by the hub or locally
            sent_total INTEGER NOT NULL DEFAULT 0,
            catalog_etag TEXT,
            catalog_version TEXT,
            catalog_checked_at TEXT,
            catalog_error TEXT,
            catalog_envelope TEXT);             -- last good signed catalog (served to relays)
        INSERT INTO sync_state (id) VALUES (1);
        CREATE TABLE receipts (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL,
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            hub TEXT NOT NULL,                  -- hub key id
            at TEXT NOT NULL,
            sig TEXT NOT NULL,
            receipt TEXT NOT NULL,              -- the receipt JSON as received
            received_at TEXT NOT NULL,
            UNIQUE (node, seq, hash));
        CREATE TABLE sync_rejections (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL,
            seq INTEGER,                        -- null for a whole batch (fork, rollback)
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 1,
            resolved INTEGER NOT NULL DEFAULT 0);
        CREATE UNIQUE INDEX sync_rejections_key
            ON sync_rejections (node, ifnull(seq, -1), reason);
        CREATE TABLE relay_nodes (
            code TEXT PRIMARY KEY,
            pubkey TEXT NOT NULL,               -- enrolled key (raw base64): signs from seq 1
            cur_key TEXT NOT NULL,              -- current key after rotations (raw base64)
            seq INTEGER NOT NULL DEFAULT 0,     -- records held in relay_outbox (1..seq)
            head TEXT NOT NULL,                 -- hash of record seq (64 zeros for none)
            hub_ack_seq INTEGER NOT NULL DEFAULT 0,
            hub_ack_hash TEXT,
            hub_receipt TEXT,                   -- the hub's latest receipt for that node
            alert TEXT,
            added_at TEXT NOT NULL,
            last_seen TEXT);
        CREATE TABLE relay_outbox (
            node TEXT NOT NULL REFERENCES relay_nodes(code),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            record TEXT NOT NULL,               -- the record JSON as received
            received_at TEXT NOT NULL,
            PRIMARY KEY (node, seq));
        CREATE TABLE relay_checkpoints (
            node TEXT NOT NULL REFERENCES relay_nodes(code),
            tree_size INTEGER NOT NULL,
            checkpoint TEXT NOT NULL,
            PRIMARY KEY (node, tree_size));
        """
    )


MIGRATIONS = [("020_sync", _m020_sync)]
