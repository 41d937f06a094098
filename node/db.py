"""The node's SQLite file (WAL) through sqlite-utils, with versioned migrations.

Writes that must be atomic go through :func:`tx`, which takes SQLite's write lock up front
(``BEGIN IMMEDIATE``) so two windows, two processes or two threads can never interleave a
read-then-write such as "call the next ticket".
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]

log = logging.getLogger("onestop.db")


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


# Append new migrations at the end; never edit or reorder a released one.
MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_base", _m001_base),
    ("002_queue_indexes", _m002_queue_indexes),
]


def register(name: str, fn: Migration) -> None:
    """Add a migration (used by feature modules so each keeps its own tables)."""
    if any(n == name for n, _ in MIGRATIONS):
        return
    MIGRATIONS.append((name, fn))


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open the node database in WAL mode with autocommit (transactions via :func:`tx`)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; returns the names applied."""
    _load_feature_migrations()
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with tx(db):
            fn(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name]
            )
        applied.append(name)
    return applied


def _load_feature_migrations() -> None:
    # Feature modules register their tables on import.
    import importlib

    for mod in ("node.cases.db", "node.sync_db"):
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(mod)


class _Counter:
    n = 0


_commits = _Counter()  # commits through tx() in this process (see Checkpointer)


@contextlib.contextmanager
def tx(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One write transaction holding SQLite's write lock from the start."""
    conn = db.conn
    if conn.in_transaction:  # nested: join the outer transaction
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
        _commits.n += 1


def one(db: sqlite_utils.Database, sql: str, params: Any = ()) -> dict[str, Any] | None:
    row = db.execute(sql, params).fetchone()
    return dict(row) if row is not None else None


def rows(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in db.execute(sql, params).fetchall()]


def get_meta(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


class Checkpointer:
    """WAL checkpoints on a thread of their own, so requests do not wait for them.

    SQLite's automatic checkpoint runs inside the ``COMMIT`` that takes the WAL past 1,000
    pages: that request copies the pages into the database file and fsyncs both files, on
    the server's event loop, and every request queued behind it waits.  While this runs, a
    second connection checkpoints on its own thread (``PASSIVE``: never blocks a writer or a
    reader; the GIL is released while SQLite works) after every ``every_commits`` commits
    through :func:`tx` (about the pages of SQLite's 1,000-page default), and at least every
    ``max_interval`` seconds (a no-op when nothing was written), so the copying and the
    fsyncs leave the event loop.  (Each finished checkpoint makes the next write start the
    WAL over, which fsyncs the WAL header once: hence not a checkpoint every moment.)

    A passive checkpoint cannot finish while the server keeps writing, and the WAL only
    starts over after one that finished; so the serving connection keeps SQLite's automatic
    checkpoint as a backstop at ``fallback_pages`` (instead of 1,000): under a sustained
    burst the WAL stays bounded (about 40 MB) and the backstop finds most pages already
    copied.  Durability is unchanged (WAL with ``synchronous=NORMAL``: a commit survives a
    crash of the process; checkpoints fsync as before).
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        path: str | Path,
        every_commits: int = 100,
        max_interval: float = 30.0,
        fallback_pages: int = 10_000,
        poll: float = 0.1,
    ) -> None:
        self.db = db
        self.path = str(path)
        self.every_commits = every_commits
        self.max_interval = max_interval
        self.fallback_pages = fallback_pages
        self.poll = poll
        self.passes = 0  # checkpoints run
        self.complete = 0  # of which copied the whole WAL (the next write starts it over)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self.db.execute(f"PRAGMA wal_autocheckpoint={int(self.fallback_pages)}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(30)
        self._thread = None
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_autocheckpoint=1000")

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:  # pragma: no cover - the server's own connection works
            log.warning("WAL checkpoints: cannot open %s: %s", self.path, exc)
            return
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            seen, last = _commits.n, time.monotonic()
            while not self._stop.wait(self.poll):
                if (
                    _commits.n - seen < self.every_commits
                    and time.monotonic() - last < self.max_interval
                ):
                    continue
                seen, last = _commits.n, time.monotonic()
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        # Each further pass copies only what was written during the one before (little, so
        # quickly): one of them usually finishes between two writes.
        for _ in range(5):
            try:
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)
                return
            self.passes += 1
            if busy:
                return
            if frames <= 0 or done >= frames:
                self.complete += 1
                return
