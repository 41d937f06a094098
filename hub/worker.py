"""Ingest off the event loop: one worker thread with its own SQLite connection, a thread that
parses push bodies, and processes that check record signatures ahead.

Verifying a batch and writing it takes long enough to stall other requests, so
:class:`IngestWorker` runs it on a single thread (pushes are serialised, as SQLite writes are
anyway) while the event loop keeps answering reads on the main connection.  Parsing a push
body (JSON of up to ``max_body_mb``) runs on a thread of its own too, so the event loop stays
free and a push is parsed while the previous one is being verified.

Ed25519 verification is most of the CPU of ingest, and ``cryptography`` holds the GIL while it
verifies, so threads cannot spread it over cores.  :meth:`IngestWorker.check_signatures`
hands a push's record signatures to a pool of processes (one per core) as soon as the push is
parsed; the chain walk on the ingest thread (hashes, links, keys, schemas, in order, exactly
as before) then takes each signature's result from the pool instead of verifying it itself —
it only waits when it catches up with the pool.  A signature the pool did not check (small
pushes, unsigned requests, a key the pool was not told about, a broken pool) is verified on
the spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from hub import db as hubdb
from sync.chain import verify_signatures
from sync.keys import Ed25519PublicKey

T = TypeVar("T")
log = logging.getLogger("onestop.hub")

PROCESSES_ENV = "ONESTOP_HUB_VERIFY_PROCESSES"  # processes checking signatures; 0: none
MIN_PARALLEL = 64  # fewer signatures in a push are verified on the ingest thread
CHUNK = int(os.environ.get("XCHUNK", "32"))  # signatures per pool task


def _processes() -> int:
    raw = os.environ.get(PROCESSES_ENV, "")
    if raw.strip():
        try:
            return max(0, min(int(raw), 64))
        except ValueError:
            pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


def _warm() -> None:
    """Pool process start-up: nothing to do beyond importing sync.chain (done on unpickling)."""


class SignatureJobs:
    """Record signatures being checked on the pool: a :data:`sync.chain.SignatureResults`.

    Keyed by the signature and record hash as sent; a result is only used for the exact public
    key it was checked with (the chain walk decides which key a record needs)."""

    def __init__(self) -> None:
        self._where: dict[tuple[str, str], tuple[bytes, Future[list[bool]], int]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def add(self, items: Sequence[tuple[bytes, str, str]], future: Future[list[bool]]) -> None:
        for i, (raw, sig, h) in enumerate(items):
            self._where[(sig, h)] = (raw, future, i)

    def __call__(self, key: Ed25519PublicKey, sig: str, h: str) -> bool | None:
        found = self._where.get((sig, h))
        if found is None:
            return None
        raw, future, i = found
        # Not checked yet: the caller verifies it itself rather than wait (the pool works
        # from the end of the push towards its start, the chain walk from the start).
        if not future.done() or future.cancelled() or future.exception() is not None:
            return None
        if key.public_bytes_raw() != raw:
            return None
        return future.result()[i]

    def cancel(self) -> None:
        """Drop the checks not started yet (the push is done)."""
        for _, future, _ in self._where.values():
            future.cancel()


class IngestWorker:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._executor: ThreadPoolExecutor | None = None
        self._parser: ThreadPoolExecutor | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._processes = _processes()
        self._db: sqlite_utils.Database | None = None

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-ingest")
        self._parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-parse")
        self._db = hubdb.connect(self.db_path)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` on the worker thread."""
        if self._executor is None or self._db is None:
            raise RuntimeError("ingest worker is not running")
        db = self._db

        def call() -> T:
            return fn(db, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def parse(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` (parsing a request body) on the parser thread."""
        if self._parser is None:
            raise RuntimeError("ingest worker is not running")
        return await asyncio.get_running_loop().run_in_executor(self._parser, fn, *args)

    def _get_pool(self) -> ProcessPoolExecutor | None:
        if self._pool is None and self._processes and self._executor is not None:
            # spawn: a fresh interpreter (forking this threaded server process is unsafe).
            self._pool = ProcessPoolExecutor(
                max_workers=self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm,
            )
        return self._pool

    def check_signatures(self, items: Sequence[tuple[bytes, str, str]]) -> SignatureJobs | None:
        """Start checking ``(raw public key, sig, hash)`` signatures on the process pool;
        None when there are too few to be worth it or no pool."""
        if len(items) < MIN_PARALLEL:
            return None
        pool = self._get_pool()
        if pool is None:
            return None
        jobs = SignatureJobs()
        mode = os.environ.get("XMODE", "fixed")
        size = CHUNK if mode == "fixed" else max(16, min(512, -(-len(items) // (self._processes + 1))))
        try:
            # Last chunk first: the chain walk verifies from the start what is not done yet.
            for i in reversed(range(0, len(items), size)):
                chunk = list(items[i : i + size])
                jobs.add(chunk, pool.submit(verify_signatures, chunk))
        except RuntimeError as exc:  # a broken pool: from now on the ingest thread verifies
            log.warning(
                "hub: signature processes unavailable (%s); verifying on the ingest thread",
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            self._pool, self._processes = None, 0
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False, cancel_futures=True)
        return jobs

    def stop(self) -> None:
        if self._parser is not None:
            self._parser.shutdown(wait=True)
            self._parser = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._db is not None:
            self._db.conn.close()
            self._db = None
