"""The hub's SQLite file (WAL) through sqlite-utils, with versioned migrations.

Connections, transactions and row helpers are :mod:`onestop.db`'s (``BEGIN IMMEDIATE`` write
transactions); the hub keeps its own tables and migration list here.

Tables:

- ``nodes``: the registry of enrolled centers and where the hub stands for each one
  (``ack_seq``/``ack_hash``: every record up to there is stored and verified; ``key_id``/
  ``cur_key``: the key the next record must be signed with, following ``key.rotated``).
- ``node_keys``: every key a node has used, from which seq (``from_seq`` = records already in
  the log when the key became current), how (``enrolled``, ``rotated`` by a ``key.rotated``
  record, ``rekeyed`` by a ``node.rekeyed`` record) and whether it was revoked.
- ``rekeys``: the hub-signed authorisations of a new key for a node whose key was lost
  (``onestop hub rekey``, :mod:`sync.rekey`): ``pending`` until the node's ``node.rekeyed``
  record arrives (``applied``), or ``superseded`` by a later one.
- ``records``: the verified copy of every node's signed log (append-only by trigger), with the
  event fields in columns so later rollups can aggregate by ``kind``/``entity``/``at``.
- ``checkpoints``: node-signed Merkle roots the hub checked against its own copy.
- ``quarantine``: batches that showed a fork or rollback, kept verbatim, never merged.
- ``alerts``: what an operator must look at (fork, rollback, rejected, revoked_key,
  unknown_node) and its ``source`` (``node:CODE`` proven by that node, ``addr:ADDRESS`` an
  unverified request); a repeat of an open alert bumps ``count``/``last_at``, and open alerts
  are capped per source and kind (:mod:`hub.ingest.alerts`).
- ``person_links``: keyed hash (HMAC with the hub's link key) and mask of the ID number a
  ``case.opened`` event carried sealed; the plain number is never stored.
- ``catalog_versions``: signed service catalog versions published to the nodes.
- ``users``: hub accounts (``admin`` or ``official``) with a ``scope``: the division code whose
  subtree they may read (``37`` the province, ``3701`` a city).
- ``rollup_*``: dashboard figures maintained as records arrive (:mod:`hub.rollups`):
  ``rollup_day_item`` per division, day, department and service item, ``rollup_day`` per
  division and day, ``rollup_open`` the cases under review by promised deadline, and the
  per-entity state they need (``rollup_tickets``, ``rollup_cases``, ``rollup_followups``).  ``area`` is a division code
  and ``self`` says whether a row holds the center at exactly that code (1) or every center
  whose code starts with it (0: the subtree, the center itself included).
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from onestop import db as coredb
from onestop.db import Migration, connect, database_file, get_meta, one, rows, set_meta, tx

__all__ = [
    "connect",
    "database_file",
    "get_meta",
    "migrate",
    "one",
    "rows",
    "set_meta",
    "tx",
    "MIGRATIONS",
]

ALERT_KINDS = ("fork", "rollback", "rejected", "revoked_key", "unknown_node")


def _m001_base(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE nodes (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            level TEXT NOT NULL DEFAULT '',
            parent TEXT NOT NULL DEFAULT '',
            pubkey TEXT NOT NULL,               -- enrolled Ed25519 key (PEM): signs from seq 1
            key_id TEXT NOT NULL,               -- current key (after rotations)
            cur_key TEXT NOT NULL,              -- current key, raw base64
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','revoked')),
            enrolled_at TEXT NOT NULL,
            revoked_at TEXT,
            last_contact TEXT,
            ack_seq INTEGER NOT NULL DEFAULT 0,
            ack_hash TEXT NOT NULL,
            frontier TEXT,                      -- Merkle right edge of records 1..ack_seq
            reported_backlog INTEGER,
            last_error TEXT);
        CREATE INDEX nodes_parent ON nodes (parent);
        CREATE TABLE node_keys (
            node TEXT NOT NULL REFERENCES nodes(code),
            key_id TEXT NOT NULL,
            pubkey TEXT NOT NULL,               -- raw base64
            from_seq INTEGER NOT NULL,          -- current once this many records are in the log
            source TEXT NOT NULL CHECK (source IN ('enrolled','rotated')),
            added_at TEXT NOT NULL,
            revoked_at TEXT,
            PRIMARY KEY (node, key_id));
        CREATE TABLE records (
            node TEXT NOT NULL REFERENCES nodes(code),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL,
            prev TEXT NOT NULL,
            key_id TEXT NOT NULL,
            sig TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            body TEXT NOT NULL,                 -- JSON object, as signed
            received_at TEXT NOT NULL,
            UNIQUE (node, seq));
        CREATE INDEX records_kind_at ON records (kind, at);
        CREATE INDEX records_entity ON records (node, entity, entity_id);
        CREATE TRIGGER records_no_update BEFORE UPDATE ON records
            BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
        CREATE TRIGGER records_no_delete BEFORE DELETE ON records
            BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
        CREATE TABLE checkpoints (
            node TEXT NOT NULL REFERENCES nodes(code),
            tree_size INTEGER NOT NULL,
            root TEXT NOT NULL,
            at TEXT NOT NULL,
            key_id TEXT NOT NULL,
            sig TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (node, tree_size));
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL,
            sender TEXT NOT NULL,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            batch TEXT NOT NULL,                -- the batch JSON exactly as received
            at TEXT NOT NULL);
        CREATE INDEX quarantine_node ON quarantine (node, at);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN
                ('fork','rollback','rejected','revoked_key','unknown_node')),
            message TEXT NOT NULL,
            at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 1,
            resolved INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX alerts_open ON alerts (resolved, node, kind);
        CREATE TABLE person_links (
            node TEXT NOT NULL,
            entity_id TEXT NOT NULL,            -- the case id on that node
            seq INTEGER NOT NULL,
            id_hash TEXT NOT NULL,              -- HMAC-SHA256(link key, ID number), hex
            id_masked TEXT NOT NULL,
            PRIMARY KEY (node, entity_id));
        CREATE INDEX person_links_hash ON person_links (id_hash);
        CREATE TABLE catalog_versions (
            id INTEGER PRIMARY KEY,
            version TEXT NOT NULL UNIQUE,
            published_at TEXT NOT NULL,
            catalog TEXT NOT NULL,              -- canonical JSON
            sha256 TEXT NOT NULL,
            key_id TEXT NOT NULL,
            sig TEXT NOT NULL);
        """
    )


#: Counters of the rollup tables as created by migration 002 (never change it).
_METRICS_002 = (
    "tickets_issued", "tickets_called", "tickets_finished", "tickets_no_show",
    "wait_sum", "wait_n", "service_sum", "service_n",
    "cases_received", "cases_accepted", "cases_completed", "cases_approved", "cases_rejected",
    "cases_late", "cases_delivered", "cases_one_visit", "complaints",
    "rating_1", "rating_2", "rating_3", "rating_4", "rating_5",
    "followups_opened", "followups_closed", "followups_late",
)  # fmt: skip
#: Counters added by later migrations (each adds its columns to both tables).
_METRICS_004 = ("tickets_expired",)
#: Counters of the rollup tables (columns of ``rollup_day`` and ``rollup_day_item``); a new
#: counter needs a new migration.
ROLLUP_METRICS = _METRICS_002 + _METRICS_004


def _m002_dashboards(db: sqlite_utils.Database) -> None:
    metrics = ",\n".join(f"            {m} INTEGER NOT NULL DEFAULT 0" for m in _METRICS_002)
    db.executescript(
        f"""
        CREATE TABLE users (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin','official')),
            scope TEXT NOT NULL,                -- division code: the subtree the user may read
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL);
        ALTER TABLE nodes ADD COLUMN newest_at TEXT;  -- newest record time (event at) held
        CREATE TABLE rollup_day_item (
            area TEXT NOT NULL,                 -- division code
            self INTEGER NOT NULL,              -- 1: the center at area; 0: its whole subtree
            day TEXT NOT NULL,                  -- local date (hub timezone), YYYY-MM-DD
            dept TEXT NOT NULL,                 -- department code, '' unknown
            item TEXT NOT NULL,                 -- service item code, '' none
{metrics},
            PRIMARY KEY (area, self, day, dept, item)) WITHOUT ROWID;
        CREATE TABLE rollup_day (
            area TEXT NOT NULL,
            self INTEGER NOT NULL,
            day TEXT NOT NULL,
{metrics},
            PRIMARY KEY (area, self, day)) WITHOUT ROWID;
        CREATE INDEX rollup_day_by_day ON rollup_day (self, day);
        CREATE TABLE rollup_open (
            area TEXT NOT NULL,
            self INTEGER NOT NULL,
            dept TEXT NOT NULL,
            item TEXT NOT NULL,
            deadline TEXT NOT NULL,             -- promised deadline; 9999-12-31 while paused
            n INTEGER NOT NULL DEFAULT 0,       -- cases accepted and not yet decided
            PRIMARY KEY (area, self, dept, item, deadline)) WITHOUT ROWID;
        CREATE TABLE rollup_tickets (
            node TEXT NOT NULL,
            ticket_id TEXT NOT NULL,            -- the record's entity_id
            ticket_no TEXT NOT NULL,
            dept TEXT NOT NULL,
            item TEXT NOT NULL,
            issued_at TEXT,
            called_at TEXT,                     -- first call (wait = issued -> called)
            served_at TEXT,                     -- latest call (service = served -> finished)
            PRIMARY KEY (node, ticket_id)) WITHOUT ROWID;
        CREATE INDEX rollup_tickets_no ON rollup_tickets (node, ticket_no, issued_at);
        CREATE TABLE rollup_followups (
            node TEXT NOT NULL,
            followup_id TEXT NOT NULL,
            dept TEXT NOT NULL,                 -- of the rated case or visit
            item TEXT NOT NULL,
            PRIMARY KEY (node, followup_id)) WITHOUT ROWID;
        CREATE TABLE rollup_cases (
            node TEXT NOT NULL,
            case_no TEXT NOT NULL,
            dept TEXT NOT NULL,                 -- lead department
            item TEXT NOT NULL,                 -- first service item
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            deadline TEXT,                      -- key of the case in rollup_open while open
            PRIMARY KEY (node, case_no)) WITHOUT ROWID;
        """
    )


def _m003_case_visits(db: sqlite_utils.Database) -> None:
    """``rollup_cases.visits``: the applicant's visits counted from ``case.visit`` records
    (NULL for a case known before: its handover's own count stands)."""
    db.execute("ALTER TABLE rollup_cases ADD COLUMN visits INTEGER")


def _m004_tickets_expired(db: sqlite_utils.Database) -> None:
    """``tickets_expired``: tickets whose day closed on them (``ticket.expired``), neither
    served nor no-show.  Existing rows start at 0 (``onestop hub rollups rebuild`` counts the
    records already held)."""
    for table in ("rollup_day_item", "rollup_day"):
        for m in _METRICS_004:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {m} INTEGER NOT NULL DEFAULT 0")


def _m005_rekeys(db: sqlite_utils.Database) -> None:
    """``rekeys`` (authorisations of a new key for a node whose key was lost) and
    ``node_keys.source`` ``rekeyed`` (the table rebuilt for its CHECK constraint)."""
    db.execute(
        """CREATE TABLE node_keys_new (
            node TEXT NOT NULL REFERENCES nodes(code),
            key_id TEXT NOT NULL,
            pubkey TEXT NOT NULL,               -- raw base64
            from_seq INTEGER NOT NULL,          -- current once this many records are in the log
            source TEXT NOT NULL CHECK (source IN ('enrolled','rotated','rekeyed')),
            added_at TEXT NOT NULL,
            revoked_at TEXT,
            PRIMARY KEY (node, key_id))"""
    )
    db.execute(
        "INSERT INTO node_keys_new (node, key_id, pubkey, from_seq, source, added_at, "
        "revoked_at) SELECT node, key_id, pubkey, from_seq, source, added_at, revoked_at "
        "FROM node_keys ORDER BY rowid"
    )
    db.execute("DROP TABLE node_keys")
    db.execute("ALTER TABLE node_keys_new RENAME TO node_keys")
    db.execute(
        """CREATE TABLE rekeys (
            id INTEGER PRIMARY KEY,
            node TEXT NOT NULL REFERENCES nodes(code),
            old_key_id TEXT NOT NULL,           -- the node's current key at the hub, replaced
            new_key_id TEXT NOT NULL,
            new_key TEXT NOT NULL,              -- raw base64
            from_seq INTEGER NOT NULL,          -- the hub's head seq + 1: the node.rekeyed record
            prev TEXT NOT NULL,                 -- the hub's head hash
            at TEXT NOT NULL,
            by TEXT NOT NULL,
            reason TEXT NOT NULL,
            signed TEXT NOT NULL,               -- {"authorisation", "sig"} as signed (JSON)
            sig TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending','applied','superseded')),
            applied_at TEXT)"""
    )
    db.execute("CREATE UNIQUE INDEX rekeys_pending ON rekeys (node) WHERE state = 'pending'")
    db.execute("CREATE INDEX rekeys_node ON rekeys (node, id)")


def _m006_alert_sources(db: sqlite_utils.Database) -> None:
    """``alerts.source``: who is behind an alert (``node:CODE`` proven by that node,
    ``addr:ADDRESS`` an unverified request; '' for alerts raised before), so repeats are
    counted and open alerts capped per source and kind."""
    db.execute("ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX alerts_source ON alerts (resolved, kind, source)")


# Append new migrations at the end; never edit or reorder a released one.
MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_base", _m001_base),
    ("002_dashboards", _m002_dashboards),
    ("003_case_visits", _m003_case_visits),
    ("004_tickets_expired", _m004_tickets_expired),
    ("005_rekeys", _m005_rekeys),
    ("006_alert_sources", _m006_alert_sources),
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the hub's pending migrations; returns the names applied."""
    return coredb.migrate(db, MIGRATIONS)


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Connect and migrate."""
    db = connect(path)
    migrate(db)
    return db
