"""Ingest off the event loop: one worker thread with its own SQLite connection.

Verifying a batch (Ed25519 per record, Merkle roots) and writing it takes long enough to stall
other requests, so :class:`IngestWorker` runs it on a single thread (pushes are serialised, as
SQLite writes are anyway) while the event loop keeps answering reads on the main connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from hub import db as hubdb

T = TypeVar("T")


class IngestWorker:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite_utils.Database | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-ingest")
        self._db = hubdb.connect(self.db_path)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` on the worker thread."""
        if self._executor is None or self._db is None:
            raise RuntimeError("ingest worker is not running")
        db = self._db

        def call() -> T:
            return fn(db, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._db is not None:
            self._db.conn.close()
            self._db = None
