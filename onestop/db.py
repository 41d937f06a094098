"""SQLite files (WAL) through sqlite-utils: connections, transactions, row helpers, migrations.

Writes that must be atomic go through :func:`tx`, which takes SQLite's write lock up front
(``BEGIN IMMEDIATE``) so two windows, two processes or two threads can never interleave a
read-then-write such as "call the next ticket".  Node and hub each keep their own list of
migrations and apply it with :func:`migrate`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]

log = logging.getLogger("onestop.db")


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open a database in WAL mode with autocommit (transactions via :func:`tx`)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    return db


_realpaths: dict[str, Path] = {}  # database path as SQLite names it -> its real path


def database_file(db: sqlite_utils.Database | sqlite3.Connection) -> Path | None:
    """The main database file of a connection (None for an in-memory database)."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    for row in conn.execute("PRAGMA database_list").fetchall():
        if row[1] == "main":
            if not row[2]:
                return None
            # Resolving symlinks costs a few system calls; this runs on every event written.
            real = _realpaths.get(row[2])
            if real is None:
                if len(_realpaths) >= 256:
                    _realpaths.clear()
                real = _realpaths[row[2]] = Path(os.path.realpath(row[2]))
            return real
    return None


def migrate(db: sqlite_utils.Database, migrations: Sequence[tuple[str, Migration]]) -> list[str]:
    """Apply the pending ``migrations`` in order, each in its own transaction; returns the
    names applied.  Append new migrations at the end; never edit or reorder a released one."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, fn in migrations:
        if name in done:
            continue
        with tx(db):
            fn(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name]
            )
        applied.append(name)
    return applied


class _Counter:
    n = 0


_commits = _Counter()  # commits through tx() in this process (see Checkpointer)


@contextlib.contextmanager
def tx(db: sqlite_utils.Database | sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction holding SQLite's write lock from the start (joined, when one is
    already open on the connection)."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
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
