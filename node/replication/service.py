"""The push service in the node server: runs :class:`~node.replication.client.PushClient`
shortly after new events (debounced) and on an APScheduler interval job
(``sync_interval_seconds``; each tick also asks the hub again where it stands, and believes
it only with the hub's signed receipt), backing off exponentially with jitter while the hub
is unreachable (being offline is normal and logged at info level); also the catalog fetch."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import sqlite_utils
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from node import events
from node import signer as signerm
from node.keys import CONFIG, DB
from node.replication import catalog_fetch
from node.replication.client import (
    BACKOFF_MAX_ENV,
    CATALOG_SECONDS_ENV,
    DEBOUNCE_SECONDS,
    HubError,
    HubUnreachable,
    PushClient,
    PushReport,
    backlog,
    env_number,
)
from onestop.clock import system_now

log = logging.getLogger("onestop.sync")


def backoff_cap() -> float:
    return max(1.0, float(env_number(BACKOFF_MAX_ENV, 300.0)))


def backoff_delay(failures: int, cap: float | None = None) -> float:
    """Exponential backoff with jitter: about 1, 2, 4 … seconds, at most ``cap``."""
    cap = backoff_cap() if cap is None else cap
    d = min(cap, 2.0 ** max(failures - 1, 0))
    return random.uniform(d / 2, d)


class PushService:
    """Runs :class:`PushClient` (and the catalog fetch) inside the node server."""

    def __init__(self, cfg: Any, db: sqlite_utils.Database) -> None:
        self.cfg, self.db = cfg, db
        self.client = PushClient(cfg, db)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.failures = 0
        self.next_try = 0.0  # monotonic time before which no push is attempted (backoff)
        self._lock = asyncio.Lock()
        self._again = False
        self._recheck = False  # the next push first asks the hub where it stands
        self._debounce: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: asyncio.Task[Any] | None = None
        self._closing = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        events.on_append(self._on_append)
        now = system_now()
        interval = int(self.cfg.sync_interval_seconds)
        # The job only starts a push task, so a long catch-up never overlaps the next tick.
        self.scheduler.add_job(
            self._tick,
            "interval",
            seconds=interval,
            id="sync-push",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        catalog_every = env_number(CATALOG_SECONDS_ENV, interval * 10.0)
        self.scheduler.add_job(
            self.fetch_catalog,
            "interval",
            seconds=catalog_every,
            id="sync-catalog",
            next_run_time=now + dt.timedelta(seconds=1),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.scheduler.start()
        log.info("sync: pushing to %s every %ss and after new events", self.cfg.hub_url, interval)

    async def stop(self) -> None:
        self._closing = True
        events.off_append(self._on_append)
        if self._debounce is not None:
            self._debounce.cancel()
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)
        if self._current is not None:
            self._current.cancel()  # a push waiting on the network (DB writes never await)
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                async with self._lock:
                    pass
        await self.client.close()

    def _on_append(self, conn: sqlite3.Connection, seq: int, event: dict[str, Any]) -> None:
        if conn is self.db.conn and self._loop is not None and not self._closing:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.poke)

    def poke(self) -> None:
        """New records to send: push shortly (debounced)."""
        if self._closing or self._loop is None:
            return
        if self._debounce is None:
            self._debounce = self._loop.call_later(DEBOUNCE_SECONDS, self._fire)

    async def _tick(self) -> None:
        self._recheck = True  # a backlog the hub signed for meanwhile (e.g. via a relay) shows
        self._fire()  # a coroutine job, so it runs on the event loop, not in a thread

    def _fire(self) -> None:
        self._debounce = None
        if self._closing:
            return
        task = asyncio.ensure_future(self.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> PushReport | None:
        """One scheduled or nudged push (skipped while backing off)."""
        if self._closing or time.monotonic() < self.next_try:
            return None
        if self._lock.locked():
            self._again = True
            return None
        async with self._lock:
            report = None
            self._current = asyncio.current_task()
            try:
                recheck, self._recheck = self._recheck, False
                report = await self.client.push_once(recheck=recheck)
            except HubUnreachable as exc:
                self._failed(str(exc), logging.INFO)
            except HubError as exc:
                self._failed(str(exc), logging.WARNING)
            except (sqlite3.Error, signerm.SignerError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}", logging.WARNING)
            except asyncio.CancelledError:
                if not self._closing:
                    raise
            except Exception:  # noqa: BLE001 - a bug: show it, keep the node pushing later
                log.exception("sync: push failed unexpectedly")
                self._failed("unexpected error (see the log)", logging.WARNING)
            else:
                if self.failures:
                    log.info("sync: %s reachable again", self.cfg.hub_url)
                self.failures, self.next_try = 0, 0.0
                if report.sent:
                    log.info(
                        "sync: sent %d, hub at seq %d, backlog %d, rejected %d",
                        report.sent,
                        report.ack_seq,
                        report.backlog,
                        report.rejected,
                    )
        if self._again and not self._closing:
            self._again = False
            self.poke()
        return report

    def _failed(self, message: str, level: int) -> None:
        self.failures += 1
        delay = backoff_delay(self.failures)
        self.next_try = time.monotonic() + delay
        log.log(
            level, "sync: %s; %d records wait; next try in %.1f s", message, backlog(self.db), delay
        )

    async def fetch_catalog(self) -> None:
        if self._closing:
            return
        try:
            await catalog_fetch.fetch(self.cfg, self.db, self.client)
        except HubUnreachable as exc:
            log.info("sync: catalog check skipped: %s", exc)
        except Exception as exc:  # noqa: BLE001 - never let the job die
            log.warning("sync: catalog check failed: %s", exc)


class SyncHolder:
    """Mutable slot for the push service (created before the app is frozen)."""

    service: PushService | None = None


SYNC = web.AppKey("sync", SyncHolder)


async def push_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: run the push service when the node has a hub_url."""
    cfg = app[CONFIG]
    holder = app.get(SYNC)
    service = None
    if cfg.hub_url:
        service = PushService(cfg, app[DB])
        await service.start()
        if holder is not None:
            holder.service = service
    try:
        yield
    finally:
        if service is not None:
            await service.stop()
            if holder is not None:
                holder.service = None
