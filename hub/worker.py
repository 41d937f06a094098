"""Ingest off the event loop: one worker thread with its own SQLite connection, a thread that
parses push bodies, and processes that check record signatures ahead.

Verifying a batch and writing it takes long enough to stall other requests, so
:class:`IngestWorker` runs it on a single thread (pushes are serialised, as SQLite writes are
anyway) while the event loop keeps answering reads on the main connection.  Parsing a push
body (JSON of up to ``max_body_mb``) runs on a thread of its own, so the event loop stays
free and the next push is parsed while one is being verified.

Ed25519 verification is most of the CPU of ingest, and ``cryptography`` holds the GIL while it
verifies, so threads cannot spread it over cores.  :class:`SignaturePool` runs one process per
core (``multiprocessing`` "spawn": the hub's entry point must be import-safe, as
``onestop``/``python -m hub`` are); :meth:`IngestWorker.check_signatures` queues a signed
push's record signatures there as soon as it is parsed.  The chain walk on the ingest thread
(shape, hash, key, link, schema: every check, in order, as before) takes a signature's result
from the pool when it is there and otherwise verifies the signature itself, so it never waits
for the pool: the pool takes the newest work first (the last pushes queued, the end of a
push), the ingest thread the oldest, and they meet in between.  Whatever the pool did not
check (small pushes, unsigned requests, a key it was not told about, a broken pool) is
verified on the spot, as it always was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from hub import db as hubdb
from sync.chain import serve_signatures
from sync.keys import Ed25519PublicKey

T = TypeVar("T")
log = logging.getLogger("onestop.hub")

PROCESSES_ENV = "ONESTOP_HUB_VERIFY_PROCESSES"  # signature processes; 0: none (default: cores)
MIN_PARALLEL = 64  # pushes with fewer signatures are verified on the ingest thread alone
CHUNK = 32  # signatures per pool job (about 4 ms of Ed25519)
DEPTH = 2  # jobs sent to a process ahead, so it never waits for the next one


def _processes() -> int:
    raw = os.environ.get(PROCESSES_ENV, "").strip()
    if raw:
        try:
            return max(0, min(int(raw), 64))
        except ValueError:
            log.warning("%s=%r is not a number; using the core count", PROCESSES_ENV, raw)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return cores if cores > 1 else 0


Item = tuple[bytes, str, str]  # (raw public key, sig as sent, hash hex)


class _Job:
    __slots__ = ("items", "result", "state")

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.result: bytes | None = None  # one byte per item: 1 verifies, 0 does not
        self.state = "queued"  # queued, sent, done, dropped (the ingest thread took it)


class SignaturePool:
    """Processes verifying batches of record signatures (:func:`sync.chain.serve_signatures`),
    newest job first.  Fed and drained by whoever calls :meth:`pump` (the event loop when it
    queues work, the ingest thread when it looks for a result) and by a thread that sleeps
    until a process answers."""

    def __init__(self, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork this threaded server
        self._lock = threading.Lock()
        self._stack: list[_Job] = []
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._sent: list[dict[int, _Job]] = []
        self._next = 0
        self.broken = False
        self._closing = False
        for i in range(processes):
            ours, theirs = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=serve_signatures, args=(theirs,), name=f"hub-verify-{i}", daemon=True
            )
            proc.start()
            theirs.close()
            self._conns.append(ours)
            self._procs.append(proc)
            self._sent.append({})
        self._wake_r, self._wake_w = ctx.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._run, name="hub-verify-pump", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Item]) -> list[tuple[_Job, int]]:
        """Queue ``items`` in jobs of :data:`CHUNK`; returns (job, offset) per job, in order."""
        jobs = [(_Job(list(items[i : i + CHUNK])), i) for i in range(0, len(items), CHUNK)]
        with self._lock:
            if self.broken or self._closing:
                for job, _ in jobs:
                    job.state = "dropped"
                return jobs
            self._stack.extend(job for job, _ in jobs)  # popped from the end: last job first
            self._exchange()
        return jobs

    def pump(self) -> None:
        """Take in answers and send queued jobs, unless another thread is doing it now."""
        if self._lock.acquire(blocking=False):
            try:
                self._exchange()
            finally:
                self._lock.release()

    def _exchange(self) -> None:  # the lock is held
        if self.broken:
            return
        try:
            for conn, sent in zip(self._conns, self._sent, strict=True):
                while sent and conn.poll():
                    job_id, result = conn.recv()
                    job = sent.pop(job_id)
                    job.result, job.state = result, "done"
            for conn, sent in zip(self._conns, self._sent, strict=True):
                while len(sent) < DEPTH and self._stack:
                    job = self._stack.pop()
                    if job.state != "queued":
                        continue
                    self._next += 1
                    conn.send((self._next, job.items))
                    job.state = "sent"
                    sent[self._next] = job
        except (OSError, EOFError, ValueError) as exc:  # a process died: verify in-process
            if not self._closing:
                log.warning("hub: signature process failed (%s); verifying in-process", exc)
            self.broken = True
            for job in self._stack:
                job.state = "dropped"
            self._stack.clear()

    def _run(self) -> None:
        while not self._closing and not self.broken:
            try:
                wait([*self._conns, self._wake_r], timeout=0.5)
            except (OSError, ValueError):
                return
            if self._closing:
                return
            with self._lock:
                self._exchange()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            for job in self._stack:
                job.state = "dropped"
            self._stack.clear()
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"x")
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()  # the process sees EOF and exits
        deadline = time.monotonic() + 5
        for proc in self._procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=1)
        self._wake_r.close()
        self._wake_w.close()


class SignatureJobs:
    """A push's signatures on the pool: a :data:`sync.chain.SignatureResults`.

    Keyed by the signature and record hash as sent; a result is used only for the exact public
    key it was checked with (the chain walk decides which key each record needs), and only if
    it is there already: otherwise the caller verifies (and the pool skips that job)."""

    def __init__(self, pool: SignaturePool, items: Sequence[Item]) -> None:
        self._pool = pool
        self._where: dict[tuple[str, str], tuple[bytes, _Job, int]] = {}
        self._jobs = pool.submit(items)
        for job, _ in self._jobs:
            for i, (raw, sig, h) in enumerate(job.items):
                self._where[(sig, h)] = (raw, job, i)

    def __len__(self) -> int:
        return len(self._where)

    def __call__(self, key: Ed25519PublicKey, sig: str, h: str) -> bool | None:
        found = self._where.get((sig, h))
        if found is None:
            return None
        raw, job, i = found
        if job.result is None:
            self._pool.pump()
            if job.result is None:
                if job.state == "queued":
                    job.state = "dropped"  # the ingest thread verifies these itself
                return None
        if key.public_bytes_raw() != raw:
            return None
        return job.result[i] == 1

    def cancel(self) -> None:
        """The push is done: drop its jobs not sent yet."""
        for job, _ in self._jobs:
            if job.state == "queued":
                job.state = "dropped"


class IngestWorker:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._executor: ThreadPoolExecutor | None = None
        self._parser: ThreadPoolExecutor | None = None
        self._pool: SignaturePool | None = None
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

    def check_signatures(self, items: Sequence[Item]) -> SignatureJobs | None:
        """Queue ``(raw public key, sig, hash)`` signature checks on the process pool
        (started on first use); None when too few to be worth it or no pool."""
        if len(items) < MIN_PARALLEL or not self._processes or self._executor is None:
            return None
        if self._pool is None or self._pool.broken:
            if self._pool is not None:  # it broke: don't keep starting processes
                self._processes = 0
                return None
            try:
                self._pool = SignaturePool(self._processes)
            except (OSError, RuntimeError) as exc:
                log.warning("hub: cannot start signature processes (%s); verifying in-process",
                            exc)  # fmt: skip
                self._processes = 0
                return None
        return SignatureJobs(self._pool, items)

    def stop(self) -> None:
        if self._parser is not None:
            self._parser.shutdown(wait=True)
            self._parser = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._db is not None:
            self._db.conn.close()
            self._db = None
