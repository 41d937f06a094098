"""The node's SQLite file: its tables and migrations.

Connections, transactions and row helpers are :mod:`onestop.db`'s (``BEGIN IMMEDIATE`` write
transactions), re-exported here for the node's modules.
"""

from __future__ import annotations

import sqlite_utils

from node import cases_db, sync_db
from onestop import db as coredb
from onestop.db import (
    Checkpointer,
    Migration,
    connect,
    database_file,
    get_meta,
    one,
    rows,
    set_meta,
    tx,
)

__all__ = [
    "MIGRATIONS",
    "Checkpointer",
    "connect",
    "database_file",
    "get_meta",
    "migrate",
    "one",
    "rows",
    "set_meta",
    "tx",
]


def _m001_base(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE departments (
            code TEXT PRIMARY KEY, name_zh TEXT NOT NULL, name_en TEXT NOT NULL,
            sort INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE areas (
            code TEXT PRIMARY KEY, name_zh TEXT NOT NULL, name_en TEXT NOT NULL,
            sort INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE items (
            code TEXT PRIMARY KEY, name_zh TEXT NOT NULL, name_en TEXT NOT NULL,
            kind TEXT NOT NULL, area TEXT REFERENCES areas(code),
            departments TEXT NOT NULL,          -- JSON list of department codes (lead first)
            materials TEXT NOT NULL,            -- JSON list of {code,name_zh,name_en,critical}
            promised_days INTEGER NOT NULL, statutory_days INTEGER NOT NULL,
            sort INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE queues (
            code TEXT PRIMARY KEY,              -- 'dept:<code>' or 'area:<code>'
            kind TEXT NOT NULL CHECK (kind IN ('department','area')),
            ref TEXT NOT NULL, prefix TEXT NOT NULL UNIQUE,
            name_zh TEXT NOT NULL, name_en TEXT NOT NULL,
            sort INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1);
        CREATE TABLE windows (
            id INTEGER PRIMARY KEY, number INTEGER NOT NULL UNIQUE, name TEXT NOT NULL,
            queues TEXT NOT NULL,               -- JSON list of queue codes, or ["*"] (综合窗口)
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','paused','closed')));
        CREATE TABLE users (
            username TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin','window','reviewer')),
            window_id INTEGER REFERENCES windows(id), department TEXT,
            created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            token TEXT NOT NULL UNIQUE,         -- public status page key (no personal data)
            service_date TEXT NOT NULL,         -- local date in the node's time zone
            queue TEXT NOT NULL REFERENCES queues(code),        -- current queue
            issued_queue TEXT NOT NULL REFERENCES queues(code), -- numbering queue
            seq INTEGER NOT NULL, ticket_no TEXT NOT NULL,
            item_code TEXT REFERENCES items(code),
            id_enc TEXT NOT NULL, id_hash TEXT NOT NULL, id_masked TEXT NOT NULL,
            phone_enc TEXT NOT NULL, phone_masked TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0, priority_reason TEXT,
            state TEXT NOT NULL CHECK (state IN
                ('waiting','called','suspended','done','no_show')),
            window_id INTEGER REFERENCES windows(id),       -- serving window
            target_window INTEGER REFERENCES windows(id),   -- transferred to one window
            order_at TEXT NOT NULL,             -- place in line; kept on transfer
            created_at TEXT NOT NULL, called_at TEXT, finished_at TEXT,
            recalls INTEGER NOT NULL DEFAULT 0, lang TEXT NOT NULL DEFAULT 'zh',
            UNIQUE (issued_queue, service_date, seq));
        CREATE INDEX tickets_waiting ON tickets (state, queue, priority, order_at);
        CREATE INDEX tickets_date ON tickets (service_date);
        -- The append-only log: every state change of a ticket, case or rating, written in
        -- the same transaction as the change. Current tables are a projection of it.
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL, kind TEXT NOT NULL,
            entity TEXT NOT NULL, entity_id TEXT NOT NULL,
            body TEXT NOT NULL);
        CREATE INDEX events_entity ON events (entity, entity_id);
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
        """
    )


def _m002_queue_indexes(db: sqlite_utils.Database) -> None:
    """Indexes for the hot queue queries, so none of them grows with the days of history.

    - ``tickets_line``: today's waiting line in call order (``call_next``, the waiting counts
      of ``queue_overview``, people ahead); partial, so it holds only waiting tickets and
      covers queue and target window without touching the table.
    - ``tickets_done``: the latest finished tickets of a queue today (the average service
      time behind every wait estimate).
    - ``tickets_targeted``: the few tickets transferred to one window.
    """
    db.executescript(
        """
        CREATE INDEX tickets_line ON tickets
            (service_date, priority DESC, order_at, id, queue, target_window)
            WHERE state = 'waiting';
        CREATE INDEX tickets_done ON tickets (queue, service_date, finished_at)
            WHERE state = 'done';
        CREATE INDEX tickets_targeted ON tickets (target_window)
            WHERE target_window IS NOT NULL;
        """
    )


_STATES_001 = "('waiting','called','suspended','done','no_show')"
_STATES_030 = "('waiting','called','suspended','done','no_show','expired')"


def _m030_ticket_expired(db: sqlite_utils.Database) -> None:
    """Tickets gain the closed state ``expired``: the day closed on them (``ticket.expired``,
    :mod:`node.daybreak`) while they were still waiting, called or suspended.

    SQLite cannot change a CHECK in place, so the table is rebuilt in the migration's
    transaction: its rows are set aside, the table is dropped and created again (from its own
    stored definition, with the wider CHECK), the rows go back and the indexes are recreated.
    Rows of other tables point at tickets (``cases.ticket_id``, ...): with foreign keys
    deferred, the drop leaves them dangling only until the same ids are back in ``tickets``,
    before the commit checks them.
    """
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tickets'")
    create = str(sql.fetchone()[0])
    if _STATES_001 not in create:
        raise RuntimeError("tickets: unexpected state CHECK; cannot add 'expired'")
    indexes = [
        str(r[0])
        for r in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' "
            "AND sql IS NOT NULL ORDER BY name"
        ).fetchall()
    ]
    db.execute("PRAGMA defer_foreign_keys = ON")  # reset by the commit
    db.execute("CREATE TEMP TABLE _tickets_030 AS SELECT * FROM tickets")
    db.execute("DROP TABLE tickets")
    db.execute(create.replace(_STATES_001, _STATES_030))
    db.execute("INSERT INTO tickets SELECT * FROM temp._tickets_030")
    db.execute("DROP TABLE temp._tickets_030")
    for index in indexes:
        db.execute(index)


def _m031_log_numbers(db: sqlite_utils.Database) -> None:
    """Indexes over the log for the numbers a node hands out, so none is ever issued twice.

    The tables are a projection of the log, and after a restore (:mod:`node.restore`) they
    may lack what the log holds: cases and ratings the hub sent back are in ``events`` only.
    The allocators (:mod:`node.numbers`) take the next number beyond both.

    - ``events_ticket_numbers``: the ticket numbers issued in a queue on a local day
      (``ticket.issued``: issued queue, service date, ticket number);
    - ``events_ticket_ids`` / ``events_rating_ids``: the highest ticket id and rating id
      in the log (the ``entity_id`` as a number);
    - ``events_case_numbers``: the case numbers opened (``case.opened``); a local day's
      share a prefix, so its highest is a short range of the index.

    Each index is partial, so only the events of its kind write to it.
    """
    db.executescript(
        """
        CREATE INDEX events_ticket_numbers ON events (
            json_extract(body, '$.queue'), json_extract(body, '$.service_date'),
            json_extract(body, '$.ticket_no'))
            WHERE kind = 'ticket.issued';
        CREATE INDEX events_ticket_ids ON events (CAST(entity_id AS INTEGER))
            WHERE kind = 'ticket.issued';
        CREATE INDEX events_rating_ids ON events (CAST(entity_id AS INTEGER))
            WHERE kind = 'rating.given';
        CREATE INDEX events_case_numbers ON events (entity_id) WHERE kind = 'case.opened';
        """
    )


def _m033_rating_flow(db: sqlite_utils.Database) -> None:
    """Ratings as GB/T 39734-2020 describes them (:mod:`node.ratings`).

    - ``ratings``: the reason of a bad rating, the channel it came by (window evaluator, QR,
      SMS, kiosk), the clerk and window rated; the rated clerk's appeal (申诉复核) and its
      decision; the citizen's one follow-up rating (追评) after the fix.
    - ``followups``: the call back (回访) and its deadline beside the fix's (``due_date``).
    - indexes for the window evaluator's prompt (:func:`node.ratings.prompt`) and the export.
    """
    db.executescript(
        """
        ALTER TABLE ratings ADD COLUMN reason TEXT;
        ALTER TABLE ratings ADD COLUMN channel TEXT;
        ALTER TABLE ratings ADD COLUMN clerk TEXT;
        ALTER TABLE ratings ADD COLUMN window_no INTEGER;
        ALTER TABLE ratings ADD COLUMN appeal_state TEXT
            CHECK (appeal_state IN ('open','upheld','rejected'));
        ALTER TABLE ratings ADD COLUMN appeal_reason TEXT;
        ALTER TABLE ratings ADD COLUMN appeal_by TEXT;
        ALTER TABLE ratings ADD COLUMN appeal_at TEXT;
        ALTER TABLE ratings ADD COLUMN appeal_note TEXT;
        ALTER TABLE ratings ADD COLUMN appeal_decided_by TEXT;
        ALTER TABLE ratings ADD COLUMN appeal_decided_at TEXT;
        ALTER TABLE ratings ADD COLUMN again_level INTEGER CHECK (again_level BETWEEN 1 AND 5);
        ALTER TABLE ratings ADD COLUMN again_comment TEXT;
        ALTER TABLE ratings ADD COLUMN again_at TEXT;
        CREATE INDEX ratings_created ON ratings (created_at);
        -- The window evaluator's prompt, polled every 2 seconds by every window: the latest
        -- ticket finished at a window, a later call there, the latest visit of a case.
        CREATE INDEX tickets_window_done ON tickets (window_id, finished_at)
            WHERE state = 'done';
        CREATE INDEX tickets_window_serving ON tickets (window_id, called_at)
            WHERE state IN ('called', 'suspended');
        CREATE INDEX case_visits_at ON case_visits (at);
        ALTER TABLE followups ADD COLUMN callback_due TEXT;
        ALTER TABLE followups ADD COLUMN called_back_at TEXT;
        ALTER TABLE followups ADD COLUMN called_back_by TEXT;
        ALTER TABLE followups ADD COLUMN callback_note TEXT;
        """
    )


# Append new migrations at the end; never edit or reorder a released one.
def _m032_tickets_by_person(db: sqlite_utils.Database) -> None:
    """An index for the live tickets one ID number holds on a day (``max_live_tickets_per_id``:
    :func:`node.tickets.issue` counts them in the transaction that issues another)."""
    db.executescript("CREATE INDEX tickets_person ON tickets (id_hash, service_date);")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_base", _m001_base),
    ("002_queue_indexes", _m002_queue_indexes),
    *cases_db.MIGRATIONS,
    *sync_db.MIGRATIONS,
    ("030_ticket_expired", _m030_ticket_expired),
    ("031_log_numbers", _m031_log_numbers),
    ("032_tickets_by_person", _m032_tickets_by_person),
    ("033_rating_flow", _m033_rating_flow),
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the node's pending migrations; returns the names applied."""
    return coredb.migrate(db, MIGRATIONS)
