"""The day's close: at local midnight earlier days' open tickets end with ``ticket.expired``.

A ticket belongs to its service date (the local day it was issued).  When that day is over,
every ticket of it still ``waiting``, ``called`` or ``suspended`` is closed: its state becomes
``expired`` and a signed ``ticket.expired`` event (``ticket_no``, ``queue``,
``service_date``, ``from_state``, ``reason`` ``day_closed``) records it, all tickets in one
transaction.  An expired ticket was neither served nor a no-show: the citizen never had the
chance; the hub's rollups count it apart (``tickets_expired``).

- ``called``: a ticket still at a window when the day ends was neither finished nor marked
  no-show by the window; nobody will finish it the next morning, so it expires in every queue.
- Queues listed in ``keep_overnight_queues`` keep their ``waiting`` and ``suspended`` tickets
  (a window may still resume a suspended one).  A kept ticket stays in its own day's line:
  people ahead, waiting counts and wait estimates only ever count tickets of the same service
  date (:func:`node.tickets.waiting_ahead`, :func:`node.tickets.queue_overview`), so it is
  never ahead of a new day's ticket.

:func:`close_day` runs from an APScheduler cron job at 00:00 in the node's ``timezone`` and
once when the node starts (catching up a midnight it was off for); closing twice changes
nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import sqlite_utils
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from node import db as dbm
from node import events
from node.config import NodeConfig
from node.keys import CLOCK, CONFIG, DB
from onestop.clock import Now, iso, local_date, system_now

log = logging.getLogger("onestop.node")

OPEN_STATES = ("waiting", "called", "suspended")
KEPT_STATES = ("waiting", "suspended")
REASON = "day_closed"
JOB_ID = "day-close"


def close_day(
    db: sqlite_utils.Database, cfg: NodeConfig, now: Now = system_now
) -> list[dict[str, Any]]:
    """Expire every open ticket of a service date before today's (local); returns the
    tickets closed (``id``, ``ticket_no``, ``queue``, ``service_date``, ``from_state``)."""
    t = now()
    today = local_date(t, cfg.timezone).isoformat()
    at = iso(t)
    kept = cfg.kept_queues
    closed: list[dict[str, Any]] = []
    with dbm.tx(db) as conn:
        rows = conn.execute(
            "SELECT id, ticket_no, queue, service_date, state FROM tickets "
            "WHERE state IN ('waiting','called','suspended') AND service_date < ? "
            "ORDER BY service_date, id",
            [today],
        ).fetchall()
        for r in rows:
            if r["queue"] in kept and r["state"] in KEPT_STATES:
                continue
            body = {
                "ticket_no": r["ticket_no"],
                "queue": r["queue"],
                "service_date": r["service_date"],
                "from_state": r["state"],
                "reason": REASON,
            }
            events.append(conn, "ticket.expired", "ticket", r["id"], body, at=at)
            closed.append({"id": r["id"], **body})
    if closed:
        log.info("day close: %d tickets of earlier days expired", len(closed))
    return closed


class DayClose:
    """The midnight job: an APScheduler cron trigger at 00:00 in the node's time zone."""

    def __init__(self, cfg: NodeConfig, db: sqlite_utils.Database, now: Now) -> None:
        self.cfg, self.db, self.now = cfg, db, now
        self.scheduler = AsyncIOScheduler(timezone=cfg.timezone)
        self.trigger = CronTrigger(hour=0, minute=0, timezone=cfg.timezone)

    async def run(self) -> list[dict[str, Any]]:
        """One close (a coroutine job: it runs on the event loop, like the requests that
        write the same tables)."""
        try:
            return close_day(self.db, self.cfg, self.now)
        except Exception:  # noqa: BLE001 - a bug: show it, keep the job for the next night
            log.exception("day close failed")
            return []

    def start(self) -> None:
        self.scheduler.add_job(
            self.run,
            self.trigger,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.scheduler.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)


class DayCloseHolder:
    """Mutable slot for the running job (created before the app is frozen)."""

    job: DayClose | None = None


DAY_CLOSE = web.AppKey("day_close", DayCloseHolder)


async def day_close_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: catch up a midnight the node was off for, then run the
    midnight job until the node stops."""
    job = DayClose(app[CONFIG], app[DB], app[CLOCK])
    await job.run()
    job.start()
    holder = app.get(DAY_CLOSE)
    if holder is not None:
        holder.job = job
    try:
        yield
    finally:
        job.stop()
        if holder is not None:
            holder.job = None
